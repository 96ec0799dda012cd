import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { Config } from '../config.js';
import type { RequestContext } from '../context.js';
import { GatewayError, type ErrorCode } from '../errors.js';
import { isOperationOutcome } from '../fhir/operation-outcome.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { sendError } from '../respond.js';
import type { Standard } from '../standards/index.js';
import { classify, type Upstream } from './upstream.js';

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
  /** The provider's new version, from a cancel's 200 answer. */
  versionAfter?: string;
  upstreamMs: number;
}

/** A provider error status without an OperationOutcome gets ours, keeping the status (ruling 11). */
function codeForProviderStatus(status: number): ErrorCode {
  if (status >= 500) return 'UPSTREAM_ERROR';
  const byStatus: Record<number, ErrorCode> = {
    400: 'BODY_INVALID', 403: 'JWT_INVALID', 404: 'RECORD_NOT_FOUND', 409: 'VERSION_CONFLICT',
    412: 'IF_MATCH_MISSING', 413: 'BODY_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE', 422: 'BUSINESS_RULE',
  };
  return byStatus[status] ?? 'REQUEST_MALFORMED';
}

const ETAG_VERSION = /^(?:W\/)?"([^"]+)"$/;

/** Status recorded (never sent) when the client closed the connection before the answer (nginx's 499). */
export const CLIENT_CLOSED = 499;

export interface Forwarder {
  /**
   * Forward the request (with `body`, the exact bytes received, when the gateway read it) and
   * answer the client. Resolves when the answer is written; rejects with a GatewayError only
   * when nothing has been sent yet (provider unreachable, timed out, reset before answering).
   */
  forward(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, body: Buffer | undefined, requestId: string | undefined): Promise<ForwardResult>;
  close(): void;
}

export function createForwarder(config: Readonly<Config>, standard: Standard, upstream: Upstream, deps: { logger: Logger; metrics: Metrics }): Forwarder {
  const { logger, metrics } = deps;
  const proxy = createProxyServer({
    target: upstream.base.href,
    agent: upstream.agent,
    xfwd: true,
    changeOrigin: true,
    selfHandleResponse: true,
    proxyTimeout: config.upstream.timeoutMs,
    secure: true,
  });
  type Pending = { ctx: RequestContext; onResponse: (proxyRes: IncomingMessage) => void; setProxyReq: (r: ClientRequest) => void };
  const pending = new WeakMap<IncomingMessage, Pending>();
  // A safety net only: every web() call passes its own error callback.
  proxy.on('error', (err) => logger.error('proxy error without a handler', { error: String((err as Error)?.message ?? err) }));
  proxy.on('proxyReq', (proxyReq: ClientRequest, req: IncomingMessage) => {
    pending.get(req)?.setProxyReq(proxyReq);
  });
  proxy.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage) => {
    const p = pending.get(req);
    if (p) p.onResponse(proxyRes);
    else proxyRes.resume();
  });

  const publicBase = config.publicBaseUrl;
  const basePath = config.basePath;

  /** Ruling 12: Location absolute on the public base URL, keeping a `/_history/{vid}` form. */
  function publicLocation(location: string | undefined, id: string): string {
    if (location && location.startsWith(publicBase + '/')) return location;
    const m = location ? /Appointment\/([A-Za-z0-9.-]{1,64})(\/_history\/([A-Za-z0-9.-]{1,64}))?\/?$/.exec(location) : null;
    if (m && m[1] === id) return `${publicBase}/Appointment/${id}${m[2] ?? ''}`;
    return `${publicBase}/Appointment/${encodeURIComponent(id)}`;
  }

  function copyHeaders(from: IncomingMessage, res: ServerResponse, skip: Set<string>): void {
    const drop = hopByHop(from.headers);
    for (let i = 0; i < from.rawHeaders.length; i += 2) {
      const name = from.rawHeaders[i]!;
      const lower = name.toLowerCase();
      if (drop.has(lower) || skip.has(lower)) continue;
      const existing = res.getHeader(lower);
      const value = from.rawHeaders[i + 1]!;
      if (existing === undefined) res.setHeader(name, value);
      else res.setHeader(name, Array.isArray(existing) ? [...existing, value] : [String(existing), value]);
    }
  }

  function readAll(stream: IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => (stream.complete ? resolve(Buffer.concat(chunks)) : reject(new Error('provider answer cut short'))));
      stream.on('error', reject);
      stream.on('aborted', () => reject(new Error('provider answer cut short')));
    });
  }

  return {
    close: () => proxy.close(),
    forward(req, res, ctx, body, requestId) {
      return new Promise<ForwardResult>((resolve, reject) => {
        const started = performance.now();
        let timedOut = false;
        let proxyReq: ClientRequest | undefined;
        let settled = false;
        const finish = (r: ForwardResult) => {
          if (!settled) {
            settled = true;
            clearTimeout(timer);
            resolve(r);
          }
        };
        const fail = (e: GatewayError) => {
          if (!settled) {
            settled = true;
            clearTimeout(timer);
            reject(e);
          }
        };
        const upstreamMs = () => performance.now() - started;
        // The whole provider exchange has one deadline; proxyTimeout only covers socket idleness.
        // The promise settles here whatever http-proxy-3 does next (it stays silent when the client
        // is gone, and emits no proxyReq for `Expect: 100-continue`), so the per-appointment lock
        // of ruling 10 is always released.
        const timer = setTimeout(() => {
          timedOut = true;
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
        // The client hung up before the answer: http-proxy-3 aborts the provider request and calls
        // no callback (web-incoming: ECONNRESET on a destroyed client socket). Settle as 499 (the
        // outcome at the provider is unknown), so the decision, the audit record and the lock go on.
        res.once('close', () => {
          if (!settled && !res.writableFinished) finish({ status: CLIENT_CLOSED, upstreamMs: upstreamMs() });
        });

        const onResponse = async (proxyRes: IncomingMessage) => {
          try {
            const status = proxyRes.statusCode ?? 502;
            const isCancelOk = ctx.interaction.kind === 'cancel' && status === 200;
            const wantsEtag = ctx.interaction.addEtagFromBody === true && status === 200 && !proxyRes.headers.etag;
            const isError = status >= 400;
            if (ctx.interaction.kind === 'cancel' && status >= 300 && status < 400) {
              // Out of contract for a cancel (ruling 17's "never followed"): not passed on either,
              // since its Location names the provider, which clients must not reach around us.
              proxyRes.resume();
              metrics.upstreamErrors.inc({ kind: 'redirect' });
              fail(new GatewayError('UPSTREAM_UNAVAILABLE', 'The provider answered the cancel with a redirect'));
              return;
            }
            res.on('close', () => finish({ status, upstreamMs: upstreamMs() }));
            if (!isCancelOk && !wantsEtag && !isError) {
              // Stream untouched (search bundles may be large).
              res.statusCode = status;
              copyHeaders(proxyRes, res, new Set());
              if (standard.noStoreOnEveryResponse) res.setHeader('Cache-Control', 'no-store');
              proxyRes.pipe(res);
              proxyRes.on('end', () => finish({ status, upstreamMs: upstreamMs() }));
              // A provider answer cut short must not look complete to the client.
              proxyRes.on('aborted', () => res.destroy());
              proxyRes.on('error', () => res.destroy());
              return;
            }
            const bodyBuf = await readAll(proxyRes);
            if (settled) return; // the deadline passed while reading: the 500 is already on its way
            const ms = upstreamMs();
            let parsed: unknown;
            try {
              parsed = bodyBuf.length ? JSON.parse(bodyBuf.toString('utf8')) : undefined;
            } catch {
              parsed = undefined;
            }
            if (isError && !isOperationOutcome(parsed)) {
              metrics.upstreamErrors.inc({ kind: 'status' });
              const err = new GatewayError(codeForProviderStatus(status), `The provider answered with status ${status}`, { status });
              sendError(res, err, standard, requestId);
              finish({ status, upstreamMs: ms });
              return;
            }
            res.statusCode = status;
            copyHeaders(proxyRes, res, new Set(['content-length']));
            res.setHeader('Content-Length', bodyBuf.length);
            if (standard.noStoreOnEveryResponse) res.setHeader('Cache-Control', 'no-store');
            if (requestId && !res.hasHeader('x-correlation-id')) res.setHeader('X-Correlation-ID', requestId);
            let versionAfter: string | undefined;
            if (!isError && parsed && typeof parsed === 'object') {
              const meta = (parsed as { meta?: { versionId?: unknown; lastUpdated?: unknown } }).meta;
              const vid = typeof meta?.versionId === 'string' ? meta.versionId : undefined;
              versionAfter = vid ?? ETAG_VERSION.exec(String(proxyRes.headers.etag ?? ''))?.[1];
              if (vid && !res.hasHeader('etag')) res.setHeader('ETag', `W/"${vid}"`);
              if (isCancelOk) {
                if (!res.hasHeader('last-modified') && typeof meta?.lastUpdated === 'string') {
                  const t = Date.parse(meta.lastUpdated);
                  if (Number.isFinite(t)) res.setHeader('Last-Modified', new Date(t).toUTCString());
                }
              }
            }
            // Ruling 12: a cancel's 200 carries the public Location even with an empty body
            // (Prefer: return=minimal) or one that is not JSON (a breach, still returned).
            if (isCancelOk) res.setHeader('Location', publicLocation(proxyRes.headers.location, ctx.resourceId!));
            if (isCancelOk) {
              // A write the provider accepted must reach the client: breaches are logged and
              // counted, never turned into errors (style habit 11, ruling 12).
              const breaches: string[] = [];
              // GP Connect §f: `Prefer: return=minimal` asks for an empty 200 body.
              const minimal = /return=minimal/i.test(String(req.headers.prefer ?? '')) && bodyBuf.length === 0;
              if (minimal) versionAfter = ETAG_VERSION.exec(String(proxyRes.headers.etag ?? ''))?.[1];
              if (minimal) {
                if (!versionAfter) breaches.push('no-version');
              } else if (!parsed || typeof parsed !== 'object') breaches.push('body-not-json');
              else {
                if ((parsed as { status?: unknown }).status !== 'cancelled') breaches.push('status-not-cancelled');
                if (!versionAfter) breaches.push('no-version');
                else if (versionAfter === ctx.current?.version) breaches.push('version-unchanged');
              }
              for (const b of breaches) {
                metrics.contractBreaches.inc({ reason: b });
                logger.warn('provider answer breaks the cancel contract', { traceId: ctx.traceId, appointmentId: ctx.resourceId, reason: b });
              }
            }
            res.end(bodyBuf);
            finish({ status, versionAfter, upstreamMs: ms });
          } catch {
            if (settled) return; // already answered (deadline): leave that answer alone
            // The provider cut its answer short: nothing usable reached us.
            metrics.upstreamErrors.inc({ kind: 'reset' });
            if (!res.headersSent) {
              fail(new GatewayError('UPSTREAM_UNAVAILABLE', 'The provider answer was cut short'));
            } else {
              res.destroy();
              finish({ status: res.statusCode, upstreamMs: upstreamMs() });
            }
          }
        };

        pending.set(req, { ctx, onResponse: (r) => void onResponse(r), setProxyReq: (r) => (proxyReq = r) });
        // Hop-by-hop headers end here (ruling 11). http-proxy-3 copies req.headers when it builds
        // the provider request, so removing them now is deterministic; the keep-alive agent sets
        // its own Connection header.
        for (const name of hopByHop(req.headers)) delete req.headers[name];
        // The provider sees the path below our base path, on its own base (http-proxy-3 prepends it).
        const below = (req.url ?? '/').slice(basePath.length) || '/';
        req.url = below;
        proxy.web(
          req,
          res,
          body ? { buffer: Readable.from([body]) } : {},
          (err: Error) => {
            const kind = timedOut ? 'timeout' : classify(err);
            if (settled) return;
            if (res.headersSent) {
              // Half an answer is worse than none: cut the connection.
              res.destroy();
              finish({ status: res.statusCode, upstreamMs: upstreamMs() });
              return;
            }
            if (req.destroyed && !res.writable) {
              finish({ status: CLIENT_CLOSED, upstreamMs: upstreamMs() });
              return;
            }
            metrics.upstreamErrors.inc({ kind });
            fail(new GatewayError('UPSTREAM_UNAVAILABLE', kind === 'timeout' ? 'The provider did not answer in time' : 'The provider could not be reached'));
          },
        );
      });
    },
  };
}
