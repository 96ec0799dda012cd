/**
 * The vault contract against every adapter that keeps versions: SQLite in a temporary folder and
 * PostgreSQL on a throwaway cluster; and the no-op vault of the memory kind.
 */
import t from 'tap';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ManualClock } from '../../src/ports/clock.js';
import { VaultUnavailable } from '../../src/ports/vault.js';
import { createSqliteVault } from '../../src/adapters/vault-sqlite.js';
import { createPostgresVault } from '../../src/adapters/vault-postgres.js';
import { createNoVault } from '../../src/adapters/vault-none.js';
import { entry, vaultContract } from './vault.contract.js';
import { pgMissing, startPostgres } from '../helpers/postgres.js';

t.test('sqlite', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-vault-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const clock = new ManualClock();
  let n = 0;
  const timeoutMs = 100;
  vaultContract(t, {
    clock,
    open: async (sealer) => {
      const path = join(dir, `v${++n}.db`);
      const make = (s = sealer) => createSqliteVault({ path, timeoutMs, clock, ...(s ? { sealer: s } : {}) });
      return {
        vault: make(),
        reopen: async (s) => make(s),
        timeoutMs,
        rawVersions: async () => {
          const db = new Database(path, { readonly: true });
          try {
            return db.prepare('SELECT body, key_id FROM gw_versions').all() as Array<{ body: Buffer; key_id: string | null }>;
          } finally {
            db.close();
          }
        },
        // Another writer (the `vault purge` command in another process) holding the write lock.
        block: async () => {
          const db = new Database(path);
          db.exec('BEGIN IMMEDIATE');
          return async () => {
            db.exec('ROLLBACK');
            db.close();
          };
        },
      };
    },
    down: async () => createSqliteVault({ path: '/dev/null/cannot/be/a/folder.db', timeoutMs, clock }),
    downWithinMs: 1000,
  });

  t.test('the file is WAL, synchronous FULL, readable by its owner only', async (t) => {
    const path = join(dir, 'modes.db');
    const v = createSqliteVault({ path, timeoutMs, clock });
    t.equal(v.db.pragma('journal_mode', { simple: true }), 'wal');
    t.equal(v.db.pragma('synchronous', { simple: true }), 2, 'FULL');
    t.equal(statSync(path).mode & 0o777, 0o600);
    await v.close();
    await t.rejects(v.keep(entry('x', '1', clock.now())), VaultUnavailable, 'closed: VaultUnavailable');
  });

  t.test('metrics hooks: latency by operation, rows kept, errors by kind', async (t) => {
    const seen = { ops: new Set<string>(), rows: [] as number[], errors: [] as string[] };
    const metrics = { duration: (op: string) => void seen.ops.add(op), error: (k: string) => void seen.errors.push(k), lockWait() {}, rows: (n: number) => void seen.rows.push(n) };
    const path = join(dir, 'metrics.db');
    const v = createSqliteVault({ path, timeoutMs, clock, metrics });
    await v.keep(entry('m', '1', clock.now()));
    await v.keep(entry('m', '2', clock.now()));
    await v.history('m');
    await v.purge(clock.now() + 1);
    t.same([...seen.ops].sort(), ['history', 'keep', 'purge']);
    t.same(seen.rows, [0, 1, 2, 0], 'rows at open, after each keep, after the purge');
    const blocker = new Database(path);
    blocker.exec('BEGIN IMMEDIATE');
    await t.rejects(v.keep(entry('m', '3', clock.now())), VaultUnavailable);
    blocker.exec('ROLLBACK');
    blocker.close();
    t.same(seen.errors, ['timeout'], 'a busy store counts as a timeout');
    await v.close();
  });

  t.test('group commit: writes asked for in one turn are committed together; a failing one fails alone', async (t) => {
    const path = join(dir, 'group.db');
    const v = createSqliteVault({ path, timeoutMs, clock });
    const kept = await Promise.all([1, 2, 3, 4, 5].map((i) => v.keep(entry(`g${i}`, '1', clock.now()))));
    t.equal(new Set(kept).size, 5, 'five decisions, five ids');
    for (let i = 1; i <= 5; i++) t.equal((await v.history(`g${i}`)).length, 1, `g${i} kept`);
    // One link to an id that does not exist, beside two good keeps in the same turn.
    const [a, bad, b] = await Promise.allSettled([v.keep(entry('h1', '1', clock.now())), v.link('999999', { versionId: '2', at: clock.now() }), v.keep(entry('h2', '1', clock.now()))]);
    t.equal(a.status, 'fulfilled');
    t.equal(b.status, 'fulfilled');
    t.equal(bad.status, 'rejected', 'the failing write rolls back its own savepoint only');
    t.ok(bad.status === 'rejected' && bad.reason instanceof VaultUnavailable);
    t.equal((await v.history('h1')).length + (await v.history('h2')).length, 2, 'its neighbours are committed');
    t.equal(v.db.pragma('synchronous', { simple: true }), 2, 'FULL after a batch with keeps');
    await v.close();
  });

  t.test('schema version recorded once; reopening does not migrate again', async (t) => {
    const path = join(dir, 'schema.db');
    await createSqliteVault({ path, timeoutMs, clock }).close();
    await createSqliteVault({ path, timeoutMs, clock }).close();
    const db = new Database(path, { readonly: true });
    t.same(db.prepare('SELECT version FROM gw_schema_version').all(), [{ version: 1 }]);
    db.close();
  });
});

t.test('postgres', async (t) => {
  const missing = pgMissing();
  if (missing) return void t.skip(missing, async () => {});
  const cluster = await startPostgres();
  t.teardown(() => cluster.destroy());
  const clock = new ManualClock();
  const timeoutMs = 500;
  let n = 0;
  const onDb = async <R extends pg.QueryResultRow>(url: string, text: string): Promise<R[]> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query<R>(text)).rows;
    } finally {
      await c.end();
    }
  };
  vaultContract(t, {
    clock,
    open: async (sealer) => {
      const url = await cluster.createDatabase(`v${++n}`);
      const make = (s = sealer) => createPostgresVault({ url, poolSize: 4, timeoutMs, clock, ...(s ? { sealer: s } : {}) });
      return {
        vault: await make(),
        reopen: (s) => make(s),
        timeoutMs,
        rawVersions: () => onDb<{ body: Buffer; key_id: string | null }>(url, 'SELECT body, key_id FROM gw_versions'),
        block: async () => {
          const c = new pg.Client({ connectionString: url });
          await c.connect();
          await c.query('BEGIN');
          await c.query('LOCK TABLE gw_versions, gw_decisions IN ACCESS EXCLUSIVE MODE');
          return async () => {
            await c.query('ROLLBACK');
            await c.end();
          };
        },
      };
    },
    down: () => createPostgresVault({ url: `postgres://postgres@127.0.0.1:1/postgres`, poolSize: 2, timeoutMs, clock }),
    downWithinMs: 3000,
  });

  t.test('replicas starting together migrate once', async (t) => {
    const url = await cluster.createDatabase('race');
    const vaults = await Promise.all([1, 2, 3].map(() => createPostgresVault({ url, poolSize: 2, timeoutMs: 2000, clock })));
    t.same(await onDb(url, 'SELECT version FROM gw_schema_version'), [{ version: 1 }]);
    await Promise.all(vaults.map((v) => v.close()));
  });

  t.test('PostgreSQL stopped after start-up: VaultUnavailable quickly, then it recovers', async (t) => {
    const url = await cluster.createDatabase('stop');
    const v = await createPostgresVault({ url, poolSize: 2, timeoutMs, clock });
    await v.keep(entry('s1', '1', clock.now()));
    cluster.stop();
    const started = Date.now();
    await t.rejects(v.keep(entry('s1', '2', clock.now())), VaultUnavailable);
    t.ok(Date.now() - started < 3000, 'fails fast');
    await t.rejects(v.ping(), VaultUnavailable);
    await cluster.start();
    await v.keep(entry('s1', '2', clock.now()));
    t.same((await v.history('s1')).map((r) => r.versionBefore), ['1', '2'], 'kept before and after the outage');
    await v.close();
  });
});

t.test('none (memory kind): keeps nothing, serves nothing, never fails', async (t) => {
  const v = createNoVault();
  t.equal(typeof (await v.keep(entry('n', '1', 0))), 'string');
  await v.link('', { versionId: '2', at: 0 });
  t.equal(await v.version('n', '1'), undefined);
  t.same(await v.history('n'), []);
  const rows = [];
  for await (const r of v.all()) rows.push(r);
  t.same(rows, []);
  t.equal(await v.purge(Date.now()), 0);
  await v.ping();
  await v.close();
});
