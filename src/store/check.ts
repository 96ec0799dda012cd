import type { Config } from '../config.js';
import { openStore, sqliteHeldByAnotherProcess } from './open.js';

/**
 * check-config's store step (issue 18 item 1): loads the keys, then opens the store as the
 * gateway will — the sqlite file is created and migrated, PostgreSQL is connected to, migrated
 * and pinged, and the lock pool takes a connection. Returns the problems; the messages never
 * carry the URL or a key.
 */
export async function checkStore(config: Readonly<Config>): Promise<{ problems: string[]; warnings: string[] }> {
  const s = config.store;
  if (s.kind === 'memory') return { problems: [], warnings: [] };
  const warnings = s.kind === 'sqlite' && s.path && (await sqliteHeldByAnotherProcess(s.path))
    ? [`store.path: ${s.path} is held by a running gateway process (this one, if it runs here; a second gateway on the file is refused at start-up)`]
    : [];
  return { problems: await openAndPing(s), warnings };
}

async function openAndPing(s: Readonly<Config>['store']): Promise<string[]> {
  try {
    const store = await openStore(s);
    try {
      await store.vault.ping();
      await store.lock.ping();
    } finally {
      await store.close();
    }
    return [];
  } catch (e) {
    return [`store (${s.kind}): ${(e as Error).message}`];
  }
}
