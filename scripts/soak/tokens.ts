/**
 * Token builder for the soak (scripts/ must not import from test/): fresh unsigned JWTs as both
 * standards define them (`alg: none`, empty signature; ../../../shared/spec/README.md ruling 3), with
 * the claims of the UEC / GP Connect example payloads (the same set demo/token.ts prints), and a
 * rotating set of tokens that must be refused.
 */

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

/** `base64url(header).base64url(payload).` */
export function unsignedToken(payload: object, header: object = { alg: 'none', typ: 'JWT' }): string {
  return `${b64url(header)}.${b64url(payload)}.`;
}

/** A claim set that passes the gateway's claim rules for `scope` at `nowSeconds` (iat = now, exp = iat + 300). */
export function validClaims(scope: string, nowSeconds: number): Record<string, unknown> {
  return {
    iss: 'https://consumersupplier.thirdparty.nhs.uk/',
    sub: '10019',
    aud: 'https://localhost/STU3/1',
    exp: nowSeconds + 300,
    iat: nowSeconds,
    reason_for_request: 'directcare',
    requested_scope: scope,
    requesting_device: {
      resourceType: 'Device',
      identifier: [{ system: 'https://consumersupplier.com/Id/device-identifier', value: 'CONS-APP-4' }],
      model: 'Consumer product name',
      version: '5.3.0',
    },
    requesting_organization: {
      resourceType: 'Organization',
      identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'A1001' }],
      name: 'Test Hospital',
    },
    requesting_practitioner: {
      resourceType: 'Practitioner',
      id: '10019',
      identifier: [
        { system: 'https://fhir.nhs.uk/Id/sds-user-id', value: '111222333444' },
        { system: 'https://fhir.nhs.uk/Id/sds-role-profile-id', value: '444555666777' },
      ],
      name: [{ family: 'Jones', given: ['Claire'], prefix: ['Dr'] }],
    },
  };
}

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
  const signedLooking = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(validClaims(writeScope, nowSeconds))}.c2lnbmF0dXJl`;
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
