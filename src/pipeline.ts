import { wellFormedTraceId } from './checks/spine-headers.js';
import { unsignedTokenWithScope } from './identity/token.js';
import { METHODS, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { CheckPlan, Check, CheckIO } from './checks/index.js';
import type { Config } from './config.js';
import { createContext, header, repeatedHeaders, type RequestContext } from './context.js';
import { ClientLeftBeforeForward, type WriteRequest, type WriteTrail, type WriteTransaction } from './cancel/transaction.js';
import { codeForProviderStatus, type ClientAnswer } from './cancel/answer.js';
import type { HistoryRead } from './cancel/history.js';
import { endToEnd, forwardingHeaders, pick, READ_HEADERS } from './edge/forward-headers.js';
import { bodyFramingFailed, carriesBody, readBounded } from './edge/read-body.js';
import { bodyNeverAsked, sendContinue } from './edge/expect-continue.js';
import { clientLeft } from './edge/connection-guard.js';
import { GatewayError, isGatewayError, type ErrorCode } from './errors.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import { clip, type AuditSink } from './ops/audit.js';
import { reportOnly } from './checks/report-mode.js';
import { CLIENT_CLOSED, type Forwarder, type ForwardResult } from './proxy/forward.js';
import { sendError } from './respond.js';
import { ROUTABLE_ID, type RouteResult } from './route.js';
import { isGuarded, type Interaction, type Standard } from './standards/index.js';
import type { TraceSpan, Tracer } from './ports/tracer.js';
import type { Codec } from './ports/codec.js';
import { acceptFromFormatParam, answerCodecOf } from './edge/negotiate.js';
import type { Lane } from './edge/large-body-lane.js';
import { isAcceptedCancelQuery, isAcceptedMediaType } from './checks/media-type.js';
import { checkRequestSemantics } from './checks/request-semantics.js';
import { headBytes, requestIdOf, sentTarget, type RequestHead } from './edge/request-head.js';
import { gzipWanted, gzipWhole, isIdentityCoding, varyAsCompressed } from './http/answer-gzip.js';

export interface PipelineDeps {
  config: Readonly<Config>;
  standard: Standard;
  plan: CheckPlan;
  router: (method: string, path: string) => RouteResult;
  /** Passthrough interactions (read, search, metadata): streamed by http-proxy-3. */
  forwarder: Forwarder;
  /** Cancel and amend: the provider half, behind the ports. */
  transaction: WriteTransaction;
  /** Version reads, answered from the vault when the provider keeps no history. */
  history: HistoryRead;
  logger: Logger;
  metrics: Metrics;
  audit: AuditSink;
  /** The client certificate allow-list (ruling 1: part of the TLS step, before the route). */
  clientAllowed: (req: IncomingMessage) => boolean;
  /** While draining, every answer closes its connection. */
  draining: () => boolean;
  /** Spans for the request, its stages and provider calls (noTracer when tracing is off). */
  tracer: Tracer;
  /** Wire formats, for negotiating the format of gateway-made answers (ruling 21). */
  codecs: readonly Codec[];
  /** Bodies over limits.largeBodyBytes are checked one per turn of the event loop (issue 13 item 3). */
  largeBodies?: Lane;
}

// Ruling 14: X-Correlation-ID equals the request's X-Request-ID. Echoed (and logged) when it is
// visible ASCII of at most 256 characters — every id scheme in use (UUIDs, base64, paths, URNs);
// a longer or non-ASCII value is neither reflected nor logged (REQUEST_ID, edge/request-head.ts).

/** Read the body up to `limit` bytes (413 beyond, checked on Content-Length first). */
export function bodyReader(req: IncomingMessage): CheckIO {
  return {
    readBody: (limit) => {
      // Not for a declared length over the limit: that 413 goes out before the client uploads.
      if (!(Number(req.headers['content-length']) > limit)) sendContinue(req);
      return readBounded(req, limit);
    },
  };
}

/** A request body not read to its end whose length is unknown (chunked) or over the limit. */
function largeUnreadBody(req: IncomingMessage, limit: number): boolean {
  if (req.readableEnded || !carriesBody(req.headers)) return false;
  const length = Number(req.headers['content-length']);
  return req.headers['transfer-encoding'] !== undefined || !Number.isFinite(length) || length > limit;
}

interface Outcome {
  status: number;
  outcome: 'forwarded' | 'rejected' | 'error';
  code?: ErrorCode;
  forwardMs?: number;
  /** 'vault': a version read answered from the kept versions (ruling 22), logged as such. */
  servedFrom?: 'vault';
}

/**
 * The order of a request, in one place: route -> identity checks -> (cancel, amend) the checks
 * that need only the request, then the write transaction; (others) the passthrough forward.
 * Every thrown GatewayError becomes an OperationOutcome; anything else is a 500 INTERNAL_ERROR
 * and nothing is forwarded (fail closed). One decision log line, metrics and (guarded routes)
 * one audit record per request.
 */
/** Methods that change a resource: refused at the route under /Appointment/, they are audited. */
const WRITE_METHODS: ReadonlySet<string> = new Set(['PUT', 'PATCH', 'DELETE', 'POST']);
/** Methods Node's HTTP parser reads; any other reaches the gateway only from a refused request line. */
const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);
/** `/Appointment`, `/Appointment/`, `/Appointment/{id}…`: the id, when a segment follows. */
const APPOINTMENT_PATH = /^\/Appointment(?:\/([^/]*))?(?:\/.*)?$/;

export function createPipeline(deps: PipelineDeps) {
  const { config, standard, plan, router, forwarder, transaction, history, logger, metrics, audit, clientAllowed, draining, tracer } = deps;
  const basePath = config.basePath;

  async function runChecks(checks: readonly Check[], ctx: RequestContext, io: CheckIO, span: TraceSpan): Promise<void> {
    for (const check of checks) {
      if (check.needs?.some((n) => ctx[n] === undefined)) continue; // an earlier report-mode failure
      if (check.only && !check.only.includes(ctx.interaction.kind)) continue;
      const t0 = performance.now();
      const stage = span.child(check.name);
      let failed = true;
      try {
        // Only the checks that do I/O return a promise (issue 6 profile: awaiting undefined costs).
        const pending = check.run(ctx, io);
        if (pending) await pending;
        failed = false;
      } catch (e) {
        if (isGatewayError(e) && check.family && reportOnly(config.report, check.family) && e.code !== 'BODY_TOO_LARGE' && e.code !== 'REQUEST_MALFORMED') {
          ctx.wouldReject.push({ family: check.family, code: e.code });
          metrics.wouldReject.inc({ family: check.family, code: e.code });
          logger.warn('would reject (report mode)', { traceId: ctx.traceId, family: check.family, check: check.name, code: e.code });
          continue;
        }
        throw e;
      } finally {
        stage.end(failed);
        const ms = performance.now() - t0;
        ctx.timings[check.name] = ms;
        metrics.stageDuration.observe({ stage: check.name }, ms / 1000);
      }
    }
  }

  function writeRequest(req: IncomingMessage, ctx: RequestContext, body: Buffer, span: TraceSpan): WriteRequest {
    const view = ctx.request;
    const readHeaders = pick(view, READ_HEADERS, { accept: 'application/fhir+json' });
    const readInteraction = standard.interactions.find((i) => i.name === 'read');
    if (readInteraction) {
      readHeaders['ssp-interactionid'] = readInteraction.id;
      // The read is a read: its token says so too, when it is unsigned (README "The gateway's own read").
      const narrowed = config.jwt.mode === 'unsigned' && readHeaders.authorization ? unsignedTokenWithScope(readHeaders.authorization, readInteraction.scope) : undefined;
      if (narrowed) readHeaders.authorization = narrowed;
    }
    const writeHeaders = forwardingHeaders(req, endToEnd(view.headers));
    acceptFromFormatParam(view.query, writeHeaders, deps.codecs);
    const r = ctx.requester;
    return {
      id: ctx.resourceId!,
      kind: ctx.interaction.kind as 'cancel' | 'amend',
      ifMatch: ctx.ifMatchVersion,
      submitted: ctx.resource,
      body,
      readHeaders,
      writeHeaders,
      preferMinimal: /return=minimal/i.test(String(view.headers.prefer ?? '')),
      decision: { traceId: ctx.traceId, interaction: ctx.interaction.name, requester: r ? { odsCode: r.odsCode, sdsUserId: r.sdsUserId, deviceId: r.deviceId } : undefined },
      span,
    };
  }

  function sendAnswer(res: ServerResponse, answer: ClientAnswer, requestId: string | undefined): void {
    if (res.destroyed || res.writableEnded) return; // the client left; the decision is still logged
    res.statusCode = answer.status;
    for (const [k, v] of Object.entries(answer.headers)) res.setHeader(k, v);
    // RFC 9110 §8.6: a 204 (and a 1xx) carries no Content-Length; a 304's would describe the
    // resource, not this empty answer.
    if (answer.status === 204 || answer.status === 304) res.removeHeader('Content-Length');
    else res.setHeader('Content-Length', answer.body.length);
    // An error is never cached (README: no-store on errors, the provider's passed on included).
    if (standard.noStoreOnEveryResponse || answer.status >= 400) res.setHeader('Cache-Control', 'no-store');
    if (requestId && !res.hasHeader('x-correlation-id')) res.setHeader('X-Correlation-ID', requestId);
    if (draining()) res.setHeader('Connection', 'close');
    // An answer the provider encoded itself (passed on coding and all, ruling 11) is not encoded twice.
    varyAsCompressed(res, standard.answerGzip, answer.status);
    const plain = isIdentityCoding(answer.headers['content-encoding']);
    res.end(plain && gzipWanted(res, standard.answerGzip, answer.status) ? gzipWhole(res, answer.body) : answer.body);
  }

  /** The checks before the provider; a large body waits for its turn once it is read. */
  async function checksBeforeProvider(ctx: RequestContext, io: CheckIO, span: TraceSpan): Promise<void> {
    const lane = deps.largeBodies;
    if (!lane) return runChecks(plan.beforeProvider, ctx, io, span);
    let done: (() => void) | undefined;
    const inTurn: CheckIO = {
      readBody: async (limit) => {
        const body = await io.readBody(limit);
        if (body.length > config.limits.largeBodyBytes && !done) done = await lane.turn();
        return body;
      },
    };
    try {
      await runChecks(plan.beforeProvider, ctx, inTurn, span);
    } finally {
      done?.();
    }
  }

  async function guarded(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, io: CheckIO, trail: WriteTrail, requestId: string | undefined, span: TraceSpan): Promise<Outcome> {
    await checksBeforeProvider(ctx, io, span);
    // Fail closed (ruling 19): a write whose audit record cannot be kept is not made.
    if (audit.healthy?.() === false) throw new GatewayError('INTERNAL_ERROR', 'The audit trail cannot be written now; nothing was forwarded. Retry later');
    // Report mode may have let a bodiless request through; read it now so it can be forwarded.
    const body = ctx.rawBody ?? (await io.readBody(config.limits.maxBodyBytes));
    const write = writeRequest(req, ctx, body, span);
    write.clientGone = () => clientLeft(req, res);
    ctx.resource = undefined; // handed to the transaction, which lets it go once decided (issue 17)
    let answer;
    try {
      answer = await transaction.run(write, trail);
    } catch (e) {
      // Gone before anything was kept or forwarded: no answer is made (no one is there to read it).
      if (e instanceof ClientLeftBeforeForward) return { status: CLIENT_CLOSED, outcome: 'error' };
      throw e;
    }
    const clientGone = clientLeft(req, res);
    sendAnswer(res, answer, requestId);
    // 499: the client left before the answer (nginx's convention); the provider's side is done.
    // A provider refusal passed on with its own OperationOutcome is recorded with the code its status stands for.
    const code = answer.status >= 400 ? codeForProviderStatus(answer.status) : undefined;
    return { status: clientGone ? CLIENT_CLOSED : answer.status, outcome: clientGone || (code !== undefined && answer.status >= 500) ? 'error' : 'forwarded', forwardMs: trail.writeMs, ...(code ? { code } : {}) };
  }

  function fail(e: unknown, req: IncomingMessage, res: ServerResponse, ctx: RequestContext | undefined, requestId: string | undefined): Outcome {
    let err: GatewayError;
    let outcome: Outcome['outcome'] = 'rejected';
    if (isGatewayError(e)) err = e;
    else {
      logger.error('internal error', { traceId: ctx?.traceId, error: (e as Error)?.message ?? String(e) });
      err = new GatewayError('INTERNAL_ERROR', 'Unexpected internal error; the request was not forwarded');
    }
    // A body we did not read leaves the connection in an unknown state: close it.
    // ...and so does one whose body framing broke (ruling 16), whatever refused it first.
    // ...and so does an unread body of unknown or over-limit length: Node would read it all to
    // keep the connection (a refused client could make the gateway read any amount).
    const close = err.code === 'BODY_TOO_LARGE' || err.code === 'REQUEST_MALFORMED' || err.code === 'HEADERS_TOO_LARGE' || bodyFramingFailed(req) || draining() || largeUnreadBody(req, config.limits.maxBodyBytes) || bodyNeverAsked(req);
    // 499 as in guarded(): a client that left before its answer never saw this status.
    const clientGone = clientLeft(req, res);
    const sent = sendError(res, err, standard, requestId, close, answerCodec(req));
    const status = clientGone ? CLIENT_CLOSED : sent;
    if (status >= 500 || clientGone) outcome = 'error';
    // The provider's own refusal of a forwarded write (ruling 11): it reached the provider.
    else if ((e as { forwarded?: boolean }).forwarded) outcome = 'forwarded';
    // Gateway-made error answers: none was made for a client that had left.
    if (!clientGone) metrics.rejections.inc({ code: err.code });
    // A passthrough exchange that failed (timed out, cut) took the provider's time (proxy/forward.ts).
    const forwardMs = (e as { upstreamMs?: number }).upstreamMs;
    return { status, outcome, code: err.code, ...(forwardMs !== undefined ? { forwardMs } : {}) };
  }

  /** The format the client asked its answer in (ruling 21). */
  function answerCodec(req: IncomingMessage): Codec {
    return answerCodecOf(req, deps.codecs);
  }

  function route(req: IncomingMessage): { ctx?: RequestContext; result: RouteResult } {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const fullPath = q === -1 ? url : url.slice(0, q);
    const below = fullPath.startsWith(basePath + '/') || basePath === '' ? fullPath.slice(basePath.length) : undefined;
    const result = below === undefined ? ({ ok: false, code: 'ROUTE_NOT_FOUND' } as const) : router(req.method ?? '', below);
    // The route is known first only so that a refused cancel is still audited.
    const ctx = result.ok ? createContext({ method: req.method!, path: below!, query: q === -1 ? '' : url.slice(q + 1), headers: req.headers, repeated: repeatedHeaders(req.rawHeaders), httpVersion: req.httpVersion }, result.candidates, result.id) : undefined;
    if (ctx) ctx.traceId = wellFormedTraceId(req.headers);
    return { ctx, result };
  }

  return {
    /**
     * Ruling 13 for a method Node's parser does not know (`FOO`, a lower-case `get`): no interaction
     * is configured for it, so its path decides — 404 where nothing is served, else 405 with what is.
     */
    routeRefusal(head: RequestHead): { code: ErrorCode; allowed: readonly string[] } | undefined {
      // A method Node knows: the line is another request's (one read whole before, e.g. chunked),
      // not the refused one — no verdict from it. Ruling 25's refusals seen in the head come first.
      if (KNOWN_METHODS.has(head.method) || head.refusedFirst) return undefined;
      const { result } = route({ method: head.method, url: head.url, headers: {}, rawHeaders: [] } as unknown as IncomingMessage);
      if (result.ok) return undefined;
      return result.code === 'METHOD_NOT_ALLOWED' ? { code: result.code, allowed: result.allowed } : { code: result.code, allowed: [] };
    },

    /**
     * Ruling 19 for a request Node's parser refused before it became a request (ruling 16): the
     * answer was written by the listener; this writes its decision line and, when its request line
     * names a guarded route, its audit record. `head` is undefined when the request line was not
     * among the bytes the parser held.
     */
    refusedFraming(head: RequestHead | undefined, status: number, code: ErrorCode, clientGone = false): void {
      const outcome = clientGone ? 'error' : 'rejected';
      // The trace id read from the raw head is logged even when the request names no route.
      const headers = { ...(head?.traceId ? { 'ssp-traceid': head.traceId } : {}), ...(head?.interactionId ? { 'ssp-interactionid': head.interactionId } : {}) };
      const req = { method: head?.method ?? 'unknown', url: head?.url ?? '', headers, rawHeaders: [] } as unknown as IncomingMessage;
      const { ctx, result } = head ? route(req) : { ctx: undefined, result: undefined };
      if (ctx && head?.traceId) ctx.traceId = head.traceId;
      const trail: WriteTrail = { wouldReject: ctx?.wouldReject ?? [], timings: ctx?.timings };
      const refusedWrite = result && refusedWriteOf(req, result);
      record(req, ctx, trail, { status, outcome, code }, 0, head?.requestId, refusedWrite);
      // The head was read from the last bytes the parser held (its last TLS record, which the
      // client chose): its request line may be missing, or another than the request's own. So a
      // request the parser refused is audited whatever route that line names (ruling 19: no way to
      // keep a cancel attempt out of the trail) — without an appointment id unless it named one.
      if (!(ctx && isGuarded(ctx.interaction)) && !refusedWrite) {
        audit.write({ time: new Date().toISOString(), traceId: head?.traceId, requestId: head?.requestId, outcome, status, code });
      }
    },

    /**
     * Ruling 19 for a request pipelined behind others whose connection closed before its turn (the
     * client left, or an answer before it closed the connection): never handled — nothing read from
     * or forwarded to the provider — and recorded as one whose answer reached no one (499).
     */
    unanswered(req: IncomingMessage, cutMidBody = false): void {
      const { ctx, result } = route(req);
      const trail: WriteTrail = { wouldReject: ctx?.wouldReject ?? [], timings: ctx?.timings };
      // Its body still arriving when the gateway cut the connection (a timeout, the drain deadline):
      // the gateway's refusal, as for a request in flight (README, "A client that hangs up").
      const out: Outcome = cutMidBody ? { status: 400, outcome: 'rejected', code: 'REQUEST_MALFORMED' } : { status: CLIENT_CLOSED, outcome: 'error' };
      record(req, ctx, trail, out, 0, requestIdOf(req.headers['x-request-id']), refusedWriteOf(req, result));
    },

    async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
      const started = performance.now();
      metrics.inFlight.inc();
      const requestId = requestIdOf(req.headers['x-request-id']);
      const { ctx, result: routed } = route(req);
      const tp = req.headers.traceparent;
      const span = tracer.startRequest(`${req.method} ${ctx?.interaction.name ?? 'unrouted'}`, typeof tp === 'string' ? tp : undefined, { 'http.method': req.method, 'appointment.id': ctx?.resourceId });
      const trail: WriteTrail = { wouldReject: ctx?.wouldReject ?? [], timings: ctx?.timings };
      let out: Outcome;
      let fwd: ForwardResult | undefined;
      try {
        // Ruling 16: a head over the limit is 431 before anything else (the parser's own bound is
        // higher, so that the refusal still has the whole request for its log and audit record).
        if (headBytes(req.method ?? '', sentTarget(req), req.rawHeaders) > config.limits.maxHeaderBytes) throw new GatewayError('HEADERS_TOO_LARGE', 'The request headers are too large');
        if (!clientAllowed(req)) throw new GatewayError('CLIENT_NOT_ALLOWED', 'The client certificate is not allowed to call this gateway');
        if (!routed.ok) {
          // Ruling 25 before the route's 404/405: `DELETE /Appointment/{id}` with a body is its 400.
          const url = req.url ?? '';
          const q = url.indexOf('?');
          checkRequestSemantics({ method: req.method ?? '', path: '', query: q === -1 ? '' : url.slice(q + 1), headers: req.headers, repeated: repeatedHeaders(req.rawHeaders), httpVersion: req.httpVersion }, false);
          if (routed.code === 'ROUTE_NOT_FOUND') throw new GatewayError(routed.code, 'No interaction is served at this path');
          throw new GatewayError(routed.code, 'This method is not allowed at this path', { headers: { Allow: (routed.allowed ?? []).join(', ') } });
        }
        const io = bodyReader(req);
        await runChecks(plan.identity, ctx!, io, span);
        if (isGuarded(ctx!.interaction)) out = await guarded(req, res, ctx!, io, trail, requestId, span);
        else if (ctx!.interaction.kind === 'history' && routed.vid) {
          // As on a cancel: only `_format` — the query is not forwarded, and a version answered from
          // the store could not apply `_summary` or `_elements`: refused, not silently dropped.
          if (ctx!.request.query && !isAcceptedCancelQuery(ctx!.request.query)) {
            throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', { diagnostics: 'Only _format (json or xml) may be given on a version read', expression: 'http.query' });
          }
          const t0 = performance.now();
          // The client's end-to-end headers and the gateway's own X-Forwarded-*/Forwarded (ruling 25).
          const headers = forwardingHeaders(req, endToEnd(ctx!.request.headers));
          acceptFromFormatParam(ctx!.request.query, headers, deps.codecs);
          const tpOut = span.traceparent();
          if (tpOut) headers.traceparent = tpOut;
          // Ruling 21, as for every answer the gateway makes: `_format`, then Accept, then Content-Type, else JSON.
          const asked = answerCodec(req);
          // A failed version read took the provider's time too (README "Metrics").
          const answer = await history(ctx!.resourceId!, routed.vid, headers, asked).catch((e: unknown) => {
            throw Object.assign(e as object, { upstreamMs: performance.now() - t0 });
          });
          sendAnswer(res, answer, requestId);
          out = { status: answer.status, outcome: 'forwarded', forwardMs: performance.now() - t0, ...(answer.servedFrom ? { servedFrom: answer.servedFrom } : {}) };
        } else {
          // A body (a book's POST) is read within limits.maxBodyBytes first: 413 and nothing forwarded
          // beyond it, as for a cancel; then sent as read.
          // Ruling 25: only a FHIR body is passed on (a form body's `_method=DELETE` is the override
          // refused in headers and queries; Rack, Laravel and Symfony read it from the body too).
          // Like those refusals, never in report mode: no check after it reads a passthrough body.
          // (Methods without a body never carry one here: ruling 25 refused that before.)
          const framed = carriesBody(req.headers);
          // A Content-Type sent twice is refused, not guessed (Node keeps the first; README "Repeated headers").
          if (ctx!.request.repeated.has('content-type')) {
            throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', { diagnostics: 'Content-Type is sent more than once', expression: 'http.Content-Type' });
          }
          if (framed && !isAcceptedMediaType(header(ctx!.request, 'content-type'), standard.requestMediaTypes)) {
            throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', { diagnostics: 'A request body must be FHIR (JSON or XML)', expression: 'http.Content-Type' });
          }
          const body = framed ? await io.readBody(config.limits.maxBodyBytes) : undefined;
          fwd = await forwarder.forward(req, res, ctx!, requestId, span.traceparent(), body);
          // A provider error answer replaced by the gateway's OperationOutcome carries its code (README
          // "Errors"); an answer the provider cut after its status line went out is its failure.
          const code = fwd.code ?? (fwd.cut ? 'UPSTREAM_UNAVAILABLE' : undefined);
          // As on a cancel: a provider 5xx (replaced or passed on) is an error, a 4xx forwarded.
          out = { status: fwd.status, outcome: fwd.status === CLIENT_CLOSED || fwd.cut || (code !== undefined && fwd.status >= 500) ? 'error' : 'forwarded', forwardMs: fwd.upstreamMs, ...(code ? { code } : {}) };
        }
      } catch (e) {
        out = fail(e, req, res, ctx, requestId);
      } finally {
        metrics.inFlight.dec();
      }
      span.setAttributes({ 'http.status_code': out.status, 'gateway.outcome': out.outcome, 'gateway.code': out.code, 'ssp.trace_id': ctx ? ctx.traceId : wellFormedTraceId(req.headers), 'gateway.interaction': ctx?.interaction.name });
      span.end(out.outcome === 'error');
      record(req, ctx, trail, out, performance.now() - started, requestId, refusedWriteOf(req, routed));
    },
  };

  /**
   * Ruling 19 for a write refused at the route: a PUT, PATCH, DELETE or POST under `/Appointment/`
   * that no interaction serves (`DELETE /Appointment/{id}` 405, `PUT /Appointment/{id}/` 404) is a
   * change attempted on an appointment, and is audited — with the id when the path names one. Reads
   * (GET, HEAD, OPTIONS) refused there are not. `undefined`: not audited.
   */
  function refusedWriteOf(req: IncomingMessage, r: RouteResult): { appointmentId?: string } | undefined {
    // A method no one knows (`FOO`) at an appointment's path is recorded as a write attempt too.
    if (r.ok || !(WRITE_METHODS.has(req.method ?? '') || !KNOWN_METHODS.has(req.method ?? ''))) return undefined;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (basePath !== '' && !path.startsWith(basePath + '/')) return undefined;
    // `//Appointment/…`: a provider collapsing slashes would read it as the appointment's path.
    const m = APPOINTMENT_PATH.exec(path.slice(basePath.length).replace(/^\/+/, '/'));
    if (!m) return undefined;
    return m[1] !== undefined && ROUTABLE_ID.test(m[1]) ? { appointmentId: m[1] } : {};
  }

  /** The standard's interaction whose id the request's Ssp-InteractionID carries, if any. */
  function namedInteraction(req: IncomingMessage): Interaction | undefined {
    const sent = req.headers['ssp-interactionid'];
    return typeof sent === 'string' ? standard.interactions.find((i) => i.id === sent) : undefined;
  }

  /** One decision log line, the request metrics and, on a guarded route, one audit record (ruling 19). */
  function record(req: IncomingMessage, ctx: RequestContext | undefined, trail: WriteTrail, out: Outcome, totalMs: number, requestId: string | undefined, refusedWrite?: { appointmentId?: string }): void {
    // A provider call that failed still took the provider's time (README "Metrics": total minus provider time).
    const upstreamMs = (out.forwardMs ?? trail.writeMs ?? 0) + (trail.readMs ?? 0);
    const guardedRoute = ctx !== undefined && isGuarded(ctx.interaction);
    const route = ctx ? (guardedRoute ? 'cancel' : 'passthrough') : 'none';
    // What the decision is recorded as: the interaction the request was handled as, or when
    // Ssp-InteractionID named none of the route's enabled ones, what it named (a known id of the
    // standard, e.g. a disabled amend) or 'unknown'; never the route's default (ruling 19).
    const recorded = ctx === undefined ? undefined : ctx.interactionNamed || out.outcome === 'forwarded' ? ctx.interaction : namedInteraction(req);
    const interaction = ctx === undefined ? 'none' : recorded?.name ?? 'unknown';
    // A status the provider made up (599, 777) is 'other': it must not mint a metric series each.
    metrics.requests.inc({ route, interaction, outcome: out.outcome, status: STATUS_CODES[out.status] || out.status === CLIENT_CLOSED ? String(out.status) : 'other' });
    metrics.gatewayDuration.observe({ route }, Math.max(0, totalMs - upstreamMs) / 1000);
    if (!guardedRoute && out.forwardMs !== undefined) metrics.upstreamDuration.observe({ call: 'forward' }, out.forwardMs / 1000);
    const requester = ctx?.requester
      ? { odsCode: ctx.requester.odsCode, sdsUserId: ctx.requester.sdsUserId, practitionerId: ctx.requester.practitionerId, deviceId: ctx.requester.deviceId }
      : undefined;
    const wouldReject = trail.wouldReject.length ? trail.wouldReject : undefined;
    logger.info('decision', {
      traceId: ctx ? ctx.traceId : wellFormedTraceId(req.headers), requestId, method: req.method, route, interaction, appointmentId: ctx?.resourceId ?? refusedWrite?.appointmentId, ods: clip(requester?.odsCode),
      outcome: out.outcome, servedFrom: out.servedFrom, status: out.status, code: out.code, wouldReject, breaches: trail.breaches, inDoubt: trail.inDoubt,
      ms: Math.round(totalMs * 1000) / 1000, upstreamMs: Math.round(upstreamMs * 1000) / 1000, stages: ctx?.timings,
    });
    if (!guardedRoute) {
      if (refusedWrite) {
        audit.write({ time: new Date().toISOString(), traceId: wellFormedTraceId(req.headers), requestId, appointmentId: refusedWrite.appointmentId, interaction: namedInteraction(req)?.id, outcome: out.outcome, status: out.status, code: out.code });
      }
      return;
    }
    audit.write({
      time: new Date().toISOString(), traceId: ctx.traceId, requestId, appointmentId: ctx.resourceId, interaction: recorded?.id,
      outcome: out.outcome, status: out.status, code: out.code, requester,
      versionBefore: trail.versionBefore ?? ctx.ifMatchVersion, versionAfter: trail.versionAfter,
      differingPaths: trail.differingPaths, breaches: trail.breaches, inDoubt: trail.inDoubt, wouldReject,
    });
  }
}
