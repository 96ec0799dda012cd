import { header } from '../context.js';
import { GatewayError } from '../errors.js';
import type { Check } from './types.js';

const ACCEPTED = new Set(['application/fhir+json', 'application/json+fhir']);

/** Ruling 5: FHIR JSON media types only (XML is not supported in this version). */
export function isAcceptedMediaType(value: string | undefined): boolean {
  if (!value) return false;
  const [type, ...params] = value.split(';').map((p) => p.trim().toLowerCase());
  if (!type || !ACCEPTED.has(type)) return false;
  for (const p of params) {
    if (p === '') continue;
    const [k, v] = p.split('=').map((x) => x?.trim());
    if (k !== 'charset' || (v !== 'utf-8' && v !== '"utf-8"')) return false;
  }
  return true;
}

/**
 * A cancel's URL may carry only FHIR's `_format` (JSON): any other parameter (`_method=DELETE`,
 * `_format=xml`, ...) could make the provider do something the gateway did not check.
 */
export function isAcceptedCancelQuery(query: string): boolean {
  if (query === '') return true;
  for (const part of query.split('&')) {
    const [k, v = '', ...rest] = part.split('=');
    // `_format=json=xml`: a second '=' leaves the value to whichever parser reads it (issue 13 item 15).
    if (k !== '_format' || rest.length > 0) return false;
    let value: string;
    try { value = decodeURIComponent(v.replace(/\+/g, ' ')).trim().toLowerCase(); } catch { return false; }
    if (!['json', 'application/json', 'application/fhir+json', 'application/json+fhir'].includes(value)) return false;
  }
  return true;
}

export function createMediaTypeCheck(): Check {
  return {
    name: 'media-type',
    family: 'mediaType',
    run(ctx) {
      if (!isAcceptedCancelQuery(ctx.request.query ?? '')) {
        throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', { diagnostics: 'Only _format=json may be given on an update', expression: 'http.query' });
      }
      // Ruling 21: the gateway checks the bytes it reads; a coded body would be checked as one
      // thing and decoded by the provider as another (issue 13 item 15).
      if (ctx.request.headers['content-encoding'] !== undefined) {
        throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', { diagnostics: 'A Content-Encoding is not accepted on an update', expression: 'http.Content-Encoding' });
      }
      if (ctx.request.repeated.has('content-type') || !isAcceptedMediaType(header(ctx.request, 'content-type'))) {
        throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', { diagnostics: 'Content-Type must be application/fhir+json', expression: 'http.Content-Type' });
      }
    },
  };
}
