import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { CrlSummary } from './material.js';

/**
 * Issue 19: an expired CRL refuses every client (fail closed), so its nextUpdate is exported and
 * warned about before it passes. Call at TLS load and at each reload (not per scrape: the value is
 * a date, not a countdown, and the warning would repeat on every scrape).
 */
export function reportCrlStatus(
  crls: readonly CrlSummary[],
  deps: { metrics: Metrics; logger: Logger; now: number; warningHours: number },
): void {
  const { metrics, logger, now, warningHours } = deps;
  metrics.crlNextUpdate.reset();
  // Two CRLs of one CA (a rotation in progress): OpenSSL uses the newer, so the later date counts.
  const latest = new Map<string, number>();
  for (const c of crls) {
    if (c.nextUpdate === undefined) continue;
    latest.set(c.issuer, Math.max(latest.get(c.issuer) ?? -Infinity, c.nextUpdate));
  }
  for (const [issuer, nextUpdate] of latest) {
    metrics.crlNextUpdate.set({ issuer }, Math.floor(nextUpdate / 1000));
    const fields = { issuer, nextUpdate: new Date(nextUpdate).toISOString() };
    if (nextUpdate <= now) logger.error('CRL expired: clients it covers are refused until a new CRL is installed', fields);
    else if (nextUpdate - now < warningHours * 3_600_000) logger.warn('CRL nextUpdate is near: install the next CRL before then', { ...fields, warningHours });
  }
}
