/**
 * Rulings 10 and 23 for `vault restore`: under the PostgreSQL store the restore takes the
 * appointment's advisory lock, as every replica's cancel does, so it never writes while a cancel
 * of the same appointment is in flight; it reads the current version again once it holds it.
 */
import t from 'tap';
import pg from 'pg';
import { PassThrough } from 'node:stream';
import { advisoryKey } from '../../src/adapters/lock-postgres.js';
import { createPostgresVault } from '../../src/adapters/vault-postgres.js';
import { runVaultCommand } from '../../src/cli/vault.js';
import type { ProviderReply } from '../../src/cli/restore-provider.js';
import { buildConfig } from '../../src/config.js';
import { ManualClock } from '../../src/ports/clock.js';
import { appointment, entry } from '../contracts/vault.contract.js';
import { pgMissing, startPostgres } from '../helpers/postgres.js';

t.test('a restore waits for the lock a cancel holds, then reads again and writes', async (t) => {
  const missing = pgMissing();
  if (missing) return void t.skip(`needs a throwaway PostgreSQL 15 cluster, which cannot start here: ${missing}`, async () => {});
  const cluster = await startPostgres();
  t.teardown(() => cluster.destroy());
  const url = await cluster.createDatabase('restore_lock');
  const clock = new ManualClock();
  const vault = await createPostgresVault({ url, poolSize: 2, timeoutMs: 2000, clock });
  await vault.keep(entry('r-1', '6', clock.now()));
  await vault.close();
  const config = buildConfig({
    publicBaseUrl: 'https://gw.example/STU3/1',
    tls: { cert: '/x/cert.pem', key: '/x/key.pem', clientCa: '/x/ca.pem' },
    upstream: { url: 'http://127.0.0.1:9', timeoutMs: 5000 },
    spine: { providerAsids: ['918999198738'] },
    audit: { destination: 'none' },
    store: { kind: 'postgres', url },
  }, { checkFiles: false });

  // A cancel of r-1 in flight on another replica: its session holds the appointment's key.
  const replica = new pg.Client({ connectionString: url });
  await replica.connect();
  t.teardown(() => replica.end());
  await replica.query('SELECT pg_advisory_lock($1::bigint)', [advisoryKey('r-1')]);

  const calls: string[] = [];
  const reply = (version: string): ProviderReply => ({ status: 200, headers: { etag: `W/"${version}"`, 'content-type': 'application/fhir+json' }, body: appointment('r-1', version) });
  const restore = runVaultCommand(['restore', 'r-1', '--to', '6', '--yes'], config, {
    stdout: { write: () => true }, stderr: { write: () => true }, stdin: new PassThrough(), clock,
    provider: {
      read: async () => (calls.push('read'), reply('7')),
      write: async (_id, _body, o) => (calls.push(`write ${o.ifMatch}`), reply('8')),
    },
  });
  // Wait until the restore is queued on the key (a condition, not a sleep).
  const probe = new pg.Client({ connectionString: url });
  await probe.connect();
  t.teardown(() => probe.end());
  let waiting = 0;
  for (let polls = 0; waiting === 0 && polls < 2000 && calls.length < 3; polls++) {
    waiting = Number((await probe.query<{ n: string }>("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rows[0]!.n);
  }
  t.equal(waiting, 1, 'the restore is queued on the appointment key');
  t.same(calls, ['read'], 'the restore read and confirmed, and waits for the lock: nothing written');
  await replica.query('SELECT pg_advisory_unlock($1::bigint)', [advisoryKey('r-1')]);
  t.equal(await restore, 0, 'restored once the cancel let go');
  t.same(calls, ['read', 'read', 'write W/"7"'], 'read again under the lock, then written');
});

t.test('a restore whose write is in doubt keeps the lock for upstream.inDoubtHoldMs, as a cancel does (ruling 23)', async (t) => {
  const missing = pgMissing();
  if (missing) return void t.skip(`needs a throwaway PostgreSQL 15 cluster, which cannot start here: ${missing}`, async () => {});
  const cluster = await startPostgres();
  t.teardown(() => cluster.destroy());
  const url = await cluster.createDatabase('restore_doubt');
  const clock = new ManualClock();
  const vault = await createPostgresVault({ url, poolSize: 2, timeoutMs: 2000, clock });
  await vault.keep(entry('r-2', '6', clock.now()));
  await vault.close();
  const config = buildConfig({
    publicBaseUrl: 'https://gw.example/STU3/1',
    tls: { cert: '/x/cert.pem', key: '/x/key.pem', clientCa: '/x/ca.pem' },
    upstream: { url: 'http://127.0.0.1:9', timeoutMs: 5000, inDoubtHoldMs: 7000 },
    spine: { providerAsids: ['918999198738'] },
    audit: { destination: 'none' },
    store: { kind: 'postgres', url },
  }, { checkFiles: false });
  let err = '';
  const reply: ProviderReply = { status: 200, headers: { etag: 'W/"7"', 'content-type': 'application/fhir+json' }, body: appointment('r-2', '7') };
  let done = false;
  const restore = runVaultCommand(['restore', 'r-2', '--to', '6', '--yes'], config, {
    stdout: { write: () => true }, stderr: { write: (s: string) => ((err += s), true) }, stdin: new PassThrough(), clock,
    provider: {
      read: async () => reply,
      write: async () => { throw new Error('socket hang up'); },
    },
  }).finally(() => (done = true));
  while (!err.includes('the write is in doubt') && !done) await new Promise((r) => setImmediate(r));
  t.match(err, /holding the appointment's lock for 7000 ms/);
  const probe = new pg.Client({ connectionString: url });
  await probe.connect();
  t.teardown(() => probe.end());
  const tryLock = async (): Promise<boolean> => {
    const got = (await probe.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [advisoryKey('r-2')])).rows[0]!.ok;
    if (got) await probe.query('SELECT pg_advisory_unlock($1::bigint)', [advisoryKey('r-2')]);
    return got;
  };
  t.equal(await tryLock(), false, 'a cancel on a replica cannot take the appointment meanwhile');
  t.notOk(done, 'the command still holds it');
  clock.advance(7000);
  t.equal(await restore, 1, 'then it ends, refused');
  t.match(err, /may or may not have been applied/);
  t.equal(await tryLock(), true, 'and the lock is free');
});
