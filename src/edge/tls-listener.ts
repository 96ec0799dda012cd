import http from 'node:http';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import type net from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Config } from '../config.js';
import { GatewayError, type ErrorCode } from '../errors.js';
import { buildOperationOutcome } from '../fhir/operation-outcome.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Clock } from '../ports/clock.js';
import type { Codec } from '../ports/codec.js';
import { encodeOutcome, mappingFor } from '../respond.js';
import type { Standard } from '../standards/index.js';
import { negotiate } from './negotiate.js';
import { splitPem, type TlsMaterial } from '../tls/material.js';
import { normaliseSerial, revokedSerials } from '../tls/crl-serials.js';
import { closeAsGateway, createConnectionBook, createHandshakeGuard } from './connection-guard.js';
import { createRefusalLog } from './refusal-log.js';
import { keepSentTarget, originForm, requestHeadOf, requestIdOf, sentTarget, type RequestHead } from './request-head.js';
import { failBodyFraming } from './read-body.js';
import { awaitContinue } from './expect-continue.js';

const CURRENT_REQUEST: unique symbol = Symbol('cancel-gateway.currentRequest');
type Tracked = net.Socket & { [CURRENT_REQUEST]?: { req: http.IncomingMessage; res: http.ServerResponse } };

/**
 * The mTLS listener and what guards its connections before any request is handled: who may finish
 * a handshake (and why not, counted and logged), how many may be pending, how old and how busy a
 * connection may get, malformed HTTP framing, and connections whose certificate a reloaded CRL
 * revokes. Requests themselves go to `onRequest`.
 */
export interface TlsListenerOptions {
  config: Readonly<Config>;
  material: TlsMaterial;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  onRequest(req: http.IncomingMessage, res: http.ServerResponse, retire: boolean): void;
  /** The standard in force: its OperationOutcome profile and error codings, for answers written on a raw socket. */
  outcomeStandard(): Standard;
  /** The formats those answers may be written in (negotiated, ruling 21); JSON without. */
  codecs?: readonly Codec[];
  /** A request the HTTP parser refused (ruling 16), for its decision line and audit record (ruling 19). */
  onRefusedFraming?(head: RequestHead | undefined, status: number, code: ErrorCode, clientGone?: boolean): void;
  /** A request pipelined behind others whose connection closed before its turn: never handled, to be recorded (ruling 19). */
  onUnhandled?(req: http.IncomingMessage, cutMidBody: boolean): void;
  /** Whether the connection's certificate is on the allow-list (tls.allowedClients): its 403 comes before any other refusal. */
  clientAllowed?(socket: net.Socket): boolean;
  /** A method the HTTP parser does not know: its path's 404, or 405 with the methods served there. */
  routeRefusal?(head: RequestHead, socket: net.Socket): { code: ErrorCode; allowed: readonly string[] } | undefined;
}

export interface TlsListener {
  readonly server: https.Server;
  /** New TLS material for new handshakes; connections its CRL revokes close after their answer. */
  apply(material: TlsMaterial): void;
  /** Draining: connections that never began a request close at their headers timeout. */
  closeUnrequested(): void;
  /** The drain's deadline: what is still open is about to be closed by the gateway itself. */
  cutAll(): void;
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

/** 'expired' or 'not-yet-valid' when `now` is outside the certificate's dates, else undefined. */
export function outsideValidity(cert: { valid_from?: string; valid_to?: string } | undefined, now: number): 'expired' | 'not-yet-valid' | undefined {
  const from = Date.parse(cert?.valid_from ?? '');
  const to = Date.parse(cert?.valid_to ?? '');
  if (Number.isFinite(to) && now > to) return 'expired';
  if (Number.isFinite(from) && now < from) return 'not-yet-valid';
  return undefined;
}

/**
 * OpenSSL verification error code -> metric label. With CRL checking on, OpenSSL reports a
 * self-signed certificate (issued by no configured CA) as UNABLE_TO_GET_CRL — there is no CRL of
 * an issuer it does not know — which would send an operator to the CRL: such a certificate is
 * `untrusted`, as it is without a CRL.
 */
export function certificateFailureReason(code: string, cert?: ChainLink & { subject?: unknown; issuer?: unknown }, clientCas?: readonly X509Certificate[]): string {
  if (code === 'UNABLE_TO_GET_CRL' && cert?.subject !== undefined && sameName(cert.subject, cert.issuer)) return 'untrusted';
  // The same for a certificate issued by no configured CA (a client CA rotated away): not the CRL's doing.
  if (code === 'UNABLE_TO_GET_CRL' && cert?.raw && clientCas?.length && !chainsToAny(cert, clientCas)) return 'untrusted';
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

/** A certificate as Node's detailed peer certificate gives it: its DER and the one that issued it. */
interface ChainLink {
  raw?: Buffer;
  issuerCertificate?: ChainLink;
}

/**
 * Whether the certificate, or one of the intermediates the client sent with it, was issued and
 * signed by one of `cas` (a leaf under a configured root through an intermediate chains to it:
 * its UNABLE_TO_GET_CRL is the CRL's doing).
 */
function chainsToAny(cert: ChainLink, cas: readonly X509Certificate[]): boolean {
  let link: ChainLink | undefined = cert;
  for (let depth = 0; link?.raw && depth < 10; depth++) {
    try {
      const x = new X509Certificate(link.raw);
      if (cas.some((ca) => x.checkIssued(ca) && x.verify(ca.publicKey))) return true;
    } catch {
      return true; // unreadable: left to what OpenSSL said
    }
    if (link.issuerCertificate === link) break; // self-signed: the end of the chain
    link = link.issuerCertificate;
  }
  return false;
}

/** The certificates of a CA bundle (what `tls.clientCa` holds), the unparsable ones left out. */
export function caCertificates(ca: unknown): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const b of splitPem((Array.isArray(ca) ? ca : [ca]).map((c) => String(c ?? '')).join('\n'))) {
    try {
      out.push(new X509Certificate(b));
    } catch {
      // not a certificate: OpenSSL did not use it either
    }
  }
  return out;
}

/** Whether two distinguished names (Node's parsed form: attribute -> value or values) are the same. */
function sameName(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => JSON.stringify((a as Record<string, unknown>)[k]) === JSON.stringify((b as Record<string, unknown>)[k]));
}

/** A whole HTTP answer for a socket the HTTP parser gave up on (Connection: close). */
function rawErrorResponse(code: ErrorCode, diagnostics: string, standard: Standard, codec: Codec | undefined, requestId: string | undefined, nowMs: number, allow?: string, toHead = false): Buffer {
  // Coded as the standard codes it (its overrides), like every other refusal.
  const m = mappingFor(new GatewayError(code, diagnostics), standard);
  const oo = buildOperationOutcome(m, [{ diagnostics }], standard.operationOutcomeProfile) as unknown as Record<string, unknown>;
  const { body, contentType: type } = encodeOutcome(oo, codec);
  const reason = http.STATUS_CODES[m.status] ?? 'Error';
  // Date: RFC 9110 §6.6.1 (Node writes it on every answer it makes; this one is written by hand).
  const head = `HTTP/1.1 ${m.status} ${reason}\r\nDate: ${new Date(nowMs).toUTCString()}\r\nContent-Type: ${type}\r\nCache-Control: no-store\r\nContent-Length: ${body.length}\r\n${requestId ? `X-Correlation-ID: ${requestId}\r\n` : ''}${allow !== undefined ? `Allow: ${allow}\r\n` : ''}Connection: close\r\n\r\n`;
  // An answer to HEAD has no content (RFC 9110 §9.3.2): its Content-Length says what GET would get.
  return toHead ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/** Ruling 21 for a refusal written on the raw socket: `_format`, then Accept, then Content-Type, as far as they were read. */
function refusalCodec(head: RequestHead | undefined, codecs: readonly Codec[] | undefined): Codec | undefined {
  if (!codecs) return undefined;
  const q = head ? head.url.indexOf('?') : -1;
  return negotiate(q === -1 ? '' : head!.url.slice(q + 1), head?.accept, head?.contentType, codecs);
}

/** Absolute-form targets (request-head.ts, where the raw head of a refused request is read too). */
export { originForm };

export function createTlsListener(o: TlsListenerOptions): TlsListener {
  const { config, metrics, logger, clock } = o;
  /** The configured client CAs (a refusal's reason tells an unknown issuer from a CRL problem). */
  let clientCas = caCertificates((o.material.options as { ca?: unknown }).ca);
  const server = https.createServer({
    ...o.material.options,
    requestCert: true,
    // Issue 19 item 4: with rejectUnauthorized, OpenSSL itself refuses a client that sends no
    // certificate, with the alert that says so (TLS 1.3 certificate_required, TLS 1.2
    // handshake_failure). A certificate that fails verification is judged by Node after the
    // handshake and the connection closed without an alert: Node's TLS offers no way to send one.
    // Why it was refused is `authorizationError` on the socket ('tlsClientError' below).
    rejectUnauthorized: true,
    handshakeTimeout: config.tls.handshakeTimeoutMs,
    // The parser's own bound is four times the configured limit: a head over `maxHeaderBytes` but
    // under that is refused by the pipeline (headBytes), which has the whole request — its
    // decision line, audit record, X-Correlation-ID and format — while a head over 16 KiB always
    // spans several TLS records, and the parser's refusal keeps only the last of them.
    maxHeaderSize: parserHeaderLimit(config.limits.maxHeaderBytes),
    requestTimeout: config.limits.requestTimeoutMs,
    headersTimeout: config.limits.headersTimeoutMs,
    keepAliveTimeout: config.limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, config.limits.headersTimeoutMs),
    // A request without Host is refused by the request-semantics check (an OperationOutcome,
    // logged and audited), not by Node's bare 400.
    requireHostHeader: false,
    // A client's FIN is taken as the client leaving, as nginx takes it (its 499): a FIN cannot tell
    // a half-close from a client that gave up, and a change forwarded for a client that gave up is
    // one no one learns the outcome of. Node's default: the requests in hand are aborted, and a
    // write not yet forwarded is not forwarded (cancel/transaction.ts ClientLeftBeforeForward).
  } as https.ServerOptions);
  server.maxConnections = config.limits.maxConnections;
  // Every header the parser read is seen by the checks: Node keeps only the first 2000 by default,
  // while its parser still frames the body by a Content-Length or Transfer-Encoding past them —
  // a GET whose dropped Content-Length carried a second request smuggled it to the provider, and a
  // second Authorization or an override header past line 2000 went unseen. The header block's
  // byte limit (limits.maxHeaderBytes, 431; the parser's bound is four times it) bounds the count instead.
  server.maxHeadersCount = 0;
  const handshakes = createHandshakeGuard(
    { total: config.limits.maxPendingHandshakes, perAddress: config.limits.maxPendingHandshakesPerAddress },
    () => metrics.tlsFailures.inc({ reason: 'handshake-evicted' }),
  );
  const connections = createConnectionBook({ maxAgeMs: config.limits.maxConnectionAgeMs, maxRequests: config.limits.maxRequestsPerConnection }, () => clock.now(),
    (req, cutMidBody) => {
      logger.debug('a pipelined request was not handled: its connection closed before its turn');
      o.onUnhandled?.(req, cutMidBody);
    },
    { headersTimeoutMs: config.limits.headersTimeoutMs, requestTimeoutMs: config.limits.requestTimeoutMs, onStalled: (s) => closeAsGateway(s) });
  keepUnrequestedFromIdleClose(server, (s) => connections.unrequested(s));
  const refusal = createRefusalLog(logger, clock);
  const refuse = (reason: string, socket: net.Socket, cert?: PeerCertificate): void => {
    metrics.tlsFailures.inc({ reason });
    refusal(reason, socket.remoteAddress ?? peers.get(socket as TLSSocket), cert);
    socket.destroy();
  };

  server.on('connection', (raw: net.Socket) => handshakes.opened(raw));
  // The refused certificate is logged (subject, issuer, serial, fingerprint), but Node closes a
  // refused connection before 'secureConnection', and its certificate is gone by
  // 'tlsClientError'. 'keylog' is the one server event that hands us the TLS socket during the
  // handshake: its line (key material) is ignored; only a 'secure' listener ahead of Node's own
  // is added, which keeps the peer's certificate in case Node is about to refuse it.
  const peerCerts = new WeakMap<TLSSocket, PeerCertificate>();
  const peers = new WeakMap<TLSSocket, string | undefined>(); // gone from a destroyed socket
  server.on('keylog', (_keyMaterial: Buffer, socket: TLSSocket) => {
    if (peers.has(socket)) return;
    peers.set(socket, socket.remoteAddress);
    // Runs before Node's verdict (not known yet here): kept for every handshake, read on refusal.
    socket.prependOnceListener('secure', () => {
      const cert = socket.getPeerCertificate(true); // with the chain the client sent (the refusal's reason walks it)
      if (cert && Object.keys(cert).length > 0) peerCerts.set(socket, cert);
    });
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    // Defence in depth: Node refuses an unauthorized peer at the handshake (rejectUnauthorized).
    if (!(req.socket as TLSSocket).authorized) return void req.socket.destroy();
    const sent = req.url ?? '/';
    req.url = originForm(sent);
    // The head is measured as sent (limits.maxHeaderBytes): an authority is part of it.
    if (req.url !== sent) keepSentTarget(req, sent);
    (req.socket as Tracked)[CURRENT_REQUEST] = { req, res };
    // Item 7: a connection has a maximum age and request count; a retired one closes after this answer.
    // Pipelined requests one at a time; none after an answer that closed the connection.
    connections.admit(req.socket as TLSSocket, res, (retire) => o.onRequest(req, res, retire));
  });
  // An Expect other than 100-continue: RFC 9110 §10.1.1 lets a server ignore it (417 is a MAY),
  // so the request goes through the checks like any other instead of Node's bare 417 — answered
  // as an OperationOutcome when refused, logged and audited; Expect is never forwarded (ruling 24).
  server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => server.emit('request', req, res));
  // Expect: 100-continue — sent when the body is about to be read, not before the checks (expect-continue.ts).
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    awaitContinue(req, res);
    server.emit('request', req, res);
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    // Node keeps the raw socket it wrapped as `_parent`: its handshake no longer counts as pending.
    handshakes.handshaken((socket as unknown as { _parent?: net.Socket })._parent);
    // Ruling 25 / item 1: the identity checked is that of the connection's only handshake; a
    // client-initiated TLS 1.2 renegotiation (possibly with another certificate) is an error.
    socket.disableRenegotiation();
    socket.on('error', () => socket.destroy());
    readThroughEvents(socket);
    connections.opened(socket);
    if (socket.authorized) {
      // Ruling 15: a resumed session skips certificate verification, so a client certificate that
      // expired since the session began would be served; its dates are checked here (wall-clock
      // time, as OpenSSL's own verification uses).
      if (socket.isSessionReused()) {
        const cert = socket.getPeerCertificate();
        const reason = outsideValidity(cert, Date.now());
        if (reason) refuse(reason, socket, cert);
      }
      return;
    }
    // Defence in depth: with rejectUnauthorized Node refuses before this event.
    const cert = socket.getPeerCertificate(true);
    const hasCert = Object.keys(cert ?? {}).length > 0;
    refuse(hasCert ? certificateFailureReason(String(socket.authorizationError ?? ''), cert, clientCas) : 'no-certificate', socket, hasCert ? cert : undefined);
  });
  server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
    // A certificate refused after the handshake: Node's verdict is on the socket.
    const verdict = socket.authorizationError;
    if (verdict) refuse(certificateFailureReason(String((verdict as { code?: string }).code ?? verdict), peerCerts.get(socket), clientCas), socket, peerCerts.get(socket));
    else refuse(handshakeFailureReason(err), socket);
  });
  const framingRefused = new WeakSet<net.Socket>();
  server.on('clientError', (err: Error & { code?: string }, socket: net.Socket) => {
    // Ruling 16: malformed framing (CL+TE, conflicting Content-Length) -> 400 and close;
    // oversized headers -> 431; timeouts and resets -> just close.
    const code = err.code ?? '';
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADER_TIMEOUT') {
      // A head or body the gateway itself left unread (the connection paused behind its queue) is
      // not late yet: judged again once the connection is read (connection-guard.ts judgeDeferred).
      if (connections.deferTimeout(socket)) return;
      closeAsGateway(socket); // a request still in flight is the gateway's refusal, not a client that left
      return;
    }
    // Bytes after a request that closed the connection (`Connection: close`, HTTP/1.0), or after a
    // framing refusal already made on it: nothing there is a request of this connection (RFC 9112
    // §9.6), so nothing is answered or recorded (ruling 19: one record per request).
    if (code === 'HPE_CLOSED_CONNECTION' || framingRefused.has(socket)) return;
    // The client's FIN before its request was whole (Node's parser finishing at end of input): the
    // client left (README, Pipelining) — a request mid-body is recorded as such (499), a head never
    // finished is no request (as at a headers timeout): nothing is answered or recorded for it.
    if (code === 'HPE_INVALID_EOF_STATE') {
      socket.destroy();
      return;
    }
    if (!socket.writable || code === 'ERR_TLS_RENEGOTIATION_DISABLED' || code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    // The parser failed inside the body of a request already handed to the pipeline (bad chunk
    // framing): that request is answered by the pipeline, once (400, closed), not left waiting.
    const inFlight = (socket as Tracked)[CURRENT_REQUEST];
    if (inFlight && !inFlight.req.complete) {
      socket.pause();
      failBodyFraming(inFlight.req);
      // Already answered without its body (refused before it was read): that answer was the
      // request's one; the connection, whose framing is lost, closes after it.
      if (inFlight.res.writableEnded) connections.whenIdle(socket, () => socket.end());
      return;
    }
    let head = requestHeadOf((err as { rawPacket?: unknown }).rawPacket, (err as { bytesParsed?: unknown }).bytesParsed as number | undefined, o.config.limits.maxHeaderBytes);
    // The line of the request this connection last handled (one the head could not skip, e.g. a
    // chunked one read whole in the same packet) is not the refused request's: not recorded under it.
    if (head && inFlight?.req.complete && head.method === inFlight.req.method && head.url === sentTarget(inFlight.req)) head = undefined;
    // Ruling 13: a method the parser does not know (Node says INVALID_METHOD, or INVALID_CONSTANT for
    // RTSP's) is no interaction — 404 or 405 as its path says.
    const unknownMethod = code === 'HPE_INVALID_METHOD' || code === 'HPE_INVALID_CONSTANT';
    // Ruling 1: a client the allow-list refuses gets its 403 whatever else is wrong with the request
    // (as a request the parser took does: the mTLS step comes first; review of stop 36) — except an
    // oversized head, 431 before anything else (ruling 16), as the pipeline answers it too.
    const denied = code !== 'HPE_HEADER_OVERFLOW' && head?.refusedFirst !== 'HEADERS_TOO_LARGE' && o.clientAllowed?.(socket) === false;
    const byMethod = !denied && unknownMethod && head && !head.refusedFirst ? o.routeRefusal?.(head, socket) : undefined;
    const which: ErrorCode = denied ? 'CLIENT_NOT_ALLOWED' : byMethod?.code ?? (unknownMethod ? head?.refusedFirst : undefined) ?? (code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : 'REQUEST_MALFORMED');
    framingRefused.add(socket);
    // Item 13: answers on a connection go out in request order — a malformed request pipelined
    // behind a cancel is answered after the cancel's answer, never instead of it.
    socket.pause();
    const diagnostics = which === 'CLIENT_NOT_ALLOWED' ? 'The client certificate is not allowed to call this gateway'
      : which === 'HEADERS_TOO_LARGE' ? 'The request headers are too large'
      : which === 'ROUTE_NOT_FOUND' ? 'No interaction is served at this path'
      : which === 'METHOD_NOT_ALLOWED' ? 'This method is not allowed at this path'
      : 'The HTTP request is malformed';
    const allow = byMethod?.code === 'METHOD_NOT_ALLOWED' ? byMethod.allowed.join(', ') : undefined;
    answerWhenIdle(socket, head, which, () => rawErrorResponse(which, diagnostics, o.outcomeStandard(), refusalCodec(head, o.codecs), head?.requestId, o.clock.now(), allow, head?.method === 'HEAD'));
  });
  /**
   * A raw refusal's answer, once the answers before it on the connection are out, and its record
   * then (ruling 19): as made (counted in rejections_total), or, when the connection was gone by
   * then, as a request whose answer reached no one (499, README: "no answer was made").
   */
  function answerWhenIdle(socket: net.Socket, head: RequestHead | undefined, which: ErrorCode, answer: () => Buffer): void {
    connections.whenIdle(socket, () => {
      if (!socket.writable) return void o.onRefusedFraming?.(head, 499, which, true);
      metrics.rejections.inc({ code: which });
      o.onRefusedFraming?.(head, mappingFor(new GatewayError(which, ''), o.outcomeStandard()).status, which);
      socket.end(answer());
    });
  }
  // Rulings 13 and 19: CONNECT asks for a tunnel, which no interaction is: 404 as an
  // OperationOutcome, recorded like any refusal, and the connection closed (Node would close it
  // without a word). Its target (`host:port`) is not a path and is not echoed.
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket) => {
    const which: ErrorCode = o.clientAllowed?.(socket) === false ? 'CLIENT_NOT_ALLOWED' : 'ROUTE_NOT_FOUND';
    const [trace, rid, accept] = [req.headers['ssp-traceid'], req.headers['x-request-id'], req.headers.accept];
    const head: RequestHead = {
      method: 'CONNECT', url: '', traceId: typeof trace === 'string' && /^[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$/.test(trace) ? trace : undefined,
      accept: typeof accept === 'string' ? accept.slice(0, 256) : undefined,
      requestId: requestIdOf(rid),
    };
    socket.pause();
    answerWhenIdle(socket, head, which, () => rawErrorResponse(which, which === 'CLIENT_NOT_ALLOWED' ? 'The client certificate is not allowed to call this gateway' : 'A tunnel (CONNECT) is not served', o.outcomeStandard(), refusalCodec(head, o.codecs), head.requestId, o.clock.now()));
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

  return {
    server,
    apply(m: TlsMaterial) {
      server.setSecureContext({ ...m.options });
      clientCas = caCertificates((m.options as { ca?: unknown }).ca);
      retireRevoked(m);
    },
    closeUnrequested: () => connections.closeUnrequested(config.limits.headersTimeoutMs),
    cutAll: () => connections.cutAll(),
  };
}

const NOTHING = (): void => {};

type IdleList = { idle(): Array<{ socket: net.Socket & { _httpMessage?: { finished?: boolean } | null } }> };

/**
 * `server.close()` and `closeIdleConnections()` close the connections Node counts as idle. Node 20
 * does not count one that has not begun a request; Node 26 does, and cut a client whose handshake
 * ended just before a drain before it could send its request (review of stop 36). Such a
 * connection closes at its headers timeout instead (README, Graceful shutdown; connection-guard.ts
 * closeUnrequested), whatever the Node version: the instance's method leaves it alone. Node's
 * connection list is internal: where it is not found, Node's own method runs unchanged.
 */
function keepUnrequestedFromIdleClose(server: https.Server, unrequested: (s: net.Socket) => boolean): void {
  const own = server.closeIdleConnections.bind(server);
  server.closeIdleConnections = function closeIdleConnections(): void {
    const key = Object.getOwnPropertySymbols(server).find((k) => k.description === 'http.server.connections');
    const list = key ? (server as unknown as Record<symbol, IdleList | undefined>)[key] : undefined;
    if (typeof list?.idle !== 'function') return own();
    for (const { socket } of list.idle()) {
      if (socket._httpMessage && !socket._httpMessage.finished) continue; // as Node: an answer in progress
      if (!unrequested(socket)) socket.destroy();
    }
  };
}

/**
 * A second 'data' listener makes Node's HTTP parser read the socket through 'data' events instead
 * of straight from its TLS handle (Node unconsumes it). Only then does pausing the socket stop the
 * parser being fed: read straight from the handle, a burst of pipelined requests is decrypted and
 * parsed whatever the socket's state (a pipelining flood fills the memory), and the pipelining
 * limit's pause loses bytes (connection-guard.ts pauseReading). Unread bytes now wait in the
 * socket's buffer (bounded by its high-water mark), then in the kernel's and the client's.
 */
function readThroughEvents(socket: TLSSocket): void {
  socket.on('data', NOTHING);
}

/** Node's parser refuses heads over this (431 with what the refused chunk shows); see maxHeaderSize. */
export function parserHeaderLimit(maxHeaderBytes: number): number {
  return maxHeaderBytes * 4;
}
