import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { CODECS, createHandling, createLateStore, openStore, type Shared, type Store } from './compose.js';
import { startRetention } from './store/retention.js';
import { systemClock, type Clock } from './ports/clock.js';
import { noTracer, type Tracer } from './ports/tracer.js';
import type { Config } from './config.js';
import { CATALOGUE, GatewayError, type ErrorCode } from './errors.js';
import { buildOperationOutcome } from './fhir/operation-outcome.js';
import { createAdminServer } from './edge/admin.js';
import { createConfigReload, createTlsReload } from './edge/reload.js';
import { createRefusalLog } from './edge/refusal-log.js';
import { createReadiness } from './edge/readiness.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, storeMetricsOf, type Metrics } from './metrics.js';
import { boundedAuditSink, createAuditSink, type AuditSink } from './ops/audit.js';
import { sendError } from './respond.js';
import { loadTlsMaterial, watchTlsFiles, type TlsMaterial } from './tls/material.js';
import { reportCrlStatus } from './tls/crl-status.js';
import { normaliseSerial, revokedSerials } from './tls/crl-serials.js';
import { createConnectionBook, createHandshakeGuard } from './edge/connection-guard.js';

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
}

/** Why a TLS handshake failed, as a small closed set of metric labels. */
export function handshakeFailureReason(err: Error & { code?: string }): string {
  const text = `${err.code ?? ''} ${err.message}`.toLowerCase();
  if (text.includes('did not return a certificate') || text.includes('peer_did_not_return')) return 'no-certificate';
  if (text.includes('revoked')) return 'revoked';
  if (text.includes('expired')) return 'expired';
  if (text.includes('not yet valid')) return 'not-yet-valid';
  if (text.includes('unknown ca') || text.includes('unable to get') || text.includes('self-signed') || text.includes('self signed') || text.includes('certificate verify failed')) return 'untrusted';
  if (text.includes('unsupported protocol') || text.includes('wrong version') || text.includes('version too low') || text.includes('protocol version')) return 'protocol-version';
  if (text.includes('no shared cipher') || text.includes('no_shared_cipher') || text.includes('no ciphers')) return 'cipher';
  if (text.includes('timeout') || text.includes('timed out')) return 'timeout';
  if (text.includes('econnreset') || text.includes('socket hang up')) return 'reset';
  if (text.includes('usage') || text.includes('purpose')) return 'key-usage';
  return 'other';
}

/** OpenSSL verification error code -> metric label. */
export function certificateFailureReason(code: string): string {
  switch (code) {
    case 'CERT_HAS_EXPIRED': return 'expired';
    case 'CERT_NOT_YET_VALID': return 'not-yet-valid';
    case 'CERT_REVOKED': return 'revoked';
    case 'INVALID_PURPOSE': return 'key-usage';
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_SIGNATURE_FAILURE':
      return 'untrusted';
    case 'UNABLE_TO_GET_CRL':
    case 'CRL_HAS_EXPIRED':
    case 'CRL_NOT_YET_VALID':
    case 'CRL_SIGNATURE_FAILURE':
      return 'crl';
    default: return 'other';
  }
}

function rawErrorResponse(code: ErrorCode, diagnostics: string, profile: string): string {
  const m = CATALOGUE[code];
  const body = JSON.stringify(buildOperationOutcome(m, [{ diagnostics }], profile));
  const reason = http.STATUS_CODES[m.status] ?? 'Error';
  return `HTTP/1.1 ${m.status} ${reason}\r\nContent-Type: application/fhir+json; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

export function createGateway(initialConfig: Readonly<Config>, deps: GatewayDeps = {}): Gateway {
  const config = initialConfig; // listener-level settings; checks read `handling.config`
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? createLogger(config.log.level);
  // Item 6: every record, whatever the sink, is cut to a small fixed size.
  const audit = boundedAuditSink(deps.audit ?? createAuditSink(config.audit.destination));
  const metrics = createMetrics();
  // The state store (issue 18): opened at listen(); until then every write fails closed.
  const store = createLateStore();
  let stopRetention = () => {};
  const shared: Shared = {
    lock: store.lock, vault: store.vault, codecs: CODECS, clock, logger, metrics, audit, tracer: deps.tracer ?? noTracer,
    clientAllowed: (req) => clientAllowed(req.socket as TLSSocket), draining: () => draining,
  };
  const buildHandling = (cfg: Readonly<Config>) => createHandling(cfg, shared);
  let handling = buildHandling(config);

  let material: TlsMaterial = loadTlsMaterial(config.tls);
  // Seconds left are computed at each scrape (an alert on "< 7 days" must see time pass).
  const setExpiry = (m: TlsMaterial) => {
    metrics.certExpiry.reset();
    for (const c of m.certificates) metrics.certExpiry.set({ role: c.role, subject: c.subject }, Math.round((c.notAfter - clock.now()) / 1000));
  };
  metrics.onScrape(() => setExpiry(material));
  setExpiry(material);
  const crlStatus = () => reportCrlStatus(material.crls, { metrics, logger, now: clock.now(), warningHours: config.tls.crlWarningHours });
  crlStatus();

  const allowed = config.tls.allowedClients;
  const allowListOn = Boolean(allowed && (allowed.subjects.length || allowed.sans.length));
  const clientAllowed = (socket: TLSSocket): boolean => {
    if (!allowListOn) return true;
    const cert = socket.getPeerCertificate();
    const cn = cert?.subject?.CN;
    const cns = Array.isArray(cn) ? cn : cn ? [cn] : [];
    if (cns.some((c) => allowed!.subjects.includes(c))) return true;
    const sans = (cert?.subjectaltname ?? '').split(',').map((s) => s.trim()).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4));
    return sans.some((s) => allowed!.sans.includes(s));
  };

  let draining = false;
  const active = new Set<http.ServerResponse>();
  const server = https.createServer({
    ...material.options,
    requestCert: true,
    // Verification still happens in OpenSSL; we refuse unauthorized peers ourselves on
    // 'secureConnection' (below), before any byte of HTTP is read, because only then does Node
    // tell us why (expired, revoked, untrusted...) for the handshake-failure metric.
    rejectUnauthorized: false,
    handshakeTimeout: config.tls.handshakeTimeoutMs,
    maxHeaderSize: config.limits.maxHeaderBytes,
    requestTimeout: config.limits.requestTimeoutMs,
    headersTimeout: config.limits.headersTimeoutMs,
    keepAliveTimeout: config.limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, config.limits.headersTimeoutMs),
  } as https.ServerOptions);
  server.maxConnections = config.limits.maxConnections;
  const handshakes = createHandshakeGuard(
    { total: config.limits.maxPendingHandshakes, perAddress: config.limits.maxPendingHandshakesPerAddress },
    () => metrics.tlsFailures.inc({ reason: 'handshake-evicted' }),
  );
  const connections = createConnectionBook({ maxAgeMs: config.limits.maxConnectionAgeMs, maxRequests: config.limits.maxRequestsPerConnection }, () => clock.now());
  server.on('connection', (raw: net.Socket) => handshakes.opened(raw));

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    // Defence in depth: an unauthorized peer is destroyed on secureConnection already.
    if (!(req.socket as TLSSocket).authorized) {
      req.socket.destroy();
      return;
    }
    // Item 7: a connection has a maximum age and request count; a retired one closes after this answer.
    if (connections.started(req.socket as TLSSocket, res) || draining) res.setHeader('Connection', 'close');
    active.add(res);
    res.on('close', () => active.delete(res));
    const h = handling;
    if (h.standard.noStoreOnEveryResponse) res.setHeader('Cache-Control', 'no-store');
    h.pipeline.handle(req, res).catch((e: unknown) => {
      logger.error('unhandled pipeline failure', { error: (e as Error)?.message });
      if (!res.headersSent) sendError(res, new GatewayError('INTERNAL_ERROR', 'Unexpected internal error'), h.standard);
      else res.destroy();
    });
  });
  const refusal = createRefusalLog(logger, clock);
  server.on('secureConnection', (socket: TLSSocket) => {
    // Node keeps the raw socket it wrapped as `_parent`: its handshake no longer counts as pending.
    handshakes.handshaken((socket as unknown as { _parent?: net.Socket })._parent);
    // Ruling 25 / item 1: the identity checked is that of the connection's only handshake; a
    // client-initiated TLS 1.2 renegotiation (possibly with another certificate) is an error.
    socket.disableRenegotiation();
    socket.on('error', () => socket.destroy());
    connections.opened(socket);
    if (socket.authorized) return;
    const hasCert = Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
    const reason = hasCert ? certificateFailureReason(String(socket.authorizationError ?? '')) : 'no-certificate';
    metrics.tlsFailures.inc({ reason });
    refusal(reason, socket.remoteAddress, socket);
    socket.destroy();
  });
  server.on('tlsClientError', (err: Error & { code?: string }, socket: net.Socket) => {
    const reason = handshakeFailureReason(err);
    metrics.tlsFailures.inc({ reason });
    refusal(reason, socket.remoteAddress);
    socket.destroy();
  });
  server.on('clientError', (err: Error & { code?: string }, socket: net.Socket) => {
    // Ruling 16: malformed framing (CL+TE, conflicting Content-Length) -> 400 and close;
    // oversized headers -> 431; timeouts and resets -> just close.
    const code = err.code ?? '';
    if (!socket.writable || code === 'ERR_TLS_RENEGOTIATION_DISABLED' || code === 'ECONNRESET' || code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADER_TIMEOUT') {
      socket.destroy();
      return;
    }
    const which: ErrorCode = code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : 'REQUEST_MALFORMED';
    metrics.rejections.inc({ code: which });
    // Item 13: answers on a connection go out in request order — a malformed request pipelined
    // behind a cancel is answered after the cancel's answer, never instead of it.
    socket.pause();
    connections.whenIdle(socket, () => socket.writable && socket.end(rawErrorResponse(which, which === 'HEADERS_TOO_LARGE' ? 'The request headers are too large' : 'The HTTP request is malformed', handling.standard.operationOutcomeProfile)));
  });
  server.on('error', (e) => logger.error('listener error', { error: e.message }));

  /** Item 7: connections whose certificate the reloaded CRL revokes close after their in-flight answer. */
  const retireRevoked = (m: TlsMaterial): void => {
    const crl = (m.options as { crl?: string[] }).crl;
    if (!crl?.length) return;
    try {
      const revoked = revokedSerials(crl.join('\n'));
      const n = connections.retire((s) => {
        const serial = s.getPeerCertificate()?.serialNumber;
        return typeof serial === 'string' && revoked.has(normaliseSerial(serial));
      });
      if (n) logger.info('connections with a now-revoked certificate retired', { connections: n });
    } catch (e) {
      logger.error('could not read the reloaded CRL to retire open connections', { error: (e as Error).message });
    }
  };

  const reloadTls = createTlsReload({
    load: () => loadTlsMaterial(config.tls),
    apply: (next: TlsMaterial) => {
      server.setSecureContext({ ...next.options });
      material = next;
      setExpiry(material);
      crlStatus();
      retireRevoked(next);
    },
    logger,
    metrics,
  });
  const unwatch = config.tls.watch ? watchTlsFiles(config.tls, reloadTls) : () => {};

  // Readiness (issue 19 item 5): this gateway can serve — its certificate, its store, not
  // draining; the provider is reported, and counts only when configured to.
  const readiness = createReadiness({
    clock, logger, intervalMs: deps.upstreamProbeIntervalMs ?? config.readiness.intervalMs, draining: () => draining,
    probes: {
      upstream: { ping: () => handling.provider.ping(), required: config.readiness.requireProvider },
      store: { ping: () => Promise.all([shared.lock.ping(), shared.vault.ping()]).then(() => undefined), required: true },
    },
    checks: {
      // The served certificate is within its validity (a failed reload keeps an old one).
      tls: () => material.certificates.some((c) => c.role === 'server' && c.notAfter > clock.now()),
      config: () => true,
    },
    onResult: (name, ok) => {
      if (name === 'upstream') metrics.providerUp.set(ok ? 1 : 0);
    },
  });
  const admin = createAdminServer(metrics, readiness);

  /** Issue 7: apply a new configuration to requests that start from now on. */
  const reloadConfig = createConfigReload({ current: () => handling, swap: (h) => (handling = h), build: buildHandling, clock, logger, metrics });


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
      store.bind(deps.store ?? (await openStore(config.store, { clock, metrics: storeMetricsOf(metrics) })));
      if (config.store.retentionDays !== undefined) {
        stopRetention = startRetention(store.vault, { retentionDays: config.store.retentionDays, clock, onError: (e) => logger.error('vault retention purge failed', { error: (e as Error)?.name }) });
      }
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.listen.port, config.listen.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      await new Promise<void>((resolve, reject) => {
        admin.once('error', reject);
        admin.listen(config.admin.port, config.admin.host, () => {
          admin.off('error', reject);
          resolve();
        });
      });
      await readiness.start();
    },
    reloadTls,
    probeNow: () => readiness.probeNow(),
    async shutdown(deadlineMs = config.shutdown.drainTimeoutMs) {
      draining = true;
      metrics.draining.set(1);
      logger.info('draining', { deadlineMs });
      // In-flight answers close their connection when done, so server.close() can complete.
      for (const res of active) if (!res.headersSent) res.setHeader('Connection', 'close');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, deadlineMs).unref());
      await Promise.race([closed, deadline]);
      server.closeAllConnections();
      await gw.close();
    },
    async close() {
      unwatch();
      readiness.stop();
      server.closeAllConnections();
      await Promise.all([
        new Promise<void>((r) => (server.listening ? server.close(() => r()) : r())),
        new Promise<void>((r) => (admin.listening ? admin.close(() => r()) : r())),
      ]);
      admin.closeAllConnections();
      handling.close();
      stopRetention();
      await store.close();
      await audit.close();
    },
  };
  return gw;
}
