import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { StoreMetrics } from './store/metrics.js';
import { BoundCounter, BoundGauge, BoundHistogram } from './metrics-bound.js';

/**
 * Every Prometheus metric of the gateway, in one place (issue 7). One registry per gateway. The
 * ones every request moves are bound series (src/metrics-bound.ts, issue 17); the rest are
 * prom-client's own.
 */
export function createMetrics() {
  const registry = new Registry();
  const p = 'cancel_gateway_';
  collectDefaultMetrics({ register: registry, prefix: p });
  const beforeScrape: Array<() => void> = [];
  const latency = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  return {
    registry,
    /** Run `fn` before every scrape (values that depend on the time of the scrape). */
    onScrape(fn: () => void) {
      beforeScrape.push(fn);
    },
    async scrape(): Promise<string> {
      for (const fn of beforeScrape) fn();
      return registry.metrics();
    },
    requests: new BoundCounter({ name: `${p}requests_total`, help: 'Requests answered, by route, interaction, outcome (forwarded, rejected, error) and status.', labelNames: ['route', 'interaction', 'outcome', 'status'], registers: [registry] }),
    rejections: new BoundCounter({ name: `${p}rejections_total`, help: 'Requests rejected by the gateway, by catalogue code.', labelNames: ['code'], registers: [registry] }),
    wouldReject: new Counter({ name: `${p}would_reject_total`, help: 'Report mode: checks that failed but were only reported, by family and catalogue code.', labelNames: ['family', 'code'], registers: [registry] }),
    gatewayDuration: new BoundHistogram({ name: `${p}gateway_duration_seconds`, help: 'Time spent in the gateway itself per request (total minus provider time), by route.', labelNames: ['route'], buckets: latency, registers: [registry] }),
    upstreamDuration: new BoundHistogram({ name: `${p}upstream_duration_seconds`, help: 'Time waiting for the provider, by call (read = current appointment, forward).', labelNames: ['call'], buckets: latency, registers: [registry] }),
    stageDuration: new BoundHistogram({ name: `${p}stage_duration_seconds`, help: 'Time per pipeline stage (check).', labelNames: ['stage'], buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 1], registers: [registry] }),
    upstreamErrors: new Counter({ name: `${p}upstream_errors_total`, help: 'Failed provider calls, by kind (refused, timeout, slow-body, reset, protocol, status, redirect, too-large, other).', labelNames: ['kind'], registers: [registry] }),
    inFlight: new BoundGauge({ name: `${p}in_flight_requests`, help: 'Requests being handled now.', registers: [registry] }),
    tlsFailures: new Counter({ name: `${p}tls_handshake_failures_total`, help: 'Refused or failed TLS handshakes, by reason.', labelNames: ['reason'], registers: [registry] }),
    certExpiry: new Gauge({ name: `${p}certificate_expiry_seconds`, help: 'Seconds until the certificate expires, by role (server, client-ca, upstream-client) and subject.', labelNames: ['role', 'subject'], registers: [registry] }),
    reloads: new Counter({ name: `${p}reloads_total`, help: 'Reloads of certificate material (kind tls) and of the configuration (kind config), by result (success, failure).', labelNames: ['kind', 'result'], registers: [registry] }),
    contractBreaches: new Counter({ name: `${p}provider_contract_breaches_total`, help: 'Provider success answers that break the cancel contract (returned anyway), by reason.', labelNames: ['reason'], registers: [registry] }),
    providerUp: new Gauge({ name: `${p}provider_up`, help: '1 when the provider accepted a connection at the last readiness probe, else 0.', registers: [registry] }),
    crlNextUpdate: new Gauge({ name: `${p}crl_next_update_seconds`, help: 'nextUpdate of each CRL of tls.crl (unix seconds), by issuing CA; set at load and reload.', labelNames: ['issuer'], registers: [registry] }),
    draining: new Gauge({ name: `${p}draining`, help: '1 while the gateway drains for shutdown.', registers: [registry] }),
    storeDuration: new BoundHistogram({ name: `${p}store_duration_seconds`, help: 'State store operations (keep, link, version, history, purge, ping, export), by operation.', labelNames: ['op'], buckets: latency, registers: [registry] }),
    storeErrors: new Counter({ name: `${p}store_errors_total`, help: 'State store failures, by kind (keep, link, timeout, unavailable, sealed, connection, lock-timeout, lock-store, lock-lost).', labelNames: ['kind'], registers: [registry] }),
    lockWait: new BoundHistogram({ name: `${p}lock_wait_seconds`, help: "Time a cancel waited for its appointment's lock.", buckets: latency, registers: [registry] }),
    auditFailures: new Counter({ name: `${p}audit_write_failures_total`, help: 'Audit file write failures (a full disk, a removed folder): while the file cannot be written, guarded writes are refused (500).', registers: [registry] }),
    auditWritable: new Gauge({ name: `${p}audit_writable`, help: '1 while the audit destination takes records, 0 after a failed write until a write succeeds again.', registers: [registry] }),
    vaultRows: new Gauge({ name: `${p}vault_rows`, help: 'Decisions kept in the vault (as last seen by this process).', registers: [registry] }),
  };
}

/** The store adapters' hooks (src/store/metrics.ts) onto these metrics. */
export function storeMetricsOf(m: Metrics): StoreMetrics {
  return {
    duration: (op, seconds) => m.storeDuration.observe({ op }, seconds),
    error: (kind) => m.storeErrors.inc({ kind }),
    lockWait: (seconds) => m.lockWait.observe(seconds),
    rows: (n) => m.vaultRows.set(n),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
