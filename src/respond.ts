import type { ServerResponse } from 'node:http';
import { CATALOGUE, providerStatusCoding, type ErrorMapping, type GatewayError } from './errors.js';
import { buildOperationOutcome } from './fhir/operation-outcome.js';
import type { Codec } from './ports/codec.js';
import type { Standard } from './standards/index.js';
import { gzipWanted, gzipWhole } from './http/answer-gzip.js';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/** The status, FHIR issue type and Spine code of an error under a standard. */
export function mappingFor(err: GatewayError, standard: Standard): ErrorMapping {
  // A provider's refusal is coded as the standard codes its status (ruling 11; e.g. 403 → forbidden).
  const like = err.code === 'UPSTREAM_REFUSED' && err.statusOverride !== undefined ? providerStatusCoding(err.statusOverride) : undefined;
  const code = like ?? err.code;
  const base = CATALOGUE[code];
  const o = standard.errorOverrides[code] ?? {};
  return {
    status: err.statusOverride ?? o.status ?? base.status,
    issue: o.issue ?? base.issue,
    spine: o.spine ?? base.spine,
  };
}

/**
 * An OperationOutcome in the negotiated format; in JSON when that format cannot say it (a
 * diagnostic holding a character XML cannot carry): an answer always goes out.
 */
export function encodeOutcome(oo: Record<string, unknown>, codec: Codec | undefined): { body: Buffer; contentType: string } {
  if (codec) {
    try {
      return { body: codec.encode(oo), contentType: codec.contentType };
    } catch {
      // the JSON below
    }
  }
  return { body: Buffer.from(JSON.stringify(oo)), contentType: FHIR_JSON };
}

/**
 * Write a gateway-made error (ruling 14): OperationOutcome, FHIR JSON, no-store, and
 * X-Correlation-ID echoing X-Request-ID. Safe to call when the answer has already started: then
 * the connection is cut instead, so the client never mistakes a half answer for a whole one.
 */
export function sendError(res: ServerResponse, err: GatewayError, standard: Standard, requestId?: string, close = false, codec?: Codec): number {
  const mapping = mappingFor(err, standard);
  if (res.headersSent || res.writableEnded || res.destroyed) {
    res.destroy();
    return mapping.status;
  }
  // Ruling 21: the negotiated format (JSON unless the request asked for XML).
  const oo = buildOperationOutcome(mapping, err.issues, standard.operationOutcomeProfile) as unknown as Record<string, unknown>;
  const encoded = encodeOutcome(oo, codec);
  let body = encoded.body;
  // A connection already marked to close (retired: its request count, its age, a CRL; or draining)
  // stays marked: the refusal replaces the answer's headers, not that decision.
  const closing = close || /(^|,)\s*close\s*(,|$)/i.test(String(res.getHeader('connection') ?? ''));
  for (const h of res.getHeaderNames()) res.removeHeader(h);
  res.statusCode = mapping.status;
  res.setHeader('Content-Type', encoded.contentType);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', body.length);
  if (requestId) res.setHeader('X-Correlation-ID', requestId);
  for (const [k, v] of Object.entries(err.headers ?? {})) res.setHeader(k, v);
  if (closing) res.setHeader('Connection', 'close');
  if (gzipWanted(res, standard.answerGzip, mapping.status)) body = gzipWhole(res, body);
  res.end(body);
  return mapping.status;
}
