import { performance } from 'node:perf_hooks';
import { systemClock, type Clock } from '../ports/clock.js';
import { LockUnavailable, NO_SESSION, type HeldLock, type LockPort } from '../ports/lock.js';
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
  /** Per key held: the turns waiting behind the holder, in arrival order (issue 17: no promise chain). */
  /** Each waiting turn says whether it took the turn (false: its waiter gave up). */
  const queues = new Map<string, Array<() => boolean>>();
  let closed = false;

  /**
   * The holder is done: the turn goes to the next waiter still waiting — those that gave up pass
   * it on at once, in a loop, so the order of the rest is unchanged — or the key is free.
   */
  function passOn(key: string): void {
    const q = queues.get(key)!;
    for (;;) {
      const next = q.shift();
      if (!next) {
        queues.delete(key);
        return;
      }
      if (next()) return;
    }
  }

  /** Resolves true when our turn comes within `waitMs` by the clock; false when we gave up first. */
  function waitTurn(q: Array<() => boolean>, waitMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      let waiting = true;
      const cancel = clock.setTimer(() => {
        waiting = false;
        resolve(false);
      }, waitMs);
      q.push(() => {
        if (!waiting) return false;
        cancel();
        resolve(true);
        return true;
      });
    });
  }

  async function hold<T>(key: string, o: { waitMs: number }, fn: (held: HeldLock) => Promise<T>): Promise<T> {
    if (closed) throw new LockUnavailable('store', 'lock closed');
    const q = queues.get(key);
    const started = performance.now();
    if (!q) queues.set(key, []);
    else if (!(await waitTurn(q, o.waitMs))) {
      // A wait that ended in the timeout is a wait too (the histogram's tail shows it).
      metrics.lockWait((performance.now() - started) / 1000);
      // Counted once, by whoever handles the LockUnavailable (the cancel transaction).
      throw new LockUnavailable('timeout', `waited ${o.waitMs} ms for the appointment lock`);
    }
    metrics.lockWait((performance.now() - started) / 1000);
    try {
      return await fn(NO_SESSION);
    } finally {
      passOn(key);
    }
  }

  return {
    hold,
    get size() {
      return queues.size;
    },
    async ping() {
      if (closed) throw new LockUnavailable('store', 'lock closed');
    },
    async close() {
      closed = true;
    },
  };
}
