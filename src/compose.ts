import type { IncomingMessage } from 'node:http';
import { jsonCodec } from './adapters/codec-json.js';
import { createMemoryLock } from './adapters/lock-memory.js';
import { createHttpProvider } from './adapters/provider-http.js';
import { createNoVault } from './adapters/vault-none.js';
import { createHistoryRead } from './cancel/history.js';
import { createWriteTransaction } from './cancel/transaction.js';
import { createCheckPlan } from './checks/index.js';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { AuditSink } from './ops/audit.js';
import { createPipeline } from './pipeline.js';
import type { Clock } from './ports/clock.js';
import type { Codec } from './ports/codec.js';
import type { LockPort } from './ports/lock.js';
import { noTracer, type Tracer } from './ports/tracer.js';
import type { VaultPort } from './ports/vault.js';
import { createForwarder } from './proxy/forward.js';
import { createUpstream } from './proxy/upstream.js';
import { createRouter } from './route.js';
import { STANDARDS } from './standards/index.js';

/**
 * The composition root (issue 12): the only file that names an adapter. Configuration in, a
 * request handler out.
 */

/** What lives as long as the process, across configuration reloads (ruling 10 holds across them). */
export interface LongLived {
  lock: LockPort;
  vault: VaultPort;
  codecs: readonly Codec[];
}

export interface Shared extends LongLived {
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  audit: AuditSink;
  clientAllowed: (req: IncomingMessage) => boolean;
  draining: () => boolean;
  tracer: Tracer;
}

/** How long a cancel may wait for another cancel of the same appointment (then 500, nothing forwarded). */
const DEFAULT_LOCK_WAIT_MS = 30_000;

export function createLongLived(_config: Readonly<Config>, clock: Clock): LongLived {
  return { lock: createMemoryLock(clock), vault: createNoVault(), codecs: [jsonCodec] };
}

/**
 * Tracing lives as long as the process (a reload does not change it). Off -> the no-op tracer, and
 * the OpenTelemetry SDK is never loaded (importing it costs about half a second and 17 MB at start).
 */
export async function createTracer(config: Readonly<Config>): Promise<Tracer> {
  const t = config.tracing;
  if (!t.enabled || !t.otlpEndpoint) return noTracer;
  const { createOtelTracer } = await import('./adapters/tracer-otel.js');
  return createOtelTracer({ serviceName: t.serviceName, otlpEndpoint: t.otlpEndpoint, sampleRatio: t.sampleRatio });
}

/** Everything a request is handled with, built from one configuration; swapped on reload. */
export function createHandling(cfg: Readonly<Config>, shared: Shared) {
  const standard = STANDARDS[cfg.standard];
  const upstream = createUpstream(cfg);
  const provider = createHttpProvider({ url: cfg.upstream.url, ca: cfg.upstream.ca, cert: cfg.upstream.cert, key: cfg.upstream.key, connections: cfg.upstream.writeConnections, clock: shared.clock });
  const transaction = createWriteTransaction({
    provider, lock: shared.lock, vault: shared.vault, clock: shared.clock, codecs: shared.codecs,
    changeSets: standard.changeSets, logger: shared.logger, metrics: shared.metrics,
    publicBaseUrl: cfg.publicBaseUrl, report: cfg.report,
    timeouts: {
      upstreamMs: cfg.upstream.timeoutMs, bodyMs: cfg.upstream.bodyTimeoutMs,
      lockWaitMs: Math.max(DEFAULT_LOCK_WAIT_MS, cfg.upstream.timeoutMs * 3), maxAnswerBytes: cfg.upstream.maxAnswerBytes,
    },
  });
  const history = createHistoryRead({
    provider, vault: shared.vault, codecs: shared.codecs,
    exchange: { deadlineMs: cfg.upstream.timeoutMs, bodyDeadlineMs: cfg.upstream.bodyTimeoutMs, maxBytes: cfg.upstream.maxAnswerBytes },
  });
  const forwarder = createForwarder(cfg, standard, upstream, { logger: shared.logger, metrics: shared.metrics });
  const pipeline = createPipeline({
    config: cfg, standard, plan: createCheckPlan(cfg, standard, { clock: shared.clock }),
    router: createRouter(standard, { amend: cfg.interactions.amend }), forwarder, transaction, history,
    logger: shared.logger, metrics: shared.metrics, audit: shared.audit, clientAllowed: shared.clientAllowed, draining: shared.draining, tracer: shared.tracer,
  });
  return {
    config: cfg, standard, upstream, provider, pipeline,
    close() {
      forwarder.close();
      upstream.close();
      void provider.close();
    },
  };
}

export type Handling = ReturnType<typeof createHandling>;
