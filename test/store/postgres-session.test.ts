/**
 * Issue 18 item 7: the PostgreSQL lock hands its session to the vault of the same database. The
 * keep runs on the lock's connection (the vault leases none of its own) and the link releases the
 * lock in its own statement, so a cancel is three round trips: lock, keep, link-and-unlock.
 */
import t from 'tap';
import pg from 'pg';
import { ManualClock } from '../../src/ports/clock.js';
import { NO_SESSION } from '../../src/ports/lock.js';
import { advisoryKey, createPostgresLock } from '../../src/adapters/lock-postgres.js';
import { createPostgresVault } from '../../src/adapters/vault-postgres.js';
import { entry } from '../contracts/vault.contract.js';
import { pgMissing, startPostgres } from '../helpers/postgres.js';

t.test('the lock and the vault share one session', async (t) => {
  const missing = pgMissing();
  if (missing) return void t.skip(`needs a throwaway PostgreSQL 15 cluster, which cannot start here: ${missing}`, async () => {});
  const cluster = await startPostgres();
  t.teardown(() => cluster.destroy());
  const url = await cluster.createDatabase('shared');
  const clock = new ManualClock();
  const lock = createPostgresLock({ url, lockPoolSize: 2, timeoutMs: 2000, clock });
  const vault = await createPostgresVault({ url, poolSize: 2, timeoutMs: 2000, clock });
  t.teardown(async () => {
    await lock.close();
    await vault.close();
  });
  // Another session on the same database (advisory locks are per database).
  const probe = new pg.Client({ connectionString: url });
  await probe.connect();
  t.teardown(() => probe.end());
  /** Whether another session could take the key now (given back at once when it could). */
  const free = async (id: string): Promise<boolean> => {
    const r = await probe.query<{ got: boolean }>('SELECT CASE WHEN pg_try_advisory_lock($1::bigint) THEN pg_advisory_unlock($1::bigint) ELSE false END AS got', [advisoryKey(id)]);
    return r.rows[0]!.got;
  };
  let vaultLeases = 0;
  vault.pool.on('acquire', () => vaultLeases++);
  const body = Buffer.from('{"resourceType":"Appointment","id":"s-1","meta":{"versionId":"2"},"status":"cancelled"}');

  t.test('keep on the lock session, link releases the lock', async (t) => {
    const seen: boolean[] = [];
    await lock.hold('s-1', { waitMs: 1000 }, async (held) => {
      const keptId = await vault.keep(entry('s-1', '1', clock.now()), held);
      seen.push(await free('s-1'));
      await vault.link(keptId, { versionId: '2', body, mediaType: 'application/fhir+json', at: clock.now() }, held);
      seen.push(await free('s-1'));
    });
    t.same(seen, [false, true], 'held through the keep, released by the link before the holder returned');
    t.equal(vaultLeases, 0, 'the vault leased no connection of its own');
    const h = await vault.history('s-1');
    t.equal(h.length, 1);
    t.equal(h[0]!.versionAfter, '2');
    t.equal((await vault.version('s-1', '2'))?.body.toString(), body.toString(), 'the new version kept');
    t.ok(await free('s-1'));
    t.equal(await lock.hold('s-1', { waitMs: 100 }, async () => 'again'), 'again', 'the lock can be taken again');
  });

  t.test('a link without a body releases the lock too', async (t) => {
    await lock.hold('s-2', { waitMs: 1000 }, async (held) => {
      const keptId = await vault.keep(entry('s-2', '1', clock.now()), held);
      await vault.link(keptId, { versionId: '2', at: clock.now() }, held);
      t.ok(await free('s-2'));
    });
    t.equal((await vault.history('s-2'))[0]!.versionAfter, '2');
  });

  t.test('a failing link still leaves the lock released, and the session is usable again', async (t) => {
    await lock.hold('s-3', { waitMs: 1000 }, async (held) => {
      await vault.keep(entry('s-3', '1', clock.now()), held);
      await t.rejects(vault.link('999999', { versionId: '2', at: clock.now() }, held), { name: 'VaultUnavailable' });
    });
    t.ok(await free('s-3'), 'nobody holds the key');
    t.equal(await lock.hold('s-3', { waitMs: 100 }, async () => 'again'), 'again');
  });

  t.test('no link (the provider refused): the holder unlocks as before', async (t) => {
    await lock.hold('s-4', { waitMs: 1000 }, async (held) => {
      await vault.keep(entry('s-4', '1', clock.now()), held);
      t.notOk(await free('s-4'));
    });
    t.ok(await free('s-4'));
  });

  t.test('without a session (memory lock, CLI restore) the vault uses its own pool', async (t) => {
    const before = vaultLeases;
    const keptId = await vault.keep(entry('s-5', '1', clock.now()), NO_SESSION);
    await vault.link(keptId, { versionId: '2', at: clock.now() });
    t.equal(vaultLeases - before, 2);
    t.equal((await vault.history('s-5'))[0]!.versionAfter, '2');
  });

  t.test('a session of another database is not used', async (t) => {
    const other = await cluster.createDatabase('other');
    const otherLock = createPostgresLock({ url: other, lockPoolSize: 1, timeoutMs: 2000, clock });
    t.teardown(() => otherLock.close());
    const before = vaultLeases;
    await otherLock.hold('s-6', { waitMs: 1000 }, async (held) => {
      await vault.keep(entry('s-6', '1', clock.now()), held);
    });
    t.equal(vaultLeases - before, 1, 'kept through the vault pool');
    t.equal((await vault.history('s-6')).length, 1);
  });

  t.test('ruling 23: a lock whose session died before the keep is not kept on the pool: nothing may be forwarded', async (t) => {
    const before = vaultLeases;
    await t.rejects(
      lock.hold('s-7', { waitMs: 1000 }, async (held) => {
        const pid = (held.session as { client?: { processID?: number } }).client?.processID;
        t.ok(pid, 'the lock session has a backend');
        await probe.query('SELECT pg_terminate_backend($1)', [pid]);
        // The client learns of it when the server closes the connection.
        for (let i = 0; i < 200 && (held.session as { lost(): unknown }).lost() === undefined; i++) await new Promise((r) => setTimeout(r, 10));
        await vault.keep(entry('s-7', '1', clock.now()), held);
      }),
      { name: 'VaultUnavailable' },
    );
    t.equal(vaultLeases - before, 0, 'not kept through the pool either');
    t.equal((await vault.history('s-7')).length, 0, 'no pre-image kept');
  });
});
