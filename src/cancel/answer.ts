import type { IncomingHttpHeaders } from 'node:http';
import { decodedBody } from '../http/content-coding.js';
import { GatewayError, type ErrorCode } from '../errors.js';
import { isOperationOutcome } from '../fhir/operation-outcome.js';
import { clientEtag, providerEtagVersion, versionIdOf } from '../http/entity-tag.js';
import type { Codec } from '../ports/codec.js';
import type { ProviderAnswer } from '../ports/provider.js';
import { isResourceType } from '../fhir/sd/model.js';
import { parseInstant } from '../fhir/instant.js';
import { ROUTABLE_ID } from '../route.js';
import { codecFor } from './read-current.js';
import { namesAnotherResource } from './lenient-body.js';

/** What the client receives for a write the provider answered (before the edge adds its own headers). */
export interface ClientAnswer {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
  versionAfter?: string;
  lastUpdated?: string;
  /** Contract breaches of ruling 12 (logged and counted by the transaction). */
  breaches: string[];
  /** The body with its content coding undone, when it had one (what the vault keeps). */
  decodedBody?: Buffer;
  /** 'vault': a version read the provider could not answer, answered from the kept versions (ruling 22). */
  servedFrom?: 'vault';
}

export interface AnswerContext {
  id: string;
  kind: 'cancel' | 'amend';
  versionBefore: string;
  preferMinimal: boolean;
  publicBaseUrl: string;
  /** The most bytes a content-coded answer may decode to before it is judged (upstream.maxAnswerBytes). */
  maxDecodedBytes?: number;
}

/**
 * Hop-by-hop (RFC 7230 §6.1) and what the gateway sets itself; `set-cookie` is the provider's
 * business with its own clients, never ours (ruling 25).
 */
// X-Correlation-ID is the gateway's: it echoes the client's X-Request-ID (ruling 14), never the provider's.
// `Alt-Svc`, `Refresh` and `Link` name the provider's own hosts and URLs, which lead consumers past
// the gateway (ruling 22's intent): never passed back.
/** Provider answer headers no client ever gets, on any route (the passthrough forwarder uses it too). */
// `Report-To`, `Reporting-Endpoints` and `NEL` send the client's reports to the provider's hosts: the same.
export const PROVIDER_ONLY: ReadonlySet<string> = new Set(['set-cookie', 'set-cookie2', 'x-correlation-id', 'alt-svc', 'refresh', 'link', 'report-to', 'reporting-endpoints', 'nel']);
const NOT_PASSED_BACK: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'location', 'content-location', ...PROVIDER_ONLY]);

/**
 * Headers an answer carries once (RFC 9110): of a provider's two, the first is the one the gateway
 * judged the answer by, and the only one passed back.
 */
export const SINGLE_VALUED: ReadonlySet<string> = new Set(['content-type', 'etag', 'last-modified', 'date', 'expires', 'age', 'retry-after', 'content-length', 'location', 'content-location']);

/** The first of a header's values (what the gateway judges an answer by when it came twice). */
export function firstOf(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * A provider error status without an OperationOutcome gets ours, keeping the status (ruling 11):
 * UPSTREAM_ERROR for 5xx, UPSTREAM_REFUSED for 4xx — the provider's refusal, never one of the
 * gateway's own codes (a provider 403 is not the client's token failing). Its OperationOutcome is
 * coded as the standard codes that status (`providerStatusCoding`, errors.ts).
 */
export function codeForProviderStatus(status: number): ErrorCode {
  return status >= 500 ? 'UPSTREAM_ERROR' : 'UPSTREAM_REFUSED';
}

/** A provider's `Retry-After` (delta-seconds or an HTTP date) is passed on with its error status. */
export function retryAfterOf(headers: IncomingHttpHeaders): Record<string, string> | undefined {
  const sent = headers['retry-after'] as string | string[] | undefined;
  const v = Array.isArray(sent) ? sent[0] : sent; // sent twice: its first, as Node reads it
  return typeof v === 'string' && /^(?:\d{1,10}|[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT)$/.test(v) ? { 'retry-after': v } : undefined;
}

/** Visible ASCII, spaces and tabs, bounded: a provider header value passed on with its status (an empty `Allow` says "no method"). */
const PASSABLE_VALUE = /^[\t -~]{0,8192}$/;

/**
 * The provider's headers its error status cannot go without (RFC 9110): `Retry-After`; the
 * `WWW-Authenticate` a 401 MUST carry (§11.6.1) and the `Allow` a 405 MUST carry (§15.5.6),
 * passed on as the provider sent them (the gateway replaces the body only, ruling 11).
 */
export function refusalHeadersOf(status: number, headers: IncomingHttpHeaders): Record<string, string> | undefined {
  const retry = retryAfterOf(headers);
  const name = status === 401 ? 'www-authenticate' : status === 405 ? 'allow' : undefined;
  // Several lines are one list (RFC 9110 §5.3): every challenge, every method.
  const lines = name ? headers[name] as string | string[] | undefined : undefined;
  const sent = Array.isArray(lines) ? lines.join(', ') : lines;
  if (!name || sent === undefined || !PASSABLE_VALUE.test(sent)) return retry;
  return { ...retry, [name]: sent };
}

/** An error raised from the provider's answer to the forwarded request: it reached the provider. */
export function providerRefusal(code: ErrorCode, status: number, headers: IncomingHttpHeaders): GatewayError {
  return Object.assign(new GatewayError(code, `The provider answered with status ${status}`, { status, headers: refusalHeadersOf(status, headers) }), { forwarded: true });
}

export function passedBack(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || NOT_PASSED_BACK.has(k)) continue;
    // A list header sent twice is one list (RFC 9110 §5.3); a single-valued one keeps its first.
    out[k] = Array.isArray(v) ? (SINGLE_VALUED.has(k) ? v[0]! : k === 'content-encoding' ? v.join(', ') : v) : v;
  }
  const conn = headers.connection;
  if (typeof conn === 'string') for (const n of conn.split(',')) delete out[n.trim().toLowerCase()];
  return out;
}

/** Ruling 12: Location absolute on the public base URL, keeping a `/_history/{vid}` form. */
export function publicLocation(location: string | undefined, id: string, publicBase: string, versionAfter?: string): string {
  const m = location ? /Appointment\/([A-Za-z0-9.-]{1,64})(\/_history\/([A-Za-z0-9.-]{1,64}))?\/?$/.exec(location) : null;
  // `_history/..` or `_history/.` would resolve to another path (ruling 22), and a version other
  // than the one this answer is would lead to an older one: the plain form then.
  const history = m?.[3] === undefined || (ROUTABLE_ID.test(m[3]) && (versionAfter === undefined || m[3] === versionAfter));
  if (m && m[1] === id) return `${publicBase}/Appointment/${id}${history ? (m[2] ?? '') : ''}`;
  return `${publicBase}/Appointment/${encodeURIComponent(id)}`;
}

const RESOURCE_PATH = /(?:^|\/)([A-Z][A-Za-z]{1,63}\/[A-Za-z0-9.-]{1,64}(?:\/_history\/[A-Za-z0-9.-]{1,64})?)\/?$/;

/**
 * Ruling 22 for passthrough answers (a book's 201, a read's Content-Location, a redirect's
 * Location): "every Location the gateway returns leads to a route it serves".
 * - On the provider's own base URL (`providerBase`: relative to it, or absolute on its origin and
 *   path), the rest of the path is the gateway's route: a route the gateway serves (`serves`, e.g.
 *   `/Slot`, `/Appointment/id`, `/metadata`) is made absolute on the public base URL, its query
 *   kept (a search's next page, `?_format=`), as nginx's proxy_redirect does for a known prefix.
 * - Otherwise (the provider's external name the gateway does not know, a path outside its base or
 *   not a route there): a path that ends in a resource path the gateway serves (`Appointment/id` or its
 *   `/_history/vid`), with no query, is made absolute on the public base URL, as ruling 12 does for
 *   a cancel's Location.
 * Any other — a fragment, a route the gateway does not serve (`Slot/9`), something that is not a
 * URL — is dropped: `undefined`.
 */
export function publicPassthroughLocation(location: string, publicBase: string, serves: (path: string) => boolean, providerBase?: URL): string | undefined {
  let u: URL;
  try {
    u = new URL(location, providerBase ?? 'http://relative.invalid/');
  } catch {
    return undefined;
  }
  if (u.hash || location.includes('#')) return undefined;
  const onProvider = providerBase === undefined ? undefined : restOnBase(u, providerBase);
  if (onProvider !== undefined && onProvider !== '/' && servedPath(onProvider, serves)) return `${publicBase}${onProvider}${u.search}`;
  if (u.search || location.includes('?')) return undefined;
  const m = RESOURCE_PATH.exec(u.pathname);
  if (!m) return undefined;
  const [, id, , vid] = m[1]!.split('/');
  if (!ROUTABLE_ID.test(id!) || (vid !== undefined && !ROUTABLE_ID.test(vid))) return undefined;
  return serves(`/${m[1]}`) ? `${publicBase}/${m[1]}` : undefined;
}

/** The path of `u` below `base` (`/Slot` for `https://p/fhir/Slot` on `https://p/fhir/`), or undefined when `u` is not below it. */
function restOnBase(u: URL, base: URL): string | undefined {
  if (u.origin !== base.origin) return undefined;
  const prefix = base.pathname.replace(/\/+$/, '');
  if (u.pathname !== prefix && !u.pathname.startsWith(`${prefix}/`)) return undefined;
  return u.pathname.slice(prefix.length) || '/';
}

/** A route the gateway serves, every segment one the router could have been sent (no `.`/`..`, no escapes). */
function servedPath(path: string, serves: (path: string) => boolean): boolean {
  return path.split('/').slice(1).every((seg) => /^[A-Za-z0-9$_.-]{1,64}$/.test(seg) && seg !== '.' && seg !== '..') && serves(path);
}

/**
 * The bytes a success answer is judged by (ruling 26). The gateway never asks for a content
 * coding, but a provider may send one anyway, and the client's HTTP library would decode it: a
 * gzip'd 200 is judged decoded (bounded), and one that cannot be decoded (an unknown coding, a
 * corrupt or oversized stream) cannot be shown to be this Appointment, so it is never passed on.
 */
function judgedBytes(answer: ProviderAnswer, maxBytes: number): Buffer {
  try {
    return decodedBody(answer.body, answer.headers['content-encoding'], maxBytes);
  } catch {
    throw Object.assign(new GatewayError('UPSTREAM_UNAVAILABLE', `The provider's answer has a content coding the gateway cannot read; ${MAY_HAVE_APPLIED}`), { breach: 'content-coding' });
  }
}

/**
 * An error answer's bytes as the client's HTTP library will read them: a content-coded
 * OperationOutcome is judged decoded (and passed on as sent, coding and all, ruling 11); one that
 * cannot be decoded is judged as not an OperationOutcome (the gateway's own replaces it).
 */
function errorBytes(answer: ProviderAnswer, maxBytes: number): Buffer {
  try {
    return decodedBody(answer.body, answer.headers['content-encoding'], maxBytes);
  } catch {
    return Buffer.alloc(0);
  }
}

/** namesAnotherResource, and a body that cannot even be read leniently (never seen) counts as one that may. */
function showsAnother(bytes: Buffer, id: string): boolean {
  try {
    return namesAnotherResource(bytes, id);
  } catch {
    return true;
  }
}

const MAY_HAVE_APPLIED = 'the write may have been applied by the provider; read the appointment before retrying';

/**
 * The provider's answer to a forwarded write, as the client gets it (rulings 11, 12, 26). A
 * redirect or a 2xx naming another resource is never passed on (500, the write may have been
 * applied); an error without an OperationOutcome gets the gateway's, same status; a success is
 * returned unchanged with Location, ETag and Last-Modified repaired, its breaches listed.
 */
export function answerFromWrite(ctx: AnswerContext, answer: ProviderAnswer, codecs: readonly Codec[]): ClientAnswer {
  const { status } = answer;
  if (status >= 300 && status < 400) {
    throw Object.assign(new GatewayError('UPSTREAM_UNAVAILABLE', `The provider answered the write with a redirect; ${MAY_HAVE_APPLIED}`), { upstreamKind: 'redirect' });
  }
  // RFC 9110 §15: a status outside 100–599 is no HTTP answer (as for the read of ruling 8).
  if (status < 200 || status > 599) {
    throw Object.assign(new GatewayError('UPSTREAM_UNAVAILABLE', `The provider answered the write with an invalid status; ${MAY_HAVE_APPLIED}`), { upstreamKind: 'protocol' });
  }
  const codec = codecFor(firstOf(answer.headers['content-type']), codecs);
  const bytes = status < 300 ? judgedBytes(answer, ctx.maxDecodedBytes ?? 8 * 1024 * 1024) : errorBytes(answer, ctx.maxDecodedBytes ?? 8 * 1024 * 1024);
  const decoded = bytes.length ? codec.decode(bytes, { maxDepth: 64, maxNodes: 200_000 }) : undefined;
  // A JSON object naming no resource (`{"error":"x"}`: no resourceType, no id) is no resource: a
  // logged breach, passed on (ruling 12), like any body that shows none.
  const resource = decoded?.ok && (decoded.resource.resourceType !== undefined || decoded.resource.id !== undefined) ? decoded.resource : undefined;
  if (status >= 400) {
    if (!isOperationOutcome(resource)) throw providerRefusal(codeForProviderStatus(status), status, answer.headers);
    return { status, headers: passedBack(answer.headers), body: answer.body, breaches: [] };
  }
  if ((resource && (resource.resourceType !== 'Appointment' || resource.id !== ctx.id)) || (!resource && status < 300 && showsAnother(bytes, ctx.id))) {
    throw Object.assign(new GatewayError('UPSTREAM_UNAVAILABLE', `The provider's answer names another resource; ${MAY_HAVE_APPLIED}`), { breach: 'other-resource' });
  }
  const headers = passedBack(answer.headers);
  const meta = resource?.meta as { versionId?: unknown; lastUpdated?: unknown } | undefined;
  const metaVersion = versionIdOf(meta);
  // Two ETags naming different versions (ruling 8 fails closed on such a read; this write was
  // accepted, so it is passed on): the one the body agrees with, else the first — a breach.
  const { providerTag, etagsDisagree } = oneEtag(answer.headers.etag as string | string[] | undefined, metaVersion);
  const tagged = providerEtagVersion(providerTag);
  const etagVersion = tagged ?? undefined;
  // The client is always given an entity tag: a bare `ETag: 5` is written W/"5"; one that names no
  // version (blank, `*`, garbage) is replaced by the body's version, as when there is none.
  const etag = clientEtag(providerTag, metaVersion);
  if (etag === undefined) delete headers.etag;
  else headers.etag = etag;
  // The version the client's ETag names is the one the next read goes by (ruling 8: ETag first),
  // so the vault and Content-Location follow it too; a body that says otherwise is a breach.
  const versionAfter = etagVersion ?? metaVersion;
  const lastUpdated = typeof meta?.lastUpdated === 'string' ? meta.lastUpdated : undefined;
  if (headers['last-modified'] === undefined && lastUpdated) {
    const t = parseInstant(lastUpdated); // a leap second (:60) is valid FHIR, unlike for Date.parse
    if (t !== undefined) headers['last-modified'] = new Date(t).toUTCString();
  }
  // Every Location leads to a route the gateway serves (rulings 12 and 22).
  headers.location = publicLocation(typeof answer.headers.location === 'string' ? answer.headers.location : undefined, ctx.id, ctx.publicBaseUrl, versionAfter);
  // The version this answer is (GP Connect's update response marks Content-Location "R"), on the
  // gateway's vread route; never the provider's own URL.
  headers['content-location'] = versionAfter && ROUTABLE_ID.test(versionAfter) ? `${ctx.publicBaseUrl}/Appointment/${encodeURIComponent(ctx.id)}/_history/${versionAfter}` : headers.location;
  const breaches: string[] = [];
  const minimal = ctx.preferMinimal && answer.body.length === 0;
  // The founding text's success is a 200: a 201 (update as create), 202 or 204 is passed on as the
  // provider's success, and counted (ruling 12).
  if (status !== 200) breaches.push('status-not-200');
  if (minimal) {
    if (!versionAfter) breaches.push('no-version');
  } else if (!resource) breaches.push('body-not-json');
  else {
    if (ctx.kind === 'cancel' && resource.status !== 'cancelled') breaches.push('status-not-cancelled');
    if (!versionAfter) breaches.push('no-version');
    // The version it was asked to change, or a lower number: no new version (ruling 12).
    else if (!isNewVersion(versionAfter, ctx.versionBefore)) breaches.push('version-unchanged');
  }
  if (etagsDisagree || (resource && etagVersion !== undefined && metaVersion !== undefined && etagVersion !== metaVersion)) breaches.push('etag-disagrees');
  return { status, headers, body: answer.body, versionAfter, lastUpdated, breaches, ...(bytes !== answer.body ? { decodedBody: bytes } : {}) };
}

/** Of a provider's ETag header(s), the one to go by, and whether two of them name different versions. */
function oneEtag(value: string | string[] | undefined, metaVersion: string | undefined): { providerTag: string | undefined; etagsDisagree: boolean } {
  if (!Array.isArray(value)) return { providerTag: value, etagsDisagree: false };
  // Only tags that name a version can disagree (`*` or garbage names none).
  const versions = new Set(value.map((v) => providerEtagVersion(v)).filter((v): v is string => typeof v === 'string'));
  if (versions.size <= 1) return { providerTag: value[0], etagsDisagree: false };
  const agreeing = value.find((v) => providerEtagVersion(v) === metaVersion);
  return { providerTag: agreeing ?? value[0], etagsDisagree: true };
}

/**
 * Whether the provider's answer names a version after the one it was asked to change: not the same
 * id, and not a lower number when both are numbers (FHIR version ids are opaque otherwise).
 */
export function isNewVersion(after: string, before: string): boolean {
  if (after === before) return false;
  const numeric = /^\d{1,15}$/;
  return !(numeric.test(after) && numeric.test(before) && Number(after) < Number(before));
}
