import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Clock } from '../ports/clock.js';

/**
 * Configuration a reload cannot change in a running process (listeners, TLS files, server limits,
 * log and audit sinks, the store, tracing): a reload that changes any of them is refused and needs
 * a restart.
 */
export function restartOnly(c: Readonly<Config>): string {
  const { maxBodyBytes: _b, maxJsonDepth: _d, maxJsonNodes: _n, largeBodyBytes: _l, ...serverLimits } = c.limits;
  return JSON.stringify([c.listen, c.admin, c.tls, serverLimits, c.log, c.audit, c.shutdown, c.store, c.tracing, c.readiness]);
}

interface Swappable {
  readonly config: Readonly<Config>;
  close(): void;
}

/**
 * SIGHUP (issue 7): requests that start from now on use the new configuration; in-flight ones
 * finish on the old handling, whose provider connections close after them. A bad or restart-only
 * change keeps the current configuration and is counted.
 */
export function createConfigReload<H extends Swappable>(deps: {
  current: () => H;
  swap: (next: H) => void;
  build: (cfg: Readonly<Config>) => H;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}): (next: Readonly<Config>) => boolean {
  const { metrics, logger } = deps;
  return (next) => {
    if (restartOnly(next) !== restartOnly(deps.current().config)) {
      metrics.reloads.inc({ kind: 'config', result: 'failure' });
      logger.error('configuration reload refused: listeners, TLS files, server limits, log, audit, store, tracing, shutdown or readiness changed (restart needed); keeping the current configuration');
      return false;
    }
    let fresh: H;
    try {
      fresh = deps.build(next);
    } catch (e) {
      metrics.reloads.inc({ kind: 'config', result: 'failure' });
      logger.error('configuration reload failed; keeping the current configuration', { error: (e as Error).message });
      return false;
    }
    const old = deps.current();
    deps.swap(fresh);
    deps.clock.setTimer(() => old.close(), old.config.upstream.timeoutMs * 2 + 1000);
    metrics.reloads.inc({ kind: 'config', result: 'success' });
    logger.info('configuration reloaded', { standard: next.standard });
    return true;
  };
}

/** TLS material reload (file change or call): on failure the previous material stays in use. */
export function createTlsReload<M>(deps: { load: () => M; apply: (m: M) => void; logger: Logger; metrics: Metrics }): () => boolean {
  return () => {
    try {
      deps.apply(deps.load());
      deps.metrics.reloads.inc({ kind: 'tls', result: 'success' });
      deps.logger.info('tls material reloaded');
      return true;
    } catch (e) {
      deps.metrics.reloads.inc({ kind: 'tls', result: 'failure' });
      deps.logger.error('tls reload failed; keeping the previous material', { error: (e as Error).message });
      return false;
    }
  };
}
