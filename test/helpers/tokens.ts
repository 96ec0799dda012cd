/**
 * Test helpers for JWTs: build unsigned tokens and valid claim sets from the standards' own example
 * payloads (copied from `../shared/spec/data/` into `test/fixtures/jwt/`).
 */
import { readFileSync } from 'node:fs';

export const UNSIGNED_HEADER = { alg: 'none', typ: 'JWT' } as const;

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** `base64url(header).base64url(payload).` — the unsigned form both standards define. */
export function unsignedToken(payload: object, header: object = UNSIGNED_HEADER): string {
  return `${b64url(header)}.${b64url(payload)}.`;
}

const FIXTURES = {
  'nhs-booking': new URL('../fixtures/jwt/booking-payload.json', import.meta.url),
  'gp-connect': new URL('../fixtures/jwt/gpconnect-payload.json', import.meta.url),
} as const;

/** A fresh deep copy of the standard's example payload, as published. */
export function examplePayload(standard: 'nhs-booking' | 'gp-connect'): Record<string, unknown> {
  return JSON.parse(readFileSync(FIXTURES[standard], 'utf8')) as Record<string, unknown>;
}

/**
 * A payload that passes `checkClaims` at `nowSeconds` for the given scope: iat = now, exp = now + 300,
 * `aud` replaced when `audience` is given, `requesting_practitioner` kept unless `practitioner: false`.
 */
export function validClaims(opts: {
  standard: 'nhs-booking' | 'gp-connect';
  scope: string;
  audience?: string;
  nowSeconds: number;
  practitioner?: boolean;
}): Record<string, unknown> {
  const payload = examplePayload(opts.standard);
  payload['iat'] = opts.nowSeconds;
  payload['exp'] = opts.nowSeconds + 300;
  payload['requested_scope'] = opts.scope;
  if (opts.audience !== undefined) payload['aud'] = opts.audience;
  if (opts.practitioner === false) delete payload['requesting_practitioner'];
  return payload;
}
