import t from 'tap';
import { checkClaims, DEFAULT_CLAIM_TIMING, type ClaimRules } from '../../src/identity/claims.js';
import { validClaims } from '../helpers/tokens.js';
import { decodeUnsigned } from '../../src/identity/token.js';
import { createBaseResourceValidator } from '../../src/fhir/profile.js';

const NOW = 1_700_000_000;
const BOOKING_AUD = 'https://providersupplier.thirdparty.nhs.uk/STU3/1';
const GP_AUD = 'https://providersupplier.thirdparty.nhs.uk/GP0001/STU3/1';

type Standard = 'nhs-booking' | 'gp-connect';

const RULES: Record<Standard, ClaimRules> = {
  'nhs-booking': {
    requiredScope: 'patient/appointment.write',
    audience: BOOKING_AUD,
    requirePractitioner: false,
    completePractitioner: true,
    sdsIdFormat: true,
    validateEmbeddedResources: false,
    ...DEFAULT_CLAIM_TIMING,
  },
  'gp-connect': {
    requiredScope: 'patient/*.write',
    audience: GP_AUD,
    requirePractitioner: true,
    refuseRequestedRecord: true,
    validateEmbeddedResources: true,
    resourceValidator: createBaseResourceValidator(),
    ...DEFAULT_CLAIM_TIMING,
  },
};

type P = Record<string, any>; // test payloads are mutated freely

function base(standard: Standard, practitioner = true): P {
  return validClaims({
    standard,
    scope: RULES[standard].requiredScope,
    audience: standard === 'nhs-booking' ? BOOKING_AUD : GP_AUD,
    nowSeconds: NOW,
    practitioner,
  });
}

const ids = (p: P): P[] => p['requesting_practitioner']['identifier'];
const sdsUser = (p: P): P => ids(p).find((i) => i['system'] === 'https://fhir.nhs.uk/Id/sds-user-id')!;
const sdsRole = (p: P): P => ids(p).find((i) => i['system'] === 'https://fhir.nhs.uk/Id/sds-role-profile-id')!;
const setTimes = (p: P, iat: number, exp: number): void => {
  p['iat'] = iat;
  p['exp'] = exp;
};

t.test('valid example payloads pass and yield the requester', async (t) => {
  for (const standard of ['nhs-booking', 'gp-connect'] as const) {
    const r = checkClaims(base(standard), RULES[standard], NOW);
    t.same(
      r,
      {
        ok: true,
        value: {
          odsCode: 'A1001',
          organisationName: 'Test Hospital',
          deviceId: 'CONS-APP-4',
          deviceModel: 'Consumer product name',
          practitionerId: '10019',
          sdsUserId: '111222333444',
          sdsRoleProfileId: '444555666777',
        },
      },
      standard,
    );
    if (r.ok) t.notOk('token' in r.value, 'no token in the requester');
  }
});

t.test('audience not configured: any non-empty aud', async (t) => {
  const rules = { ...RULES['nhs-booking'] };
  delete rules.audience;
  const p = base('nhs-booking');
  p['aud'] = 'https://elsewhere.example/STU3/1';
  t.ok(checkClaims(p, rules, NOW).ok);
});

t.test('issuer configured: iss must equal it, in either mode (the claim rules are shared)', async (t) => {
  const rules = { ...RULES['nhs-booking'], issuer: 'https://consumer.example/' };
  const p = base('nhs-booking');
  p['iss'] = 'https://consumer.example/';
  t.ok(checkClaims(p, rules, NOW).ok, 'the configured issuer');
  p['iss'] = 'https://attacker.example/';
  const r = checkClaims(p, rules, NOW);
  t.notOk(r.ok, 'another issuer is refused');
  if (!r.ok) t.equal(r.failure.claim, 'iss');
});

interface Case {
  name: string;
  mutate: (p: P) => void;
  /** Expected failing claim; undefined = must pass. */
  claim?: string;
  /** Expected invalidResource flag for gp-connect (booking never sets it). */
  gpInvalidResource?: boolean;
  /** The claim named under gp-connect when it differs: an invalid STU3 resource is named by its claim (422). */
  gpClaim?: string;
  only?: Standard;
}

const SKEW = DEFAULT_CLAIM_TIMING.clockSkewSeconds;

const CASES: Case[] = [
  // Registered claims: missing / wrong type / wrong value.
  ...(['iss', 'sub', 'aud'] as const).flatMap((c): Case[] => [
    { name: `${c} missing`, mutate: (p) => delete p[c], claim: c },
    { name: `${c} number`, mutate: (p) => (p[c] = 42), claim: c },
    { name: `${c} null`, mutate: (p) => (p[c] = null), claim: c },
    { name: `${c} empty`, mutate: (p) => (p[c] = ''), claim: c },
  ]),
  { name: 'aud array', mutate: (p) => (p['aud'] = [p['aud']]), claim: 'aud' },
  { name: 'aud not the configured audience', mutate: (p) => (p['aud'] = 'https://other.example/STU3/1'), claim: 'aud' },
  { name: 'aud with trailing slash', mutate: (p) => (p['aud'] = p['aud'] + '/'), claim: 'aud' },
  ...(['exp', 'iat'] as const).flatMap((c): Case[] => [
    { name: `${c} missing`, mutate: (p) => delete p[c], claim: c },
    { name: `${c} string of digits`, mutate: (p) => (p[c] = String(p[c])), claim: c },
    { name: `${c} fractional`, mutate: (p) => (p[c] = p[c] + 0.5), claim: c },
    { name: `${c} null`, mutate: (p) => (p[c] = null), claim: c },
    { name: `${c} negative`, mutate: (p) => (p[c] = -1), claim: c },
  ]),
  // Lifetime: exactly 300.
  { name: 'exp - iat = 299', mutate: (p) => setTimes(p, NOW, NOW + 299), claim: 'exp' },
  { name: 'exp - iat = 301', mutate: (p) => setTimes(p, NOW, NOW + 301), claim: 'exp' },
  { name: 'exp - iat = -1', mutate: (p) => setTimes(p, NOW, NOW - 1), claim: 'exp' },
  { name: 'exp - iat = 0', mutate: (p) => setTimes(p, NOW, NOW), claim: 'exp' },
  { name: 'exp - iat = 300 (older token, not expired)', mutate: (p) => setTimes(p, NOW - 299, NOW + 1) },
  // Expiry with clock skew.
  { name: 'exp = now', mutate: (p) => setTimes(p, NOW - 300, NOW) },
  { name: `expired ${SKEW} s ago (within skew)`, mutate: (p) => setTimes(p, NOW - 300 - SKEW, NOW - SKEW) },
  { name: `expired ${SKEW + 1} s ago (beyond skew)`, mutate: (p) => setTimes(p, NOW - 301 - SKEW, NOW - SKEW - 1), claim: 'exp' },
  { name: 'iat now-600, exp iat+300 (GP Connect test)', mutate: (p) => setTimes(p, NOW - 600, NOW - 300), claim: 'exp' },
  // iat in the future.
  { name: 'iat +200 s', mutate: (p) => setTimes(p, NOW + 200, NOW + 500) },
  { name: 'iat +299 s', mutate: (p) => setTimes(p, NOW + 299, NOW + 599) },
  { name: 'iat +300 s (limit)', mutate: (p) => setTimes(p, NOW + 300, NOW + 600) },
  { name: 'iat +301 s', mutate: (p) => setTimes(p, NOW + 301, NOW + 601), claim: 'iat' },
  { name: 'iat +3600 s', mutate: (p) => setTimes(p, NOW + 3600, NOW + 3900), claim: 'iat' },
  // reason_for_request / requested_scope.
  { name: 'reason_for_request missing', mutate: (p) => delete p['reason_for_request'], claim: 'reason_for_request' },
  { name: 'reason_for_request wrong', mutate: (p) => (p['reason_for_request'] = 'secondaryuses'), claim: 'reason_for_request' },
  { name: 'reason_for_request case', mutate: (p) => (p['reason_for_request'] = 'DirectCare'), claim: 'reason_for_request' },
  { name: 'reason_for_request array', mutate: (p) => (p['reason_for_request'] = ['directcare']), claim: 'reason_for_request' },
  { name: 'requested_scope missing', mutate: (p) => delete p['requested_scope'], claim: 'requested_scope' },
  { name: 'requested_scope badScope', mutate: (p) => (p['requested_scope'] = 'badScope'), claim: 'requested_scope' },
  { name: 'requested_scope read on write (booking)', mutate: (p) => (p['requested_scope'] = 'patient/appointment.read'), claim: 'requested_scope' },
  { name: 'requested_scope read on write (gp)', mutate: (p) => (p['requested_scope'] = 'patient/*.read'), claim: 'requested_scope' },
  { name: 'requested_scope other standard', mutate: (p) => (p['requested_scope'] = p['requested_scope'] === 'patient/*.write' ? 'patient/appointment.write' : 'patient/*.write'), claim: 'requested_scope' },
  { name: 'requested_scope with extra scope', mutate: (p) => (p['requested_scope'] = p['requested_scope'] + ' conf/N'), claim: 'requested_scope' },
  // requesting_device.
  { name: 'device missing', mutate: (p) => delete p['requesting_device'], claim: 'requesting_device' },
  { name: 'device string', mutate: (p) => (p['requesting_device'] = 'Device'), claim: 'requesting_device' },
  { name: 'device array', mutate: (p) => (p['requesting_device'] = [p['requesting_device']]), claim: 'requesting_device' },
  { name: 'device wrong resourceType', mutate: (p) => (p['requesting_device']['resourceType'] = 'Patient'), claim: 'requesting_device.resourceType', gpInvalidResource: true },
  { name: 'device resourceType missing', mutate: (p) => delete p['requesting_device']['resourceType'], claim: 'requesting_device.resourceType', gpInvalidResource: true },
  { name: 'device identifier missing', mutate: (p) => delete p['requesting_device']['identifier'], claim: 'requesting_device.identifier' },
  { name: 'device identifier empty', mutate: (p) => (p['requesting_device']['identifier'] = []), claim: 'requesting_device.identifier', gpClaim: 'requesting_device', gpInvalidResource: true },
  { name: 'device identifier no system', mutate: (p) => delete p['requesting_device']['identifier'][0]['system'], claim: 'requesting_device.identifier' },
  { name: 'device identifier empty value', mutate: (p) => (p['requesting_device']['identifier'][0]['value'] = ''), claim: 'requesting_device.identifier', gpClaim: 'requesting_device', gpInvalidResource: true },
  { name: 'device model missing', mutate: (p) => delete p['requesting_device']['model'], claim: 'requesting_device.model' },
  { name: 'device model number', mutate: (p) => (p['requesting_device']['model'] = 5), claim: 'requesting_device.model', gpClaim: 'requesting_device', gpInvalidResource: true },
  { name: 'device version missing', mutate: (p) => delete p['requesting_device']['version'], claim: 'requesting_device.version' },
  { name: 'device version empty', mutate: (p) => (p['requesting_device']['version'] = ''), claim: 'requesting_device.version', gpClaim: 'requesting_device', gpInvalidResource: true },
  // requesting_organization.
  { name: 'organization missing', mutate: (p) => delete p['requesting_organization'], claim: 'requesting_organization' },
  { name: 'organization null', mutate: (p) => (p['requesting_organization'] = null), claim: 'requesting_organization' },
  { name: 'organization wrong resourceType', mutate: (p) => (p['requesting_organization']['resourceType'] = 'Practitioner'), claim: 'requesting_organization.resourceType', gpInvalidResource: true },
  { name: 'organization name missing', mutate: (p) => delete p['requesting_organization']['name'], claim: 'requesting_organization.name' },
  { name: 'organization name empty', mutate: (p) => (p['requesting_organization']['name'] = ''), claim: 'requesting_organization.name', gpClaim: 'requesting_organization', gpInvalidResource: true },
  { name: 'organization identifier missing', mutate: (p) => delete p['requesting_organization']['identifier'], claim: 'requesting_organization.identifier' },
  { name: 'organization ODS 0.x system', mutate: (p) => (p['requesting_organization']['identifier'][0]['system'] = 'http://fhir.nhs.net/Id/ods-organization-code'), claim: 'requesting_organization.identifier' },
  { name: 'organization ODS value empty', mutate: (p) => (p['requesting_organization']['identifier'][0]['value'] = ''), claim: 'requesting_organization.identifier', gpClaim: 'requesting_organization', gpInvalidResource: true },
  { name: 'organization two ODS codes', mutate: (p) => p['requesting_organization']['identifier'].push({ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'B2002' }), claim: 'requesting_organization.identifier' },
  { name: 'organization extra non-ODS identifier ok', mutate: (p) => p['requesting_organization']['identifier'].unshift({ system: 'https://consumer.example/Id/org', value: 'x' }) },
  // requesting_practitioner.
  { name: 'practitioner null', mutate: (p) => (p['requesting_practitioner'] = null), claim: 'requesting_practitioner' },
  { name: 'practitioner wrong resourceType', mutate: (p) => (p['requesting_practitioner']['resourceType'] = 'Patient'), claim: 'requesting_practitioner.resourceType', gpInvalidResource: true },
  { name: 'practitioner id missing', mutate: (p) => delete p['requesting_practitioner']['id'], claim: 'requesting_practitioner.id' },
  { name: 'practitioner id number', mutate: (p) => (p['requesting_practitioner']['id'] = 10019), claim: 'requesting_practitioner.id', gpClaim: 'requesting_practitioner', gpInvalidResource: true },
  { name: 'sub != practitioner.id', mutate: (p) => (p['sub'] = '10020'), claim: 'sub' },
  { name: 'practitioner.id != sub', mutate: (p) => (p['requesting_practitioner']['id'] = '99999'), claim: 'sub' },
  { name: 'practitioner name missing', mutate: (p) => delete p['requesting_practitioner']['name'], claim: 'requesting_practitioner.name' },
  { name: 'practitioner name empty array', mutate: (p) => (p['requesting_practitioner']['name'] = []), claim: 'requesting_practitioner.name', gpClaim: 'requesting_practitioner', gpInvalidResource: true },
  { name: 'practitioner family missing', mutate: (p) => delete p['requesting_practitioner']['name'][0]['family'], claim: 'requesting_practitioner.name' },
  { name: 'practitioner given missing', mutate: (p) => delete p['requesting_practitioner']['name'][0]['given'], claim: 'requesting_practitioner.name' },
  { name: 'practitioner given empty', mutate: (p) => (p['requesting_practitioner']['name'][0]['given'] = []), claim: 'requesting_practitioner.name', gpClaim: 'requesting_practitioner', gpInvalidResource: true },
  { name: 'practitioner given string', mutate: (p) => (p['requesting_practitioner']['name'][0]['given'] = 'Claire'), claim: 'requesting_practitioner.name', gpClaim: 'requesting_practitioner', gpInvalidResource: true },
  { name: 'practitioner prefix absent ok', mutate: (p) => delete p['requesting_practitioner']['name'][0]['prefix'] },
  { name: 'sds-user-id missing', mutate: (p) => (p['requesting_practitioner']['identifier'] = ids(p).filter((i) => i !== sdsUser(p))), claim: 'requesting_practitioner.identifier.sds-user-id' },
  { name: 'identifier missing', mutate: (p) => delete p['requesting_practitioner']['identifier'], claim: 'requesting_practitioner.identifier.sds-user-id' },
  { name: 'sds-user-id 11 digits', mutate: (p) => (sdsUser(p)['value'] = '11122233344'), claim: 'requesting_practitioner.identifier.sds-user-id', only: 'nhs-booking' },
  { name: 'sds-user-id letters', mutate: (p) => (sdsUser(p)['value'] = 'ABCDEFGHIJKL'), claim: 'requesting_practitioner.identifier.sds-user-id', only: 'nhs-booking' },
  { name: 'sds-user-id xUNK (unanchored TKW regex would pass)', mutate: (p) => (sdsUser(p)['value'] = 'xUNK'), claim: 'requesting_practitioner.identifier.sds-user-id', only: 'nhs-booking' },
  { name: 'sds-user-id lower-case unk', mutate: (p) => (sdsUser(p)['value'] = 'unk'), claim: 'requesting_practitioner.identifier.sds-user-id', only: 'nhs-booking' },
  { name: 'sds-user-id number', mutate: (p) => (sdsUser(p)['value'] = 111222333444), claim: 'requesting_practitioner.identifier.sds-user-id', gpClaim: 'requesting_practitioner', gpInvalidResource: true },
  // GP Connect §b gives the SDS ids no format (its provider tests send GCASDS0001): any non-empty string.
  { name: 'sds-user-id of letters and digits ok (gp-connect)', mutate: (p) => (sdsUser(p)['value'] = 'GCASDS0001'), only: 'gp-connect' },
  { name: 'sds-role-profile-id short ok (gp-connect)', mutate: (p) => (sdsRole(p)['value'] = 'PT1234'), only: 'gp-connect' },
  { name: 'sds-user-id empty', mutate: (p) => (sdsUser(p)['value'] = ''), claim: 'requesting_practitioner.identifier.sds-user-id', gpClaim: 'requesting_practitioner', gpInvalidResource: true },
  { name: 'sds-user-id blank (gp-connect)', mutate: (p) => (sdsUser(p)['value'] = '  '), claim: 'requesting_practitioner.identifier.sds-user-id', only: 'gp-connect' },
  { name: 'sds-user-id UNK ok', mutate: (p) => (sdsUser(p)['value'] = 'UNK') },
  { name: 'sds-role-profile-id UNK ok', mutate: (p) => (sdsRole(p)['value'] = 'UNK') },
  { name: 'both SDS ids UNK ok', mutate: (p) => ((sdsUser(p)['value'] = 'UNK'), (sdsRole(p)['value'] = 'UNK')) },
  // nhs-booking §b (and TKW): a present practitioner is complete, all three identifiers; GP Connect tolerates two absent.
  { name: 'sds-role-profile-id absent ok', mutate: (p) => (p['requesting_practitioner']['identifier'] = ids(p).filter((i) => i !== sdsRole(p))), only: 'gp-connect' },
  { name: 'local identifier absent ok', mutate: (p) => (p['requesting_practitioner']['identifier'] = [sdsUser(p)]), only: 'gp-connect' },
  { name: 'sds-role-profile-id absent', mutate: (p) => (p['requesting_practitioner']['identifier'] = ids(p).filter((i) => i !== sdsRole(p))), claim: 'requesting_practitioner.identifier.sds-role-profile-id', only: 'nhs-booking' },
  { name: 'local identifier absent', mutate: (p) => (p['requesting_practitioner']['identifier'] = [sdsUser(p), sdsRole(p)]), claim: 'requesting_practitioner.identifier', only: 'nhs-booking' },
  { name: 'local identifier without a value', mutate: (p) => (ids(p).find((i) => i !== sdsUser(p) && i !== sdsRole(p))!['value'] = ''), claim: 'requesting_practitioner.identifier', only: 'nhs-booking' },
  { name: 'sds-role-profile-id malformed', mutate: (p) => (sdsRole(p)['value'] = '4445556667'), claim: 'requesting_practitioner.identifier.sds-role-profile-id', only: 'nhs-booking' },
  { name: 'sds-role-profile-id empty', mutate: (p) => (sdsRole(p)['value'] = ''), claim: 'requesting_practitioner.identifier.sds-role-profile-id', gpClaim: 'requesting_practitioner', gpInvalidResource: true },
  // gp-connect §b: a claim's resource that is not valid STU3 is 422, before the demonstrator's field rules (400).
  { name: 'organization identifier an object', mutate: (p) => (p['requesting_organization']['identifier'] = { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'A1001' }), claim: 'requesting_organization.identifier', gpClaim: 'requesting_organization', gpInvalidResource: true },
  { name: 'an invalid resource outranks a missing field', mutate: (p) => { delete p['requesting_device']['model']; p['requesting_practitioner']['name'][0]['foo'] = 'x'; }, claim: 'requesting_practitioner', gpInvalidResource: true, only: 'gp-connect' },
  { name: 'a missing field with every resource valid stays a claim failure', mutate: (p) => delete p['requesting_device']['model'], claim: 'requesting_device.model' },
  // requested_record: 0.x only, refused in 1.x.
  { name: 'requested_record present', mutate: (p) => (p['requested_record'] = { resourceType: 'Patient' }), claim: 'requested_record', only: 'gp-connect' },
  // NHS Booking §b says nothing of it: an extra claim like any other (rulings review of stop 33).
  { name: 'requested_record present (nhs-booking ignores)', mutate: (p) => (p['requested_record'] = { resourceType: 'Patient' }), only: 'nhs-booking' },
  // Unknown top-level claims are not refused.
  { name: 'extra top-level claim ok', mutate: (p) => (p['jti'] = 'abc') },
  // Embedded resources with a property outside STU3: only gp-connect checks (invalidResource).
  { name: 'device unknown property', mutate: (p) => (p['requesting_device']['colour'] = 'red'), claim: 'requesting_device', gpInvalidResource: true, only: 'gp-connect' },
  { name: 'organization unknown property', mutate: (p) => (p['requesting_organization']['odsCode'] = 'A1001'), claim: 'requesting_organization', gpInvalidResource: true, only: 'gp-connect' },
  { name: 'practitioner unknown property', mutate: (p) => (p['requesting_practitioner']['role'] = 'GP'), claim: 'requesting_practitioner', gpInvalidResource: true, only: 'gp-connect' },
  { name: 'device unknown property (booking ignores)', mutate: (p) => (p['requesting_device']['colour'] = 'red'), only: 'nhs-booking' },
  { name: 'practitioner unknown property (booking ignores)', mutate: (p) => (p['requesting_practitioner']['role'] = 'GP'), only: 'nhs-booking' },
  { name: 'device STU3 elements ok', mutate: (p) => Object.assign(p['requesting_device'], { id: 'd1', status: 'active', manufacturer: 'ACME', _version: { id: 'v' }, url: 'https://x.example' }) },
  { name: 'organization STU3 elements ok', mutate: (p) => Object.assign(p['requesting_organization'], { id: 'o1', active: true, telecom: [{ system: 'phone', value: '01234' }] }) },
  { name: 'practitioner STU3 elements ok', mutate: (p) => Object.assign(p['requesting_practitioner'], { gender: 'female', meta: { versionId: '1' } }) },
  // ...at any depth, and by type (gp-connect ruling: the claim's resource is checked against STU3).
  { name: 'device identifier with an unknown property', mutate: (p) => (p['requesting_device']['identifier'][0]['foo'] = 'x'), claim: 'requesting_device', gpInvalidResource: true, only: 'gp-connect' },
  { name: 'practitioner name with an unknown property', mutate: (p) => (p['requesting_practitioner']['name'][0]['foo'] = 'x'), claim: 'requesting_practitioner', gpInvalidResource: true, only: 'gp-connect' },
  { name: 'organization identifier with an unknown property', mutate: (p) => (p['requesting_organization']['identifier'][0]['colour'] = 'x'), claim: 'requesting_organization', gpInvalidResource: true, only: 'gp-connect' },
  { name: 'practitioner gender not a string', mutate: (p) => (p['requesting_practitioner']['gender'] = 7), claim: 'requesting_practitioner', gpInvalidResource: true, only: 'gp-connect' },
  { name: 'organization active not a boolean', mutate: (p) => (p['requesting_organization']['active'] = 'yes'), claim: 'requesting_organization', gpInvalidResource: true, only: 'gp-connect' },
  { name: 'an empty array is not FHIR JSON', mutate: (p) => (p['requesting_organization']['telecom'] = []), claim: 'requesting_organization', gpInvalidResource: true, only: 'gp-connect' },
  { name: 'nested unknown property (booking ignores)', mutate: (p) => (p['requesting_device']['identifier'][0]['foo'] = 'x'), only: 'nhs-booking' },
  { name: 'primitive extension on a complex element is unknown', mutate: (p) => (p['requesting_device']['_identifier'] = {}), claim: 'requesting_device', gpInvalidResource: true, only: 'gp-connect' },
];

for (const standard of ['nhs-booking', 'gp-connect'] as const) {
  t.test(`claim table: ${standard}`, async (t) => {
    for (const c of CASES) {
      if (c.only !== undefined && c.only !== standard) continue;
      const p = base(standard);
      c.mutate(p);
      const r = checkClaims(p, RULES[standard], NOW);
      if (c.claim === undefined) {
        t.ok(r.ok, `${c.name}: accepted`);
        if (!r.ok) t.comment(JSON.stringify(r.failure));
        continue;
      }
      t.equal(r.ok, false, `${c.name}: rejected`);
      if (r.ok) continue;
      t.equal(r.failure.claim, standard === 'gp-connect' && c.gpClaim !== undefined ? c.gpClaim : c.claim, `${c.name}: claim`);
      const expectInvalid = standard === 'gp-connect' && c.gpInvalidResource === true;
      t.equal(r.failure.invalidResource === true, expectInvalid, `${c.name}: invalidResource ${expectInvalid}`);
      // Reasons are fixed text: no claim value from the payload.
      for (const echoed of ['10019', '111222333444', 'A1001', 'CONS-APP-4', 'providersupplier']) {
        t.notOk(r.failure.reason.includes(echoed), `${c.name}: reason does not echo a value`);
      }
    }
  });
}

t.test('practitioner absent: ok for booking, failure for gp-connect', async (t) => {
  const booking = checkClaims(base('nhs-booking', false), RULES['nhs-booking'], NOW);
  t.same(booking, {
    ok: true,
    value: { odsCode: 'A1001', organisationName: 'Test Hospital', deviceId: 'CONS-APP-4', deviceModel: 'Consumer product name' },
  });
  const gp = checkClaims(base('gp-connect', false), RULES['gp-connect'], NOW);
  t.same(gp, { ok: false, failure: { claim: 'requesting_practitioner', reason: 'missing' } });
});

t.test('validateEmbeddedResources off: wrong resourceType is a plain failure', async (t) => {
  const rules = { ...RULES['gp-connect'], validateEmbeddedResources: false };
  const p = base('gp-connect');
  p['requesting_organization']['resourceType'] = 'Patient';
  const r = checkClaims(p, rules, NOW);
  t.same(r, { ok: false, failure: { claim: 'requesting_organization.resourceType', reason: 'must be Organization' } });
});

t.test('check order is deterministic: first failure wins', async (t) => {
  const p = base('gp-connect');
  delete p['iss'];
  p['requested_scope'] = 'badScope';
  p['requesting_device']['colour'] = 'red';
  const first = checkClaims(p, RULES['gp-connect'], NOW);
  t.equal(!first.ok && first.failure.claim, 'iss');
  p['iss'] = 'https://consumersupplier.thirdparty.nhs.uk/';
  const second = checkClaims(p, RULES['gp-connect'], NOW);
  t.equal(!second.ok && second.failure.claim, 'requested_scope');
  p['requested_scope'] = 'patient/*.write';
  const third = checkClaims(p, RULES['gp-connect'], NOW);
  t.same(!third.ok && third.failure, { claim: 'requesting_device', reason: 'property not defined for STU3 Device', invalidResource: true });
});

t.test('custom timing rules', async (t) => {
  const rules = { ...RULES['nhs-booking'], clockSkewSeconds: 0, maxFutureIatSeconds: 0 };
  const p = base('nhs-booking');
  setTimes(p, NOW - 301, NOW - 1);
  t.equal(!checkClaims(p, rules, NOW).ok && 'rejected', 'rejected', 'no skew: 1 s expired rejected');
  setTimes(p, NOW + 1, NOW + 301);
  const r = checkClaims(p, rules, NOW);
  t.equal(!r.ok && r.failure.claim, 'iat', 'no future allowance');
});

t.test('NumericDates written as integers (§b "integer UNIX seconds"): `…300.0` or `1.7e9` style is refused, in both standards', async (t) => {
  for (const standard of ['nhs-booking', 'gp-connect'] as const) {
    for (const [claim, text] of [['exp', `${NOW + 300}.0`], ['exp', `${(NOW + 300) / 1e9}e9`], ['iat', `${NOW}.00`], ['nbf', `${NOW - 10}.0`]] as const) {
      const p = base(standard);
      if (claim === 'nbf') p['nbf'] = NOW - 10;
      const json = JSON.stringify(p).replace(`"${claim}":${p[claim]}`, `"${claim}":${text}`);
      const header = Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url');
      const parsed = decodeUnsigned(`${header}.${Buffer.from(json).toString('base64url')}.`);
      t.ok(parsed.ok, `${standard} ${claim}=${text}: decoded`);
      const r = parsed.ok ? checkClaims(parsed.value, RULES[standard], NOW) : undefined;
      t.equal(r?.ok, false, `${standard} ${claim}=${text}: refused`);
      t.equal(r && !r.ok && r.failure.claim, claim, `${standard}: names ${claim}`);
    }
  }
});
