import type { IncomingMessage } from 'node:http';
import type { RequestView } from '../context.js';

/**
 * Request headers passed on to the provider: an allow-list (ruling 25, issue 13 item 8), never a
 * deny-list, so a header the gateway did not check cannot change what the provider does.
 * Forwarding headers are the gateway's own: client-sent X-Forwarded-* and Forwarded are replaced.
 */
export const FORWARDED_REQUEST_HEADERS = [
  'accept', 'accept-charset', 'accept-language', 'authorization', 'content-type', 'if-match', 'prefer',
  'ssp-traceid', 'ssp-from', 'ssp-to', 'ssp-interactionid', 'x-request-id', 'x-correlation-id',
  'traceparent', 'tracestate', 'user-agent',
] as const;

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
