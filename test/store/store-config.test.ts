/** The `store` configuration section, checkStore, openStore and the retention schedule. */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyEnv, buildConfig, ConfigError } from '../../src/config.js';
import { ManualClock } from '../../src/ports/clock.js';
import type { VaultPort } from '../../src/ports/vault.js';
import { checkStore } from '../../src/store/check.js';
import { createSqliteVault } from '../../src/adapters/vault-sqlite.js';
import { openStore } from '../../src/store/open.js';
import { startRetention } from '../../src/store/retention.js';
import { pgMissing, startPostgres } from '../helpers/postgres.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-store-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const keyFile = join(dir, 'store.key');
writeFileSync(keyFile, Buffer.alloc(32, 9));

const base = (store?: Record<string, unknown>) => ({
  publicBaseUrl: 'https://gw.example',
  tls: { cert: '/x', key: '/x', clientCa: '/x' },
  upstream: { url: 'http://127.0.0.1:9' },
  spine: { providerAsids: ['1'] },
  ...(store ? { store } : {}),
});
const build = (store?: Record<string, unknown>) => buildConfig(base(store), { checkFiles: false, baseDir: dir });

function problems(store: Record<string, unknown>): string[] {
  try {
    build(store);
    return [];
  } catch (e) {
    return (e as ConfigError).problems;
  }
}

t.test('defaults: memory, 2 s per operation, 15 s lock wait, keep for ever', async (t) => {
  t.same(build().store, { kind: 'memory', poolSize: 10, lockPoolSize: 20, timeoutMs: 2000, lockWaitMs: 15000, decryptionKeyFiles: [] });
  const s = build({ kind: 'sqlite', path: 'var/vault.db', encryptionKeyFile: 'store.key', decryptionKeyFiles: ['old.key'] }).store;
  t.equal(s.path, join(dir, 'var/vault.db'), 'relative paths are resolved against the config folder');
  t.equal(s.encryptionKeyFile, keyFile);
  t.same(s.decryptionKeyFiles, [join(dir, 'old.key')]);
});

t.test('every store problem is reported, and the URL is never echoed', async (t) => {
  t.match(problems({ kind: 'sqlite' }), [/store.path/]);
  t.match(problems({ kind: 'postgres' }), [/store.url/]);
  t.match(problems({ kind: 'redis' }), [/store.kind.*memory, sqlite, postgres/]);
  t.match(problems({ kind: 'postgres', url: 'mysql://u:secret@h/db' }), [/store.url/]);
  t.match(problems({ kind: 'memory', retentionDays: 3 }), [/memory store keeps no versions/]);
  t.match(problems({ kind: 'sqlite', path: 'x', tls: {} }), [/store.tls/]);
  t.match(problems({ kind: 'sqlite', path: 'x', decryptionKeyFiles: ['a'] }), [/decryptionKeyFiles/]);
  t.match(problems({ kind: 'sqlite', path: 'x', timeoutMs: 1, retentionDays: 0 }), [/timeoutMs/, /retentionDays/]);
  for (const p of problems({ kind: 'postgres', url: 'postgres://u:secret@h:notaport/db' })) t.notMatch(p, /secret/);
  const files = (() => {
    try {
      buildConfig(base({ kind: 'sqlite', path: 'x', encryptionKeyFile: join(dir, 'nope.key') }));
      return [];
    } catch (e) {
      return (e as ConfigError).problems;
    }
  })();
  t.ok(files.some((p) => /store.encryptionKeyFile: cannot read/.test(p)), 'a missing key file is a check-config problem');
});

t.test('GATEWAY_STORE_URL sets store.url', async (t) => {
  const raw: Record<string, unknown> = base({ kind: 'postgres' });
  t.same(applyEnv(raw, { GATEWAY_STORE_URL: 'postgres://gw@db:5432/gw' }), []);
  t.equal(buildConfig(raw, { checkFiles: false }).store.url, 'postgres://gw@db:5432/gw');
});

t.test('checkStore: memory passes; sqlite is opened; a bad key or an unreachable database is a problem', async (t) => {
  t.same(await checkStore(build()), { problems: [], warnings: [] });
  t.same(await checkStore(build({ kind: 'sqlite', path: 'check/vault.db', encryptionKeyFile: 'store.key' })), { problems: [], warnings: [] });
  writeFileSync(join(dir, 'bad.key'), 'not a key');
  t.match((await checkStore(build({ kind: 'sqlite', path: 'check/vault.db', encryptionKeyFile: 'bad.key' }))).problems, [/store \(sqlite\): .*32 bytes/]);
  const down = (await checkStore(build({ kind: 'postgres', url: 'postgres://gw:secret@127.0.0.1:1/gw', timeoutMs: 500 }))).problems;
  t.match(down, [/store \(postgres\)/]);
  t.notMatch(down[0], /secret/, 'no password in the problem');
  t.match(down[0], /cannot reach the database \(ECONNREFUSED\)/, 'a system error is named as one, not as a SQLSTATE');
});

t.test('checkStore, sqlite: a file a running gateway holds is a warning; one that cannot be opened names its path (review of stop 34)', async (t) => {
  const c = build({ kind: 'sqlite', path: 'held/vault.db', encryptionKeyFile: 'store.key' });
  const running = createSqliteVault({ path: c.store.path!, timeoutMs: 500, exclusive: true });
  const held = await checkStore(c);
  await running.close();
  t.same(held.problems, [], 'not a problem: check-config may run beside the gateway it checks');
  t.match(held.warnings, [/store\.path: .*held\/vault\.db is held by a running gateway process/]);
  t.same((await checkStore(c)).warnings, [], 'free once it stops');
  writeFileSync(join(dir, 'a-file'), 'x');
  const blocked = (await checkStore(build({ kind: 'sqlite', path: 'a-file/vault.db', encryptionKeyFile: 'store.key' }))).problems;
  t.match(blocked, [/store \(sqlite\): sqlite store: \w+: cannot open or create .*a-file\/vault\.db \(its folder must exist/]);
});

t.test('postgres: checkStore connects; openStore gives the shared lock and vault', async (t) => {
  const missing = pgMissing();
  if (missing) return void t.skip(`needs a throwaway PostgreSQL 15 cluster, which cannot start here: ${missing}`, async () => {});
  const pg = await startPostgres();
  t.teardown(() => pg.destroy());
  const url = await pg.createDatabase('check');
  const c = build({ kind: 'postgres', url, encryptionKeyFile: 'store.key' });
  t.same(await checkStore(c), { problems: [], warnings: [] });
  const store = await openStore(c.store);
  t.equal(store.kind, 'postgres');
  t.equal(await store.lock.hold('a', { waitMs: 1000 }, async () => 'held'), 'held');
  await store.vault.ping();
  await store.close();
});

t.test('retention purges now and every hour by the clock, and survives a failed purge', async (t) => {
  const clock = new ManualClock();
  const cuts: number[] = [];
  let fail = false;
  const vault = { purge: async (before: number) => { cuts.push(before); if (fail) throw new Error('down'); return 1; } } as unknown as VaultPort;
  const errors: string[] = [];
  const stop = startRetention(vault, { retentionDays: 2, clock, onError: (e) => errors.push(e.message) });
  await new Promise((r) => setImmediate(r));
  t.same(cuts, [clock.now() - 2 * 86_400_000]);
  fail = true;
  clock.advance(3_600_000);
  await new Promise((r) => setImmediate(r));
  t.equal(cuts.length, 2);
  t.same(errors, ['down']);
  fail = false;
  clock.advance(3_600_000);
  await new Promise((r) => setImmediate(r));
  t.equal(cuts.length, 3, 'goes on after a failure');
  stop();
  clock.advance(10 * 3_600_000);
  t.equal(cuts.length, 3, 'stopped');
});
