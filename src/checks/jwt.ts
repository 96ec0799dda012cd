import { createBaseResourceValidator } from '../fhir/profile.js';
import { readFileSync } from 'node:fs';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { GatewayError } from '../errors.js';
import { checkClaims, type ClaimRules } from '../identity/claims.js';
import { createSignedVerifier, decodeUnsigned, KEYS_UNAVAILABLE, readBearer, type Result, type TokenFailure } from '../identity/token.js';
import type { Standard } from '../standards/index.js';
import type { Check } from './types.js';

import { systemClock, type Clock } from '../ports/clock.js';
export { systemClock, type Clock };

/**
 * RFC 6750 §3.1's challenge for a refused token (NHS Booking §b): no error code when the request
 * carries no token at all, `invalid_request` for a malformed Authorization header,
 * `insufficient_scope` (with the scope the interaction needs) for the wrong scope, else
 * `invalid_token`. The status stays ruling 3's; the challenge names no claim value.
 */
function bearerChallenge(f: TokenFailure, requiredScope: string | undefined): string {
  if (f.claim === 'authorization') return f.reason === 'missing' ? 'Bearer' : 'Bearer error="invalid_request"';
  if (f.claim === 'requested_scope' && requiredScope !== undefined) return `Bearer error="insufficient_scope", scope="${requiredScope}"`;
  return 'Bearer error="invalid_token"';
}

function fail(f: TokenFailure, challenge?: { requiredScope?: string }): never {
  // Diagnostics name the claim, never its value or the token (ruling 3). A problem of the
  // Authorization header itself (missing, twice, not Bearer, too large) is a header's problem:
  // `http.Authorization`, as every header check reports (README, Errors).
  const code = f.invalidResource ? 'JWT_CLAIM_RESOURCE_INVALID' : 'JWT_INVALID';
  const expression = f.claim === 'authorization' ? 'http.Authorization' : `jwt.${f.claim}`;
  const headers = challenge ? { 'WWW-Authenticate': bearerChallenge(f, challenge.requiredScope) } : undefined;
  throw new GatewayError(code, { diagnostics: `JWT ${f.claim}: ${f.reason}`, expression }, headers ? { headers } : undefined);
}

/**
 * Ruling 3: the bearer token, unsigned (alg none) by default or signed (JWKS, allow-list), then
 * every claim, with the scope of the interaction chosen by the Spine-header check. Never in report
 * mode: identity is not negotiable.
 */
export function createJwtCheck(config: Readonly<Config>, standard: Standard, clock: Clock = systemClock, logger?: Logger): Check {
  const j = config.jwt;
  let decode: (token: string) => Result<Record<string, unknown>> | Promise<Result<Record<string, unknown>>>;
  if (j.mode === 'signed') {
    const jwks = j.jwksFile ? (JSON.parse(readFileSync(j.jwksFile, 'utf8')) as { keys: unknown[] }) : new URL(j.jwksUrl!);
    decode = createSignedVerifier({
      jwks, algorithms: j.algorithms, issuer: j.issuer, audience: j.audience,
      now: () => clock.now(),
      ...(j.jwksCa ? { jwksCa: readFileSync(j.jwksCa) } : {}),
      // The cause (a TLS or socket code, a jose code), never a token or a key.
      ...(logger ? { onKeySetFailure: (reason: string) => logger.warn('the JWT key set could not be fetched; verifying with the keys last fetched, if any', { reason }) } : {}),
    });
  } else {
    decode = decodeUnsigned;
  }
  const baseRules: Omit<ClaimRules, 'requiredScope'> = {
    audience: j.audience,
    issuer: j.issuer,
    requirePractitioner: standard.jwt.requirePractitioner,
    refuseRequestedRecord: standard.jwt.refuseRequestedRecord === true,
    completePractitioner: standard.jwt.completePractitioner === true,
    sdsIdFormat: standard.jwt.sdsIdFormat === true,
    validateEmbeddedResources: standard.jwt.validateEmbeddedResources,
    resourceValidator: standard.jwt.validateEmbeddedResources ? createBaseResourceValidator() : undefined,
    clockSkewSeconds: j.clockSkewSeconds,
    maxFutureIatSeconds: j.maxFutureIatSeconds,
    lifetimeSeconds: 300,
  };
  const rulesByScope = new Map<string, ClaimRules>();
  const rulesFor = (scope: string) => {
    let r = rulesByScope.get(scope);
    if (!r) rulesByScope.set(scope, (r = { ...baseRules, requiredScope: scope }));
    return r;
  };
  return {
    name: 'jwt',
    family: null,
    async run(ctx) {
      const challenge = standard.jwt.bearerChallenge ? { requiredScope: ctx.interaction.scope } : undefined;
      if (ctx.request.repeated.has('authorization')) fail({ claim: 'authorization', reason: 'more than one Authorization header' }, challenge);
      const bearer = readBearer(ctx.request.headers.authorization, j.maxTokenBytes);
      if (!bearer.ok) fail(bearer.failure, challenge);
      const decoded = await decode(bearer.value);
      // The key set could not be fetched or used: the gateway's fault, a 500 the client may retry.
      if (!decoded.ok && decoded.failure.claim === KEYS_UNAVAILABLE) throw new GatewayError('INTERNAL_ERROR', 'The key set that verifies tokens is unavailable; try again');
      if (!decoded.ok) fail(decoded.failure, challenge);
      const claims = checkClaims(decoded.value, rulesFor(ctx.interaction.scope), Math.floor(clock.now() / 1000));
      if (!claims.ok) fail(claims.failure, challenge);
      ctx.requester = claims.value;
    },
  };
}
