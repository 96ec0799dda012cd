import { performance } from 'node:perf_hooks';

/**
 * Hooks the store adapters call (issue 18 item 5); src/metrics.ts turns them into Prometheus
 * metrics. Optional everywhere: an adapter given none records nothing.
 */
export interface StoreMetrics {
  /** One store operation took `seconds` (keep, link, version, history, purge, ping, lock). */
  duration(op: string, seconds: number): void;
  /** A store failure, by kind: timeout, unavailable, sealed, lock-timeout, lock-lost, link. */
  error(kind: string): void;
  /** Time a holder waited for its appointment's lock. */
  lockWait(seconds: number): void;
  /** Decisions kept now (set after open, keep and purge). */
  rows(n: number): void;
}

export const noStoreMetrics: StoreMetrics = { duration() {}, error() {}, lockWait() {}, rows() {} };

/**
 * Times `fn` as operation `op`. A latency, so the monotonic high-resolution timer, not the
 * injected clock (which decides timeouts). Failures are counted by the caller, who knows the kind.
 */
export async function timed<T>(m: StoreMetrics, op: string, fn: () => Promise<T> | T): Promise<T> {
  const start = performance.now();
  try {
    return await fn();
  } finally {
    m.duration(op, (performance.now() - start) / 1000);
  }
}
