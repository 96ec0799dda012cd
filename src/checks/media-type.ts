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

export function createMediaTypeCheck(): Check {
  return {
    name: 'media-type',
    family: 'mediaType',
    run(ctx) {
      if (ctx.request.repeated.has('content-type') || !isAcceptedMediaType(header(ctx.request, 'content-type'))) {
        throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', { diagnostics: 'Content-Type must be application/fhir+json', expression: 'http.Content-Type' });
      }
    },
  };
}
