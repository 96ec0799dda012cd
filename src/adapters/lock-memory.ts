import { performance } from 'node:perf_hooks';
import { systemClock, type Clock } from '../ports/clock.js';
import { LockUnavailable, type LockPort } from '../ports/lock.js';
import { noStoreMetrics, type StoreMetrics } from '../store/metrics.js';

/**
 * The in-process lock (store kinds memory and sqlite: one gateway process). Holders of one key
 * run one at a time, first come first served; keys with nobody waiting hold no memory.
 *
 * A waiter that gives up after `waitMs` (by the injected clock) keeps its place in the queue
 * but, when its turn comes, passes it on at once without running: the order of the others is
 * unchanged and nobody can overtake a holder.
 */
export interface MemoryLockOptions {
  clock?: Clock;
  metrics?: StoreMetrics;
}

export interface MemoryLock extends LockPort {
  /** Keys held or waited for now (tests: nothing leaks). */
  readonly size: number;
}

export function createMemoryLock(opts: MemoryLockOptions = {}): MemoryLock {
  const clock = opts.clock ?? systemClock;
  const metrics = opts.metrics ?? noStoreMetrics;
  const tails = new Map<string, Promise<void>>();
  let closed = false;

  async function hold<T>(key: string, o: { waitMs: number }, fn: () => Promise<T>): Promise<T> {
    if (closed) throw new LockUnavailable('store', 'lock closed');
    const previous = tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = (previous ?? Promise.resolve()).then(() => mine);
    tails.set(key, tail);
    const done = (): void => {
      release();
      if (tails.get(key) === tail) tails.delete(key);
    };
    const started = performance.now();
    if (previous) {
      const turn = await waitTurn(previous, o.waitMs);
      if (!turn) {
        // Our turn still comes; pass it on then, so the queue behind us keeps its order.
        void previous.then(done);
        metrics.error('lock-timeout');
        throw new LockUnavailable('timeout', `waited ${o.waitMs} ms for the appointment lock`);
      }
    }
    metrics.lockWait((performance.now() - started) / 1000);
    try {
      return await fn();
    } finally {
      done();
    }
  }

  /** True when `previous` settled within `waitMs` by the clock. */
  function waitTurn(previous: Promise<void>, waitMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const cancel = clock.setTimer(() => resolve(false), waitMs);
      void previous.then(() => {
        cancel();
        resolve(true);
      });
    });
  }

  return {
    hold,
    get size() {
      return tails.size;
    },
    async ping() {
      if (closed) throw new LockUnavailable('store', 'lock closed');
    },
    async close() {
      closed = true;
    },
  };
}
