import { createHash } from 'node:crypto';
import type { ReportFamily } from '../config.js';
import { GatewayError, isGatewayError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Clock } from '../ports/clock.js';
import type { Codec } from '../ports/codec.js';
import { reportOnly } from '../checks/report-mode.js';
import { LockUnavailable, type HeldLock, type LockPort } from '../ports/lock.js';
import { ProviderFailure, type ExchangeOptions, type ProviderPort } from '../ports/provider.js';
import type { TraceSpan } from '../ports/tracer.js';
import type { Decision, VaultPort } from '../ports/vault.js';
import type { ChangeSet } from '../standards/types.js';
import { narrativesAsXmlReadsThem } from '../fhir/xml/narrative.js';
import { answerFromWrite, codeForProviderStatus, isNewVersion, providerRefusal, type ClientAnswer } from './answer.js';
import { changeIssues } from './change-rules.js';
import { codecFor, currentFromAnswer, type CurrentVersion } from './read-current.js';

/** A guarded write (cancel or amend) that passed every check that needs only the request. */
export interface WriteRequest {
  id: string;
  kind: 'cancel' | 'amend';
  /** The version If-Match named; undefined when absent (GP Connect allows it). */
  ifMatch: string | undefined;
  /** The submitted resource, decoded from `body`. */
  submitted: Record<string, unknown> | undefined;
  /** The exact bytes received: what the provider gets. */
  body: Buffer;
  /** Headers for the provider's read (identity, tracing; the read interaction id). */
  readHeaders: Record<string, string>;
  /** Headers for the provider's write, built from the allow-list by the edge. */
  writeHeaders: Record<string, string>;
  preferMinimal: boolean;
  decision: Decision;
  /** The request's span: provider calls become its children and carry their traceparent. */
  span?: TraceSpan;
  /** Whether the client has gone (reset, not a half-close): asked once more before anything is kept or forwarded. */
  clientGone?: () => boolean;
}

/**
 * The client left while its write was being decided (the lock, the provider's read): nothing is
 * kept or forwarded for it — no one would learn the outcome of a change made now (the caller
 * records a 499, outcome error, no answer made).
 */
export class ClientLeftBeforeForward extends Error {
  constructor() {
    super('the client left before the write was forwarded');
    this.name = 'ClientLeftBeforeForward';
  }
}

/** The provider sees the gateway's span as its parent (W3C Trace Context). */
function withTrace(headers: Record<string, string>, span: TraceSpan | undefined): Record<string, string> {
  const tp = span?.traceparent();
  return tp ? { ...headers, traceparent: tp } : headers;
}

/** What the transaction learnt, for the decision log and the audit record (written by the caller). */
export interface WriteTrail {
  versionBefore?: string;
  versionAfter?: string;
  differingPaths?: string[];
  /** Contract breaches of the provider's answer (rulings 12, 26), for the audit record and the log line. */
  breaches?: string[];
  /** The forwarded write's outcome is unknown (timed out or cut after it went out, a redirect): it may have been applied. */
  inDoubt?: true;
  readMs?: number;
  writeMs?: number;
  /** Report mode: rules that failed but were only reported. */
  wouldReject: Array<{ family: ReportFamily; code: ErrorCode }>;
  /** Milliseconds per stage (current, version, diff, keep, forward), for the log line. */
  timings?: Record<string, number>;
}

export interface TransactionDeps {
  provider: ProviderPort;
  lock: LockPort;
  vault: VaultPort;
  clock: Clock;
  codecs: readonly Codec[];
  changeSets: { cancel: ChangeSet; amend?: ChangeSet };
  logger: Logger;
  metrics: Metrics;
  publicBaseUrl: string;
  /** Report mode per family (issue 7): version and businessRules may be report-only. */
  report: Readonly<Record<ReportFamily, 'enforce' | 'report'>>;
  /** inDoubtHoldMs: how long a write in doubt keeps the appointment locked after it (default upstreamMs). */
  timeouts: { upstreamMs: number; bodyMs: number; inDoubtHoldMs?: number; lockWaitMs: number; maxAnswerBytes: number };
  /** Where a write in doubt registers its hold while it lasts (the process waits them out before it exits). */
  holdsInDoubt?: Set<Promise<void>>;
}

/**
 * The provider half of a guarded write, in order (issue 12, rulings 8-12 and 22-26):
 *   hold the appointment's lock -> read the current version -> version check -> change rules and
 *   diff -> keep the pre-image -> write to the provider -> link the new version -> the answer.
 * The lock is held until the provider's side of the write is over (ruling 23), whatever the
 * client does. Failures before the write are GatewayErrors (nothing forwarded); after the provider
 * accepted the write, problems are logged and counted, never turned into a failure (ruling 12).
 */
/** What the client is told when the read of the current appointment failed, by the failure's kind. */
const READ_FAILED: Partial<Record<string, string>> = {
  timeout: 'The provider did not answer the read in time',
  'slow-body': 'The provider sent the current appointment too slowly',
  'too-large': 'The provider sent a current appointment over the size limit',
};

export function createWriteTransaction(deps: TransactionDeps) {
  const { provider, lock, vault, clock, codecs, logger, metrics } = deps;
  const exchange: ExchangeOptions = { deadlineMs: deps.timeouts.upstreamMs, bodyDeadlineMs: deps.timeouts.bodyMs, maxBytes: deps.timeouts.maxAnswerBytes };

  /** Report mode: a failing rule of a report-only family is recorded and the write goes on. */
  function enforce(req: WriteRequest, trail: WriteTrail, family: ReportFamily, rule: () => void): void {
    try {
      rule();
    } catch (e) {
      if (!isGatewayError(e) || !reportOnly(deps.report, family)) throw e;
      trail.wouldReject.push({ family, code: e.code });
      metrics.wouldReject.inc({ family, code: e.code });
      logger.warn('would reject (report mode)', { traceId: req.decision.traceId, family, check: family, code: e.code });
    }
  }

  async function readCurrent(req: WriteRequest, trail: WriteTrail): Promise<CurrentVersion> {
    let answer;
    const span = req.span?.child('provider read', { 'http.method': 'GET' });
    const t0 = performance.now();
    try {
      answer = await provider.read(`Appointment/${encodeURIComponent(req.id)}`, withTrace(req.readHeaders, span), exchange);
      span?.setAttributes({ 'http.status_code': answer.status });
      span?.end();
    } catch (e) {
      span?.end(true);
      // Time spent on the provider counts as the provider's, answered or not (README "Metrics").
      trail.readMs = performance.now() - t0;
      metrics.upstreamDuration.observe({ call: 'read' }, trail.readMs / 1000);
      const kind = e instanceof ProviderFailure ? e.kind : 'other';
      metrics.upstreamErrors.inc({ kind });
      throw new GatewayError('UPSTREAM_UNAVAILABLE', READ_FAILED[kind] ?? 'The provider could not be reached to read the current appointment');
    }
    trail.readMs = answer.ms;
    metrics.upstreamDuration.observe({ call: 'read' }, answer.ms / 1000);
    return currentFromAnswer(req.id, answer, codecs, (kind) => metrics.upstreamErrors.inc({ kind }), deps.timeouts.maxAnswerBytes);
  }

  function decide(req: WriteRequest, current: CurrentVersion, trail: WriteTrail): void {
    const t0 = performance.now();
    enforce(req, trail, 'version', () => {
      if (req.ifMatch !== undefined && req.ifMatch !== current.version) {
        throw new GatewayError('VERSION_CONFLICT', { diagnostics: 'If-Match does not name the current version of the appointment', expression: 'http.If-Match' });
      }
    });
    const set = deps.changeSets[req.kind];
    if (!set) throw new GatewayError('INTERACTION_MISMATCH', 'This change is not enabled');
    timed(trail, 'version', t0, undefined);
    if (!req.submitted) return; // an unreadable body reported, with the profile and the business rules (checks/report-mode.ts): nothing to compare
    const t1 = performance.now();
    try {
      enforce(req, trail, 'businessRules', () => {
      // A narrative that went through XML (the body, or the provider's read) is in the XML decoder's
      // canonical form: compare both sides in that form, like with like.
      const viaXml = codecFor(req.writeHeaders['content-type'], codecs).format === 'xml' || codecFor(current.mediaType, codecs).format === 'xml';
      const stored = viaXml ? narrativesAsXmlReadsThem(current.resource) : current.resource;
      const submitted = viaXml ? narrativesAsXmlReadsThem(req.submitted!, { strict: true }) : req.submitted!;
      const { issues, paths } = changeIssues(set, stored, submitted, clock.now());
      if (issues.length) {
        trail.differingPaths = paths;
        throw new GatewayError('BUSINESS_RULE', issues);
      }
      });
    } finally {
      timed(trail, 'diff', t1, undefined);
    }
  }

  async function keepPreImage(req: WriteRequest, current: CurrentVersion, held: HeldLock): Promise<string> {
    try {
      let sha256: string | undefined;
      return await vault.keep({
        preImage: {
          appointmentId: req.id, versionId: current.version, body: current.body, mediaType: current.mediaType,
          // Hashed only by a vault that stores it (none with store kind memory).
          get sha256() {
            return (sha256 ??= createHash('sha256').update(current.body).digest('hex'));
          },
          readAt: clock.now(), lastUpdated: current.lastUpdated,
        },
        decision: req.decision,
      }, held);
    } catch (e) {
      metrics.storeErrors?.inc({ kind: 'keep' });
      logger.error('the pre-image could not be kept; nothing forwarded', { traceId: req.decision.traceId, error: (e as Error)?.name });
      throw new GatewayError('INTERNAL_ERROR', 'The previous version could not be kept, so the change was not forwarded');
    }
  }

  async function write(req: WriteRequest, trail: WriteTrail) {
    const span = req.span?.child('provider write', { 'http.method': 'PUT' });
    const t0 = performance.now();
    try {
      const answer = await provider.write(`Appointment/${encodeURIComponent(req.id)}`, req.body, withTrace(req.writeHeaders, span), exchange);
      span?.setAttributes({ 'http.status_code': answer.status });
      span?.end();
      trail.writeMs = answer.ms;
      metrics.upstreamDuration.observe({ call: 'forward' }, answer.ms / 1000);
      return answer;
    } catch (e) {
      span?.end(true);
      trail.writeMs = performance.now() - t0;
      metrics.upstreamDuration.observe({ call: 'forward' }, trail.writeMs / 1000);
      const f = e instanceof ProviderFailure ? e : new ProviderFailure('other', String(e), undefined, true);
      metrics.upstreamErrors.inc({ kind: f.kind });
      // Ruling 11: a refusal (4xx, 5xx) whose body was then cut, too slow or too large is still the
      // provider's refusal: its status is kept with the gateway's OperationOutcome, not in doubt.
      const refused = f.statusSeen;
      if (refused !== undefined && refused >= 400 && refused <= 599) throw providerRefusal(codeForProviderStatus(refused), refused, f.headersSeen ?? {});
      const when = f.kind === 'timeout' ? 'did not answer in time' : f.kind === 'slow-body' ? 'sent its answer too slowly' : f.kind === 'too-large' ? 'sent an answer over the size limit' : 'could not be reached or cut the exchange short';
      const inDoubt = f.mayHaveApplied || f.statusSeen === 200;
      if (inDoubt) trail.inDoubt = true;
      const applied = inDoubt ? '; the write may have been applied by the provider: read the appointment before retrying' : '';
      const err = new GatewayError('UPSTREAM_UNAVAILABLE', `The provider ${when}${applied}`);
      throw inDoubt ? Object.assign(err, { inDoubt: true }) : err;
    }
  }

  /** After the provider's success: link the new version; a failure is logged and counted only. */
  async function linkNewVersion(req: WriteRequest, keptId: string, versionBefore: string, answer: ClientAnswer, held: HeldLock): Promise<void> {
    if (!answer.versionAfter) return;
    try {
      // Only an answer read as this Appointment is kept as its bytes: an HTML page or an empty body
      // must never be served later as the version (a vread from the vault, a restore).
      // Nor is a body kept under a version that is not new (the provider answered with the version it
      // was asked to change, or a lower number): it would shadow the pre-image kept under that id.
      // A content-coded answer is kept decoded (the vault serves bytes by their media type alone).
      const plain = answer.decodedBody ?? answer.body;
      const keepBody = plain.length > 0 && !answer.breaches.includes('body-not-json') && isNewVersion(answer.versionAfter, versionBefore);
      await vault.link(keptId, { versionId: answer.versionAfter, lastUpdated: answer.lastUpdated, body: keepBody ? plain : undefined, mediaType: String(answer.headers['content-type'] ?? ''), at: clock.now() }, held);
    } catch (e) {
      metrics.storeErrors?.inc({ kind: 'link' });
      logger.error('the new version could not be linked in the vault (reconcile later)', { traceId: req.decision.traceId, appointmentId: req.id, error: (e as Error)?.name });
    }
  }

  /** Time a stage into the trail and the stage histogram (the per-stage profile of issue 6). */
  function timed<T>(trail: WriteTrail, stage: string, t0: number, value: T): T {
    const ms = performance.now() - t0;
    if (trail.timings) trail.timings[stage] = ms;
    metrics.stageDuration.observe({ stage }, ms / 1000);
    return value;
  }

  /**
   * Read, decide, keep. The current version and the submitted resource are let go before the
   * write (issue 17): nothing parsed lives on while the provider answers, so young garbage dies
   * young instead of being copied and promoted under load.
   */
  async function prepare(req: WriteRequest, trail: WriteTrail, held: HeldLock): Promise<{ keptId: string; versionBefore: string }> {
    let t0 = performance.now();
    const current = timed(trail, 'current', t0, await readCurrent(req, trail));
    trail.versionBefore = current.version;
    decide(req, current, trail);
    req.submitted = undefined;
    if (req.clientGone?.()) throw new ClientLeftBeforeForward();
    t0 = performance.now();
    const keptId = timed(trail, 'keep', t0, await keepPreImage(req, current, held));
    return { keptId, versionBefore: current.version };
  }

  /**
   * Rulings 10 and 23: a write whose outcome is in doubt (the provider may still apply it: a
   * timeout or a connection lost after the request went out) keeps the appointment locked for
   * another `upstream.timeoutMs` after the client got its 500, so a second write of the same
   * version cannot overtake it; the next holder then reads what the provider made of the first.
   * The client's answer is not delayed: the lock is held on, the answer goes now.
   */
  /** The in-doubt holds running now (shutdown waits them out: ruling 23 whatever the store). */
  const holdsInDoubt = deps.holdsInDoubt ?? new Set<Promise<void>>();

  /** Writes still waiting for their appointment's lock (nothing forwarded yet), by their refusal. */
  const waiting = new Set<(e: Error) => void>();

  /** Past the shutdown deadline: no write starts waiting for a lock any more. */
  let stopped = false;
  const shuttingDown = () => new GatewayError('UPSTREAM_UNAVAILABLE', 'The gateway is shutting down: nothing was forwarded');

  function holdThroughDoubt<T>(id: string, traceId: string | undefined, fn: (held: HeldLock) => Promise<T>): Promise<T> {
    if (stopped) return Promise.reject(shuttingDown());
    return new Promise<T>((resolve, reject) => {
      let abandoned = false;
      const giveUp = (e: Error): void => {
        abandoned = true;
        reject(e);
      };
      waiting.add(giveUp);
      lock
        .hold(id, { waitMs: deps.timeouts.lockWaitMs }, async (held) => {
          waiting.delete(giveUp);
          if (abandoned) return; // answered at the shutdown deadline: the lock is let go at once
          try {
            resolve(await fn(held));
          } catch (e) {
            reject(e);
            if ((e as { inDoubt?: boolean }).inDoubt) {
              const holdMs = deps.timeouts.inDoubtHoldMs ?? deps.timeouts.upstreamMs;
              logger.warn('the write is in doubt: the appointment stays locked while the provider may still apply it', { traceId, appointmentId: id, holdMs });
              const hold = new Promise<void>((done) => clock.setTimer(done, holdMs));
              holdsInDoubt.add(hold);
              await hold;
              holdsInDoubt.delete(hold);
            }
          }
        })
        .catch((e: unknown) => {
          waiting.delete(giveUp);
          reject(e);
        });
    });
  }

  /**
   * Past the shutdown deadline (ruling 19): every write still waiting for its appointment's lock
   * (behind a write in doubt, say) is answered now — 500, nothing forwarded — instead of being cut
   * with its connection; it lets the lock go untouched when it comes.
   */
  function abortWaiting(): void {
    stopped = true; // one whose checks end after the deadline is refused at once too
    for (const giveUp of [...waiting]) giveUp(shuttingDown());
    waiting.clear();
  }

  async function run(req: WriteRequest, trail: WriteTrail): Promise<ClientAnswer> {
    try {
      return await holdThroughDoubt(req.id, req.decision.traceId, async (held) => {
        const { keptId, versionBefore } = await prepare(req, trail, held);
        const providerAnswer = await write(req, trail);
        let answer: ClientAnswer;
        try {
          answer = answerFromWrite({ id: req.id, kind: req.kind, versionBefore, preferMinimal: req.preferMinimal, publicBaseUrl: deps.publicBaseUrl, maxDecodedBytes: deps.timeouts.maxAnswerBytes }, providerAnswer, codecs);
        } catch (e) {
          const breach = (e as { breach?: string }).breach;
          if (breach) reportBreaches(req, trail, [breach]);
          else if (isGatewayError(e) && e.code === 'UPSTREAM_UNAVAILABLE') metrics.upstreamErrors.inc({ kind: (e as { upstreamKind?: string }).upstreamKind ?? 'redirect' });
          // Not passed on, yet the provider may have applied it (a redirect, another resource named).
          if (isGatewayError(e) && e.code === 'UPSTREAM_UNAVAILABLE') trail.inDoubt = true;
          else if (isGatewayError(e)) metrics.upstreamErrors.inc({ kind: 'status' });
          throw e;
        }
        trail.versionAfter = answer.versionAfter;
        // A 5xx passed on with the provider's own OperationOutcome is still its failure.
        if (answer.status >= 500) metrics.upstreamErrors.inc({ kind: 'status' });
        if (answer.status < 300) {
          reportBreaches(req, trail, answer.breaches);
          await linkNewVersion(req, keptId, versionBefore, answer, held);
        }
        return answer;
      });
    } catch (e) {
      if (e instanceof LockUnavailable) {
        metrics.storeErrors?.inc({ kind: `lock-${e.reason}` });
        logger.error('the appointment lock could not be taken; nothing forwarded', { traceId: req.decision.traceId, reason: e.reason, error: e.message.slice(0, 200) });
        throw new GatewayError('INTERNAL_ERROR', e.reason === 'timeout' ? 'The appointment is being changed by another request; try again' : 'The lock store is unavailable; nothing was forwarded');
      }
      throw e;
    }
  }

  function reportBreaches(req: WriteRequest, trail: WriteTrail, breaches: readonly string[]): void {
    if (breaches.length) trail.breaches = [...(trail.breaches ?? []), ...breaches];
    for (const b of breaches) {
      metrics.contractBreaches.inc({ reason: b });
      logger.warn('provider answer breaks the contract', { traceId: req.decision.traceId, appointmentId: req.id, reason: b });
    }
  }

  return { run, abortWaiting };
}

export type WriteTransaction = ReturnType<typeof createWriteTransaction>;
