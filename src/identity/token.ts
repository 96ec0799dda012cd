/**
 * The JWT layer, token side: getting the bearer token out of `Authorization`, decoding the unsigned
 * (`alg: none`) tokens both standards define, and — as a configuration option — verifying signed
 * tokens with `jose` (ruling 3 of `../shared/spec/README.md`). Claim rules live in `claims.ts`.
 *
 * Pure: no I/O (a remote JWKS is fetched by `jose` only when a deployment configures one), no throwing
 * for bad input, and no failure reason ever echoes the token or a claim value (CONTRIBUTING; ruling 19).
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  jwtVerify,
  type FetchImplementation,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { Agent as UndiciAgent, fetch as undiciFetch } from 'undici';
import { parseStrictJson, stringifyKeepingNumberText } from '../fhir/strict-json.js';

export interface TokenFailure {
  /** The claim or part at fault, e.g. 'authorization', 'header.alg', 'exp', 'requesting_device.identifier'. */
  claim: string;
  /** Short and fixed; never contains the token or a claim value. */
  reason: string;
  /** GP Connect: an embedded Device/Organization/Practitioner that is not a valid STU3 resource (→ 422). */
  invalidResource?: boolean;
}

export type Result<T> = { ok: true; value: T } | { ok: false; failure: TokenFailure };

function fail<T>(claim: string, reason: string): Result<T> {
  return { ok: false, failure: { claim, reason } };
}

const BEARER_PREFIX = /^bearer +/i;

/**
 * `Authorization` header -> token. Missing, not `Bearer <token>`, or a token longer than `maxBytes`
 * fail. The size check (ruling 3: tokens over 8 KiB → 403 without decoding) comes before anything
 * looks inside the token.
 */
export function readBearer(header: string | string[] | undefined, maxBytes: number): Result<string> {
  let value: string | undefined;
  if (Array.isArray(header)) {
    // Two Authorization headers: which one would the provider use? Refuse rather than guess.
    if (header.length > 1) return fail('authorization', 'more than one Authorization header');
    value = header[0];
  } else {
    value = header;
  }
  if (value === undefined || value.trim() === '') return fail('authorization', 'missing');
  // Only the scheme is inspected (a bounded prefix) before the size check.
  const prefix = BEARER_PREFIX.exec(value.slice(0, 64));
  if (prefix === null) return fail('authorization', 'not a Bearer token');
  const token = value.slice(prefix[0].length).trim();
  if (Buffer.byteLength(token, 'utf8') > maxBytes) return fail('authorization', 'token too large');
  if (token === '') return fail('authorization', 'empty Bearer token');
  if (/\s/.test(token)) return fail('authorization', 'not a Bearer token');
  return { ok: true, value: token };
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Strict base64url (RFC 7515 §2, no padding): only the url-safe alphabet, a possible length, and
 * canonical trailing bits (re-encoding gives back the same text) — GP Connect §b: `=`, `+`, `/` rejected.
 */
export function decodeBase64url(segment: string): Buffer | undefined {
  const rest = segment.length % 4;
  if (!BASE64URL.test(segment) || rest === 1) return undefined;
  // Canonical: the bits of the last character beyond the final byte are zero (2 characters carry
  // one byte and 4 spare bits, 3 carry two bytes and 2 spare), which is exactly when re-encoding
  // gives back the same text — checked without building that text (issue 17).
  if (rest !== 0 && (sextet(segment.charCodeAt(segment.length - 1)) & (rest === 2 ? 0x0f : 0x03)) !== 0) return undefined;
  return Buffer.from(segment, 'base64url');
}

/** The 6-bit value of a base64url character (the alphabet is checked before). */
function sextet(c: number): number {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41; // A-Z
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26; // a-z
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52; // 0-9
  return c === 0x2d ? 62 : 63; // '-' or '_'
}

/** UTF-8 text of the bytes, a leading byte order mark dropped (as TextDecoder does), or undefined when not UTF-8. */
export function utf8Text(bytes: Buffer): string | undefined {
  if (!isUtf8(bytes)) return undefined;
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  return bytes.toString('utf8', bom);
}

/** Claims sit at depth 1-3 (requesting_device.identifier[0].value); deeper is not a JWT of ours. */
const MAX_CLAIM_DEPTH = 16;
const MAX_CLAIM_NODES = 2000;

function decodeJsonObject(segment: string): Record<string, unknown> | 'base64' | 'json' | 'duplicate' {
  const bytes = decodeBase64url(segment);
  if (bytes === undefined) return 'base64';
  // A byte order mark is not JSON (RFC 8259 §8.1): a provider reading the forwarded token would
  // not see a JSON object.
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return 'json';
  const text = utf8Text(bytes);
  if (text === undefined) return 'json';
  // Issue 13 item 12 (ruling 26): the strict parser, as for the body — JSON.parse keeps the last of
  // duplicate claims, so the gateway and the provider could read different requesters.
  const strict = parseStrictJson(text, MAX_CLAIM_DEPTH, MAX_CLAIM_NODES);
  if (!strict.ok) return strict.reason === 'duplicate key' ? 'duplicate' : 'json';
  const parsed = strict.value;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'json';
  return parsed as Record<string, unknown>;
}

/**
 * Unsigned mode (both standards: nhs-booking §b, gp-connect §b "Structure"): `header.payload.` with an
 * empty signature, header exactly `{"alg":"none","typ":"JWT"}` and no other parameter, JSON object
 * payload. A signed token (non-empty third segment) is refused here: this mode cannot verify it, and
 * accepting it unverified would let a signed-looking token bypass the signed mode.
 */
export function decodeUnsigned(token: string): Result<Record<string, unknown>> {
  const parts = token.split('.');
  if (parts.length !== 3) return fail('token', 'not a JWT of three dot-separated parts');
  const [headerPart = '', payloadPart = '', signaturePart = ''] = parts;
  if (signaturePart !== '') return fail('signature', 'signature must be empty for an unsigned token');
  if (headerPart === '') return fail('header', 'empty header');
  if (payloadPart === '') return fail('payload', 'empty payload');

  const header = decodeJsonObject(headerPart);
  if (header === 'base64') return fail('header', 'not base64url');
  if (header === 'json') return fail('header', 'not a JSON object');
  if (header === 'duplicate') return fail('header', 'a parameter appears more than once');
  const payload = decodeJsonObject(payloadPart);
  if (payload === 'base64') return fail('payload', 'not base64url');
  if (payload === 'json') return fail('payload', 'not a JSON object');
  if (payload === 'duplicate') return fail('payload', 'a claim appears more than once');

  if (!Object.hasOwn(header, 'alg')) return fail('header.alg', 'missing');
  if (header['alg'] !== 'none') return fail('header.alg', 'must be none');
  if (!Object.hasOwn(header, 'typ')) return fail('header.typ', 'missing');
  if (header['typ'] !== 'JWT') return fail('header.typ', 'must be JWT');
  // GP Connect demonstrator: any extra header key is refused (gp-connect §b).
  if (Object.keys(header).length !== 2) return fail('header', 'unexpected header parameter');

  return { ok: true, value: payload };
}

export interface SignedVerifierOptions {
  jwks: { keys: unknown[] } | URL;
  algorithms: string[];
  issuer?: string;
  audience?: string;
  /** Injected clock, milliseconds since the epoch. */
  now: () => number;
  /** Told (at most once a minute) why a remote key set could not be fetched: no token, no key. */
  onKeySetFailure?: (reason: string) => void;
  /** PEM CA bundle the remote key set's HTTPS server is verified with (jwt.jwksCa); else the system's. */
  jwksCa?: Buffer;
}

/**
 * Signed mode (ruling 3: "a configuration option for deployments that sign"). Configuration errors
 * (an empty allow-list, `none` in it, an unusable JWKS) throw at creation; bad tokens never throw.
 *
 * Algorithm confusion: the allow-list is checked against the header before `jose` is called, and
 * `jose` key sets only select a key whose type fits the algorithm (and refuse HS* outright), so an
 * HS256 token "signed" with an RSA public key's bytes is refused even when HS256 is allowed.
 */
export function createSignedVerifier(
  opts: SignedVerifierOptions,
): (token: string) => Promise<Result<Record<string, unknown>>> {
  const algorithms = [...opts.algorithms];
  if (algorithms.length === 0) throw new TypeError('signed JWT mode needs at least one algorithm');
  if (algorithms.some((a) => a.toLowerCase() === 'none')) {
    throw new TypeError('signed JWT mode never accepts alg none');
  }
  const remote = opts.jwks instanceof URL ? remoteKeySet(opts.jwks, opts.jwksCa, opts.onKeySetFailure) : undefined;
  const keys: JWTVerifyGetKey = remote ? remote.getKey : createLocalJWKSet(opts.jwks as unknown as JSONWebKeySet);
  const verifyOptions = {
    algorithms,
    // The token's times (exp, iat, nbf) are judged by checkClaims alone, in both modes, so that a
    // signed and an unsigned token expire at the same instant (ruling 3: exp + skew not passed).
    clockTolerance: TIMES_JUDGED_BY_CLAIMS,
    currentDate: new Date(opts.now()),
    ...(opts.issuer !== undefined ? { issuer: opts.issuer } : {}),
    ...(opts.audience !== undefined ? { audience: opts.audience } : {}),
  };

  return async (token: string) => {
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return fail('header', 'not a JWS compact serialization');
    }
    if (typeof alg !== 'string' || !algorithms.includes(alg)) return fail('header.alg', 'algorithm not allowed');
    // jose reads both with JSON.parse (last duplicate wins, a byte order mark skipped, any depth):
    // the token is forwarded as sent, so both are read as strictly as an unsigned token's first.
    const [headerPart = '', payloadPart = ''] = token.split('.');
    const header = decodeJsonObject(headerPart);
    if (header === 'duplicate') return fail('header', 'a parameter appears more than once');
    if (typeof header === 'string') return fail('header', 'not a JSON object');
    // No critical extension is understood here (RFC 7515 §4.1.11: such a token is refused).
    if (Object.hasOwn(header, 'crit')) return fail('header.crit', 'critical header parameters are not supported');
    const strict = decodeJsonObject(payloadPart);
    if (strict === 'duplicate') return fail('payload', 'a claim appears more than once');
    if (typeof strict === 'string') return fail('payload', 'not a JSON object');

    const verify = async (): Promise<Result<Record<string, unknown>>> => {
      try {
        await jwtVerify(token, keys, { ...verifyOptions, currentDate: new Date(opts.now()) });
        // The claims as the strict parser read them (the same, duplicates refused; numbers as written).
        return { ok: true, value: strict };
      } catch (err) {
        // A token without `kid` and several keys of its type (a rotation): the one that verifies it.
        if ((err as { code?: unknown }).code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') {
          const r = await verifyWithEach(token, err as AsyncIterable<CryptoKey>, verifyOptions, opts.now);
          return r.ok ? { ok: true, value: strict } : r;
        }
        return mapJoseError(err);
      }
    };
    const first = await verify();
    // A token without `kid` that no kept key verifies may be signed by a key published since the
    // last fetch: one paced fetch, as for an unknown `kid`, before the verdict.
    if (first.ok || first.failure.claim !== 'signature' || !remote || header['kid'] !== undefined) return first;
    const fetched = await remote.refreshForRetry();
    if (fetched === 'fresh') return verify();
    return fetched === 'unavailable' ? fail(KEYS_UNAVAILABLE, 'key set unavailable') : first;
  };
}

/** jose's verdict ignores the token's times at this tolerance (a century): checkClaims decides them. */
const TIMES_JUDGED_BY_CLAIMS = 100 * 365 * 86400;

async function verifyWithEach(token: string, candidates: AsyncIterable<CryptoKey>, options: Parameters<typeof jwtVerify>[2], now: () => number): Promise<Result<Record<string, unknown>>> {
  let last: unknown;
  for await (const key of candidates) {
    try {
      const { payload } = await jwtVerify(token, key, { ...options, currentDate: new Date(now()) });
      return { ok: true, value: payload as Record<string, unknown> };
    } catch (err) {
      last = err;
    }
  }
  return mapJoseError(last);
}

/**
 * One remote key set per URL for the life of the process: a reload (SIGHUP, a rotated provider
 * certificate, a changed jwt.jwksCa) rebuilds the handling, and must not lose the keys already fetched.
 */
const remoteKeySets = new Map<string, RemoteKeys>();

function remoteKeySet(url: URL, ca: Buffer | undefined, onFailure?: (reason: string) => void): RemoteKeys {
  let keys = remoteKeySets.get(url.href);
  if (!keys) remoteKeySets.set(url.href, (keys = new RemoteKeys(url)));
  keys.trust(ca);
  if (onFailure) keys.onFailure = onFailure;
  return keys;
}

/** The pacing's clock: monotonic, so that a wall clock stepped back (NTP, a resumed VM) never stops fetches. */
const monotonicNow = (): number => performance.now();

/** jose's defaults, kept here because the fetching is paced here: cache age, and the pause after a fetch. */
const CACHE_MAX_AGE_MS = 600_000;
const COOLDOWN_MS = 30_000;
/** After a failed fetch, the next is not tried for this long (the last keys serve meanwhile). */
const REFRESH_RETRY_MS = 30_000;
const FAILURE_REPORT_MS = 60_000;

/**
 * A remote key set paced by the gateway; jose fetches (5 s timeout, no redirects, a key set or an
 * error) and selects keys. The keys last fetched are kept: once stale (10 minutes) they answer at
 * once while one refresh runs behind them; a failed fetch is not retried for 30 s, so an identity
 * provider that hangs costs no request its timeout and no client can make it fetch per request. A
 * `kid` the kept keys lack makes one fetch (shared, at most every 30 s); while the set cannot be
 * fetched it is the key set's fault (500, retry), after a fetch that succeeded the token's (403).
 */
class RemoteKeys {
  private remote: ReturnType<typeof createRemoteJWKSet>;
  private caHash = '';
  private dispatcher: UndiciAgent | undefined;
  private local: JWTVerifyGetKey | undefined;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private failedAt = Number.NEGATIVE_INFINITY;
  private reportedAt = Number.NEGATIVE_INFINITY;
  private refreshing: Promise<void> | undefined;
  onFailure: ((reason: string) => void) | undefined;

  constructor(private readonly url: URL) {
    this.remote = createRemoteJWKSet(url);
  }

  /** The CA the key set's server is verified with (jwt.jwksCa); the system's when absent. The kept keys stay. */
  trust(ca: Buffer | undefined): void {
    const hash = ca ? createHash('sha256').update(ca).digest('hex') : '';
    if (hash === this.caHash) return;
    this.caHash = hash;
    this.failedAt = Number.NEGATIVE_INFINITY; // a new CA is a new chance to fetch
    void this.dispatcher?.close().catch(() => undefined);
    this.dispatcher = ca ? new UndiciAgent({ connect: { ca } }) : undefined;
    const dispatcher = this.dispatcher;
    const fetchWithCa = dispatcher
      ? ((u: string, o: Record<string, unknown>) => undiciFetch(u, { ...o, dispatcher } as Parameters<typeof undiciFetch>[1])) as unknown as FetchImplementation
      : undefined;
    this.remote = createRemoteJWKSet(this.url, fetchWithCa ? { [customFetch]: fetchWithCa } : {});
  }

  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    if (!this.local) {
      await this.refresh();
      if (!this.local) throw keySetUnavailable();
    } else if (monotonicNow() - this.fetchedAt >= CACHE_MAX_AGE_MS) {
      void this.refresh(); // stale: the kept keys answer now
    }
    try {
      return await this.local(header, token);
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw e;
      return this.afterUnknownKey(header, token, e);
    }
  };

  /** A kid the kept keys lack: perhaps a rotation. One shared fetch, paced; else a verdict or unavailable. */
  private async afterUnknownKey(header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1], noMatch: unknown): Promise<CryptoKey> {
    const fetched = await this.refreshForRetry();
    if (fetched === 'cooling') throw noMatch; // just fetched: the token's key is not there
    if (fetched === 'unavailable') throw keySetUnavailable(); // no fresh set to judge by
    return (await this.local!(header, token)) as CryptoKey;
  }

  /**
   * A token the kept keys cannot verify may need keys published since: 'fresh' when a fetch (this
   * one or one under way) brought the set, 'cooling' within 30 s of a successful fetch (the
   * verdict stands), 'unavailable' when the set cannot be fetched now.
   */
  async refreshForRetry(): Promise<'fresh' | 'cooling' | 'unavailable'> {
    const now = monotonicNow();
    if (!this.refreshing && now - this.failedAt >= REFRESH_RETRY_MS && now - this.fetchedAt < COOLDOWN_MS) return 'cooling';
    const fetchedBefore = this.fetchedAt;
    await this.refresh();
    return this.fetchedAt !== fetchedBefore ? 'fresh' : 'unavailable';
  }

  /** One fetch at a time, none within REFRESH_RETRY_MS of a failed one. Never rejects. */
  private refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    if (monotonicNow() - this.failedAt < REFRESH_RETRY_MS) return Promise.resolve();
    const remote = this.remote;
    this.refreshing = remote
      .reload()
      .then(() => {
        const jwks = remote.jwks();
        if (!jwks) throw new Error('no key set');
        this.local = createLocalJWKSet(jwks);
        this.fetchedAt = monotonicNow();
      })
      .catch((e: unknown) => this.failed(e))
      .finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private failed(e: unknown): void {
    this.failedAt = monotonicNow();
    if (this.onFailure && this.failedAt - this.reportedAt >= FAILURE_REPORT_MS) {
      this.reportedAt = this.failedAt;
      const err = e as { code?: unknown; name?: unknown; cause?: { code?: unknown } };
      this.onFailure(String(err?.cause?.code ?? err?.code ?? err?.name ?? 'unknown'));
    }
  }
}

function keySetUnavailable(): Error {
  return Object.assign(new Error('the key set could not be fetched'), { code: JWKS_UNAVAILABLE_CODE });
}

const JWKS_UNAVAILABLE_CODE = 'GATEWAY_JWKS_UNAVAILABLE';

/**
 * The failure's claim when the key set could not be had (fetched in time, or valid): the gateway's
 * fault, not the token's — a 500 the client may retry, never a 403 (the founding text).
 */
export const KEYS_UNAVAILABLE = 'jwks';

/** `jose` error -> failure with a fixed reason (jose's messages are not passed on). */
function mapJoseError(err: unknown): Result<never> {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return fail('exp', 'token expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (err as { claim?: unknown }).claim;
      const known = ['iss', 'aud', 'nbf', 'iat', 'exp', 'sub', 'jti', 'typ'];
      return fail(typeof claim === 'string' && known.includes(claim) ? claim : 'payload', 'claim check failed');
    }
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED': // e.g. an HMAC algorithm: a key set never yields such a key (`crit` is refused before)
      return fail('header.alg', 'algorithm not allowed');
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return fail('signature', 'signature verification failed');
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return fail('header.kid', 'no single matching key');
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
    case JWKS_UNAVAILABLE_CODE:
      return fail(KEYS_UNAVAILABLE, 'key set unavailable');
    case 'ERR_JWS_INVALID':
      return fail('token', 'invalid JWS');
    case 'ERR_JWT_INVALID':
      return fail('payload', 'invalid JWT claims set');
    default:
      // Not a jose verdict on the token (e.g. the remote JWKS could not be fetched).
      if (typeof code === 'string' && code.startsWith('ERR_J')) return fail('token', 'verification failed');
      return fail(KEYS_UNAVAILABLE, 'key set unavailable');
  }
}

/**
 * The same unsigned bearer token with `requested_scope` set to `scope` (every other claim, and
 * their order, unchanged), for the gateway's own read of the appointment before a write: a
 * provider that enforces scope per interaction must see a read scope on a read. Only ever a
 * narrowing of what the client was granted (write to read). Undefined for anything that is not
 * an unsigned `Bearer h.p.` token whose payload is a JSON object: the caller then sends the
 * client's header as it came (a signed token cannot be changed without its key).
 */
export function unsignedTokenWithScope(authorization: string, scope: string): string | undefined {
  const m = /^Bearer +([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.$/i.exec(authorization);
  if (!m) return undefined;
  const bytes = decodeBase64url(m[2]!);
  const text = bytes && utf8Text(bytes);
  if (text === undefined) return undefined;
  const payload = withScopeInText(text, scope) ?? withScopeParsed(text, scope);
  return payload === undefined ? undefined : `Bearer ${m[1]}.${Buffer.from(payload, 'utf8').toString('base64url')}.`;
}

/**
 * The cheap way (issue 17): when `"requested_scope"` occurs once in the text and holds a plain
 * string, that string is replaced in place. An unescaped `"requested_scope"` cannot occur inside a
 * JSON string (its quotes would be escaped), so the one occurrence is the claim's key. Anything
 * else is left to the parsing way.
 */
function withScopeInText(text: string, scope: string): string | undefined {
  const at = text.indexOf('"requested_scope"');
  if (at === -1 || text.indexOf('"requested_scope"', at + 1) !== -1) return undefined;
  const m = /^"requested_scope"\s*:\s*"[^"\\]*"/.exec(text.slice(at));
  return m ? text.slice(0, at) + `"requested_scope":${JSON.stringify(scope)}` + text.slice(at + m[0].length) : undefined;
}

/** The parsing way: every other claim written back as it was, numbers in their own text (`1.10`, 2^64; ruling 26). */
function withScopeParsed(text: string, scope: string): string | undefined {
  const parsed = parseStrictJson(text, MAX_CLAIM_DEPTH, MAX_CLAIM_NODES);
  if (!parsed.ok) return undefined;
  const claims = parsed.value;
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return undefined;
  (claims as Record<string, unknown>)['requested_scope'] = scope;
  return stringifyKeepingNumberText(claims);
}
