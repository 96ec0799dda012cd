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
 *   point, and the path overrides `X-Original-URL` / `X-Rewrite-URL` that IIS and Symfony stacks
 *   honour — the provider would apply a checked cancel to another path — and `Content-Range`
 *   (a partial PUT).
 * - Headers a server behind a TLS-terminating proxy takes as the proxy's word about the client:
 *   its address (`X-Real-IP`, `True-Client-IP`, …), its certificate (`X-SSL-Client-Cert`,
 *   `X-ARR-ClientCert`, …), and `Proxy` (httpoxy: CGI makes it `HTTP_PROXY`). The gateway
 *   terminated the client's TLS; only it may say who the client is, and it says so in
 *   `X-Forwarded-*`/`Forwarded`.
 * - `Accept-Encoding`: the gateway reads every answer it judges, so it asks for none (a coded
 *   answer is decoded anyway).
 * Names are compared with `_` read as `-` (CGI, PHP and nginx with underscores_in_headers fold them).
 */
const NOT_FORWARDED = new Set<string>([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'content-length', 'host', 'expect', 'forwarded', 'accept-encoding',
  'x-http-method-override', 'x-http-method', 'x-method-override', 'x-original-url', 'x-rewrite-url', 'x-original-method', 'content-range',
  'proxy', 'x-real-ip', 'true-client-ip', 'x-client-ip', 'client-ip', 'x-cluster-client-ip', 'forwarded-for', 'x-host', 'x-original-host',
  'x-client-cert', 'x-arr-clientcert', 'x-arr-ssl', 'cf-connecting-ip', 'fastly-client-ip', 'x-proxyuser-ip',
]);
/** Name prefixes of the same kinds: X-Forwarded, X-Forwarded-*, X-SSL-Client-*, SSL-Client-* (SSL_CLIENT_S_DN). */
const NOT_FORWARDED_PREFIXES = ['x-forwarded', 'x-ssl-client', 'ssl-client'];

/** The header names the `Connection` header lists: hop-by-hop for this connection only. */
export function connectionTokens(connection: unknown): Set<string> | undefined {
  if (typeof connection !== 'string' || connection === '') return undefined;
  return new Set(connection.toLowerCase().split(',').map((x) => x.trim()));
}

/** Whether the provider request carries this client header (ruling 11, and its exceptions above). */
export function forwardable(name: string, named: Set<string> | undefined): boolean {
  if (CHECKED.has(name)) return true;
  const dashed = name.includes('_') ? name.replace(/_/g, '-') : name;
  if (NOT_FORWARDED.has(dashed) || NOT_FORWARDED_PREFIXES.some((p) => dashed.startsWith(p))) return false;
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
