/**
 * The JWT layer, claims side: the rules of ruling 3 (`../shared/spec/README.md`) and the claim tables
 * of `nhs-booking-2.0.1.md` §b and `gp-connect-1.2.7.md` §b, applied to an already decoded payload.
 *
 * Checks run in a fixed order and the first failure is returned, naming the claim at fault. Failure
 * reasons are fixed strings: they never echo a claim value (CONTRIBUTING; ruling 19).
 */
import { writtenNumber } from '../fhir/strict-json.js';
import type { Result, TokenFailure } from './token.js';
import { isJsonObject as isObject } from '../fhir/json.js';
import type { BaseResourceValidator } from '../fhir/profile.js';

export interface ClaimRules {
  /** e.g. 'patient/appointment.write' (nhs-booking cancel) or 'patient/*.write' (gp-connect cancel). */
  requiredScope: string;
  /** When set, `aud` must equal it exactly. */
  audience?: string;
  /** When set, `iss` must equal it exactly (both modes; signed mode requires it). */
  issuer?: string;
  /** nhs-booking: false (optional, but complete if present); gp-connect: true. */
  requirePractitioner: boolean;
  /** GP Connect §b: the 0.x `requested_record` claim is refused in 1.x (its demonstrator answers 400). */
  refuseRequestedRecord?: boolean;
  /**
   * nhs-booking §b (and TKW): a present practitioner names all three identifiers — sds-user-id,
   * sds-role-profile-id (value or UNK) and a consumer-local id. GP Connect tolerates the last two absent.
   */
  completePractitioner?: boolean;
  /**
   * nhs-booking §b (TKW): the SDS user and role profile ids are 12 digits or `UNK`. GP Connect's
   * claim table gives no format ("smartcard SDS user id, or UNK"; its test suite sends `GCASDS0001`),
   * so there a non-empty string is enough.
   */
  sdsIdFormat?: boolean;
  /** gp-connect: an unknown property or wrong resourceType in device/org/practitioner → invalidResource. */
  validateEmbeddedResources: boolean;
  /** With validateEmbeddedResources: each claim's resource against its base STU3 type, at every depth. */
  resourceValidator?: BaseResourceValidator;
  /** `exp` may be up to this many seconds in the past (default 60). */
  clockSkewSeconds: number;
  /** `iat` up to this far in the future is accepted (default 300). */
  maxFutureIatSeconds: number;
  /** `exp` must equal `iat` + this exactly (300). */
  lifetimeSeconds: number;
}

/** The timing defaults of ruling 3. */
export const DEFAULT_CLAIM_TIMING = {
  clockSkewSeconds: 60,
  maxFutureIatSeconds: 300,
  lifetimeSeconds: 300,
} as const satisfies Pick<ClaimRules, 'clockSkewSeconds' | 'maxFutureIatSeconds' | 'lifetimeSeconds'>;

/** What later stages and the audit log need about the caller (ruling 19) — never the token. */
export interface Requester {
  odsCode: string;
  organisationName?: string;
  sdsUserId?: string;
  sdsRoleProfileId?: string;
  practitionerId?: string;
  deviceId?: string;
  deviceModel?: string;
}

export const ODS_ORGANIZATION_CODE = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const SDS_USER_ID = 'https://fhir.nhs.uk/Id/sds-user-id';
export const SDS_ROLE_PROFILE_ID = 'https://fhir.nhs.uk/Id/sds-role-profile-id';

/** TKW's pattern (nhs-booking §b), anchored on both alternatives: 12 digits, or `UNK` without a smartcard. */
const SDS_ID = /^(?:[0-9]{12}|UNK)$/;

/**
 * Top-level elements of the STU3 (3.0.1) resources, for gp-connect §b "must be a valid STU3 resource"
 * (unknown property → 422). `primitive` lists the elements that may also appear as `_name` (FHIR JSON
 * primitive extensions).
 */
const RESOURCE_BASE = ['resourceType', 'id', 'meta', 'implicitRules', 'language', 'text', 'contained', 'extension', 'modifierExtension'];
const STU3_ELEMENTS: Record<'Device' | 'Organization' | 'Practitioner', { all: Set<string>; primitive: Set<string> }> = {
  Device: define(
    ['identifier', 'udi', 'status', 'type', 'lotNumber', 'manufacturer', 'manufactureDate', 'expirationDate', 'model', 'version', 'patient', 'owner', 'contact', 'location', 'url', 'note', 'safety'],
    ['status', 'lotNumber', 'manufacturer', 'manufactureDate', 'expirationDate', 'model', 'version', 'url'],
  ),
  Organization: define(
    ['identifier', 'active', 'type', 'name', 'alias', 'telecom', 'address', 'partOf', 'contact', 'endpoint'],
    ['active', 'name', 'alias'],
  ),
  Practitioner: define(
    ['identifier', 'active', 'name', 'telecom', 'address', 'gender', 'birthDate', 'photo', 'qualification', 'communication'],
    ['active', 'gender', 'birthDate'],
  ),
};

function define(elements: string[], primitives: string[]): { all: Set<string>; primitive: Set<string> } {
  return {
    all: new Set([...RESOURCE_BASE, ...elements]),
    primitive: new Set(['id', 'implicitRules', 'language', ...primitives]),
  };
}

type Json = Record<string, unknown>;


function isNonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v.trim() !== '';
}

/** JWT NumericDate as the standards use it: an integer number of seconds (a string "1469436987" is refused). */
function isSeconds(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

class ClaimError {
  constructor(readonly failure: TokenFailure) {}
}

function reject(claim: string, reason: string, invalidResource = false): never {
  throw new ClaimError(invalidResource ? { claim, reason, invalidResource: true } : { claim, reason });
}

/** `identifier[]` entries with the given system; each must be an object. */
function identifiersWithSystem(identifier: unknown, system: string): Json[] {
  if (!Array.isArray(identifier)) return [];
  return identifier.filter((i): i is Json => isObject(i) && i['system'] === system);
}

/**
 * The embedded-resource checks shared by the three claims: an object, the right `resourceType`, and
 * (gp-connect) no property outside the STU3 element list. A wrong `resourceType` is an invalid
 * resource (422) only under `validateEmbeddedResources` (gp-connect README ruling); otherwise a plain
 * failure.
 */
function embeddedResource(
  payload: Json,
  claim: string,
  resourceType: keyof typeof STU3_ELEMENTS,
  rules: ClaimRules,
): Json {
  const value = payload[claim];
  if (value === undefined) reject(claim, 'missing');
  if (!isObject(value)) reject(claim, 'not a JSON object');
  if (value['resourceType'] !== resourceType) {
    reject(`${claim}.resourceType`, `must be ${resourceType}`, rules.validateEmbeddedResources);
  }
  if (rules.validateEmbeddedResources) {
    const { all, primitive } = STU3_ELEMENTS[resourceType];
    for (const key of Object.keys(value)) {
      const known = all.has(key) || (key.startsWith('_') && primitive.has(key.slice(1)));
      // The property name is not echoed: it is caller-controlled text.
      if (!known) reject(claim, `property not defined for STU3 ${resourceType}`, true);
    }
  }
  return value;
}

/** exp, iat and nbf (ruling 3; ruling 26 for nbf). */
function checkTimes(payload: Json, rules: ClaimRules, nowSeconds: number): void {
  const exp = payload['exp'];
  const iat = payload['iat'];
  if (exp === undefined) reject('exp', 'missing');
  if (!isSeconds(exp) || writtenNumber(payload, 'exp') !== undefined) reject('exp', 'must be an integer number of seconds');
  if (iat === undefined) reject('iat', 'missing');
  // Written as an integer too (§b: "integer UNIX seconds"; TKW: 10 digits): `1700000300.0` or
  // `1.7000003e9` is read as one by this parser, as something else by another (ruling 26).
  if (!isSeconds(iat) || writtenNumber(payload, 'iat') !== undefined) reject('iat', 'must be an integer number of seconds');
  // TKW and the GP Connect tests: exp - iat must be exactly 300 (299, 301, -1 all refused).
  if (exp - iat !== rules.lifetimeSeconds) reject('exp', `must equal iat + ${rules.lifetimeSeconds}`);
  // Ruling 3: exp not passed, allowing the configured clock skew.
  if (exp + rules.clockSkewSeconds < nowSeconds) reject('exp', 'token expired');
  // Ruling 3 / gp-connect §b: an iat ahead of our clock is tolerated (tests send +200 s), up to a bound.
  if (iat > nowSeconds + rules.maxFutureIatSeconds) reject('iat', 'issued too far in the future');
  // Ruling 26: `nbf`, when present, is honoured (with the same clock skew as `exp`).
  const nbf = payload['nbf'];
  if (nbf !== undefined) {
    if (!isSeconds(nbf) || writtenNumber(payload, 'nbf') !== undefined) reject('nbf', 'must be an integer number of seconds');
    if (nbf > nowSeconds + rules.clockSkewSeconds) reject('nbf', 'token not yet valid');
  }
}

/** requesting_practitioner, when present: complete, and the one the token's `sub` names. */
function checkPractitioner(payload: Json, rules: ClaimRules, sub: string): Pick<Requester, 'practitionerId' | 'sdsUserId' | 'sdsRoleProfileId'> {
  const practitioner = embeddedResource(payload, 'requesting_practitioner', 'Practitioner', rules);
  const id = practitioner['id'];
  if (!isNonEmptyString(id)) reject('requesting_practitioner.id', 'must be a non-empty string');
  if (id !== sub) reject('sub', 'must equal requesting_practitioner.id');

  const names = practitioner['name'];
  const name0 = Array.isArray(names) ? names[0] : undefined;
  const given = isObject(name0) ? name0['given'] : undefined;
  if (!isObject(name0) || !isNonEmptyString(name0['family']) || !Array.isArray(given) || !isNonEmptyString(given[0])) {
    reject('requesting_practitioner.name', 'needs family and given name');
  }

  const sdsId = (v: unknown): boolean => (rules.sdsIdFormat ? typeof v === 'string' && SDS_ID.test(v) : isNonEmptyString(v));
  const shape = rules.sdsIdFormat ? ' of 12 digits or UNK' : '';
  const userIds = identifiersWithSystem(practitioner['identifier'], SDS_USER_ID);
  if (userIds.length !== 1 || !sdsId(userIds[0]?.['value'])) {
    reject('requesting_practitioner.identifier.sds-user-id', `needs exactly one SDS user id${shape}`);
  }
  // Role profile: GP Connect tolerates it absent; when present it must be well formed (TKW).
  const roleIds = identifiersWithSystem(practitioner['identifier'], SDS_ROLE_PROFILE_ID);
  if (roleIds.length > 1 || (roleIds.length === 1 && !sdsId(roleIds[0]?.['value']))) {
    reject('requesting_practitioner.identifier.sds-role-profile-id', `must be one SDS role profile id${shape}`);
  }

  if (rules.completePractitioner) {
    if (roleIds.length === 0) reject('requesting_practitioner.identifier.sds-role-profile-id', `needs one SDS role profile id${shape}`); // more than one: refused above
    const local = Array.isArray(practitioner['identifier'])
      ? practitioner['identifier'].some((i) => isObject(i) && isNonEmptyString(i['system']) && isNonEmptyString(i['value']) && i['system'] !== SDS_USER_ID && i['system'] !== SDS_ROLE_PROFILE_ID)
      : false;
    if (!local) reject('requesting_practitioner.identifier', 'needs a consumer-local identifier (system and value) besides the SDS ids');
  }

  return {
    practitionerId: id as string,
    sdsUserId: userIds[0]?.['value'] as string,
    ...(roleIds.length === 1 ? { sdsRoleProfileId: roleIds[0]?.['value'] as string } : {}),
  };
}

/**
 * gp-connect ruling: an invalid resource in a claim (unknown property at any depth, wrong
 * `resourceType`, a value of the wrong JSON type) → 422. Claims absent or not objects are left to
 * the claim rules (400).
 */
function checkClaimResources(payload: Json, rules: ClaimRules): void {
  const claims = [['requesting_device', 'Device'], ['requesting_organization', 'Organization'], ['requesting_practitioner', 'Practitioner']] as const;
  for (const [claim, type] of claims) {
    if (!isObject(payload[claim])) continue;
    const value = embeddedResource(payload, claim, type, rules);
    const issue = rules.resourceValidator?.(value)[0];
    // The issue's path and text come from the definitions, never from the token (safeKey).
    if (issue) reject(claim, `not a valid STU3 ${type}: ${issue.expression}: ${issue.diagnostics}`.slice(0, 200), true);
  }
}

function check(payload: Json, rules: ClaimRules, nowSeconds: number): Requester {
  // Registered claims (nhs-booking §b "Mandatory claims"; gp-connect §b claim table).
  for (const claim of ['iss', 'sub', 'aud'] as const) {
    if (payload[claim] === undefined) reject(claim, 'missing');
    if (!isNonEmptyString(payload[claim])) reject(claim, 'must be a non-empty string');
  }
  const sub = payload['sub'] as string;
  if (rules.audience !== undefined && payload['aud'] !== rules.audience) {
    reject('aud', 'does not match the configured audience');
  }
  if (rules.issuer !== undefined && payload['iss'] !== rules.issuer) {
    reject('iss', 'does not match the configured issuer');
  }

  checkTimes(payload, rules, nowSeconds);

  if (payload['reason_for_request'] === undefined) reject('reason_for_request', 'missing');
  if (payload['reason_for_request'] !== 'directcare') reject('reason_for_request', 'must be directcare');
  if (payload['requested_scope'] === undefined) reject('requested_scope', 'missing');
  // Exact match: a read scope on a write interaction (or the reverse) is refused (gp-connect §b).
  if (payload['requested_scope'] !== rules.requiredScope) {
    reject('requested_scope', 'not the scope of this interaction');
  }

  // gp-connect §b: each claim's resource must be valid STU3 (422), which the spec puts before the
  // demonstrator's field requirements (400): a `model` of 42 is an invalid resource, a missing one
  // a failed claim rule.
  if (rules.validateEmbeddedResources) checkClaimResources(payload, rules);

  // requesting_device: identifier {system, value}, model, version (TKW; GP Connect demonstrator).
  const device = embeddedResource(payload, 'requesting_device', 'Device', rules);
  const deviceIdentifier = Array.isArray(device['identifier'])
    ? device['identifier'].find((i): i is Json => isObject(i) && isNonEmptyString(i['system']) && isNonEmptyString(i['value']))
    : undefined;
  if (deviceIdentifier === undefined) reject('requesting_device.identifier', 'needs an identifier with system and value');
  if (!isNonEmptyString(device['model'])) reject('requesting_device.model', 'must be a non-empty string');
  if (!isNonEmptyString(device['version'])) reject('requesting_device.version', 'must be a non-empty string');

  // requesting_organization: name and the ODS code of the originating organisation.
  const organization = embeddedResource(payload, 'requesting_organization', 'Organization', rules);
  if (!isNonEmptyString(organization['name'])) reject('requesting_organization.name', 'must be a non-empty string');
  const ods = identifiersWithSystem(organization['identifier'], ODS_ORGANIZATION_CODE);
  // Exactly one: two ODS codes would leave the audit record's requester ambiguous.
  if (ods.length !== 1 || !isNonEmptyString(ods[0]?.['value'])) {
    reject('requesting_organization.identifier', 'needs exactly one ODS organisation code');
  }
  const odsCode = ods[0]?.['value'] as string;

  const requester: Requester = {
    odsCode,
    organisationName: organization['name'],
    deviceId: deviceIdentifier['value'] as string,
    deviceModel: device['model'],
  };

  // requesting_practitioner: optional in booking since Dec 2020, mandatory in GP Connect; complete when present.
  if (payload['requesting_practitioner'] === undefined) {
    if (rules.requirePractitioner) reject('requesting_practitioner', 'missing');
  } else Object.assign(requester, checkPractitioner(payload, rules, sub));

  // 0.x claim, removed in 1.0; the GP Connect demonstrator refuses it in 1.x (gp-connect §b).
  // NHS Booking (§b) says nothing of it: an extra claim, ignored like any other.
  if (rules.refuseRequestedRecord && payload['requested_record'] !== undefined) reject('requested_record', 'not allowed');

  return requester;
}

export function checkClaims(payload: Record<string, unknown>, rules: ClaimRules, nowSeconds: number): Result<Requester> {
  if (!isObject(payload)) return { ok: false, failure: { claim: 'payload', reason: 'not a JSON object' } };
  try {
    return { ok: true, value: check(payload, rules, nowSeconds) };
  } catch (err) {
    if (err instanceof ClaimError) return { ok: false, failure: err.failure };
    throw err;
  }
}
