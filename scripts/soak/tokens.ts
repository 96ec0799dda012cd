/**
 * Token builder for the soak (scripts/ must not import from test/): fresh unsigned JWTs as both
 * standards define them (`alg: none`, empty signature; ../../../shared/spec/README.md ruling 3), with
 * the claims of the UEC / GP Connect example payloads (the same set demo/token.ts prints), and a
 * rotating set of tokens that must be refused.
 */

import { demoClaims as validClaims, unsignedToken } from '../../demo/claims.js';

export { unsignedToken, validClaims };

/** `Authorization` value with a fresh valid token for `scope`. */
export function validAuthorization(scope: string, nowSeconds = Math.floor(Date.now() / 1000)): string {
  return `Bearer ${unsignedToken(validClaims(scope, nowSeconds))}`;
}

/**
 * `Authorization` values that must all be refused as JWT_INVALID (403 under nhs-booking, 400 under
 * gp-connect), chosen so that none of them is the "invalid embedded resource" case (422 under
 * gp-connect): each fails on a plain claim, the header or the token's shape. `writeScope` is the
 * scope the cancel needs; `readScope` is a real scope of the wrong kind.
 */
export function badAuthorizations(writeScope: string, readScope: string, nowSeconds = Math.floor(Date.now() / 1000)): Array<{ name: string; value: string }> {
  const expired = validClaims(writeScope, nowSeconds - 1000); // exp 700 s ago, well past the 60 s skew
  const wrongScope = validClaims(readScope, nowSeconds);
  const noOrganization = validClaims(writeScope, nowSeconds);
  delete noOrganization['requesting_organization'];
  const badReason = { ...validClaims(writeScope, nowSeconds), reason_for_request: 'secondaryuses' };
  const signedLooking = `${unsignedToken(validClaims(writeScope, nowSeconds), { alg: 'HS256', typ: 'JWT' })}c2lnbmF0dXJl`;
  return [
    { name: 'expired', value: `Bearer ${unsignedToken(expired)}` },
    { name: 'read-scope-on-write', value: `Bearer ${unsignedToken(wrongScope)}` },
    { name: 'no-organization', value: `Bearer ${unsignedToken(noOrganization)}` },
    { name: 'reason-not-directcare', value: `Bearer ${unsignedToken(badReason)}` },
    { name: 'alg-hs256-in-unsigned-mode', value: `Bearer ${signedLooking}` },
    { name: 'not-bearer', value: `Basic ${Buffer.from('user:password').toString('base64')}` },
    { name: 'garbage', value: 'Bearer not.a.jwt' },
  ];
}
