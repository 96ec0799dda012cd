import { readFileSync } from 'node:fs';
import type { StoreConfig } from '../config.js';
import { systemClock, type Clock } from '../ports/clock.js';
import type { LockPort } from '../ports/lock.js';
import type { VaultPort } from '../ports/vault.js';
import { createMemoryLock } from '../adapters/lock-memory.js';
import { createPostgresLock } from '../adapters/lock-postgres.js';
import { createNoVault } from '../adapters/vault-none.js';
import { createPostgresVault } from '../adapters/vault-postgres.js';
import { createSqliteVault } from '../adapters/vault-sqlite.js';
import { noStoreMetrics, type StoreMetrics } from './metrics.js';
import { sealerFromFiles } from './seal.js';

/**
 * The store a configuration asks for (oauth2-proxy's factory keyed on config): memory = the
 * in-process lock and no vault; sqlite = the in-process lock and the file vault; postgres = the
 * shared advisory lock and the shared vault. Used by compose.ts and by the `vault` commands.
 */
export interface Store {
  kind: StoreConfig['kind'];
  lock: LockPort;
  vault: VaultPort;
  close(): Promise<void>;
}

export interface StoreDeps {
  clock?: Clock;
  metrics?: StoreMetrics;
  /** false: the vault only (the `vault` commands take no locks). Default true. */
  lock?: boolean;
}

/** Opens the store; rejects with VaultUnavailable (database), KeyFileError (keys) or Error. */
export async function openStore(s: Readonly<StoreConfig>, deps: StoreDeps = {}): Promise<Store> {
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics ?? noStoreMetrics;
  if (s.kind === 'memory') {
    const lock = createMemoryLock({ clock, metrics });
    return { kind: s.kind, lock, vault: createNoVault(), close: () => lock.close() };
  }
  const sealer = sealerFromFiles(s.encryptionKeyFile, s.decryptionKeyFiles);
  if (s.kind === 'sqlite') {
    const vault = createSqliteVault({ path: s.path!, timeoutMs: s.timeoutMs, sealer, clock, metrics });
    const lock = createMemoryLock({ clock, metrics });
    return { kind: s.kind, lock, vault, close: async () => { await lock.close(); await vault.close(); } };
  }
  const conn = {
    url: s.url!,
    timeoutMs: s.timeoutMs,
    ...(s.tls ? { tls: { rejectUnauthorized: s.tls.rejectUnauthorized, ...(s.tls.ca ? { ca: readFileSync(s.tls.ca) } : {}) } } : {}),
  };
  const vault = await createPostgresVault({ ...conn, poolSize: s.poolSize, sealer, clock, metrics });
  if (deps.lock === false) return { kind: s.kind, lock: createMemoryLock({ clock }), vault, close: () => vault.close() };
  const lock = createPostgresLock({ ...conn, lockPoolSize: s.lockPoolSize, clock, metrics });
  return { kind: s.kind, lock, vault, close: async () => { await lock.close(); await vault.close(); } };
}
