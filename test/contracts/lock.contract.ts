import type { Test } from 'tap';
import { LockUnavailable, type LockPort } from '../../src/ports/lock.js';
import type { ManualClock } from '../../src/ports/clock.js';
import { noStoreMetrics, type StoreMetrics } from '../../src/store/metrics.js';

/**
 * The LockPort contract (src/ports/lock.ts), one suite for every adapter (style habit 13).
 * Time passes by the subject's clock: the memory lock's wait is advanced on the ManualClock;
 * PostgreSQL enforces the wait itself (lock_timeout), so its subject waits a short real time.
 */
export interface LockSubject {
  /** A lock; for a shared adapter each call is another "process" on the same store. */
  make(metrics?: StoreMetrics): Promise<LockPort>;
  clock: ManualClock;
  /** Resolves once some holder of `key` is queued behind the current one (a real condition). */
  waiterQueued(key: string): Promise<void>;
  /** Lets a waiter with `waitMs` time out: advance the clock, or wait for the database. */
  waitMs: number;
  expireWait(): void;
  /** Shared adapters: end the database session of the current holder of `key`. */
  killHolder?(key: string): Promise<void>;
  /** A lock whose store cannot be reached. */
  down?(): Promise<LockPort>;
  /** The most a call on a down store may take, ms. */
  downWithinMs?: number;
}

export function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

const WAIT = { waitMs: 60_000 };

export function lockContract(t: Test, s: LockSubject): void {
  t.test('one holder of a key at a time: a second holder waits until the first is done', async (t) => {
    const lock = await s.make();
    const events: string[] = [];
    const gateA = deferred();
    const aHolds = deferred();
    const a = lock.hold('appt-1', WAIT, async () => {
      events.push('a start');
      aHolds.resolve();
      await gateA.promise;
      events.push('a end');
      return 'a';
    });
    // A shared lock makes no promise about two holders that arrive together (their connections
    // race to the database), so b comes once a holds the key.
    await aHolds.promise;
    const b = lock.hold('appt-1', WAIT, async () => {
      events.push('b start');
      return 'b';
    });
    await s.waiterQueued('appt-1');
    t.same(events, ['a start'], 'b waits while a holds the key');
    gateA.resolve();
    t.same(await Promise.all([a, b]), ['a', 'b'], 'each resolves with its own result');
    t.same(events, ['a start', 'a end', 'b start']);
    await lock.close();
  });

  t.test('holders of different keys do not wait for each other', async (t) => {
    const lock = await s.make();
    const gate = deferred();
    const aHolds = deferred();
    const a = lock.hold('appt-1', WAIT, async () => { aHolds.resolve(); await gate.promise; });
    await aHolds.promise;
    const b = await lock.hold('appt-2', WAIT, async () => 'b ran');
    t.equal(b, 'b ran', 'appt-2 ran while appt-1 was held');
    gate.resolve();
    await a;
    await lock.close();
  });

  t.test('a rejecting holder releases the key and its error reaches the caller', async (t) => {
    const lock = await s.make();
    await t.rejects(lock.hold('appt-3', WAIT, async () => { throw new Error('boom'); }), { message: 'boom' });
    t.equal(await lock.hold('appt-3', WAIT, async () => 'next'), 'next');
    await lock.close();
  });

  t.test('waiting longer than waitMs: LockUnavailable(timeout), fn never runs, the queue goes on', async (t) => {
    const waits: number[] = [];
    const lock = await s.make({ ...noStoreMetrics, lockWait: (seconds: number) => void waits.push(seconds) });
    const gate = deferred();
    const aHolds = deferred();
    const a = lock.hold('appt-4', WAIT, async () => { aHolds.resolve(); await gate.promise; });
    await aHolds.promise;
    let ran = false;
    const b = lock.hold('appt-4', { waitMs: s.waitMs }, async () => { ran = true; });
    const c = lock.hold('appt-4', WAIT, async () => 'c ran');
    await s.waiterQueued('appt-4');
    s.expireWait();
    const e = await b.then(() => undefined, (x: unknown) => x);
    t.ok(e instanceof LockUnavailable, 'LockUnavailable');
    t.equal((e as LockUnavailable).reason, 'timeout');
    gate.resolve();
    await a;
    t.equal(await c, 'c ran', 'a later waiter still gets its turn');
    t.notOk(ran, 'the timed-out holder never ran');
    t.equal(waits.length, 3, 'every wait is measured, the one that timed out too (lock_wait_seconds)');
    await lock.close();
  });

  t.test('the holder is given a HeldLock to pass on to the vault', async (t) => {
    const lock = await s.make();
    const held = await lock.hold('appt-held', WAIT, async (h) => h);
    t.type(held, 'object');
    t.not(held, null);
    await lock.close();
  });

  t.test('a key that is free is taken at once, even with waitMs 0', async (t) => {
    const lock = await s.make();
    t.equal(await lock.hold('appt-5', { waitMs: 0 }, async () => 'ok'), 'ok');
    await lock.ping();
    await lock.close();
  });

  t.test('many holders over several keys: never two at once on one key, every one runs', async (t) => {
    const locks = [await s.make(), await s.make()];
    const running = new Map<string, number>();
    let overlaps = 0;
    let ran = 0;
    await Promise.all(Array.from({ length: 120 }, (_, i) => {
      const key = `busy-${i % 12}`;
      return locks[i % 2]!.hold(key, WAIT, async () => {
        const now = (running.get(key) ?? 0) + 1;
        running.set(key, now);
        if (now > 1) overlaps++;
        await new Promise((r) => setImmediate(r));
        running.set(key, now - 1);
        ran++;
      });
    }));
    t.equal(overlaps, 0, 'no overlap on any key');
    t.equal(ran, 120, 'every holder ran');
    await Promise.all(locks.map((l) => l.close()));
  });

  if (s.killHolder) {
    const kill = s.killHolder;
    t.test('shared: another process waits for the holder, and a dead holder releases its key', async (t) => {
      const one = await s.make();
      const two = await s.make();
      const holding = deferred();
      const never = deferred();
      const a = one.hold('appt-6', WAIT, async () => { holding.resolve(); await never.promise; });
      await holding.promise;
      let bRan = false;
      const b = two.hold('appt-6', WAIT, async () => { bRan = true; return 'b ran'; });
      await s.waiterQueued('appt-6');
      t.notOk(bRan, 'the other process waits');
      await kill('appt-6');
      t.equal(await b, 'b ran', 'the other process proceeds once the holder is gone');
      never.resolve();
      await a; // fn settles; releasing on a dead session must not throw or hang
      t.equal(await one.hold('appt-6', WAIT, async () => 'again'), 'again', 'the first process can lock again');
      await one.close();
      await two.close();
    });
  }

  if (s.down) {
    const down = s.down;
    t.test('store down: LockUnavailable(store) quickly, fn never runs', async (t) => {
      const lock = await down();
      let ran = false;
      const started = Date.now();
      const e = await lock.hold('appt-7', WAIT, async () => { ran = true; }).then(() => undefined, (x: unknown) => x);
      t.ok(e instanceof LockUnavailable, 'LockUnavailable');
      t.equal((e as LockUnavailable).reason, 'store');
      t.ok(Date.now() - started < (s.downWithinMs ?? 5000), `answered within ${s.downWithinMs ?? 5000} ms`);
      t.notOk(ran);
      await t.rejects(lock.ping(), LockUnavailable);
      await lock.close();
    });
  }
}
