/**
 * The sqlite store is one file for one gateway process (README, docs/store.md): a second gateway
 * on the same file would hold its own in-process lock and forward the same version again (ruling
 * 10), so it is refused at start-up; the `vault` commands still open the file beside a running
 * gateway. A file the gateway may not write is refused at open, not discovered by every keep
 * (fourteenth review: both started, and a read-only file gave a ready gateway answering 500s).
 */
import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/paths.js';
import { startDemoProvider } from '../../demo/provider/server.js';
import { PROVIDER_ASID, pki } from '../helpers/harness.js';
import { startGateway, type Gw } from '../helpers/gateway-process.js';
import { createSqliteVault } from '../../src/adapters/vault-sqlite.js';
import { VaultUnavailable } from '../../src/ports/vault.js';
import { entry } from '../contracts/vault.contract.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'gw-sqlite-owner-'));
const provider = await startDemoProvider({ seed: 'nhs-booking' });
const p = pki();
const configFile = join(dir, 'gateway.json');
writeFileSync(configFile, JSON.stringify({
  standard: 'nhs-booking', listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 },
  basePath: '/STU3/1', publicBaseUrl: 'https://gateway.test/STU3/1',
  tls: { cert: p.files.serverCert, key: p.files.serverKey, clientCa: p.files.ca, watch: false },
  upstream: { url: provider.url }, spine: { providerAsids: [PROVIDER_ASID] },
  log: { level: 'info' }, audit: { destination: join(dir, 'audit.jsonl') },
  store: { kind: 'sqlite', path: join(dir, 'vault.sqlite') },
}));
const gateways: Gw[] = [];
t.teardown(async () => {
  for (const g of gateways) g.proc.kill('SIGKILL');
  await provider.close();
  rmSync(dir, { recursive: true, force: true });
});

t.test('a second gateway process on the same sqlite file is refused at start-up; the vault commands still work', async (t) => {
  const first = await startGateway(configFile);
  gateways.push(first);
  const second = await startGateway(configFile).then((g) => (gateways.push(g), 'started'), (e: Error) => e.message);
  t.match(second, /gateway exited 1/, 'the second process exits 1');
  t.match(second, /another gateway process has .*vault\.sqlite open \(one file, one process/, 'saying why');
  const history = await run(process.execPath, [join(packageRoot, 'dist/src/main.js'), 'vault', 'history', provider.store.ids()[0]!, '--config', configFile]);
  t.notMatch(history.stderr, /another gateway|SQLITE_BUSY|unavailable/i, 'vault history beside the running gateway: ' + history.stderr.slice(0, 200));

  const exited = new Promise((r) => first.proc.once('exit', r));
  first.proc.kill('SIGKILL'); // however it ends, the system releases the hold
  await exited;
  const third = await startGateway(configFile);
  gateways.push(third);
  t.ok(third.port > 0, 'the next gateway starts once the first is gone');
  third.proc.kill('SIGTERM');
});

t.test('in one process: a second exclusive open is refused, and allowed once the first is closed', async (t) => {
  const path = join(dir, 'in-process.sqlite');
  const a = createSqliteVault({ path, timeoutMs: 500, exclusive: true });
  t.throws(() => createSqliteVault({ path, timeoutMs: 500, exclusive: true }), VaultUnavailable);
  const reader = createSqliteVault({ path, timeoutMs: 500 });
  t.same(await reader.history('nothing'), [], 'an open without exclusive (the vault commands) reads');
  await reader.close();
  await a.close();
  const b = createSqliteVault({ path, timeoutMs: 500, exclusive: true });
  await b.close();
});

t.test('a file the process may not write is refused at open (SQLite would open it read-only)', async (t) => {
  const path = join(dir, 'frozen.sqlite');
  await createSqliteVault({ path, timeoutMs: 500 }).close();
  try {
    execFileSync('chattr', ['+i', path], { stdio: 'ignore' });
  } catch {
    t.skip('chattr +i is not available here (needs root and a file system with attributes): a read-only file cannot be made for root', async () => {});
    return;
  }
  t.teardown(() => execFileSync('chattr', ['-i', path], { stdio: 'ignore' }));
  t.throws(() => createSqliteVault({ path, timeoutMs: 500 }), { name: 'VaultUnavailable', message: /SQLITE_READONLY/ });
});

t.test("a migration's own refusal keeps its reason", async (t) => {
  const path = join(dir, 'newer.sqlite');
  const v = createSqliteVault({ path, timeoutMs: 500 });
  v.db.prepare('INSERT INTO gw_schema_version (version) VALUES (99)').run();
  await v.close();
  t.throws(() => createSqliteVault({ path, timeoutMs: 500 }), { message: /sqlite store: Error: the store's schema version 99 is newer than this gateway's/ });
});

t.test('two spellings of one file (a symbolic link, a `..` path) share one owner lock (review of stop 34)', async (t) => {
  const path = join(dir, 'spelled.sqlite');
  const a = createSqliteVault({ path, timeoutMs: 500, exclusive: true });
  t.teardown(() => a.close());
  mkdirSync(join(dir, 'elsewhere'), { recursive: true });
  symlinkSync(path, join(dir, 'elsewhere', 'alias.sqlite'));
  t.throws(() => createSqliteVault({ path: join(dir, 'elsewhere', 'alias.sqlite'), timeoutMs: 500, exclusive: true }), { message: /another gateway process/ }, 'through a symbolic link');
  t.throws(() => createSqliteVault({ path: join(dir, 'elsewhere', '..', 'spelled.sqlite'), timeoutMs: 500, exclusive: true }), { message: /another gateway process/ }, 'through ..');
});

t.test('a store file deleted or replaced under the running gateway: keeps fail closed, readiness says so (review of stop 34)', async (t) => {
  for (const how of ['deleted', 'replaced'] as const) {
    const path = join(dir, `${how}.sqlite`);
    const v = createSqliteVault({ path, timeoutMs: 500, exclusive: true });
    t.ok(await v.keep(entry('a1', '1', 0)), `${how}: a keep before`);
    await v.ping();
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
    if (how === 'replaced') await createSqliteVault({ path, timeoutMs: 500 }).close();
    await t.rejects(v.keep(entry('a2', '1', 0)), { name: 'VaultUnavailable', message: /no longer the file this process opened/ }, `${how}: the next keep is refused`);
    await t.rejects(v.ping(), { name: 'VaultUnavailable' }, `${how}: not ready`);
    await v.close();
  }
});
