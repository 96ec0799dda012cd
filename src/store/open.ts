/** The store factory lives in the composition root (src/compose.ts: the only file naming adapters). */
export { openStore, type Store, type StoreDeps } from '../compose.js';
