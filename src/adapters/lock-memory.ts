import { LockUnavailable, type LockPort } from '../ports/lock.js';
import { systemClock, type Clock } from '../ports/clock.js';

/**
 * Per-key FIFO serialization inside one process (ruling 10). Keys with nothing queued hold no
 * memory. A waiter that is not served within `waitMs` leaves the queue with LockUnavailable and
 * its function is never run.
 */
export function createMemoryLock(clock: Clock = systemClock): LockPort & { readonly size: number } {
  const tails = new Map<string, Promise<void>>();
  return {
    get size() {
      return tails.size;
    },
    async hold<T>(key: string, opts: { waitMs: number }, fn: () => Promise<T>): Promise<T> {
      const previous = tails.get(key) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((r) => (release = r));
      const tail = previous.then(() => mine);
      tails.set(key, tail);
      let timedOut = false;
      let cancel = () => {};
      const waited = new Promise<void>((resolve, reject) => {
        cancel = clock.setTimer(() => {
          timedOut = true;
          reject(new LockUnavailable('timeout', 'the appointment is busy'));
        }, opts.waitMs);
        previous.then(() => resolve());
      });
      try {
        await waited;
      } catch (e) {
        // Our place in the queue passes on as soon as the one before us is done.
        release();
        if (tails.get(key) === tail) void tail.then(() => tails.get(key) === tail && tails.delete(key));
        throw e;
      } finally {
        cancel();
      }
      if (timedOut) throw new LockUnavailable('timeout', 'the appointment is busy');
      try {
        return await fn();
      } finally {
        release();
        if (tails.get(key) === tail) tails.delete(key);
      }
    },
    ping: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}
