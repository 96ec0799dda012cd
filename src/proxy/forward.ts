import type { Agent, ClientRequest, IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { Config } from '../config.js';
import type { RequestContext } from '../context.js';
import { GatewayError, type ErrorCode } from '../errors.js';
import { codeForProviderStatus, firstOf, PROVIDER_ONLY, providerRefusal, publicPassthroughLocation, SINGLE_VALUED } from '../cancel/answer.js';
import { connectionTokens, forwardable, forwardingHeaders } from '../edge/forward-headers.js';
import { readBounded } from '../edge/read-body.js';
import { decodedBody } from '../http/content-coding.js';
import { gzipStream, gzipWanted, gzipWhole, isIdentityCoding, varyAsCompressed } from '../http/answer-gzip.js';
import { clientEtag, isEntityTag, versionIdOf } from '../http/entity-tag.js';
import { codecFor, negotiate } from '../edge/negotiate.js';
import type { Codec } from '../ports/codec.js';
import { isOperationOutcome } from '../fhir/operation-outcome.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { sendError } from '../respond.js';
import type { Standard } from '../standards/index.js';
import { classify, type Upstream } from './upstream.js';
import { createRouter } from '../route.js';

/**
 * RFC 7230 §6.1 hop-by-hop headers, never passed on in either direction (ruling 11). Framing
 * (Transfer-Encoding) is each hop's own: Node frames what we send, so a provider's chunked answer
 * that we buffer goes out with a Content-Length.
 */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

/**
 * Headers a client may not turn into hop-by-hop ones by naming them in `Connection`: the provider
 * must see exactly the identity, version and framing the gateway checked.
 */
/** Redirects whose meaning is their Location (RFC 9110 §15.4): without one passed on, nothing to follow. */
const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
const PROTECTED = new Set(['authorization', 'if-match', 'content-length', 'content-type', 'transfer-encoding', 'host', 'x-request-id', 'ssp-traceid', 'ssp-from', 'ssp-to', 'ssp-interactionid']);

function hopByHop(headers: IncomingHttpHeaders): Set<string> {
  const names = new Set(HOP_BY_HOP);
  const conn = headers.connection;
  if (typeof conn === 'string') {
    for (const n of conn.split(',')) {
      const name = n.trim().toLowerCase();
      if (name && !PROTECTED.has(name)) names.add(name);
    }
  }
  return names;
}

export interface ForwardResult {
  status: number;
  upstreamMs: number;
  /** The gateway's code for a provider error answer it replaced (ruling 11), for the decision line and audit. */
  code?: ErrorCode;
  /** The provider cut its answer after the status line went to the client (the client saw it cut). */
  cut?: true;
}

/** Status recorded (never sent) when the client closed the connection before the answer (nginx's 499). */
export const CLIENT_CLOSED = 499;


export interface Forwarder {
  /**
   * Forward a passthrough request (read, search, book, metadata) and stream the answer to the
   * client. Resolves when the answer is written; rejects with a GatewayError only when nothing
   * has been sent yet (provider unreachable, timed out, reset before answering).
   */
  /** `body`: the request body, already read within limits.maxBodyBytes (a method that has one). */
  forward(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, requestId: string | undefined, traceparent?: string, body?: Buffer): Promise<ForwardResult>;
  /**
   * Shutdown past its drain deadline (ruling 19): every exchange still in flight is aborted now,
   * its client answered 500 (or its half-sent answer cut), so that its decision line is written
   * before the process exits.
   */
  abortInFlight(): void;
  close(): void;
}

/**
 * Outgoing headers (issue 12 item 3, rulings 11 and 25): the incoming request is never changed; on
 * the provider request, hop-by-hop and replaced headers are removed (forward-headers.ts) and the
 * forwarding headers are set by us. `Expect` never reaches the provider (ruling 24).
 */
function rewriteOutgoing(proxyReq: ClientRequest, req: IncomingMessage): void {
  // Headers already flushed (a request queued for a socket): ownHeaders() made them ours before.
  if (proxyReq.headersSent) return;
  const named = connectionTokens(req.headers.connection);
  for (const name of proxyReq.getHeaderNames()) {
    if (name === 'host' || name === 'content-length' || name === 'transfer-encoding' || name === 'connection') continue;
    if (!forwardable(name, named)) proxyReq.removeHeader(name);
  }
  for (const [k, v] of Object.entries(forwardingHeaders(req, {}))) proxyReq.setHeader(k, v);
}

/**
 * Issue 13 item 2: http-proxy-3 copies `req.headers` onto the provider request and emits
 * 'proxyReq' only once a socket is assigned — never for a request carrying `Expect`, and after the
 * headers are flushed for a request that waited in the pool's queue. So the allow-list is applied
 * to the headers it copies, before web() is called: the client's own headers were read already
 * (checks see a frozen copy), and Node has answered any 100-continue itself.
 */
function ownHeaders(req: IncomingMessage): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  const named = connectionTokens(req.headers.connection);
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined && (forwardable(k, named) || k === 'host' || k === 'content-length' || k === 'transfer-encoding')) out[k] = v;
  }
  return Object.assign(out, forwardingHeaders(req, {}));
}

/**
 * An agent that hands every request to `base` and remembers it: the deadline must be able to
 * abort a request still waiting in the queue for a socket (ruling 24), before 'proxyReq' exists.
 */
function trackingAgent(base: Agent, seen: (r: ClientRequest) => void): Agent {
  const agent = Object.create(base) as Agent & { addRequest(r: ClientRequest, o: unknown): void };
  agent.addRequest = (r: ClientRequest, o: unknown) => {
    seen(r);
    (base as unknown as { addRequest(r: ClientRequest, o: unknown): void }).addRequest(r, o);
  };
  return agent;
}

/**
 * A request still waiting in the agent's queue for a socket is taken out of it: destroying it is
 * not enough on every Node version, and a freed socket would then still send it (ruling 24).
 */
function dequeue(agent: Agent, r: ClientRequest): void {
  if (r.socket) return;
  const queues = (agent as unknown as { requests?: Record<string, ClientRequest[]> }).requests ?? {};
  for (const [name, list] of Object.entries(queues)) {
    const i = list.indexOf(r);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) delete queues[name];
  }
}

/**
 * What http-proxy-3 is handed: a view of the request whose own `headers` are the gateway's
 * (allow-list and forwarding headers; it copies `req.headers` onto the provider request), the
 * incoming request never changed (issue 12 item 3). A body read whole already (bounded) goes out
 * with its length, not the client's framing; the provider's work becomes a child of the gateway's
 * span (W3C Trace Context).
 */
function outgoingView(req: IncomingMessage, headers: IncomingHttpHeaders, body: Buffer | undefined, traceparent: string | undefined, url: string): IncomingMessage {
  if (body) {
    delete headers['transfer-encoding'];
    headers['content-length'] = String(body.length);
  }
  if (traceparent) headers.traceparent = traceparent;
  return Object.create(req, { headers: { value: headers, enumerable: true }, url: { value: url, enumerable: true } }) as IncomingMessage;
}

/**
 * The provider sees the path below our base path on its own base, byte for byte as the client sent
 * it (ruling 13: forwarded untouched): no URL object re-encodes it (the WHATWG setters turned
 * `'`, `"`, `<`, `>` and `#` of a query into escapes the gateway never checked). http-proxy-3 is
 * given the origin alone and this path as the request's own (`toProxy` keeps it unparsed).
 */
function providerPath(base: URL, url: string | undefined, basePath: string): string {
  const below = (url ?? '/').slice(basePath.length) || '/';
  return base.pathname.replace(/\/$/, '') + below;
}

/**
 * The body stream for http-proxy-3, or undefined to pipe the request. A method without a body
 * never sends one, whatever the request carried: the provider request has no framing for it, so
 * piped bytes would reach the provider's socket raw (a second, smuggled request). Ruling 25
 * refuses such a request before; this is the backstop.
 */
function bodyToSend(method: string | undefined, body: Buffer | undefined): Readable | undefined {
  if (method === 'GET' || method === 'HEAD' || method === 'DELETE' || method === 'OPTIONS') return Readable.from([]);
  return body ? Readable.from([body]) : undefined;
}

/** A buffered passthrough answer as a resource, by its Content-Type; undefined when unreadable. */
function readAnswerBody(raw: Buffer, contentType: string | undefined, contentEncoding: string | undefined, codecs: readonly Codec[] | undefined, maxBytes: number): unknown {
  let body: Buffer;
  try {
    body = decodedBody(raw, contentEncoding, maxBytes);
  } catch {
    return undefined; // unreadable: no ETag made of it; an error answer gets the gateway's OperationOutcome
  }
  if (body.length === 0) return undefined;
  if (codecs) {
    const d = codecFor(contentType, codecs).decode(body, { maxDepth: 64, maxNodes: 200_000 });
    return d.ok ? d.resource : undefined;
  }
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

export function createForwarder(config: Readonly<Config>, standard: Standard, upstream: Upstream, deps: { logger: Logger; metrics: Metrics; codecs?: readonly Codec[] }): Forwarder {
  const { logger, metrics } = deps;
  const route = createRouter(standard, { amend: config.interactions.amend });
  const servesRead = (path: string): boolean => route('GET', path).ok;
  const proxy = createProxyServer({
    target: upstream.base.href,
    agent: upstream.agent,
    xfwd: false,
    changeOrigin: true,
    selfHandleResponse: true,
    proxyTimeout: config.upstream.timeoutMs,
    secure: true,
  });
  type Pending = { onResponse: (proxyRes: IncomingMessage) => void; setProxyReq: (r: ClientRequest) => void; traceparent?: string };
  const pending = new WeakMap<IncomingMessage, Pending>();
  // A safety net only: every web() call passes its own error callback.
  proxy.on('error', (err) => logger.error('proxy error without a handler', { error: String((err as Error)?.message ?? err) }));
  proxy.on('proxyReq', (proxyReq: ClientRequest, req: IncomingMessage) => {
    rewriteOutgoing(proxyReq, req);
    const p = pending.get(req);
    // The provider's work becomes a child of the gateway's span (W3C Trace Context).
    p?.setProxyReq(proxyReq);
  });
  proxy.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage) => {
    const p = pending.get(req);
    if (p) p.onResponse(proxyRes);
    else proxyRes.resume();
  });
  const basePath = config.basePath;

  /**
   * The provider's headers onto the client's answer. `selfPath`: the target the client asked for (path and query); a
   * redirect whose Location would lead back to it on the gateway (the provider moved the resource
   * somewhere the gateway does not serve) loses that Location rather than loop the client.
   */
  /** A provider Location as the client gets it: on a route the gateway serves, never a redirect to the request's own path. */
  function passedLocation(value: string, redirect: boolean, selfPath: string): string | undefined {
    const onGateway = publicPassthroughLocation(value, config.publicBaseUrl, servesRead, upstream.base);
    if (onGateway === undefined || (redirect && selfPath.endsWith(onGateway.slice(config.publicBaseUrl.length)))) return undefined;
    return onGateway;
  }

  /** Where a provider redirect leads the client, or undefined when its Location is not passed on. */
  function redirectTarget(from: IncomingMessage, selfPath: string): string | undefined {
    const location = firstOf(from.headers.location as string | string[] | undefined);
    return location === undefined ? undefined : passedLocation(location, true, selfPath);
  }

  function copyHeaders(from: IncomingMessage, res: ServerResponse, skip: Set<string>, selfPath: string): void {
    const drop = hopByHop(from.headers);
    const redirect = (from.statusCode ?? 0) >= 300 && (from.statusCode ?? 0) < 400;
    for (let i = 0; i < from.rawHeaders.length; i += 2) {
      const name = from.rawHeaders[i]!;
      const lower = name.toLowerCase();
      // The provider's cookies are its business with its own clients, never ours (ruling 25);
      // X-Correlation-ID is the gateway's echo of the client's X-Request-ID (ruling 14).
      // PROVIDER_ONLY (cancel/answer.ts): cookies, the provider's own hosts (`Alt-Svc`, `Refresh`, `Link`).
      if (drop.has(lower) || skip.has(lower) || PROVIDER_ONLY.has(lower)) continue;
      const existing = res.getHeader(lower);
      // A single-valued header sent twice keeps its first, the one Node (and so the gateway) read.
      if (existing !== undefined && SINGLE_VALUED.has(lower)) continue;
      let value = from.rawHeaders[i + 1]!;
      if (lower === 'location' || lower === 'content-location') {
        const onGateway = passedLocation(value, redirect, selfPath);
        if (onGateway === undefined) continue; // it would not lead to a route the gateway serves (ruling 22)
        value = onGateway;
      }
      if (existing === undefined) res.setHeader(name, value);
      else res.setHeader(name, Array.isArray(existing) ? [...existing, value] : [String(existing), value]);
    }
  }

  /** One passthrough exchange, as the answer's two ways of reaching the client see it. */
  interface Exchange {
    req: IncomingMessage;
    res: ServerResponse;
    ctx: RequestContext;
    requestId: string | undefined;
    finish: (r: ForwardResult) => void;
    upstreamMs: () => number;
    settled: () => boolean;
    /** The status line arrived: the exchange's deadline (ruling 24) is over. */
    stopDeadline: () => void;
  }

  /** The gateway's own headers on every passthrough answer. */
  function ownAnswerHeaders(x: Exchange): void {
    // An error is never cached (README: no-store on errors, the provider's passed on included).
    if (standard.noStoreOnEveryResponse || x.res.statusCode >= 400) x.res.setHeader('Cache-Control', 'no-store');
    if (x.requestId && !x.res.hasHeader('x-correlation-id')) x.res.setHeader('X-Correlation-ID', x.requestId);
  }

  /** A success that needs nothing from its body: streamed untouched (search bundles may be large). */
  function streamAnswer(x: Exchange, proxyRes: IncomingMessage, status: number): void {
    const { res } = x;
    x.stopDeadline();
    res.statusCode = status;
    copyHeaders(proxyRes, res, new Set(), x.req.url ?? '');
    ownAnswerHeaders(x);
    // Ruling 24: after the status line the body gets its own bound, streamed or not; a body still
    // arriving then is cut (the client sees an incomplete answer, never a complete-looking one).
    // A provider answer cut short (slow, reset, truncated) must not look complete to the client; it
    // is recorded as the provider's failure, not as the client leaving.
    const cut = (kind: 'slow-body' | 'reset') => {
      if (proxyRes.complete || x.settled()) return;
      // A client that does not read (its socket full) holds the provider's bytes back: its doing.
      if (kind === 'slow-body' && res.writableNeedDrain) x.finish({ status: CLIENT_CLOSED, upstreamMs: x.upstreamMs() });
      else {
        metrics.upstreamErrors.inc({ kind });
        x.finish({ status, upstreamMs: x.upstreamMs(), cut: true });
      }
      proxyRes.destroy();
      res.destroy();
    };
    const bodyTimer = setTimeout(() => cut('slow-body'), config.upstream.bodyTimeoutMs);
    proxyRes.once('close', () => {
      clearTimeout(bodyTimer);
      if (!proxyRes.complete) cut('reset');
    });
    // GP Connect §a: gzip when the client accepts it — unless the provider encoded the body itself.
    // An empty body (Content-Length: 0) stays empty rather than becoming an empty gzip stream.
    varyAsCompressed(res, standard.answerGzip, status);
    if (isIdentityCoding(proxyRes.headers['content-encoding']) && proxyRes.headers['content-length'] !== '0' && gzipWanted(res, standard.answerGzip, status)) {
      const gz = gzipStream(res);
      gz.on('error', () => res.destroy());
      proxyRes.pipe(gz).pipe(res);
    } else proxyRes.pipe(res);
    proxyRes.on('end', () => x.finish({ status, upstreamMs: x.upstreamMs() }));
    proxyRes.on('aborted', () => cut('reset'));
    proxyRes.on('error', () => cut('reset'));
  }

  /**
   * An error (its body must be an OperationOutcome, ruling 11) or a read missing its ETag (ruling
   * 13): read whole, bounded, in the format the provider labelled it (JSON or XML).
   */
  async function bufferedAnswer(x: Exchange, proxyRes: IncomingMessage, status: number, wantsEtag: boolean): Promise<void> {
    const { req, res } = x;
    // Ruling 24: the status line ended the exchange's deadline; the body has its own bound.
    x.stopDeadline();
    let slow = false;
    const bodyTimer = setTimeout(() => {
      if (proxyRes.complete) return;
      slow = true;
      metrics.upstreamErrors.inc({ kind: 'slow-body' });
      proxyRes.destroy(); // readBounded rejects: a 500, nothing of the body passed on
    }, config.upstream.bodyTimeoutMs);
    // Answers the gateway buffers (errors to check, reads to add an ETag to) are bounded like every
    // provider answer it reads (upstream.maxAnswerBytes).
    let bodyBuf: Buffer;
    try {
      bodyBuf = await readBounded(proxyRes, config.upstream.maxAnswerBytes, { clientBody: false });
    } catch (e) {
      // Unread (too large) or half read: its connection is not reusable, so it goes (else the pool
      // keeps it assigned until the provider closes it, and later requests wait for a socket).
      proxyRes.destroy();
      // A refusal whose body was then cut, slow or too large is still the provider's refusal (ruling 11).
      if (status >= 400 && !x.settled()) {
        if (!slow) metrics.upstreamErrors.inc({ kind: 'reset' });
        refuse(x, status, proxyRes.headers, x.upstreamMs());
        return;
      }
      // Counted as slow already; said so to the client (onResponse counts the other failures).
      throw slow ? new GatewayError('UPSTREAM_UNAVAILABLE', 'The provider sent its answer too slowly') : e;
    } finally {
      clearTimeout(bodyTimer);
    }
    if (x.settled()) return; // the deadline passed while reading: the 500 is already on its way
    const ms = x.upstreamMs();
    const parsed = readAnswerBody(bodyBuf, proxyRes.headers['content-type'], proxyRes.headers['content-encoding'], deps.codecs, config.upstream.maxAnswerBytes);
    if (status >= 400 && !isOperationOutcome(parsed)) {
      metrics.upstreamErrors.inc({ kind: 'status' });
      refuse(x, status, proxyRes.headers, ms);
      return;
    }
    // A 5xx is the provider's failure whatever its body says (the ProviderErrors alert counts it).
    if (status >= 500) metrics.upstreamErrors.inc({ kind: 'status' });
    res.statusCode = status;
    copyHeaders(proxyRes, res, new Set(['content-length']), req.url ?? '');
    res.setHeader('Content-Length', bodyBuf.length);
    ownAnswerHeaders(x);
    if (wantsEtag) {
      const etag = clientEtag(proxyRes.headers.etag, parsed && typeof parsed === 'object' ? versionIdOf((parsed as { meta?: unknown }).meta) : undefined);
      if (etag === undefined) res.removeHeader('etag');
      else res.setHeader('ETag', etag);
    }
    res.end(isIdentityCoding(proxyRes.headers['content-encoding']) && gzipWanted(res, standard.answerGzip, status) ? gzipWhole(res, bodyBuf) : bodyBuf);
    // A provider refusal passed on with its own OperationOutcome: recorded with the code its status stands for.
    x.finish({ status, upstreamMs: ms, ...(status >= 400 ? { code: codeForProviderStatus(status) } : {}) });
  }

  /** A provider error answer without a readable OperationOutcome gets the gateway's, same status (ruling 11). */
  function refuse(x: Exchange, status: number, headers: IncomingHttpHeaders, ms: number): void {
    const err = providerRefusal(codeForProviderStatus(status), status, headers);
    const url = x.req.url ?? '';
    const q = url.indexOf('?');
    const codec = deps.codecs ? negotiate(q === -1 ? '' : url.slice(q + 1), x.req.headers.accept, x.req.headers['content-type'], deps.codecs) : undefined;
    sendError(x.res, err, standard, x.requestId, false, codec);
    metrics.rejections.inc({ code: err.code });
    x.finish({ status, upstreamMs: ms, code: err.code });
  }

  /** The exchanges in flight, each with its abort (shutdown). */
  const inFlight = new Set<() => void>();
  let stopped = false;
  return {
    close: () => proxy.close(),
    abortInFlight: () => {
      stopped = true;
      for (const abort of [...inFlight]) abort();
    },
    forward(req, res, ctx, requestId, traceparent, body) {
      // Past the shutdown deadline no new exchange starts (one still in its checks then would go
      // out while the connections are being cut): refused, nothing sent.
      if (stopped) return Promise.reject(new GatewayError('UPSTREAM_UNAVAILABLE', 'The gateway is shutting down: nothing was forwarded'));
      return new Promise<ForwardResult>((resolve, reject) => {
        const started = performance.now();
        let timedOut = false;
        let proxyReq: ClientRequest | undefined;
        let settled = false;
        const finish = (r: ForwardResult) => {
          if (!settled) {
            settled = true;
            clearTimeout(timer);
            inFlight.delete(abort);
            resolve(r);
          }
        };
        const fail = (e: GatewayError) => {
          if (!settled) {
            settled = true;
            clearTimeout(timer);
            inFlight.delete(abort);
            reject(Object.assign(e, { upstreamMs: upstreamMs() }));
          }
        };
        const abort = (): void => {
          if (proxyReq) dequeue(upstream.agent as Agent, proxyReq);
          proxyReq?.destroy();
          if (settled) return;
          if (res.headersSent) {
            finish({ status: res.statusCode, upstreamMs: upstreamMs(), cut: true });
            res.destroy();
          } else {
            fail(new GatewayError('UPSTREAM_UNAVAILABLE', 'The gateway is shutting down: the provider exchange was aborted'));
          }
        };
        inFlight.add(abort);
        const upstreamMs = () => performance.now() - started;
        // One deadline for the whole exchange (ruling 24): queued for a socket, connecting,
        // writing, the status line. It always settles and aborts the provider request.
        const timer = setTimeout(() => {
          timedOut = true;
          if (proxyReq) dequeue(upstream.agent as Agent, proxyReq);
          proxyReq?.destroy();
          if (settled) return;
          metrics.upstreamErrors.inc({ kind: 'timeout' });
          if (res.headersSent) {
            res.destroy();
            finish({ status: res.statusCode, upstreamMs: upstreamMs() });
          } else {
            fail(new GatewayError('UPSTREAM_UNAVAILABLE', 'The provider did not answer in time'));
          }
        }, config.upstream.timeoutMs);
        res.once('close', () => {
          if (!settled && !res.writableFinished) {
            proxyReq?.destroy();
            finish({ status: CLIENT_CLOSED, upstreamMs: upstreamMs() });
          }
        });

        const x: Exchange = { req, res, ctx, requestId, finish, upstreamMs, settled: () => settled, stopDeadline: () => clearTimeout(timer) };
        const onResponse = async (proxyRes: IncomingMessage) => {
          // http-proxy-3's proxyTimeout is an idle timer on the provider socket that would go on
          // into the body: past the status line only the body's own bound applies (ruling 24).
          proxyReq?.setTimeout(0);
          try {
            const status = proxyRes.statusCode ?? 502;
            // RFC 9110 §15: a status outside 100–599 is no HTTP answer (as for the read of ruling 8).
            if (status < 100 || status > 599) {
              proxyRes.destroy();
              metrics.upstreamErrors.inc({ kind: 'protocol' });
              x.stopDeadline();
              fail(new GatewayError('UPSTREAM_UNAVAILABLE', 'The provider answered with an invalid status'));
              return;
            }
            // A redirect whose target the gateway does not pass on (not a route it serves, or the
            // request's own path) would reach the client with nothing to follow: the provider's failure.
            if (REDIRECTS.has(status) && redirectTarget(proxyRes, x.req.url ?? '') === undefined) {
              proxyRes.destroy();
              metrics.upstreamErrors.inc({ kind: 'redirect' });
              x.stopDeadline();
              fail(new GatewayError('UPSTREAM_UNAVAILABLE', 'The provider answered with a redirect to no route the gateway serves'));
              return;
            }
            const wantsEtag = ctx.interaction.addEtagFromBody === true && status === 200 && !isEntityTag(proxyRes.headers.etag);
            res.on('close', () => finish({ status, upstreamMs: upstreamMs() }));
            if (!wantsEtag && status < 400) streamAnswer(x, proxyRes, status);
            else await bufferedAnswer(x, proxyRes, status, wantsEtag);
          } catch (e) {
            if (settled) return; // already answered (deadline): leave that answer alone
            const slowBody = e instanceof GatewayError && e.code === 'UPSTREAM_UNAVAILABLE';
            if (!slowBody) metrics.upstreamErrors.inc({ kind: 'reset' });
            if (!res.headersSent) fail(slowBody ? e : new GatewayError('UPSTREAM_UNAVAILABLE', 'The provider answer was cut short or too large'));
            else {
              finish({ status: res.statusCode, upstreamMs: upstreamMs(), cut: true });
              res.destroy();
            }
          }
        };

        const outgoing = outgoingView(req, ownHeaders(req), body, traceparent, providerPath(upstream.base, req.url, basePath));
        pending.set(outgoing, { onResponse: (r) => void onResponse(r), setProxyReq: (r) => (proxyReq = r), traceparent });
        const agent = trackingAgent(upstream.agent as Agent, (r) => (proxyReq = r));
        const buffer = bodyToSend(req.method, body);
        proxy.web(outgoing, res, { target: upstream.base.origin, prependPath: false, toProxy: true, agent, ...(buffer ? { buffer } : {}) }, (err: Error) => {
          const kind = timedOut ? 'timeout' : classify(err);
          if (settled) return;
          if (res.headersSent) {
            // Half an answer is worse than none: cut the connection.
            metrics.upstreamErrors.inc({ kind });
            finish({ status: res.statusCode, upstreamMs: upstreamMs(), cut: true });
            res.destroy();
            return;
          }
          if (req.destroyed && !res.writable) {
            finish({ status: CLIENT_CLOSED, upstreamMs: upstreamMs() });
            return;
          }
          metrics.upstreamErrors.inc({ kind });
          fail(new GatewayError('UPSTREAM_UNAVAILABLE', kind === 'timeout' ? 'The provider did not answer in time' : 'The provider could not be reached'));
        });
      });
    },
  };
}
