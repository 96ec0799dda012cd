#!/usr/bin/env node
import { STANDARDS } from '../src/standards/index.js';

/**
 * Prints a fresh unsigned JWT (alg none, as both standards define) for the demo's curl commands:
 *   node dist/demo/token.js read|write [nhs-booking|gp-connect]
 * The claims follow the UEC/GP Connect examples; iat is now and exp = iat + 300.
 */
const [kind = 'read', standardName = 'nhs-booking'] = process.argv.slice(2);
const standard = STANDARDS[standardName as keyof typeof STANDARDS] ?? STANDARDS['nhs-booking'];
const interaction = standard.interactions.find((i) => i.name === (kind === 'write' ? 'cancel' : 'read'))!;
const now = Math.floor(Date.now() / 1000);
const claims = {
  iss: 'https://consumersupplier.thirdparty.nhs.uk/',
  sub: '10019',
  aud: 'https://localhost/STU3/1',
  exp: now + 300,
  iat: now,
  reason_for_request: 'directcare',
  requested_scope: interaction.scope,
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
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
process.stdout.write(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.\n`);
