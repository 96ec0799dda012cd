import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { RequestView } from '../context.js';

/**
 * Headers the gateway reads or checks itself. A client naming one in `Connection` does not stop it
 * reaching the provider (the checks judged it), and a look-alike with `_` for `-` is refused
 * (ruling 25, request-semantics.ts).
 */
export const CHECKED_REQUEST_HEADERS = [
  'accept', 'accept-charset', 'accept-language', 'authorization', 'content-type', 'if-match', 'prefer',
  'ssp-traceid', 'ssp-from', 'ssp-to', 'ssp-interactionid', 'x-request-id', 'x-correlation-id',
  'traceparent', 'tracestate', 'user-agent',
] as const;
const CHECKED = new Set<string>(CHECKED_REQUEST_HEADERS);

/**
 * Ruling 11: headers reach the provider unchanged except these.
 * - Hop-by-hop (RFC 9110 §7.6.1) and framing: the provider request has its own.
 * - `Expect` (ruling 24: the gateway has answered any 100-continue itself).
 * - `X-Forwarded-*` and `Forwarded`: replaced by the gateway's own (ruling 25).
 * - Headers that turn a request into another (ruling 25): the method overrides, refused before this
 *   point, and headers that move it elsewhere or apply it in part (`X-Original-URL`,
 *   `X-Rewrite-URL`, `Destination`, `Content-Range`, …).
 * - Headers a server behind a TLS-terminating proxy takes as the proxy's word: who the client is
 *   (its address, certificate, user, session — `X-Real-IP`, `Client-Cert`, `X-Remote-User`,
 *   `NHSD-*`, …), and `Proxy` (httpoxy: CGI makes it `HTTP_PROXY`). Only the gateway saw the
 *   client's TLS and token; it says who the client is in its own `X-Forwarded-*`/`Forwarded`.
 * - `Cookie`: a provider session would speak for a caller other than the token the gateway checked.
 * - `Accept-Encoding`: the gateway reads every answer it judges, so it asks for none.
 * The last three classes cannot be listed name by name (every stack has its own spellings), so a
 * header is also held back when a word of its name (split at `-`, with `_` read as `-`, as CGI,
 * PHP and nginx with underscores_in_headers fold them) is one of NOT_FORWARDED_WORDS.
 */
const NOT_FORWARDED = new Set<string>([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'content-length', 'host', 'expect', 'forwarded', 'accept-encoding', 'proxy', 'destination',
  'content-range', 'cookie', 'cookie2',
]);
const NOT_FORWARDED_WORDS = new Set<string>([
  // where the request goes, what it does
  'forwarded', 'original', 'rewrite', 'override', 'method', 'url', 'uri', 'path', 'script', 'host', 'scheme', 'proto',
  'protocol', 'https', 'cascade',
  // who the client is
  'ip', 'addr', 'address', 'originating', 'real', 'client', 'cert', 'ssl', 'tls', 'mtls', 'verify', 'dn', 'user', 'userid',
  'username', 'userinfo', 'principal', 'remote', 'auth', 'authenticated', 'identity', 'credential', 'consumer', 'session',
  'nhsd', 'envoy', 'front', 'arr', 'clientcert',
]);
/** The same words run together in one name (`X-ForwardedFor`, `X-RealIP`, `X-Authenticated-Userid`). */
const NOT_FORWARDED_GLUED = ['forwarded', 'realip', 'clientip', 'remoteip', 'remoteaddr', 'clientcert', 'sslclient', 'originalur', 'methodoverride', 'remoteuser', 'userid', 'username', 'userinfo', 'authenticated', 'principal'];

/** Whether a word of the (dashed, lower-case) name, or a run of them, marks it as not forwarded. */
function namesNotForwarded(dashed: string): boolean {
  for (const word of dashed.split('-')) if (NOT_FORWARDED_WORDS.has(word)) return true;
  const glued = dashed.replace(/-/g, '');
  for (const g of NOT_FORWARDED_GLUED) if (glued.includes(g)) return true;
  return false;
}

/** The header names the `Connection` header lists: hop-by-hop for this connection only. */
export function connectionTokens(connection: unknown): Set<string> | undefined {
  if (typeof connection !== 'string' || connection === '') return undefined;
  return new Set(connection.toLowerCase().split(',').map((x) => x.trim()));
}

/** Whether the provider request carries this client header (ruling 11, and its exceptions above). */
export function forwardable(name: string, named: Set<string> | undefined): boolean {
  if (CHECKED.has(name)) return true;
  // `_` and `.` are folded to `-` by CGI, PHP, Apache and nginx (underscores_in_headers).
  const dashed = name.includes('_') || name.includes('.') ? name.replace(/[_.]/g, '-') : name;
  if (NOT_FORWARDED.has(dashed) || namesNotForwarded(dashed)) return false;
  return named === undefined || !named.has(name);
}

/** The client's end-to-end headers, as sent (ruling 11). */
export function endToEnd(headers: Readonly<IncomingHttpHeaders>, into: Record<string, string> = {}): Record<string, string> {
  const named = connectionTokens(headers.connection);
  for (const n in headers) {
    const v = headers[n];
    if (typeof v === 'string' && forwardable(n, named)) into[n] = v;
  }
  return into;
}

/** Headers for a read of the current appointment on behalf of the request (identity, tracing). */
export const READ_HEADERS = ['authorization', 'ssp-traceid', 'ssp-from', 'ssp-to', 'x-request-id', 'traceparent', 'tracestate'] as const;

export function pick(view: RequestView, names: readonly string[], into: Record<string, string> = {}): Record<string, string> {
  for (const n of names) {
    const v = view.headers[n];
    if (typeof v === 'string') into[n] = v;
  }
  return into;
}

/** The gateway's own forwarding headers for a client connection. */
export function forwardingHeaders(req: IncomingMessage, into: Record<string, string>): Record<string, string> {
  const addr = req.socket.remoteAddress ?? '';
  into['x-forwarded-for'] = addr;
  into['x-forwarded-proto'] = 'https';
  const host = req.headers.host;
  if (typeof host === 'string' && /^[A-Za-z0-9.:[\]-]{1,255}$/.test(host)) into['x-forwarded-host'] = host;
  if (req.socket.localPort) into['x-forwarded-port'] = String(req.socket.localPort);
  // Ruling 25: the client's Forwarded is replaced by the gateway's own (RFC 7239; an IPv6 node and
  // a host with a port are quoted).
  const node = addr.includes(':') ? `"[${addr}]"` : addr || 'unknown';
  into['forwarded'] = `for=${node};proto=https${into['x-forwarded-host'] ? `;host="${into['x-forwarded-host']}"` : ''}`;
  return into;
}
