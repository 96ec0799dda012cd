import http from 'node:http';
import type net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { CODECS, createHandling, createLateStore, openStore, type Handling, type Shared, type Store } from './compose.js';
import { startRetention } from './store/retention.js';
import { systemClock, type Clock } from './ports/clock.js';
import { noTracer, type Tracer } from './ports/tracer.js';
import { jwksFileProblems, type Config } from './config.js';
import { GatewayError } from './errors.js';
import { createAdminServer } from './edge/admin.js';
import { createConfigReload, createTlsReload } from './edge/reload.js';
import { createReadiness } from './edge/readiness.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, storeMetricsOf, type Metrics } from './metrics.js';
import { boundedAuditSink, createAuditSink, type AuditSink } from './ops/audit.js';
import { sendError } from './respond.js';
import { answerCodecOf } from './edge/negotiate.js';
import { requestIdOf } from './edge/request-head.js';
import { keepingServerCertificate, loadTlsMaterial, watchFiles, watchTlsFiles, type TlsMaterial } from './tls/material.js';
import { createTlsStatus, serverValid, serverValidFrom, upstreamClientCertificate, type ExpiringCertificate } from './tls/status.js';
import { createClientAllowList } from './tls/allow-list.js';
import { createTlsListener } from './edge/tls-listener.js';
import { closeAsGateway } from './edge/connection-guard.js';
import { createLane } from './edge/large-body-lane.js';

export interface GatewayDeps {
  clock?: Clock;
  /** An already opened store (tests); default: the one the configuration names, opened at listen(). */
  store?: Store;
  /** Tracing (off by default; main.ts builds the OpenTelemetry one when configured). */
  tracer?: Tracer;
  logger?: Logger;
  audit?: AuditSink;
  /** How often readiness re-checks that the provider accepts connections (default 5 s). */
  upstreamProbeIntervalMs?: number;
}

export interface Gateway {
  readonly config: Readonly<Config>;
  readonly metrics: Metrics;
  /** Bound ports once listening (useful with port 0). */
  readonly port: number;
  readonly adminPort: number;
  listen(): Promise<void>;
  /** Reload TLS material now (also triggered by file changes). Returns false and keeps the old material on failure. */
  reloadTls(): boolean;
  /** Apply a new, already validated configuration (SIGHUP). False, and nothing changes, when it touches restart-only settings. */
  reloadConfig(next: Readonly<Config>): boolean;
  /** Readiness off, stop accepting, let in-flight requests finish up to the deadline, then close. */
  shutdown(deadlineMs?: number): Promise<void>;
  /** Close at once (tests). */
  close(): Promise<void>;
  /** Run the readiness probes now (tests move time instead of sleeping). */
  probeNow(): Promise<void>;
  /**
   * Resolves once every request received so far has finished its handling and its audit record
   * has reached the audit destination: a client holds its answer a moment before its record is
   * written (the record names the answer's status).
   */
  settled(): Promise<void>;
}

export { certificateFailureReason, handshakeFailureReason } from './edge/tls-listener.js';

/** One request through the pipeline of the configuration in force when it arrived. */
function serve(h: Handling, req: http.IncomingMessage, res: http.ServerResponse, logger: Logger): Promise<void> {
  if (h.standard.noStoreOnEveryResponse) res.setHeader('Cache-Control', 'no-store');
  const ended = h.begin();
  return h.pipeline.handle(req, res).then(ended, (e: unknown) => {
    ended();
    logger.error('unhandled pipeline failure', { error: (e as Error)?.message });
    if (!res.headersSent) sendError(res, new GatewayError('INTERNAL_ERROR', 'Unexpected internal error'), h.standard, requestIdOf(req.headers['x-request-id']), false, answerCodecOf(req, CODECS));
    else res.destroy();
  });
}

function listenOn(server: net.Server, at: { port: number; host: string }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Stops accepting; in-flight answers close their connection when done. Resolves when every
 * connection is closed or at the deadline; the caller then ends what is still in flight.
 */
async function drain(server: http.Server, active: ReadonlySet<http.ServerResponse>, deadlineMs: number, closeUnrequested: () => void): Promise<void> {
  for (const res of active) if (!res.headersSent) res.setHeader('Connection', 'close');
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  closeUnrequested(); // a connection that never sent a request is not idle to Node: at its headers timeout
  const deadline = new Promise<void>((resolve) => setTimeout(resolve, deadlineMs).unref());
  await Promise.race([closed, deadline]);
}

const closeListener = (server: net.Server): Promise<void> => new Promise<void>((r) => (server.listening ? server.close(() => r()) : r()));

export function createGateway(initialConfig: Readonly<Config>, deps: GatewayDeps = {}): Gateway {
  const config = initialConfig; // listener-level settings; checks read `handling.config`
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? createLogger(config.log.level);
  // Item 6: every record, whatever the sink, is cut to a small fixed size.
  const metrics = createMetrics();
  const audit = boundedAuditSink(deps.audit ?? createAuditSink(config.audit.destination, { onFailure: () => metrics.auditFailures.inc(), onWritable: (w) => metrics.auditWritable.set(w ? 1 : 0) }));
  // An injected sink (tests, embedders) reports its own health, if any: the gauge follows it at scrape.
  if (deps.audit) metrics.onScrape(() => metrics.auditWritable.set(audit.healthy?.() === false ? 0 : 1));
  // The state store (issue 18): opened at listen(); until then every write fails closed.
  const store = createLateStore();
  let stopRetention = () => {};
  const shared: Shared = {
    lock: store.lock, vault: store.vault, codecs: CODECS, largeBodies: createLane(), holdsInDoubt: new Set(), clock, logger, metrics, audit, tracer: deps.tracer ?? noTracer,
    clientAllowed: (req) => clientAllowed(req.socket as TLSSocket), draining: () => draining,
  };
  // Every handling not yet closed: the current one, and those a reload retired while requests
  // begun under them are still running (shutdown aborts and closes them all).
  const live = new Set<Handling>();
  // The provider client certificate of the handling in use, for the expiry metric (re-read when a
  // handling is built: a renewed Secret).
  let upstreamCert: ExpiringCertificate | undefined;
  const buildHandling = (cfg: Readonly<Config>): Handling => {
    const h: Handling = createHandling(cfg, shared, () => live.delete(h));
    live.add(h);
    upstreamCert = upstreamClientCertificate(cfg.upstream.cert);
    return h;
  };
  let handling = buildHandling(config);

  const material = loadTlsMaterial(config.tls);
  const tlsStatus = createTlsStatus(material, { metrics, logger, clock, crlWarningHours: config.tls.crlWarningHours, others: () => (upstreamCert ? [upstreamCert] : []) });
  const clientAllowed = createClientAllowList(config.tls.allowedClients);

  let draining = false;
  const active = new Set<http.ServerResponse>();
  // Requests whose handling (and so decision line and audit record) has not finished yet.
  const handlingNow = new Set<Promise<void>>();
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse, retire: boolean): void => {
    if (retire || draining) res.setHeader('Connection', 'close');
    active.add(res);
    res.on('close', () => active.delete(res));
    const p = serve(handling, req, res, logger);
    handlingNow.add(p);
    void p.finally(() => handlingNow.delete(p));
  };
  const listener = createTlsListener({
    config, material, metrics, logger, clock, onRequest, outcomeStandard: () => handling.standard, codecs: CODECS,
    onRefusedFraming: (head, status, code, gone) => handling.pipeline.refusedFraming(head, status, code, gone),
    onUnhandled: (req, cutMidBody) => handling.pipeline.unanswered(req, cutMidBody),
    // The allow-list first (README order: 403 before the route or any framing refusal), as for any request.
    clientAllowed: (socket) => clientAllowed(socket as TLSSocket),
    routeRefusal: (head) => handling.pipeline.routeRefusal(head),
  });
  const server = listener.server;
  let served = material;
  let validFromTimer: NodeJS.Timeout | undefined;
  /** Material with the reason its server certificate was not taken (the current one kept). */
  const keptServer = new WeakMap<TlsMaterial, string>();
  /** Reload once `from` has come (a timer is at most ~24.8 days: re-armed until then, not reloaded early). */
  const retryAt = (from: number): void => {
    validFromTimer = setTimeout(() => (clock.now() >= from ? reloadTls() : retryAt(from)), Math.min(Math.max(from - clock.now(), 0) + 1000, 2 ** 31 - 1)).unref();
  };
  const reloadTls: () => boolean = createTlsReload({
    load: () => {
      const next = loadTlsMaterial(config.tls);
      const now = clock.now();
      clearTimeout(validFromTimer); // a later push decides anew
      if (serverValid(next, now) || !tlsStatus.serving()) return next;
      // One bad push of a shared Secret must not make every replica unready at once; its client CA
      // and CRL still apply (a revocation does not wait for a good certificate). A certificate not
      // valid yet is tried again when it becomes valid.
      const from = serverValidFrom(next, now);
      if (from !== undefined) retryAt(from);
      const kept = keepingServerCertificate(next, served);
      keptServer.set(kept, from !== undefined
        ? `the new server certificate is not valid before ${new Date(from).toISOString()}; keeping the current one, which is still valid, until then`
        : 'the new server certificate has expired; keeping the current one, which is still valid');
      return kept;
    },
    apply: (next: TlsMaterial) => {
      listener.apply(next);
      tlsStatus.update(next);
      served = next;
    },
    refusedPart: (next) => keptServer.get(next),
    logger,
    metrics,
  });
  const unwatchListener = config.tls.watch ? watchTlsFiles(config.tls, reloadTls) : () => {};
  const unwatchHandling = config.tls.watch
    ? watchHandlingFiles(config, { current: () => handling, swap: (h) => (handling = h), build: buildHandling, logger, metrics })
    : () => {};
  const unwatch = (): void => {
    unwatchListener();
    unwatchHandling();
  };

  // Readiness (issue 19 item 5): this gateway can serve — its certificate, its store, not
  // draining; the provider is reported, and counts only when configured to.
  const readiness = createReadiness({
    clock, logger, intervalMs: deps.upstreamProbeIntervalMs ?? config.readiness.intervalMs, draining: () => draining,
    probes: {
      upstream: { ping: () => handling.provider.ping(), required: config.readiness.requireProvider },
      store: { ping: () => Promise.all([shared.lock.ping(), shared.vault.ping()]).then(() => undefined), required: true },
    },
    checks: {
      tls: tlsStatus.serving,
      config: () => true,
    },
    onResult: (name, ok) => {
      if (name === 'upstream') metrics.providerUp.set(ok ? 1 : 0);
    },
  });
  const admin = createAdminServer(metrics, readiness);

  /** Issue 7: apply a new configuration to requests that start from now on. */
  const reloadConfig = createConfigReload({ current: () => handling, swap: (h) => (handling = h), build: buildHandling, logger, metrics });

  const gw: Gateway = {
    get config() {
      return handling.config;
    },
    metrics,
    reloadConfig,
    get port() {
      return (server.address() as net.AddressInfo | null)?.port ?? 0;
    },
    get adminPort() {
      return (admin.address() as net.AddressInfo | null)?.port ?? 0;
    },
    async listen() {
      store.bind(deps.store ?? (await openStore(config.store, { clock, metrics: storeMetricsOf(metrics), exclusive: true })));
      if (config.store.retentionDays !== undefined) {
        stopRetention = startRetention(store.vault, { retentionDays: config.store.retentionDays, clock, onError: (e) => logger.error('vault retention purge failed', { error: (e as Error)?.name }) });
      }
      await listenOn(server, config.listen);
      await listenOn(admin, config.admin);
      await readiness.start();
    },
    reloadTls,
    probeNow: () => readiness.probeNow(),
    async settled() {
      await Promise.allSettled([...handlingNow]);
      await audit.flushed?.();
    },
    async shutdown(deadlineMs = config.shutdown.drainTimeoutMs) {
      /**
       * Ruling 23 at exit: a write in doubt keeps its appointment locked for upstream.inDoubtHoldMs
       * after its client's answer; the process stays until those holds end, whatever the store (the
       * in-process lock would otherwise vanish with the process). Bounded by the longest hold.
       */
      const waitOutHoldsInDoubt = async (): Promise<void> => {
        if (!shared.holdsInDoubt.size) return;
        const boundMs = Math.max(...[...live].map((h) => h.config.upstream.inDoubtHoldMs ?? h.config.upstream.timeoutMs), config.upstream.inDoubtHoldMs ?? config.upstream.timeoutMs) + 1000;
        logger.info('waiting for writes in doubt before exit', { holds: shared.holdsInDoubt.size, boundMs });
        // A timer that keeps the process alive (the holds' own timers do not), cleared when they end;
        // a hold that begins while waiting (a request still finishing) is waited out too.
        let bound: NodeJS.Timeout | undefined;
        let timedOut = false;
        const timer = new Promise<void>((r) => (bound = setTimeout(() => ((timedOut = true), r()), boundMs)));
        while (shared.holdsInDoubt.size && !timedOut) await Promise.race([Promise.allSettled([...shared.holdsInDoubt]), timer]);
        clearTimeout(bound);
      };
      draining = true;
      metrics.draining.set(1);
      logger.info('draining', { deadlineMs });
      await drain(server, active, deadlineMs, () => listener.closeUnrequested());
      if (handlingNow.size) {
        // Ruling 19 past the drain deadline: the provider exchanges still in flight are aborted so
        // that every request ends — its client gets the 500 the records say (a write "may have been
        // applied"), and its decision line and audit record are written before the audit sink
        // closes (briefly bounded: a store call may still be finishing). Only then are the
        // connections cut.
        // A request whose body is still arriving is cut as one at limits.requestTimeoutMs is: the
        // gateway's refusal, recorded (400 REQUEST_MALFORMED), not a client that left.
        for (const res of active) if (!res.req.complete && !res.writableEnded) closeAsGateway(res.req.socket as net.Socket); // an answer already made is left to finish
        await Promise.all([...live].map((h) => h.abortInFlight().catch(() => undefined)));
        await Promise.race([Promise.allSettled([...handlingNow]), new Promise((r) => setTimeout(r, 2000).unref())]);
      }
      listener.cutAll();
      server.closeAllConnections();
      // The connections' 'close' events (libuv's close phase) record what was still queued on them
      // (ruling 19): let them run before the audit sink closes.
      for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
      await waitOutHoldsInDoubt();
      await gw.close();
    },
    async close() {
      unwatch();
      clearTimeout(validFromTimer);
      readiness.stop();
      server.closeAllConnections();
      await Promise.all([closeListener(server), closeListener(admin)]);
      admin.closeAllConnections();
      for (const h of [...live]) h.close();
      stopRetention();
      await store.close();
      await audit.close();
    },
  };
  return gw;
}

/**
 * The provider's client certificate, key and CA, and a signed mode's JWKS file, are read when a
 * handling is built: a change to them (a renewed Secret, a rotated key set) builds a new one, as a
 * SIGHUP does with the same configuration; in-flight requests finish on the old one. The paths
 * watched are those of start-up; a failed load keeps the current handling and is counted.
 */
function watchHandlingFiles(config: Readonly<Config>, deps: { current: () => Handling; swap: (h: Handling) => void; build: (c: Readonly<Config>) => Handling; logger: Logger; metrics: Metrics }): () => void {
  const reload = createTlsReload({
    what: 'provider TLS and JWKS files',
    load: () => {
      const { jwt: j } = deps.current().config;
      // The key set is judged as start-up and a SIGHUP judge it (an empty one, a private key).
      if (j.mode === 'signed' && j.jwksFile) {
        const problems = jwksFileProblems(j.jwksFile);
        if (problems.length) throw new Error(problems.join('; '));
      }
      // A certificate that does not match its key is refused by the build (createHandling), not at the next connection.
      return deps.build(deps.current().config);
    },
    apply: (next: Handling) => {
      const old = deps.current();
      deps.swap(next);
      old.retire();
    },
    logger: deps.logger,
    metrics: deps.metrics,
  });
  const files = [config.upstream.ca, config.upstream.cert, config.upstream.key, ...(config.jwt.mode === 'signed' ? [config.jwt.jwksFile, config.jwt.jwksCa] : [])];
  return watchFiles(files, reload);
}
