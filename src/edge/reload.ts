import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

/**
 * Configuration a reload cannot change in a running process (listeners, TLS files, server limits,
 * log and audit sinks, the store, tracing): a reload that changes any of them is refused and needs
 * a restart.
 */
function restartOnlySections(c: Readonly<Config>): Record<string, unknown> {
  const { maxBodyBytes: _b, maxJsonDepth: _d, maxJsonNodes: _n, largeBodyBytes: _l, ...serverLimits } = c.limits;
  return { listen: c.listen, admin: c.admin, tls: c.tls, limits: serverLimits, log: c.log, audit: c.audit, shutdown: c.shutdown, store: c.store, tracing: c.tracing, readiness: c.readiness };
}

/** The restart-only keys that differ between two configurations, e.g. `limits.maxConnections` (at most 10 named). */
/**
 * A value as the comparison of two configurations sees it: object keys in sorted order, and an
 * empty list, an empty object or an absent value alike — a file rewritten by a tool that reorders
 * keys, or one spelling out the defaults (`allowedClients: { subjects: [], sans: [] }`), means the
 * same configuration and must not block a reload.
 */
function canonical(v: unknown): string | undefined {
  if (Array.isArray(v)) return v.length === 0 ? undefined : `[${v.map((x) => canonical(x) ?? 'null').join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const parts: string[] = [];
    for (const k of Object.keys(v).sort()) {
      const c = canonical((v as Record<string, unknown>)[k]);
      if (c !== undefined) parts.push(`${JSON.stringify(k)}:${c}`);
    }
    return parts.length === 0 ? undefined : `{${parts.join(',')}}`;
  }
  return v === undefined ? undefined : JSON.stringify(v);
}

export function restartOnlyChanges(a: Readonly<Config>, b: Readonly<Config>): string[] {
  const [x, y] = [restartOnlySections(a), restartOnlySections(b)];
  const changed: string[] = [];
  for (const section of Object.keys(x)) {
    const [p, q] = [x[section] as Record<string, unknown>, y[section] as Record<string, unknown>];
    if (canonical(p) === canonical(q)) continue;
    const keys = new Set([...Object.keys(p ?? {}), ...Object.keys(q ?? {})]);
    for (const k of keys) if (canonical(p?.[k]) !== canonical(q?.[k])) changed.push(`${section}.${k}`);
  }
  return changed.length > 10 ? [...changed.slice(0, 10), `and ${changed.length - 10} more`] : changed;
}

interface Swappable {
  readonly config: Readonly<Config>;
  /** Closes once the requests it is handling have ended. */
  retire(): void;
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
  logger: Logger;
  metrics: Metrics;
}): (next: Readonly<Config>) => boolean {
  const { metrics, logger } = deps;
  return (next) => {
    const restart = restartOnlyChanges(deps.current().config, next);
    if (restart.length) {
      metrics.reloads.inc({ kind: 'config', result: 'failure' });
      logger.error('configuration reload refused: listeners, TLS files, server limits, log, audit, store, tracing, shutdown or readiness changed (restart needed); keeping the current configuration', { changed: restart });
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
    old.retire();
    metrics.reloads.inc({ kind: 'config', result: 'success' });
    logger.info('configuration reloaded', { standard: next.standard });
    return true;
  };
}

/**
 * TLS material reload (file change or call): on failure the previous material stays in use. A load
 * may keep part of the previous material (`refusedPart` says which and why): the rest is applied,
 * and the reload is counted and logged as failed.
 */
export function createTlsReload<M>(deps: { load: () => M; apply: (m: M) => void; logger: Logger; metrics: Metrics; what?: string; refusedPart?: (m: M) => string | undefined }): () => boolean {
  const [done, failed] = deps.what ? [`${deps.what} reloaded`, `${deps.what} reload failed`] : ['tls material reloaded', 'tls reload failed'];
  return () => {
    try {
      const next = deps.load();
      deps.apply(next);
      const refused = deps.refusedPart?.(next);
      if (refused) {
        deps.metrics.reloads.inc({ kind: 'tls', result: 'failure' });
        deps.logger.error(`${failed} in part; the rest is applied`, { error: refused });
        return false;
      }
      deps.metrics.reloads.inc({ kind: 'tls', result: 'success' });
      deps.logger.info(done);
      return true;
    } catch (e) {
      deps.metrics.reloads.inc({ kind: 'tls', result: 'failure' });
      deps.logger.error(`${failed}; keeping the previous material`, { error: (e as Error).message });
      return false;
    }
  };
}
