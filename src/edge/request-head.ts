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
   * For a method the parser does not know: a method-override header, a checked header's `_`/`.`
   * look-alike, no Host, or `_method` or a `#` in the query — ruling 25's 400 comes before any
   * route's verdict.
   */
  changesMeaning?: boolean;
}

/** Ruling 25 and RFC 9112 §3.2 in a raw head: a checked header's `_`/`.` look-alike, or no Host line. */
function lookAlikeOrNoHost(headerBlock: string): boolean {
  let host = false;
  for (const line of headerBlock.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === 'host') host = true;
    else if (/[_.]/.test(name) && LOOK_ALIKE_CHECKED.has(foldedName(name))) return true;
  }
  return !host;
}

const PARSER_METHODS: ReadonlySet<string> = new Set(METHODS);
const LOOK_AT = 8192;
const MAX_TARGET = 2048;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]{1,16}) (\/[!-~]*) HTTP\/\d\.\d\r?$/; // a method is any token (RFC 9110 §9.1) // any version: the parser may refuse the version itself
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
export function requestHeadOf(raw: unknown, failedAt?: number): RequestHead | undefined {
  if (!Buffer.isBuffer(raw) || raw.length === 0) return undefined;
  const start = typeof failedAt === 'number' && failedAt > 0 ? refusedRequestStart(raw, Math.min(failedAt, raw.length)) : 0;
  if (start >= raw.length) return undefined;
  const text = raw.toString('latin1', start, Math.min(raw.length, start + LOOK_AT));
  const eol = text.indexOf('\n');
  const line = REQUEST_LINE.exec(eol === -1 ? text : text.slice(0, eol));
  if (!line || line[2]!.length > MAX_TARGET) return undefined;
  const head: RequestHead = { method: line[1]!, url: line[2]! };
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
  const q = head.url.indexOf('?');
  // Only a method the parser does not know is judged from this head (routeRefusal in pipeline.ts).
  if (!PARSER_METHODS.has(head.method) && (OVERRIDE_HEADER.test(headerBlock) || lookAlikeOrNoHost(headerBlock) || (q !== -1 && (head.url.includes('#', q) || hasMethodParam(head.url.slice(q + 1)))))) head.changesMeaning = true;
  return head;
}

const MAX_SKIPPED = 64;
const CONTENT_LENGTH = /^content-length:[ \t]*(\d{1,10})[ \t]*\r?$/im;
const TRANSFER_ENCODING = /^transfer-encoding:/im;

/**
 * Where the refused request begins: past every request whose head and (Content-Length) body lie
 * wholly before the point of failure. A chunked one is not measured here: taken as the refused one.
 */
function refusedRequestStart(raw: Buffer, failedAt: number): number {
  const text = raw.toString('latin1', 0, failedAt);
  let p = 0;
  for (let n = 0; n < MAX_SKIPPED; n++) {
    const end = text.indexOf('\r\n\r\n', p);
    if (end === -1) return p;
    const head = text.slice(p, end + 2);
    if (TRANSFER_ENCODING.test(head)) return p;
    const next = end + 4 + Number(CONTENT_LENGTH.exec(head)?.[1] ?? 0);
    if (next > failedAt) return p;
    p = next;
    // An empty line between requests (RFC 9112 §2.2: old clients send one after a POST body) is skipped.
    while (text.startsWith('\r\n', p)) p += 2;
  }
  return p;
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
