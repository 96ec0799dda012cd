import { header } from '../context.js';
import { GatewayError } from '../errors.js';
import { formatOfParam } from '../edge/negotiate.js';
import type { Standard } from '../standards/index.js';
import type { Check } from './types.js';

const JSON_TYPES: readonly string[] = ['application/fhir+json', 'application/json+fhir'];

/** Ruling 5 and 21: FHIR JSON, and FHIR XML in the forms the standard accepts (charset utf-8 only). */
export function isAcceptedMediaType(value: string | undefined, accepted: readonly string[] = JSON_TYPES): boolean {
  if (!value) return false;
  const [type, ...params] = value.split(';').map((p) => p.trim().toLowerCase());
  if (!type || !accepted.includes(type)) return false;
  let charsets = 0;
  for (const p of params) {
    if (p === '') continue;
    const [k, v] = p.split('=').map((x) => x?.trim());
    if (k !== 'charset' || (v !== 'utf-8' && v !== '"utf-8"')) return false;
    // A parameter given twice (RFC 9110 §5.6.6 names each once) is read differently by different parsers.
    if (++charsets > 1) return false;
  }
  return true;
}

/**
 * A cancel's URL may carry only FHIR's `_format` (json, xml or their media types; ruling 21): any
 * other parameter (`_method=DELETE`, ...) or value could make the provider do something the
 * gateway did not check.
 */
export function isAcceptedCancelQuery(query: string): boolean {
  if (query === '') return true;
  let named: string | undefined;
  for (const part of query.split('&')) {
    const parts = part.split('=');
    if (parts.length !== 2 || parts[0] !== '_format') return false;
    let value: string;
    try { value = decodeURIComponent(parts[1]!.replace(/\+/g, ' ')); } catch { return false; }
    const format = formatOfParam(value);
    if (!format) return false;
    // Two `_format`s naming different formats: readers differ on which one wins (first or last).
    if (named !== undefined && named !== format) return false;
    named = format;
  }
  return true;
}

export function createMediaTypeCheck(standard: Pick<Standard, 'requestMediaTypes'> = { requestMediaTypes: JSON_TYPES }): Check {
  const accepted = standard.requestMediaTypes;
  const named = accepted.filter((t) => t.startsWith('application/fhir+')).join(' or ');
  return {
    name: 'media-type',
    family: 'mediaType',
    run(ctx) {
      if (!isAcceptedCancelQuery(ctx.request.query ?? '')) {
        throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', { diagnostics: 'Only _format (json or xml) may be given on an update', expression: 'http.query' });
      }
      // Ruling 21: the gateway checks the bytes it reads; a coded body would be checked as one
      // thing and decoded by the provider as another (issue 13 item 15).
      if (ctx.request.headers['content-encoding'] !== undefined) {
        throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', { diagnostics: 'A Content-Encoding is not accepted on an update', expression: 'http.Content-Encoding' });
      }
      if (ctx.request.repeated.has('content-type') || !isAcceptedMediaType(header(ctx.request, 'content-type'), accepted)) {
        throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', { diagnostics: `Content-Type must be ${named}`, expression: 'http.Content-Type' });
      }
    },
  };
}
