import { METHODS } from 'node:http';
import { foldedName } from './forward-headers.js';
import { hasMethodParam, LOOK_ALIKE_CHECKED } from '../checks/request-semantics.js';
/**
 * The request line (and a well-formed Ssp-TraceID) of a request Node's HTTP parser refused
 * (ruling 16: conflicting framing, headers too large), read from the raw bytes the parser held,
 * so that it still gets its decision line and audit record (ruling 19). Bounded: only the first
 * few KiB are looked at; anything unexpected gives undefined. Pure.
 */
export interface RequestHead {
  method: string;
  /** The request target as sent (origin form), at most MAX_TARGET characters. */
  url: string;
  traceId?: string;
  /** Accept and Content-Type as sent (bounded), to answer in the format asked for (ruling 21). */
  accept?: string;
  contentType?: string;
  /** X-Request-ID when it is one the gateway echoes (ruling 14: X-Correlation-ID on the answer). */
  requestId?: string;
  /** Ssp-InteractionID as sent (bounded): the audit record names the interaction it claimed (ruling 19). */
  interactionId?: string;
  /**
   * For a method the parser does not know, what every known method would get first, before any
   * route's verdict: 431 for a head over `limits.maxHeaderBytes`; 400 for conflicting framing
   * (ruling 16), a missing, repeated or listed Host (RFC 9112 §3.2), a method-override header, a
   * checked header's `_`/`.` look-alike, or `_method` or a `#` in the query (ruling 25).
   */
  refusedFirst?: 'REQUEST_MALFORMED' | 'HEADERS_TOO_LARGE';
}

/**
 * Ruling 25, ruling 16 and RFC 9112 in a raw head, as Node's parser and the checks judge a known
 * method's: a line that is no header field (obs-fold, a bare LF, whitespace before the colon, a
 * name that is no token), a checked header's `_`/`.` look-alike, Content-Length repeated or not
 * digits, Transfer-Encoding repeated, not `chunked`, beside a Content-Length or on HTTP/1.0, and
 * Host repeated, a list, or missing on HTTP/1.1. `whole`: the head's end is held (else its last,
 * still arriving line is not judged, nor a Host that may yet come).
 */
function refusedHeaderLines(headerBlock: string, http10: boolean, whole: boolean): boolean {
  let hosts = 0;
  let encodings = 0;
  let lengths = 0;
  const lines = headerBlock.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (i === lines.length - 1 && (line === '' || !whole)) break; // after the last CRLF, or a line still arriving
    if (!line.endsWith('\r')) return true; // a bare LF
    const colon = line.indexOf(':');
    if (colon <= 0 || !HEADER_NAME.test(line.slice(0, colon))) return true; // obs-fold, `Host : x`, `Foo Bar: 1`
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1, -1).trim();
    if (name === 'host') {
      if (++hosts > 1 || value.includes(',')) return true;
    } else if (name === 'transfer-encoding') {
      if (++encodings > 1 || value.toLowerCase() !== 'chunked' || http10) return true;
    } else if (name === 'content-length') {
      if (++lengths > 1 || !/^\d+$/.test(value)) return true;
    } else if (/[_.]/.test(name) && LOOK_ALIKE_CHECKED.has(foldedName(name))) return true;
  }
  return (encodings > 0 && lengths > 0) || (hosts === 0 && !http10 && whole);
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * A request target in absolute form (`PUT https://host/STU3/1/Appointment/x`, which RFC 9112 §3.2.2
 * says a server MUST accept) as the origin form it names: routed, checked, audited and forwarded
 * like it. The path and query are kept as sent (no URL object re-encodes them); the authority is
 * not used (the gateway serves one origin). An authority that is no http(s) authority — empty, no
 * host, userinfo (RFC 9110 §4.2.4: an error, it hides the host), a port that is not digits — is
 * left as sent: no route serves it (404).
 */
export function originForm(url: string): string {
  if (url.charCodeAt(0) === 0x2f) return url; // origin form, as nearly every request is: no regex on the hot path
  const authority = /^https?:\/\/([^/?#]*)/i.exec(url);
  if (!authority || !/^(?:\[[0-9A-Fa-f:.]+\]|[^@:[\]]+)(?::\d*)?$/.test(authority[1]!)) return url;
  const rest = url.slice(authority[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

const PARSER_METHODS: ReadonlySet<string> = new Set(METHODS);
const LOOK_AT = 8192;
const MAX_TARGET = 2048;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]{1,16}) ([!-~]+) HTTP\/(\d\.\d)\r?$/; // a method is any token (RFC 9110 §9.1) // any version: the parser may refuse the version itself
const OVERRIDE_HEADER = /^x[-_.](?:http[-_.]method(?:[-_.]override)?|method[-_.]override)[ \t]*:/im; // ruling 25, look-alikes too
const ACCEPT = /^accept:[ \t]*([^\r\n]*?)[ \t]*\r?$/im;
const CONTENT_TYPE = /^content-type:[ \t]*([^\r\n]*?)[ \t]*\r?$/im;
const MAX_NEGOTIATION = 256;
/** The X-Request-ID values echoed as X-Correlation-ID (ruling 14): visible ASCII, at most 256 characters. */
export const REQUEST_ID = /^[!-~](?:[ -~]{0,254}[!-~])?$/;

/** The client's X-Request-ID when well formed (echoed as X-Correlation-ID), else undefined. */
export function requestIdOf(value: unknown): string | undefined {
  return typeof value === 'string' && REQUEST_ID.test(value) ? value : undefined;
}
const REQUEST_ID_LINE = /^x-request-id:[ \t]*([^\r\n]*?)[ \t]*\r?$/im;
const INTERACTION_ID = /^ssp-interactionid:[ \t]*([!-~]{1,256})[ \t]*\r?$/im;
const TRACE_ID = /^ssp-traceid:[ \t]*([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})[ \t]*\r?$/im;

/**
 * `failedAt`: where in `raw` the parser stopped (Node's `bytesParsed`). The bytes the parser held
 * may begin with requests it had already read whole (pipelined in one packet): those are skipped,
 * so the refused request is never recorded under an earlier one's line, trace id or interaction.
 */
export function requestHeadOf(raw: unknown, failedAt?: number, maxHeaderBytes = Number.POSITIVE_INFINITY): RequestHead | undefined {
  if (!Buffer.isBuffer(raw) || raw.length === 0) return undefined;
  const start = typeof failedAt === 'number' && failedAt > 0 ? refusedRequestStart(raw, Math.min(failedAt, raw.length)) : 0;
  if (start >= raw.length) return undefined;
  const text = raw.toString('latin1', start, Math.min(raw.length, start + LOOK_AT));
  const eol = text.indexOf('\n');
  const line = REQUEST_LINE.exec(eol === -1 ? text : text.slice(0, eol));
  if (!line || line[2]!.length > MAX_TARGET) return undefined;
  // An absolute-form target is recorded and routed as its origin form, as a parsed request is.
  // (one that names no http(s) authority stays as sent: no route serves it, 404)
  const head: RequestHead = { method: line[1]!, url: originForm(line[2]!) };
  const end = text.indexOf('\r\n\r\n');
  const headerBlock = eol === -1 ? '' : text.slice(eol + 1, end === -1 ? undefined : end + 2);
  const trace = TRACE_ID.exec(headerBlock);
  if (trace) head.traceId = trace[1]!;
  const accept = ACCEPT.exec(headerBlock);
  if (accept) head.accept = accept[1]!.slice(0, MAX_NEGOTIATION);
  const type = CONTENT_TYPE.exec(headerBlock);
  if (type) head.contentType = type[1]!.slice(0, MAX_NEGOTIATION);
  const rid = requestIdOf(REQUEST_ID_LINE.exec(headerBlock)?.[1]);
  if (rid !== undefined) head.requestId = rid;
  const interaction = INTERACTION_ID.exec(headerBlock);
  if (interaction) head.interactionId = interaction[1]!;
  // Only a method the parser does not know is judged from this head (routeRefusal in pipeline.ts).
  if (!PARSER_METHODS.has(head.method)) {
    const headEnd = raw.indexOf('\r\n\r\n', start, 'latin1');
    const size = headEnd === -1 ? raw.length - start + 2 : headEnd + 4 - start; // not held whole: at least its closing CRLF is to come
    const q = head.url.indexOf('?');
    // The whole head when the parser held it (it may span TLS records the client has yet to send:
    // then a Host line may still come, and only what is held is judged).
    const whole = raw.toString('latin1', start + eol + 1, headEnd === -1 ? raw.length : headEnd + 2);
    if (size > maxHeaderBytes) head.refusedFirst = 'HEADERS_TOO_LARGE';
    else if (OVERRIDE_HEADER.test(whole) || refusedHeaderLines(whole, line[3] === '1.0', headEnd !== -1) || (q !== -1 && (head.url.includes('#', q) || hasMethodParam(head.url.slice(q + 1))))) head.refusedFirst = 'REQUEST_MALFORMED';
  }
  return head;
}

const MAX_SKIPPED = 64;
const CONTENT_LENGTH = /^content-length:[ \t]*(\d{1,10})[ \t]*\r?$/im;
const TRANSFER_ENCODING = /^transfer-encoding:/im;

/**
 * Where the refused request begins: past every request whose head and body (Content-Length or
 * chunked, measured chunk by chunk) lie wholly before the point of failure.
 */
function refusedRequestStart(raw: Buffer, failedAt: number): number {
  const text = raw.toString('latin1', 0, failedAt);
  let p = 0;
  for (let n = 0; n < MAX_SKIPPED; n++) {
    const end = text.indexOf('\r\n\r\n', p);
    if (end === -1) return p;
    const head = text.slice(p, end + 2);
    const next = TRANSFER_ENCODING.test(head) ? chunkedEnd(text, end + 4) : end + 4 + Number(CONTENT_LENGTH.exec(head)?.[1] ?? 0);
    if (next === -1 || next > failedAt) return p;
    p = next;
    // An empty line between requests (RFC 9112 §2.2: old clients send one after a POST body) is skipped.
    while (text.startsWith('\r\n', p)) p += 2;
  }
  return p;
}

const CHUNK_SIZE = /^0*([0-9A-Fa-f]{1,12})(?:[ \t]*;[^\r\n]*)?$/;
const MAX_CHUNK_LINE = 8192;

/** The end of a chunked body starting at `p` (its last chunk and trailer section included), or -1 when it is not all in `text`. */
function chunkedEnd(text: string, p: number): number {
  // Every chunk takes at least 5 characters: the loop ends with the text.
  while (p < text.length) {
    const eol = text.indexOf('\r\n', p);
    if (eol === -1 || eol - p > MAX_CHUNK_LINE) return -1;
    const size = CHUNK_SIZE.exec(text.slice(p, eol));
    if (!size) return -1;
    const length = parseInt(size[1]!, 16);
    p = eol + 2;
    if (length === 0) {
      const trailersEnd = text.startsWith('\r\n', p) ? p : text.indexOf('\r\n\r\n', p) + 2;
      return trailersEnd < p ? -1 : trailersEnd + 2;
    }
    p += length;
    if (!text.startsWith('\r\n', p)) return -1;
    p += 2;
  }
  return -1;
}

/** Targets sent in absolute form, by request (req.url holds their origin form: tls-listener.ts). */
const sentTargets = new WeakMap<object, string>();

export function keepSentTarget(req: object, sent: string): void {
  sentTargets.set(req, sent);
}

/** The request target as the client sent it (absolute form included), for measuring the head. */
export function sentTarget(req: { url?: string }): string {
  return sentTargets.get(req) ?? req.url ?? '';
}

/**
 * The size of a parsed request's head (request line, header lines, the blank line), for
 * `limits.maxHeaderBytes` (ruling 16: 431). Header names and values are latin1 strings: one
 * character per byte. Counted as Node delivers the header lines: without the optional whitespace
 * around each value (so a head padded with whitespace is bounded by the parser's own limit, four
 * times this, instead).
 */
export function headBytes(method: string, url: string, rawHeaders: readonly string[]): number {
  let n = method.length + url.length + 14; // "M U HTTP/1.1\r\n" (12 beyond M and U) and the final "\r\n"
  for (let i = 0; i < rawHeaders.length; i++) n += rawHeaders[i]!.length + 2; // ": " or "\r\n"
  return n;
}
