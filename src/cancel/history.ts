import { GatewayError } from '../errors.js';
import { isOperationOutcome } from '../fhir/operation-outcome.js';
import { parseInstant } from '../fhir/instant.js';
import { decodedBody } from '../http/content-coding.js';
import { clientEtag, isEntityTag, providerEtagVersion, versionIdOf } from '../http/entity-tag.js';
import type { Codec } from '../ports/codec.js';
import { ProviderFailure, type ExchangeOptions, type ProviderAnswer, type ProviderPort } from '../ports/provider.js';
import type { VaultPort } from '../ports/vault.js';
import { codeForProviderStatus, passedBack, providerRefusal, type ClientAnswer } from './answer.js';
import { codecFor } from './read-current.js';

/**
 * Provider answers after which the kept version is served (ruling 22: "a vread the provider cannot
 * answer"): "I keep no such version" (404, 405, 410, 501), a server error (5xx) or a redirect (never
 * followed) — a kept version never changes, so the provider's trouble need not hide it (as a
 * timeout does not) — or a success that is not the version (a 2xx other than 200: a vread's answer
 * is the resource with 200).
 */
const cannotAnswer = (status: number): boolean => status === 404 || status === 405 || status === 410 || failureOf(status) !== undefined;

/** The upstream-error kind a provider answer counts as, or undefined for an answer that is not a failure. */
function failureOf(status: number): 'status' | 'redirect' | undefined {
  if (status >= 500 || (status > 200 && status < 300)) return 'status';
  if (status >= 300 && status < 400 && status !== 304) return 'redirect';
  return undefined;
}

/**
 * A version read (`GET …/Appointment/{id}/_history/{vid}`, ruling 22): forwarded to the provider;
 * when it cannot answer for a version the vault holds, the gateway answers from the vault with the
 * stored bytes, ETag and Last-Modified. So every Location a cancel returns leads somewhere.
 */
export function createHistoryRead(deps: {
  provider: ProviderPort; vault: VaultPort; codecs: readonly Codec[]; exchange: ExchangeOptions;
  onVaultAnswer?: () => void;
  /** The store of kept versions could not be read (the caller logs it; the store adapter counts it). */
  onVaultError?: (e: unknown) => void;
  /** A failed provider call, by kind (cancel_gateway_upstream_errors_total, as for every other call). */
  onUpstreamError?: (kind: string) => void;
  /** The clock If-Modified-Since is judged by (a date in the future is ignored). */
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  /** The kept version, or undefined when none is kept or the store cannot be read (reported). */
  const keptVersion = (id: string, vid: string) =>
    deps.vault.version(id, vid).catch((e: unknown) => {
      deps.onVaultError?.(e);
      return undefined;
    });
  /** `wanted`: the format the client negotiated (ruling 21: JSON when it named none); a kept version in another format is re-encoded in it. */
  return async (id: string, vid: string, headers: Record<string, string>, wanted?: Codec): Promise<ClientAnswer> => {
    let answer;
    try {
      answer = await deps.provider.read(`Appointment/${encodeURIComponent(id)}/_history/${encodeURIComponent(vid)}`, headers, deps.exchange);
    } catch (e) {
      deps.onUpstreamError?.(e instanceof ProviderFailure ? e.kind : 'other');
      // A refusal whose body was then cut, slow or too large is still the provider's refusal (ruling
      // 11): one the kept versions do not replace when complete (a 400, 403, 429…) is not replaced
      // when cut either; "no such version" or a 5xx falls back to them as when complete.
      const refused = e instanceof ProviderFailure ? e.statusSeen : undefined;
      const refusal = refused !== undefined && refused >= 400 && refused <= 599 ? providerRefusal(codeForProviderStatus(refused), refused, (e as ProviderFailure).headersSeen ?? {}) : undefined;
      if (refusal && !cannotAnswer(refused!)) throw refusal;
      const kept = await keptVersion(id, vid);
      if (kept) {
        deps.onVaultAnswer?.();
        return fromVault(kept, wanted, headers);
      }
      if (refusal) throw refusal;
      throw new GatewayError('UPSTREAM_UNAVAILABLE', e instanceof ProviderFailure && e.kind === 'timeout' ? 'The provider did not answer in time' : 'The provider could not be reached');
    }
    if (answer.status === 200) {
      const out = passedBack(answer.headers);
      const tagged = providerEtagVersion(answer.headers.etag as string | string[] | undefined);
      let metaVersion: string | undefined;
      if (!isEntityTag(out.etag) || tagged === undefined) {
        const d = codecFor(answer.headers['content-type'], deps.codecs).decode(plainBody(answer, deps.exchange.maxBytes), { maxDepth: 64, maxNodes: 200_000 });
        metaVersion = d.ok ? versionIdOf(d.resource.meta) : undefined;
        const etag = clientEtag(answer.headers.etag as string | string[] | undefined, metaVersion);
        if (etag === undefined) delete out.etag;
        else out.etag = etag;
      }
      // A 200 naming another version (a provider that keeps none answers with its current one) is
      // no answer for this one: the kept version when there is one, else the provider's failure.
      const named = typeof tagged === 'string' ? tagged : metaVersion;
      if (named !== undefined && named !== vid) {
        deps.onUpstreamError?.('status');
        const kept = await keptVersion(id, vid);
        if (kept) {
          deps.onVaultAnswer?.();
          return fromVault(kept, wanted, headers);
        }
        throw new GatewayError('UPSTREAM_UNAVAILABLE', 'The provider answered this version read with another version');
      }
      return { status: 200, headers: out, body: answer.body, breaches: [] };
    }
    const failure = failureOf(answer.status);
    const oddSuccess = answer.status > 200 && answer.status < 300;
    // A 5xx or a redirect failed whatever is kept; an odd 2xx only when the kept version replaces it.
    if (failure && !oddSuccess) deps.onUpstreamError?.(failure);
    if (cannotAnswer(answer.status)) {
      let kept;
      try {
        kept = await deps.vault.version(id, vid);
      } catch (e) {
        deps.onVaultError?.(e);
        // A store that cannot be read says nothing about the version: the provider's "no such
        // version" (or its redirect) is not the answer (the client may retry the 500); its own 5xx
        // and an odd 2xx stand.
        if (answer.status < 500 && !oddSuccess) throw new GatewayError('INTERNAL_ERROR', 'The provider did not give this version and the store of kept versions is unavailable; try again');
      }
      if (kept) {
        if (oddSuccess) deps.onUpstreamError?.('status');
        deps.onVaultAnswer?.();
        return fromVault(kept, wanted, headers);
      }
    }
    // A 304 answers the client's own conditional headers (If-None-Match, forwarded by ruling 11):
    // passed on, without a body; any other 3xx is a redirect, never followed.
    if (answer.status === 304) return { status: 304, headers: passedBack(answer.headers), body: Buffer.alloc(0), breaches: [] };
    if (answer.status >= 300 && answer.status < 400) throw new GatewayError('UPSTREAM_UNAVAILABLE', 'The provider answered with a redirect');
    const body = plainBody(answer, deps.exchange.maxBytes);
    const d = body.length ? codecFor(answer.headers['content-type'], deps.codecs).decode(body, { maxDepth: 64, maxNodes: 200_000 }) : undefined;
    if (answer.status >= 400 && !(d?.ok && isOperationOutcome(d.resource))) {
      throw providerRefusal(codeForProviderStatus(answer.status), answer.status, answer.headers);
    }
    return { status: answer.status, headers: passedBack(answer.headers), body: answer.body, breaches: [] };
  };

  /**
   * The kept bytes as stored; when the format negotiated (ruling 21: `_format`, `Accept`, `Content-Type`, else JSON)
   * is the other one and the kept bytes read cleanly, the same resource re-encoded in it, as a FHIR
   * server would.
   */
  function fromVault(kept: { body: Buffer; mediaType: string; versionId: string; lastUpdated?: string }, wanted: Codec | undefined, asked: Record<string, string> = {}): ClientAnswer {
    const etag = `W/"${kept.versionId}"`;
    const t = kept.lastUpdated ? parseInstant(kept.lastUpdated) ?? NaN : NaN;
    const lastModified = Number.isFinite(t) ? new Date(t).toUTCString() : undefined;
    // The format follows _format (in the URL), then Accept, then the request's Content-Type (ruling 21).
    const vary = { vary: 'Accept, Content-Type' };
    // RFC 9110 §13.1.2-3: If-None-Match by weak comparison, else If-Modified-Since: the client already has this version.
    const inm = asked['if-none-match'];
    const ims = inm === undefined ? httpDate(asked['if-modified-since'], now()) : NaN;
    if ((inm !== undefined && noneMatchHits(inm, kept.versionId)) || (Number.isFinite(ims) && Number.isFinite(t) && Math.floor(t / 1000) * 1000 <= ims)) {
      return { status: 304, headers: { etag, ...vary, ...(lastModified ? { 'last-modified': lastModified } : {}) }, body: Buffer.alloc(0), breaches: [], servedFrom: 'vault' };
    }
    let body = kept.body;
    let contentType = kept.mediaType || 'application/fhir+json; charset=utf-8';
    const stored = codecFor(contentType, deps.codecs);
    if (wanted && wanted !== stored) {
      const d = stored.decode(kept.body, { maxDepth: 64, maxNodes: 200_000 });
      if (d.ok) {
        try {
          body = wanted.encode(d.resource);
          contentType = wanted.contentType;
        } catch {
          // not expressible in the other format: the stored bytes as they are
        }
      }
    }
    const headers: Record<string, string> = { 'content-type': contentType, etag, ...vary };
    if (lastModified) headers['last-modified'] = lastModified;
    return { status: 200, headers, body, breaches: [], servedFrom: 'vault' };
  }
}

export type HistoryRead = ReturnType<typeof createHistoryRead>;

/** RFC 9110 §5.6.7: IMF-fixdate, RFC 850 and asctime forms only. */
const HTTP_DATE = [
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/,
  /^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \d{2}-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\d{2} \d{2}:\d{2}:\d{2} GMT$/,
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/,
];

/** An HTTP-date's time, or NaN when it is not one or lies after `nowMs` (RFC 9110 §13.1.3: ignored). */
function httpDate(value: string | undefined, nowMs: number): number {
  if (value === undefined || !HTTP_DATE.some((re) => re.test(value))) return NaN;
  // asctime carries no zone: it is GMT.
  const t = Date.parse(/GMT$/.test(value) ? value : `${value} GMT`);
  return t <= nowMs ? t : NaN;
}

/** `*`, or a listed entity tag whose opaque part (weak or strong) is this version's. */
function noneMatchHits(header: string, versionId: string): boolean {
  if (header.trim() === '*') return true;
  for (const tag of header.split(',')) {
    const m = /^\s*(?:W\/)?"([^"]*)"\s*$/.exec(tag);
    if (m && m[1] === versionId) return true;
  }
  return false;
}

/** A provider answer's bytes with its content coding undone; empty (unreadable) when that fails. */
function plainBody(answer: ProviderAnswer, maxBytes: number): Buffer {
  try {
    return decodedBody(answer.body, answer.headers['content-encoding'], maxBytes);
  } catch {
    return Buffer.alloc(0);
  }
}
