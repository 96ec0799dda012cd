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
 *   (its address, certificate, user — `X-Real-IP`, `Client-Cert`, `X-Remote-User`, `NHSD-*`, …),
 *   and `Proxy` (httpoxy: CGI makes it `HTTP_PROXY`). Only the gateway saw the client's TLS and
 *   token; it says who the client is in its own `X-Forwarded-*`/`Forwarded`.
 * - `Cookie`: a provider session would speak for a caller other than the token the gateway checked.
 * - `Accept-Encoding`: the gateway reads every answer it judges, so it asks for none.
 * By name, by prefix, or by one of a few compound words run together (`X-ForwardedFor`,
 * `X-RealIP`), with `_` and `.` read as `-` (CGI, PHP, Apache and nginx fold them). Any other
 * header — `X-Custom-Client`, `X-Session-Id` — is forwarded as sent.
 */
const NOT_FORWARDED = new Set<string>([
  // hop-by-hop, framing, negotiation the gateway owns
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'content-length', 'host', 'expect', 'forwarded', 'accept-encoding', 'proxy',
  // where the request goes, what it does
  'x-http-method-override', 'x-http-method', 'x-method-override', 'x-rewrite-url', 'x-override-url', 'x-script-name', 'base-url',
  'destination', 'content-range', 'x-host', 'x-scheme', 'x-url-scheme', 'front-end-https', 'x-cascade', 'forwarded-for',
  // who the client is
  'x-real-ip', 'true-client-ip', 'x-client-ip', 'client-ip', 'x-cluster-client-ip', 'x-originating-ip', 'cf-connecting-ip',
  'fastly-client-ip', 'x-proxyuser-ip', 'client-cert', 'client-cert-chain', 'x-client-cert', 'x-client-verify', 'x-client-dn',
  'x-arr-clientcert', 'x-arr-ssl', 'remote-user', 'x-user', 'x-userid', 'x-user-id', 'x-authenticated-userid',
  'x-consumer-username', 'x-consumer-id', 'x-credential-identifier', 'cookie', 'cookie2',
  'x-client-s-dn', 'x-client-i-dn', 'x-client-serial', 'x-client-fingerprint',
]);
const NOT_FORWARDED_PREFIXES = [
  'x-forwarded', 'x-original-', 'x-ssl-', 'ssl-client', 'x-client-cert', 'x-remote-', 'x-auth-request-', 'x-ms-client-principal',
  'x-amzn-mtls-', 'x-envoy-', 'nhsd-',
  // identity-aware proxies' word on the user: AWS ALB OIDC, Google IAP, Cloudflare Access,
  // Shibboleth, Authelia/Authentik-style `Remote-*`, and the like
  'x-amzn-oidc-', 'x-goog-authenticated-', 'x-goog-iap-', 'cf-access-', 'x-shib-', 'shib-', 'remote-', 'x-iinsproxy-',
  'x-webauth-', 'x-auth-user', 'x-proxy-user', 'x-authenticated-', 'authenticated-', 'x-oidc-', 'oidc-claim-', 'x-userinfo',
];
/** Compound words run together in one name (`X-ForwardedFor`, `X-RealIP`, `X-SSLClientCert`). */
const NOT_FORWARDED_GLUED = ['forwardedfor', 'forwardedhost', 'forwardedproto', 'realip', 'clientip', 'remoteip', 'remoteaddr', 'clientcert', 'sslclient', 'originalur', 'methodoverride', 'remoteuser', 'authenticateduser', 'authuser', 'proxyuser', 'webauthuser', 'clientdn', 'clientsdn'];

/** Whether the (dashed, lower-case) name is held back by prefix or by a run-together compound. */
function namesNotForwarded(dashed: string): boolean {
  for (const p of NOT_FORWARDED_PREFIXES) if (dashed.startsWith(p)) return true;
  const glued = dashed.replace(/-/g, '');
  for (const g of NOT_FORWARDED_GLUED) if (glued.includes(g)) return true;
  return false;
}

/** The header names the `Connection` header lists: hop-by-hop for this connection only. */
export function connectionTokens(connection: unknown): Set<string> | undefined {
  if (typeof connection !== 'string' || connection === '') return undefined;
  return new Set(connection.toLowerCase().split(',').map((x) => x.trim()));
}

/** A header name as CGI, PHP, Apache and nginx (underscores_in_headers) read it: `_` and `.` folded to `-`. */
export function foldedName(name: string): string {
  return name.includes('_') || name.includes('.') ? name.replace(/[_.]/g, '-') : name;
}

/** Whether the provider request carries this client header (ruling 11, and its exceptions above). */
export function forwardable(name: string, named: Set<string> | undefined): boolean {
  if (CHECKED.has(name)) return true;
  let held = verdicts.get(name);
  if (held === undefined) {
    const dashed = foldedName(name);
    held = NOT_FORWARDED.has(dashed) || namesNotForwarded(dashed);
    // Clients send the same few names on every request: judged once each (bounded: names are client text).
    if (verdicts.size < MAX_VERDICTS) verdicts.set(name, held);
  }
  return !held && (named === undefined || !named.has(name));
}

const verdicts = new Map<string, boolean>();
const MAX_VERDICTS = 1024;

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
