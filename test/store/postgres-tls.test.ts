/** store.tls: the PostgreSQL store over TLS, verified against a configured CA (issue 18 item 1). */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issueCertificate } from '../../demo/certs.js';
import { VaultUnavailable } from '../../src/ports/vault.js';
import { openStore } from '../../src/store/open.js';
import type { StoreConfig } from '../../src/config.js';
import type { PostgresVault } from '../../src/adapters/vault-postgres.js';
import { pgMissing, startPostgres } from '../helpers/postgres.js';

t.test('postgres over TLS', async (t) => {
  const missing = pgMissing();
  if (missing) return void t.skip(`needs a throwaway PostgreSQL 15 cluster, which cannot start here: ${missing}`, async () => {});
  const dir = mkdtempSync(join(tmpdir(), 'gw-pgtls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ca = createCa({ commonName: 'Test Database CA' });
  const server = issueCertificate(ca, { commonName: 'localhost', kind: 'server' });
  const otherCa = createCa({ commonName: 'Someone Else' });
  writeFileSync(join(dir, 'ca.pem'), ca.cert);
  writeFileSync(join(dir, 'other.pem'), otherCa.cert);
  const clientCa = createCa({ commonName: 'Test Database Client CA' });
  const client = issueCertificate(clientCa, { commonName: 'gatewaycert', kind: 'client' });
  writeFileSync(join(dir, 'client.pem'), client.cert);
  writeFileSync(join(dir, 'client.key'), client.key);
  const pg = await startPostgres({ ssl: { cert: server.cert, key: server.key, clientCa: clientCa.cert, certUser: 'gatewaycert' } });
  t.teardown(() => pg.destroy());
  const url = await pg.createDatabase('tls');
  const store = (tls: StoreConfig['tls'], u = url): StoreConfig => ({ kind: 'postgres', url: u, poolSize: 2, lockPoolSize: 2, timeoutMs: 3000, lockWaitMs: 1000, decryptionKeyFiles: [], ...(tls ? { tls } : {}) });

  t.test('verified against the configured CA; the session is encrypted', async (t) => {
    // sslmode=disable in the URL does not switch TLS off: store.tls wins.
    const s = await openStore(store({ ca: join(dir, 'ca.pem'), rejectUnauthorized: true }, `${url}?sslmode=disable`));
    const r = await (s.vault as PostgresVault).pool.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    t.equal(r.rows[0]?.ssl, true, 'pg_stat_ssl says TLS');
    t.equal(await s.lock.hold('a', { waitMs: 500 }, async () => 'locked over TLS'), 'locked over TLS');
    await s.close();
  });

  t.test('certificate authentication: store.tls.cert and store.tls.key (review of stop 36)', async (t) => {
    const certUrl = url.replace('postgres://postgres@', 'postgres://gatewaycert@');
    const s = await openStore(store({ ca: join(dir, 'ca.pem'), cert: join(dir, 'client.pem'), key: join(dir, 'client.key'), rejectUnauthorized: true }, certUrl));
    const r = await (s.vault as PostgresVault).pool.query<{ who: string }>('SELECT current_user AS who');
    t.equal(r.rows[0]?.who, 'gatewaycert', 'logged in as the certificate\'s user');
    await s.close();
    const without = await openStore(store({ ca: join(dir, 'ca.pem'), rejectUnauthorized: true }, certUrl)).then(() => undefined, (x: unknown) => x);
    t.ok(without instanceof VaultUnavailable, 'without the certificate: refused');
    t.match(String((without as Error).message), /28000|refused this client/, 'and said so');
  });

  t.test('a server certificate from another CA is refused', async (t) => {
    const e = await openStore(store({ ca: join(dir, 'other.pem'), rejectUnauthorized: true })).then(() => undefined, (x: unknown) => x);
    t.ok(e instanceof VaultUnavailable, 'VaultUnavailable at open');
  });
});
