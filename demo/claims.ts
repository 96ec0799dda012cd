/**
 * The demo consumer's identity: the claims of the UEC / GP Connect example payloads, as an unsigned
 * JWT (`alg: none`, empty signature; ../shared/spec/README.md ruling 3). Used by the demo's token
 * command, the soak and the benchmark, so they all send what a real consumer sends.
 */

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

/** `base64url(header).base64url(payload).` */
export function unsignedToken(payload: object, header: object = { alg: 'none', typ: 'JWT' }): string {
  return `${b64url(header)}.${b64url(payload)}.`;
}

/**
 * A claim set that passes the gateway's claim rules for `scope` at `nowSeconds` (iat = now,
 * exp = iat + 300). `deviceId` lets a load generator issue distinct tokens.
 */
export function demoClaims(scope: string, nowSeconds: number, deviceId = 'CONS-APP-4'): Record<string, unknown> {
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
      identifier: [{ system: 'https://consumersupplier.com/Id/device-identifier', value: deviceId }],
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
        { system: 'https://consumersupplier.thirdparty.nhs.uk/Id/user-guid', value: '98ed4f78-814d-4266-8d5b-cde742f3093c' },
      ],
      name: [{ family: 'Jones', given: ['Claire'], prefix: ['Dr'] }],
    },
  };
}
