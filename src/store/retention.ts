import type { Clock } from '../ports/clock.js';
import type { VaultPort } from '../ports/vault.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

/**
 * `store.retentionDays` (issue 18 item 4): entries kept longer are purged now and then every
 * hour. A failed purge is reported and tried again at the next tick; it never stops the gateway.
 * Returns the function that stops the schedule.
 */
export function startRetention(
  vault: VaultPort,
  opts: { retentionDays: number; clock: Clock; onPurged?: (n: number) => void; onError?: (e: Error) => void; everyMs?: number },
): () => void {
  let stopped = false;
  let cancel = (): void => {};
  const tick = (): void => {
    if (stopped) return;
    vault.purge(opts.clock.now() - opts.retentionDays * DAY).then(
      (n) => opts.onPurged?.(n),
      (e: Error) => opts.onError?.(e),
    ).finally(() => {
      if (!stopped) cancel = opts.clock.setTimer(tick, opts.everyMs ?? HOUR);
    });
  };
  tick();
  return () => {
    stopped = true;
    cancel();
  };
}
