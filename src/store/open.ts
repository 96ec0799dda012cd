/** The store factory lives in the composition root (src/compose.ts: the only file naming adapters). */
export { openStore, sqliteHeldByAnotherProcess, type Store, type StoreDeps } from '../compose.js';
