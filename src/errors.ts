/**
 * The one error type and its catalogue (ruling 14). Every gateway-made error answer is a
 * GatewayError turned into an OperationOutcome by `respond.ts`. Checks branch on `code`, never on
 * messages. The README's error table is kept in step with this file by test/errors.test.ts.
 *
 * A code's status and Spine coding are those of the default standard (nhs-booking); a standard
 * may override a code's mapping (see `standards/*.ts`, `errorOverrides`), which is how GP Connect
 * answers JWT failures with 400 instead of 403 without any check knowing about standards.
 */

/** FHIR STU3 issue-type codes we use (http://hl7.org/fhir/issue-type). */
export type IssueType =
  | 'invalid'
  | 'structure'
  | 'required'
  | 'value'
  | 'forbidden'
  | 'not-found'
  | 'not-supported'
  | 'conflict'
  | 'too-long'
  | 'business-rule'
  | 'processing'
  | 'exception'
  | 'timeout'
  | 'transient';

export interface ErrorMapping {
  /** HTTP status of the answer. */
  status: number;
  /** FHIR issue.code. */
  issue: IssueType;
  /** Spine-ErrorOrWarningCode-1 code (details.coding.code). */
  spine: SpineCode;
}

/** The Spine-ErrorOrWarningCode-1 (v1.6.0) codes we emit, with their displays from the CodeSystem. */
export const SPINE_DISPLAYS = {
  'ACCESS DENIED': 'Access has been denied to process this request',
  BAD_REQUEST: 'Bad request',
  CONFLICTING_VALUES: 'Conflicting values have been specified in different fields',
  FHIR_CONSTRAINT_VIOLATION: 'FHIR constraint violated',
  INTERNAL_SERVER_ERROR: 'Unexpected internal server error',
  INVALID_PARAMETER: 'Invalid parameter',
  INVALID_RESOURCE: 'Invalid validation of resource',
  MISSING_OR_INVALID_HEADER: 'There is a required header missing or invalid',
  NO_RECORD_FOUND: 'No record found',
  UNSUPPORTED_MEDIA_TYPE: 'Unsupported media type',
} as const;
export type SpineCode = keyof typeof SPINE_DISPLAYS;

export const SPINE_CODE_SYSTEM = 'https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1';

/**
 * The closed catalogue: gateway code -> default mapping and what it means.
 * `family` names the check family for report mode (issue 7); null = cannot be reported only.
 */
export const CATALOGUE = {
  CLIENT_NOT_ALLOWED: {
    status: 403, issue: 'forbidden', spine: 'ACCESS DENIED',
    meaning: 'The client certificate is trusted but not on the configured allow-list.',
  },
  ROUTE_NOT_FOUND: {
    status: 404, issue: 'not-found', spine: 'BAD_REQUEST',
    meaning: 'No configured interaction serves this path (ruling 13).',
  },
  METHOD_NOT_ALLOWED: {
    status: 405, issue: 'not-supported', spine: 'BAD_REQUEST',
    meaning: 'The path exists but not for this HTTP method (ruling 13).',
  },
  SPINE_HEADER_INVALID: {
    status: 400, issue: 'required', spine: 'MISSING_OR_INVALID_HEADER',
    meaning: 'An Ssp-* header is missing or malformed, or Ssp-To is not this provider (ruling 2).',
  },
  INTERACTION_MISMATCH: {
    status: 400, issue: 'invalid', spine: 'BAD_REQUEST',
    meaning: 'Ssp-InteractionID does not name an enabled interaction of this route (ruling 2).',
  },
  JWT_INVALID: {
    status: 403, issue: 'forbidden', spine: 'ACCESS DENIED',
    meaning: 'The Authorization bearer token is missing, malformed or a claim fails (ruling 3).',
  },
  JWT_CLAIM_RESOURCE_INVALID: {
    status: 403, issue: 'forbidden', spine: 'ACCESS DENIED',
    meaning: 'A resource embedded in a JWT claim is not a valid FHIR resource.',
  },
  IF_MATCH_MISSING: {
    status: 412, issue: 'required', spine: 'MISSING_OR_INVALID_HEADER',
    meaning: 'The update carries no If-Match header (ruling 4).',
  },
  IF_MATCH_INVALID: {
    status: 400, issue: 'invalid', spine: 'MISSING_OR_INVALID_HEADER',
    meaning: 'If-Match is not W/"<version>" or "<version>" (ruling 4).',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415, issue: 'not-supported', spine: 'UNSUPPORTED_MEDIA_TYPE',
    meaning: 'Content-Type is missing or not a FHIR JSON or XML media type the standard accepts; or the cancel carries a Content-Encoding, a query parameter other than _format, or two _format naming different formats (rulings 5, 21).',
  },
  BODY_TOO_LARGE: {
    status: 413, issue: 'too-long', spine: 'BAD_REQUEST',
    meaning: 'The body is over the configured size limit (ruling 6).',
  },
  BODY_INVALID: {
    status: 400, issue: 'structure', spine: 'BAD_REQUEST',
    meaning: 'The body is not JSON, not an Appointment, or its id differs from the URL (ruling 6).',
  },
  PROFILE_INVALID: {
    status: 422, issue: 'structure', spine: 'INVALID_RESOURCE',
    meaning: 'The Appointment does not conform to the profile; one issue per violation (ruling 7).',
  },
  BUSINESS_RULE: {
    status: 422, issue: 'business-rule', spine: 'INVALID_RESOURCE',
    meaning: 'Not a pure cancellation (or guarded amend, ruling 27) of the stored appointment; one issue per difference (ruling 9).',
  },
  PARAMETER_INVALID: {
    status: 422, issue: 'invalid', spine: 'INVALID_PARAMETER',
    meaning: 'A required cancel parameter is present but empty (GP Connect cancellation reason; not raised under nhs-booking).',
  },
  RECORD_NOT_FOUND: {
    status: 404, issue: 'not-found', spine: 'NO_RECORD_FOUND',
    meaning: 'The provider has no appointment with this id (ruling 8).',
  },
  VERSION_CONFLICT: {
    status: 409, issue: 'conflict', spine: 'CONFLICTING_VALUES',
    meaning: 'If-Match names a version that is not the current one (ruling 4).',
  },
  UPSTREAM_UNAVAILABLE: {
    status: 500, issue: 'exception', spine: 'INTERNAL_SERVER_ERROR',
    meaning: 'The provider was unreachable, timed out, reset, or answered out of contract (rulings 8, 17).',
  },
  UPSTREAM_ERROR: {
    status: 500, issue: 'exception', spine: 'INTERNAL_SERVER_ERROR',
    meaning: 'The provider answered the forwarded request with an error and no OperationOutcome; its status is kept (ruling 11).',
  },
  UPSTREAM_REFUSED: {
    status: 400, issue: 'processing', spine: 'BAD_REQUEST',
    meaning: 'The provider refused the forwarded request with a 4xx and no OperationOutcome; its status is kept (ruling 11), its Spine coding that of the code the status stands for (401/403 CLIENT_NOT_ALLOWED, 404/410 RECORD_NOT_FOUND, 409/412 VERSION_CONFLICT, 413, 415, 422), BAD_REQUEST for any other (429…).',
  },
  REQUEST_MALFORMED: {
    status: 400, issue: 'invalid', spine: 'BAD_REQUEST',
    meaning: 'The HTTP request itself is malformed (smuggling attempt, bad framing) (ruling 16).',
  },
  HEADERS_TOO_LARGE: {
    status: 431, issue: 'too-long', spine: 'BAD_REQUEST',
    meaning: 'The request header block is over the limit (ruling 16).',
  },
  INTERNAL_ERROR: {
    status: 500, issue: 'exception', spine: 'INTERNAL_SERVER_ERROR',
    meaning: 'An unexpected fault in the gateway; nothing was forwarded.',
  },
} as const satisfies Record<string, ErrorMapping & { meaning: string }>;

export type ErrorCode = keyof typeof CATALOGUE;

export interface Issue {
  /** Overrides the code's issue type for this one issue (rarely needed). */
  issue?: IssueType;
  diagnostics: string;
  /** FHIRPath of the element at fault, when known. */
  expression?: string;
}

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly issues: readonly Issue[];
  /** A provider error answer without an OperationOutcome: the provider's status, kept (ruling 11). */
  readonly statusOverride: number | undefined;
  /** Extra response headers (405's Allow). */
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(code: ErrorCode, issues: string | Issue | readonly Issue[], opts?: { status?: number; cause?: unknown; headers?: Record<string, string> }) {
    const list: Issue[] = typeof issues === 'string' ? [{ diagnostics: issues }] : Array.isArray(issues) ? [...(issues as Issue[])] : [issues as Issue];
    // A refusal is an answer, not a fault: no stack trace is captured (nothing reads it, and the
    // capture was ~2 % of a refusal's CPU in a profile of the 422 scenario, issue 17).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(list[0]?.diagnostics ?? code, opts?.cause === undefined ? undefined : { cause: opts.cause });
    Error.stackTraceLimit = limit;
    this.name = 'GatewayError';
    this.code = code;
    this.issues = list.length ? list : [{ diagnostics: CATALOGUE[code].meaning }];
    this.statusOverride = opts?.status;
    this.headers = opts?.headers;
  }
}

/** The gateway code whose coding (issue, Spine code, per standard) a provider refusal with this status takes. */
const CODED_LIKE: Readonly<Record<number, ErrorCode>> = {
  401: 'CLIENT_NOT_ALLOWED', 403: 'CLIENT_NOT_ALLOWED', 404: 'RECORD_NOT_FOUND', 410: 'RECORD_NOT_FOUND',
  409: 'VERSION_CONFLICT', 412: 'VERSION_CONFLICT', 413: 'BODY_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE', 422: 'BUSINESS_RULE',
};

export function providerStatusCoding(status: number): ErrorCode | undefined {
  return CODED_LIKE[status];
}

export function isGatewayError(e: unknown): e is GatewayError {
  return e instanceof GatewayError;
}
