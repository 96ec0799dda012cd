import type { IncomingMessage, ServerResponse } from 'node:http';
import { carriesBody } from './read-body.js';
/**
 * `Expect: 100-continue` (RFC 9110 §10.1.1): the client waits for `100 Continue` before sending
 * its body. Node would send it at once, before any check; the gateway sends it only when it is
 * about to read the body, so a refusal known from the request line and headers (a bad token, a
 * missing If-Match, a declared length over the limit) goes out before the client uploads anything.
 * A request refused that way never sent its body: its connection cannot carry another request.
 */
const waiting = new WeakMap<IncomingMessage, ServerResponse>();

/** The listener's `checkContinue`: this request's client waits for 100 Continue. */
export function awaitContinue(req: IncomingMessage, res: ServerResponse): void {
  waiting.set(req, res);
}

/** Before its body is read: the client is told to send it, once. */
export function sendContinue(req: IncomingMessage): void {
  const res = waiting.get(req);
  if (!res) return;
  waiting.delete(req);
  if (!res.headersSent && !res.writableEnded) res.writeContinue();
}

/** A request that announced a body its client has not been asked for (never read): the connection closes after the answer. */
export function bodyNeverAsked(req: IncomingMessage): boolean {
  return waiting.has(req) && carriesBody(req.headers);
}
