import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CheckPlan, Check, CheckIO } from './checks/index.js';
import type { Config } from './config.js';
import { createContext, repeatedHeaders, type RequestContext } from './context.js';
import { GatewayError, isGatewayError, type ErrorCode } from './errors.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { AuditSink } from './ops/audit.js';
import { CLIENT_CLOSED, type Forwarder, type ForwardResult } from './proxy/forward.js';
import { KeyedSerializer } from './proxy/serialize.js';
import { sendError } from './respond.js';
import type { RouteResult } from './route.js';
import type { Standard } from './standards/index.js';

export interface PipelineDeps {
  config: Readonly<Config>;
  standard: Standard;
  plan: CheckPlan;
  router: (method: string, path: string) => RouteResult;
  forwarder: Forwarder;
  logger: Logger;
  metrics: Metrics;
  audit: AuditSink;
  /** The client certificate allow-list (ruling 1: part of the TLS step, before the route). */
  clientAllowed: (req: IncomingMessage) => boolean;
  /** While draining, every answer closes its connection. */
  draining: () => boolean;
  /** Shared across configuration reloads, so ruling 10 holds while two pipelines overlap. */
  serializer?: KeyedSerializer;
}

/** X-Request-ID is echoed as X-Correlation-ID only when it is a sane token. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Read the body up to `limit` bytes (413 beyond, checked on Content-Length first). */
export function bodyReader(req: IncomingMessage): CheckIO {
  return {
    readBody(limit) {
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > limit) return Promise.reject(new GatewayError('BODY_TOO_LARGE', `The body is over ${limit} bytes`));
      return new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const onData = (c: Buffer) => {
          size += c.length;
          if (size > limit) {
            cleanup();
            reject(new GatewayError('BODY_TOO_LARGE', `The body is over ${limit} bytes`));
            return;
          }
          chunks.push(c);
        };
        const onEnd = () => {
          cleanup();
          resolve(Buffer.concat(chunks, size));
        };
        const onAbort = () => {
          cleanup();
          reject(new GatewayError('REQUEST_MALFORMED', 'The request body was cut short'));
        };
        const cleanup = () => {
          req.off('data', onData);
          req.off('end', onEnd);
          req.off('aborted', onAbort);
          req.off('error', onAbort);
        };
        req.on('data', onData);
        req.on('end', onEnd);
        req.on('aborted', onAbort);
        req.on('error', onAbort);
      });
    },
  };
}

/**
 * Runs the checks in the plan's order, times them, applies report mode, serializes cancels per
 * appointment, forwards, and writes one decision log line, metrics and (cancel route) one audit
 * record per request. Every thrown GatewayError becomes an OperationOutcome; anything else is a
 * 500 INTERNAL_ERROR and nothing is forwarded (fail closed).
 */
export function createPipeline(deps: PipelineDeps) {
  const { config, standard, plan, router, forwarder, logger, metrics, audit, clientAllowed, draining } = deps;
  const serializer = deps.serializer ?? new KeyedSerializer();
  const basePath = config.basePath;

  async function runChecks(checks: readonly Check[], ctx: RequestContext, io: CheckIO): Promise<void> {
    for (const check of checks) {
      if (check.needs?.some((n) => ctx[n] === undefined)) continue; // an earlier report-mode failure
      const t0 = performance.now();
      try {
        // Only the checks that do I/O return a promise: awaiting the others' undefined suspended
        // the request once per check, and the stage timings counted whatever ran in between
        // (issue 6 profile).
        const pending = check.run(ctx, io);
        if (pending) await pending;
      } catch (e) {
        if (isGatewayError(e) && check.family && config.report[check.family] === 'report' && e.code !== 'BODY_TOO_LARGE' && e.code !== 'REQUEST_MALFORMED') {
          ctx.wouldReject.push({ family: check.family, code: e.code });
          metrics.wouldReject.inc({ family: check.family, code: e.code });
          logger.warn('would reject (report mode)', { traceId: ctx.traceId, check: check.name, code: e.code });
          continue;
        }
        throw e;
      } finally {
        const ms = performance.now() - t0;
        ctx.timings[check.name] = ms;
        metrics.stageDuration.observe({ stage: check.name }, ms / 1000);
      }
    }
  }

  return {
    serializer,
    async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
      const started = performance.now();
      metrics.inFlight.inc();
      const rid = req.headers['x-request-id'];
      const requestId = typeof rid === 'string' && REQUEST_ID.test(rid) ? rid : undefined;
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const fullPath = q === -1 ? url : url.slice(0, q);
      let ctx: RequestContext | undefined;
      let status = 500;
      let code: ErrorCode | undefined;
      let outcome: 'forwarded' | 'rejected' | 'error' = 'rejected';
      let result: ForwardResult | undefined;
      try {
        const below = fullPath.startsWith(basePath + '/') || basePath === '' ? fullPath.slice(basePath.length) : undefined;
        const route = below === undefined ? ({ ok: false, code: 'ROUTE_NOT_FOUND' } as const) : router(req.method ?? '', below);
        // The route is known first only so that a refused cancel is still audited.
        if (route.ok) ctx = createContext({ method: req.method!, path: below!, query: q === -1 ? '' : url.slice(q + 1), headers: req.headers, repeated: repeatedHeaders(req.rawHeaders) }, route.candidates, route.id);
        if (!clientAllowed(req)) throw new GatewayError('CLIENT_NOT_ALLOWED', 'The client certificate is not allowed to call this gateway');
        if (!route.ok) {
          if (route.code === 'ROUTE_NOT_FOUND') throw new GatewayError(route.code, 'No interaction is served at this path');
          throw new GatewayError(route.code, 'This method is not allowed at this path', { headers: { Allow: (route.allowed ?? []).join(', ') } });
        }
        ctx = ctx!; // route.ok: built above
        const io = bodyReader(req);
        await runChecks(plan.identity, ctx, io);
        if (ctx.interaction.kind === 'cancel') {
          const c = ctx;
          await runChecks(plan.cancelBeforeProvider, c, io);
          // Report mode may have let a bodiless request through; read it now so it can be forwarded.
          if (!c.rawBody) c.rawBody = await io.readBody(config.limits.maxBodyBytes);
          result = await serializer.run(c.resourceId!, async () => {
            await runChecks(plan.cancelWithProvider, c, io);
            return forwarder.forward(req, res, c, c.rawBody, requestId);
          });
        } else {
          result = await forwarder.forward(req, res, ctx, undefined, requestId);
        }
        status = result.status;
        // 499: the client left before the answer; what the provider did is unknown.
        outcome = status === CLIENT_CLOSED ? 'error' : 'forwarded';
      } catch (e) {
        let err: GatewayError;
        if (isGatewayError(e)) err = e;
        else {
          logger.error('internal error', { traceId: ctx?.traceId, error: (e as Error)?.message ?? String(e) });
          err = new GatewayError('INTERNAL_ERROR', 'Unexpected internal error; the request was not forwarded');
          outcome = 'error';
        }
        code = err.code;
        // A body we did not read leaves the connection in an unknown state: close it.
        const close = err.code === 'BODY_TOO_LARGE' || err.code === 'REQUEST_MALFORMED' || draining();
        status = sendError(res, err, standard, requestId, close);
        if (status >= 500) outcome = 'error';
        metrics.rejections.inc({ code: err.code });
      } finally {
        metrics.inFlight.dec();
      }
      const totalMs = performance.now() - started;
      const upstreamMs = (result?.upstreamMs ?? 0) + (ctx?.timings.current ?? 0);
      const route = ctx ? (ctx.interaction.kind === 'cancel' ? 'cancel' : 'passthrough') : 'none';
      const interaction = ctx?.interaction.name ?? 'none';
      metrics.requests.inc({ route, interaction, outcome, status: String(status) });
      metrics.gatewayDuration.observe({ route }, Math.max(0, totalMs - upstreamMs) / 1000);
      if (result) metrics.upstreamDuration.observe({ call: 'forward' }, result.upstreamMs / 1000);
      if (ctx?.timings.current !== undefined) metrics.upstreamDuration.observe({ call: 'read' }, ctx.timings.current / 1000);
      const requester = ctx?.requester
        ? { odsCode: ctx.requester.odsCode, sdsUserId: ctx.requester.sdsUserId, practitionerId: ctx.requester.practitionerId, deviceId: ctx.requester.deviceId }
        : undefined;
      logger.info('decision', {
        traceId: ctx?.traceId,
        requestId,
        method: req.method,
        route,
        interaction,
        appointmentId: ctx?.resourceId,
        ods: requester?.odsCode,
        outcome,
        status,
        code,
        wouldReject: ctx?.wouldReject.length ? ctx.wouldReject : undefined,
        ms: Math.round(totalMs * 1000) / 1000,
        upstreamMs: Math.round(upstreamMs * 1000) / 1000,
        stages: ctx?.timings,
      });
      if (ctx?.interaction.kind === 'cancel') {
        audit.write({
          time: new Date().toISOString(),
          traceId: ctx.traceId,
          requestId,
          appointmentId: ctx.resourceId,
          interaction: ctx.interaction.id,
          outcome,
          status,
          code,
          requester,
          versionBefore: ctx.current?.version ?? ctx.ifMatchVersion,
          versionAfter: result?.versionAfter,
          differingPaths: ctx.differingPaths,
          wouldReject: ctx.wouldReject.length ? ctx.wouldReject : undefined,
        });
      }
    },
  };
}
