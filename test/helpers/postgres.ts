// The throwaway PostgreSQL cluster lives beside the bench (scripts/), which uses it too.
export * from '../../scripts/postgres-cluster.js';
