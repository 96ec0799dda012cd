import type { IncomingHttpHeaders } from 'node:http';
import type { ReportFamily } from './config.js';
import type { ErrorCode } from './errors.js';
import type { Requester } from './identity/claims.js';
import type { Interaction } from './standards/index.js';

/** The read-only view of a request that checks read (style habit 3): no raw req/res. */
export interface RequestView {
  readonly method: string;
  /** Path below the configured FHIR base path, without the query string. */
  readonly path: string;
  /** The raw query string without '?', '' when none. */
  readonly query?: string;
  readonly headers: Readonly<IncomingHttpHeaders>;
  /**
   * Names of headers sent more than once. Node joins most duplicates with ", " and keeps only the
   * first Authorization, so single-valued headers are checked against the raw list (ruling 2-4:
   * a duplicated identity or version header is refused rather than guessed).
   */
  readonly repeated: ReadonlySet<string>;
  /** `1.1`, `1.0`: an HTTP/1.1 request must carry exactly one Host (RFC 9112 §3.2). */
  readonly httpVersion?: string;
}

/** Lower-case names that occur more than once in a raw header list. */
export function repeatedHeaders(rawHeaders: readonly string[]): ReadonlySet<string> {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const n = rawHeaders[i]!.toLowerCase();
    if (seen.has(n)) repeated.add(n);
    else seen.add(n);
  }
  return repeated;
}

/** What the checks learn and hand on; each field is written by one check. */
export interface RequestContext {
  readonly request: RequestView;
  /** Candidate interactions of the matched route (same method and path). */
  readonly candidates: readonly Interaction[];
  /** Logical id from the path, when the route has one. */
  readonly resourceId: string | undefined;
  /** Ssp-TraceID when well formed; for logs and audit. */
  traceId: string | undefined;
  /** The interaction chosen by Ssp-InteractionID (spine-headers check); first candidate until then. */
  interaction: Interaction;
  /**
   * True once Ssp-InteractionID named one of the route's enabled interactions; until then
   * `interaction` is only the route's default, and logs and audit must not claim it (ruling 19).
   */
  interactionNamed: boolean;
  /** Who is calling (JWT check). Never the token itself. */
  requester: Requester | undefined;
  /** The version named by If-Match; undefined when absent (allowed by GP Connect). */
  ifMatchVersion: string | undefined;
  /** The request body exactly as received (body check). */
  rawBody: Buffer | undefined;
  /** The parsed Appointment (body check). */
  resource: Record<string, unknown> | undefined;
  /** Report mode: checks that failed but were only reported. */
  readonly wouldReject: Array<{ family: ReportFamily; code: ErrorCode }>;
  /** Milliseconds per check, for the per-stage profile and metrics. */
  readonly timings: Record<string, number>;
}

const NONE: ReadonlySet<string> = new Set();

export function createContext(request: Omit<RequestView, 'repeated'> & { repeated?: ReadonlySet<string> }, candidates: readonly Interaction[], resourceId: string | undefined): RequestContext {
  return {
    // A frozen copy: checks read the request, never change what is forwarded (issue 12 item 3).
    request: Object.freeze({ ...request, headers: Object.freeze({ ...request.headers }), repeated: request.repeated ?? NONE }),
    candidates,
    resourceId,
    traceId: undefined,
    interaction: candidates[0]!,
    interactionNamed: false,
    requester: undefined,
    ifMatchVersion: undefined,
    rawBody: undefined,
    resource: undefined,
    wouldReject: [],
    timings: {},
  };
}

/** First value of a header (duplicates of single-valued headers are rejected by the checks). */
export function header(view: RequestView, name: string): string | undefined {
  const v = view.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
