/**
 * The in-process lock (src/adapters/lock-memory.ts, which replaced KeyedSerializer; ruling 10): one run per key at a time, in arrival order; different keys run
 * concurrently; a failing run releases the key; keys with nothing queued hold no memory.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { createMemoryLock } from '../../src/adapters/lock-memory.js';

/** The serializer's shape over the memory lock: run(key, fn) with no wait bound, and size. */
class KeyedSerializer {
  private readonly lock = createMemoryLock();
  get size(): number {
    return this.lock.size;
  }
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.lock.hold(key, { waitMs: 3_600_000 }, fn);
  }
}

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** Settle pending microtasks and one macrotask turn. */
const tick = () => new Promise((r) => setImmediate(r));

t.test('same key: strictly sequential, in arrival order', async (t) => {
  const s = new KeyedSerializer();
  const events: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const delays = [15, 1, 8, 0, 4, 2];
  const runs = delays.map((ms, i) =>
    s.run('appt-1', async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      events.push(`start ${i}`);
      await sleep(ms);
      events.push(`end ${i}`);
      running--;
      return i;
    }),
  );
  t.equal(s.size, 1, 'one key held while runs are queued');
  t.same(await Promise.all(runs), [0, 1, 2, 3, 4, 5], 'each run gets its own result');
  t.equal(maxRunning, 1, 'never two at once');
  t.same(events, delays.flatMap((_, i) => [`start ${i}`, `end ${i}`]), 'each starts after the previous ended, in order');
  t.equal(s.size, 0, 'the key is released');
});

t.test('the second run does not start until the first has finished', async (t) => {
  const s = new KeyedSerializer();
  const gate = deferred();
  let secondStarted = false;
  const first = s.run('k', () => gate.promise);
  const second = s.run('k', async () => {
    secondStarted = true;
  });
  await tick();
  await tick();
  t.equal(secondStarted, false, 'blocked while the first is in progress');
  gate.resolve();
  await first;
  await second;
  t.equal(secondStarted, true, 'ran once the first finished');
  t.equal(s.size, 0);
});

t.test('different keys: concurrent', async (t) => {
  const s = new KeyedSerializer();
  const aGate = deferred();
  let aDone = false;
  const a = s.run('a', async () => {
    await aGate.promise;
    aDone = true;
    return 'a';
  });
  // b must complete while a is still blocked; with a global lock this would never resolve.
  const b = await Promise.race([s.run('b', async () => 'b'), sleep(1000).then(() => 'timed out')]);
  t.equal(b, 'b', 'key b ran while key a was held');
  t.equal(aDone, false, 'a was still in progress');
  t.equal(s.size, 1, 'only a is held');
  // Both in progress at the same time.
  const bGate = deferred();
  let inB = false;
  const b2 = s.run('b', async () => {
    inB = true;
    await bGate.promise;
  });
  await tick();
  t.equal(inB, true, 'b entered while a is held');
  t.equal(s.size, 2, 'two keys held');
  aGate.resolve();
  bGate.resolve();
  t.equal(await a, 'a');
  await b2;
  t.equal(s.size, 0);
});

t.test('a throwing fn releases the lock and its error reaches only its caller', async (t) => {
  const s = new KeyedSerializer();
  const boom = new Error('boom');
  const failing = s.run('k', async () => {
    await sleep(1);
    throw boom;
  });
  const next = s.run('k', async () => 'after');
  await t.rejects(failing, boom, 'the caller sees the error');
  t.equal(await next, 'after', 'the next run still runs');
  t.equal(s.size, 0);

  // A function that throws synchronously (not an async function) also releases.
  const sync = s.run('k', (() => {
    throw new Error('sync');
  }) as () => Promise<never>);
  await t.rejects(sync, { message: 'sync' });
  t.equal(s.size, 0, 'released after a synchronous throw');
  t.equal(await s.run('k', async () => 1), 1, 'usable again');

  // A rejection in the middle of a queue does not stall or fail the others.
  const order: number[] = [];
  const results = await Promise.allSettled([0, 1, 2, 3].map((i) => s.run('q', async () => {
    order.push(i);
    await sleep(1);
    if (i === 1) throw new Error('one');
    return i;
  })));
  t.same(order, [0, 1, 2, 3]);
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
  t.equal(s.size, 0);
});

t.test('the map empties after use, whatever the interleaving', async (t) => {
  const s = new KeyedSerializer();
  t.equal(s.size, 0, 'empty at first');
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < 200; i++) {
    const key = `k${i % 7}`;
    const run = s.run(key, async () => {
      if (i % 3 === 0) await sleep(i % 5);
      if (i % 11 === 0) throw new Error('x');
      return i;
    });
    run.catch(() => {}); // observed below with allSettled; handled now so no rejection goes unhandled
    all.push(run);
    if (i % 13 === 0) await tick();
  }
  t.ok(s.size > 0 && s.size <= 7, `keys held while busy (${s.size})`);
  await Promise.allSettled(all);
  t.equal(s.size, 0, 'no key held afterwards');
  // A run that starts after everything has drained starts at once.
  let ran = false;
  const p = s.run('k0', async () => {
    ran = true;
  });
  await tick();
  t.equal(ran, true);
  await p;
  t.equal(s.size, 0);
});
