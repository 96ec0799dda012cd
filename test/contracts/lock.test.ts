/**
 * The lock contract against every adapter: the in-process lock (memory and sqlite kinds) and the
 * PostgreSQL advisory lock on a throwaway cluster (test/helpers/postgres.ts).
 */
import t from 'tap';
import { ManualClock } from '../../src/ports/clock.js';
import { createMemoryLock } from '../../src/adapters/lock-memory.js';
import { advisoryKey, createPostgresLock } from '../../src/adapters/lock-postgres.js';
import { lockContract } from './lock.contract.js';
import { pgMissing, startPostgres } from '../helpers/postgres.js';

const tick = () => new Promise((r) => setImmediate(r));

t.test('memory', async (t) => {
  const clock = new ManualClock();
  lockContract(t, {
    clock,
    make: async (metrics) => createMemoryLock({ clock, ...(metrics ? { metrics } : {}) }),
    waiterQueued: async () => { await tick(); },
    waitMs: 250,
    expireWait: () => clock.advance(250),
  });
  t.test('holders of one key run in arrival order (first come, first served)', async (t) => {
    const lock = createMemoryLock({ clock });
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3, 4].map((i) => lock.hold('fifo', { waitMs: 10 }, async () => { await tick(); order.push(i); })));
    t.same(order, [0, 1, 2, 3, 4]);
  });
  t.test('keys with nobody waiting hold no memory', async (t) => {
    const lock = createMemoryLock({ clock });
    await Promise.all([1, 2, 3].map((i) => lock.hold(`k${i % 2}`, { waitMs: 10 }, async () => { await tick(); })));
    t.equal(lock.size, 0);
  });
  t.test('closed: LockUnavailable(store)', async (t) => {
    const lock = createMemoryLock({ clock });
    await lock.close();
    await t.rejects(lock.hold('k', { waitMs: 10 }, async () => {}), { name: 'LockUnavailable', reason: 'store' });
  });
});

/** The (classid, objid) pg_locks shows for an advisory bigint key. */
function lockIds(appointmentId: string): [string, string] {
  const k = BigInt.asUintN(64, BigInt(advisoryKey(appointmentId)));
  return [String(k >> 32n), String(k & 0xffffffffn)];
}

/** Port 1: privileged, nothing listens on it (a port freed by the test could be taken by another). */
async function closedPort(): Promise<number> {
  return 1;
}

t.test('postgres', async (t) => {
  const missing = pgMissing();
  if (missing) return void t.skip(missing, async () => {});
  const pg = await startPostgres();
  t.teardown(() => pg.destroy());
  const url = await pg.createDatabase('locks');
  const clock = new ManualClock();
  const waitingFor = async (id: string, granted: boolean): Promise<number[]> => {
    const [classid, objid] = lockIds(id);
    const r = await pg.sql<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 1 AND granted = $3`,
      [classid, objid, granted],
    );
    return r.rows.map((x) => x.pid);
  };
  let latest: ReturnType<typeof createPostgresLock> | undefined;
  lockContract(t, {
    clock,
    make: async (metrics) => (latest = createPostgresLock({ url, lockPoolSize: 4, timeoutMs: 2000, clock, ...(metrics ? { metrics } : {}) })),
    // A real condition: the database shows a session waiting for this key's advisory lock, or (one
    // process) the holder is queued in-process ahead of the database.
    waiterQueued: async (id) => {
      const until = Date.now() + 10_000;
      while (Date.now() < until) {
        if ((latest?.localWaiters(id) ?? 0) > 0 || (await waitingFor(id, false)).length > 0) return;
      }
      throw new Error('no waiter appeared');
    },
    // The database enforces the wait (lock_timeout): a short real wait.
    waitMs: 300,
    expireWait: () => {},
    killHolder: async (id) => {
      const pids = await waitingFor(id, true);
      if (pids.length !== 1) throw new Error(`expected one holder, found ${pids.length}`);
      await pg.sql('SELECT pg_terminate_backend($1)', [pids[0]]);
    },
    down: async () => createPostgresLock({ url: `postgres://postgres@127.0.0.1:${await closedPort()}/postgres`, lockPoolSize: 2, timeoutMs: 500, clock }),
    downWithinMs: 3000,
  });
  t.test('readiness: a pool whose every connection holds a key is busy, not down', async (t) => {
    const lock = createPostgresLock({ url, lockPoolSize: 2, timeoutMs: 2000, clock });
    t.teardown(() => lock.close());
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const entered: string[] = [];
    const holders = ['busy-1', 'busy-2'].map((id) => lock.hold(id, { waitMs: 1000 }, async () => {
      entered.push(id);
      await gate;
    }));
    while (entered.length < 2) await new Promise((r) => setImmediate(r));
    await t.resolves(lock.ping(), 'ready while both connections hold keys');
    release();
    await Promise.all(holders);
    await t.resolves(lock.ping(), 'and after');
  });
  t.test('the advisory key is a stable signed 64-bit integer', async (t) => {
    t.equal(advisoryKey('abc'), advisoryKey('abc'));
    t.not(advisoryKey('abc'), advisoryKey('abd'));
    t.match(advisoryKey('abc'), /^-?\d{1,19}$/);
  });
});
