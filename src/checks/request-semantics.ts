import { GatewayError } from '../errors.js';
import { carriesBody } from '../edge/read-body.js';
import { CHECKED_REQUEST_HEADERS, foldedName } from '../edge/forward-headers.js';
import { isGuarded } from '../standards/index.js';
import type { Check } from './types.js';
import type { RequestView } from '../context.js';

/** Headers many legacy stacks honour to turn one method into another (ruling 25). */
const METHOD_OVERRIDES = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const;
/** Each override's own name, for the expression (ruling 14: the header that was sent). */
const OVERRIDE_EXPRESSION: Readonly<Record<(typeof METHOD_OVERRIDES)[number], string>> = {
  'x-http-method-override': 'http.X-HTTP-Method-Override',
  'x-http-method': 'http.X-HTTP-Method',
  'x-method-override': 'http.X-Method-Override',
};

/**
 * Names the gateway checks or forwards: a client sending `Ssp_TraceID` or `If_Match` (or `If.Match`) hopes that a
 * server behind us folds `_` into `-` (CGI, nginx with underscores_in_headers, some Java stacks) and
 * reads a value the gateway never saw.
 */
export const LOOK_ALIKE_CHECKED: ReadonlySet<string> = new Set<string>([
  ...CHECKED_REQUEST_HEADERS, 'content-length', 'content-encoding', 'transfer-encoding', 'host', 'expect', 'connection',
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'forwarded', ...METHOD_OVERRIDES,
  // Evaluated by the gateway itself on a version read it answers from the vault (ruling 22).
  'if-none-match', 'if-modified-since',
]);

/**
 * `_method` as a query parameter name, written plainly or with any of its characters
 * percent-encoded (`%5Fmethod`, `_%6Dethod`): a provider's query parser decodes the name first.
 */
export function hasMethodParam(query: string): boolean {
  for (const part of query.split(/[&;]/)) {
    const eq = part.indexOf('=');
    let name = (eq === -1 ? part : part.slice(0, eq)).replace(/\+/g, ' ');
    if (name.includes('%')) {
      try {
        name = decodeURIComponent(name);
      } catch {
        // not decodable: a parser would keep it as written
      }
    }
    // As the laxest framework parser reads a name (PHP: leading spaces dropped, then spaces and
    // dots made underscores; others trim): ` _method`, `+_method`, `.method` all mean `_method`.
    const php = name.replace(/^\s+/, '').replace(/[ .]/g, '_').toLowerCase();
    // `_method[]` / `_method[x]`: PHP and Rack read the bracketed forms as `_method` too.
    if (php === '_method' || php.startsWith('_method[') || name.trim().toLowerCase() === '_method') return true;
  }
  return false;
}

/** Methods whose meaning a body must not change (a read carrying an Appointment, ruling 25). */
const BODYLESS = new Set(['GET', 'HEAD', 'DELETE']);

/**
 * Ruling 25 (issue 13 item 8): refuse what could make the provider do something other than what
 * the gateway checked — a missing or doubled Host, method-override headers (and the `_method`
 * query parameter), a body on
 * GET/HEAD/DELETE, and header names equal
 * to a checked one with `_` for `-`. Runs first among the identity checks, for every interaction.
 */
export function createRequestSemanticsCheck(): Check {
  return {
    name: 'request-semantics',
    family: null,
    run(ctx) {
      checkRequestSemantics(ctx.request, isGuarded(ctx.interaction));
    },
  };
}

const refuse = (diagnostics: string, expression: string): never => {
  throw new GatewayError('REQUEST_MALFORMED', { diagnostics, expression });
};

/**
 * The checks of ruling 25 on a request view. Also run for a request no route serves, before its
 * 404 or 405: `DELETE /Appointment/{id}` with a body is the 400 ruling 25 names, whatever the
 * route says of the method. `guarded`: a cancel or amend (its query is the media-type check's).
 */
export function checkRequestSemantics(request: RequestView, guarded: boolean): void {
  const { headers, method } = request;
  // RFC 9112 §3.2: an HTTP/1.1 request without Host, or with two, is a 400 (Node's own bare
  // answer is switched off so that this one is an OperationOutcome, logged and audited).
  if (request.repeated.has('host') || (headers.host === undefined && request.httpVersion !== '1.0')) refuse('An HTTP/1.1 request carries exactly one Host header', 'http.Host');
  // One host (RFC 9112 §3.2): `Host: a, b` is two, read differently by different servers.
  if (headers.host !== undefined && /[,\s]/.test(headers.host)) refuse('The Host header names one host', 'http.Host');
  // HTTP/1.x framing only (another version on an HTTP/1.1 connection is not what it says).
  const version = request.httpVersion;
  if (version !== undefined && version !== '1.1' && version !== '1.0') refuse('Only HTTP/1.1 (or 1.0) is served on this connection', 'http.version');
  // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
  if (version === '1.0' && headers['transfer-encoding'] !== undefined) refuse('An HTTP/1.0 request cannot carry Transfer-Encoding', 'http.Transfer-Encoding');
  for (const name of METHOD_OVERRIDES) if (headers[name] !== undefined) refuse('Method-override headers are not accepted', OVERRIDE_EXPRESSION[name]);
  // The same override as a query parameter (Express's method-override, Rails, Laravel, Symfony
  // read `_method`): a read forwarded "untouched" would otherwise reach such a provider as a
  // DELETE or a PUT carrying only a read scope.
  // (A guarded write's query is the media-type check's: only `_format` passes there, 415.)
  if (request.query && !guarded && hasMethodParam(request.query)) refuse('A method-override parameter (_method) is not accepted', 'http.query');
  // RFC 9112 §3.2.1: a request target has no fragment. A `#` in the query would be forwarded as
  // sent, and read as a fragment (dropped) by one provider, as data by another.
  if (request.query?.includes('#')) refuse('A request target carries no fragment (#)', 'http.query');
  for (const name of Object.keys(headers)) {
    // The name is not echoed: only a fixed label (style habit 15).
    // `.` too: CGI, PHP and some proxies fold it like `_` (as the forwarding filter reads it).
    const folded = foldedName(name);
    if (folded !== name && LOOK_ALIKE_CHECKED.has(folded)) refuse('A header name uses "_" or "." in place of "-"', 'http.header');
  }
  // A transfer coding besides chunked (`gzip, chunked`): the gateway removes the chunking only,
  // and would check, or send on with a Content-Length, bytes still coded without saying so.
  const te = headers['transfer-encoding'];
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') refuse('A transfer coding other than chunked is not accepted', 'http.Transfer-Encoding');
  if (BODYLESS.has(method.toUpperCase()) && carriesBody(headers)) refuse(`A ${method.toUpperCase()} request must not carry a body`, 'http.body');
}
