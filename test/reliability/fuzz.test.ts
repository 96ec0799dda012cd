/**
 * Issue 8 item 1: fuzzing the real gateway (over mTLS, keep-alive sockets) in front of the real demo
 * provider, with fast-check and a fixed seed. Generated: bodies (malformed JSON, huge numbers, deep
 * nesting, long strings, unicode edge cases, prototype keys, a wrong type at profile elements,
 * random structural and byte mutations of a valid cancel), header sets (Ssp-*, If-Match,
 * Content-Type) and tokens (claim mutations, base64url garbage), and mixes of them.
 *
 * Asserted for every answer: a non-2xx answer is a catalogued OperationOutcome (status, Spine code
 * and issue shape of one catalogue code, under the standard's overrides), with the code the failing
 * part calls for; a case built to be a valid cancel gets 200; a case built to be invalid never gets
 * a 2xx; and the provider received a PUT for a case if and only if the gateway answered it 200
 * (each request carries its own X-Request-ID, which the provider records). At the end: no unhandled
 * rejection, the provider's PUT count equals the gateway's 200s, and a valid read still works.
 *
 * FUZZ_SEED and FUZZ_RUNS (total cases; default 2,400 = 2,000 nhs-booking + 400 gp-connect in
 * `npm test`; `npm run fuzz` runs 12,000 = 10,000 + 2,000, issue 12 item 6)
 * select a longer run: see docs/reliability.md.
 */
import t from 'tap';
import { xmlCodec } from '../../src/adapters/codec-xml.js';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import type { ErrorCode } from '../../src/errors.js';
import { STANDARDS } from '../../src/standards/index.js';
import { seedAppointments } from '../../demo/provider/seed/index.js';
import { assertOutcome } from '../helpers/assert.js';
import { CONSUMER_ASID, PROVIDER_ASID, cancelRequest, identityHeaders, seen, startHarness, type Harness, type StandardName } from '../helpers/harness.js';
import { validClaims } from '../helpers/tokens.js';
import { catalogueCodes, crashRecorder, keepAliveClient } from './support.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20_240_808);
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 2_400);
const RUNS_NHS = Math.round((RUNS * 5) / 6);
const RUNS_GP = RUNS - RUNS_NHS;
/** Cases per fast-check run, sent concurrently over as many keep-alive sockets. */
const BATCH = 16;
const MAX_DEPTH = 64; // limits.maxJsonDepth default (ruling 6)
const MAX_BODY = 1_048_576; // limits.maxBodyBytes default (ruling 6)

const crashes = crashRecorder();

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = Array<string | number>;
type Validity = 'valid' | 'invalid' | 'either';

// ---------------------------------------------------------------------------------------------
// JSON helpers

const isObj = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

function paths(v: Json, at: Path = [], out: Path[] = []): Path[] {
  if (at.length) out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (isObj(v)) for (const k of Object.keys(v)) paths(v[k]!, [...at, k], out);
  return out;
}
function getAt(root: Json, p: Path): Json | undefined {
  let cur: Json | undefined = root;
  for (const k of p) {
    if (Array.isArray(cur) && typeof k === 'number') cur = cur[k];
    else if (isObj(cur) && typeof k === 'string' && Object.hasOwn(cur, k)) cur = cur[k];
    else return undefined;
  }
  return cur;
}
/** Replace the node at `p` (own property, even for `__proto__`); false when the path is gone. */
function setAt(root: Json, p: Path, value: Json): boolean {
  const parent = getAt(root, p.slice(0, -1));
  const k = p[p.length - 1]!;
  if (Array.isArray(parent) && typeof k === 'number' && k < parent.length) parent[k] = value;
  else if (isObj(parent) && typeof k === 'string') Object.defineProperty(parent, k, { value, enumerable: true, writable: true, configurable: true });
  else return false;
  return true;
}
function deleteAt(root: Json, p: Path): boolean {
  const parent = getAt(root, p.slice(0, -1));
  const k = p[p.length - 1]!;
  if (Array.isArray(parent) && typeof k === 'number' && k < parent.length) parent.splice(k, 1);
  else if (isObj(parent) && typeof k === 'string' && Object.hasOwn(parent, k)) delete parent[k];
  else return false;
  return true;
}
function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}
/** The JSON nesting depth as the gateway counts it (the root container is 1). */
function depth(v: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[v, 0]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (Array.isArray(x)) { max = Math.max(max, d + 1); for (const y of x) stack.push([y, d + 1]); }
    else if (isObj(x)) { max = Math.max(max, d + 1); for (const y of Object.values(x)) stack.push([y, d + 1]); }
  }
  return max;
}
const pathText = (p: Path) => p.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('');
const typeOf = (v: Json) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** A value of every JSON type; a wrong type is any of them whose type differs from the node's. */
const TYPED_VALUES: Json[] = ['x', '', 42, 0, -1.5, true, false, null, {}, { a: 1 }, [], ['x'], [{}]];
const otherTypes = (v: Json, values = TYPED_VALUES) => values.filter((x) => typeOf(x) !== typeOf(v));
/** One value per JSON type, for the exhaustive sweep. */
const ONE_PER_TYPE: Json[] = [0, 2, 5, 7, 8, 11].map((i) => TYPED_VALUES[i]!); // 'x', 42, true, null, {}, ['x']

// ---------------------------------------------------------------------------------------------
// The model of a valid cancel per standard (all fuzz appointments share it; only the id differs)

const TEMPLATE = {
  'nhs-booking': seedAppointments('nhs-booking')[0]!,
  'gp-connect': seedAppointments('gp-connect')[0]!,
} as const;

/** The valid cancel body for a stored appointment (as cancelRequest builds it). */
function validCancel(h: Harness, std: StandardName, id: string): Json {
  const r = h.provider.store.read(id)!.resource as unknown as Record<string, Json>;
  r['status'] = 'cancelled';
  if (std === 'gp-connect') r['extension'] = [...((r['extension'] as Json[]) ?? []), { url: STANDARDS['gp-connect'].cancel.reasonExtensionUrl, valueString: 'Patient request' }];
  return r;
}

interface Model {
  all: Path[];
  /** Paths a mutation may touch without the result possibly staying a valid cancel. */
  mutable: Path[];
  strings: Path[];
  objects: Path[];
}
function model(body: Json, std: StandardName): Model {
  const all = paths(body);
  const reasonIdx = std === 'gp-connect' ? (getAt(body, ['extension']) as Json[]).length - 1 : -1;
  const protectedPath = (p: Path) =>
    (p.length === 1 && p[0] === 'status') ||
    (p.length === 2 && p[0] === 'meta' && (p[1] === 'versionId' || p[1] === 'lastUpdated')) ||
    (reasonIdx >= 0 && p[0] === 'extension' && p[1] === reasonIdx);
  const mutable = all.filter((p) => !protectedPath(p));
  return {
    all,
    mutable,
    strings: mutable.filter((p) => typeof getAt(body, p) === 'string'),
    objects: [[], ...mutable.filter((p) => isObj(getAt(body, p)))],
  };
}

// ---------------------------------------------------------------------------------------------
// Plans: plain data (printable in a counterexample), materialized per case

type HeaderChoice = { value?: string | string[]; fail?: ErrorCode };
interface HeaderPlan { trace: HeaderChoice; from: HeaderChoice; to: HeaderChoice; interaction: HeaderChoice; ifMatch: HeaderChoice; contentType: HeaderChoice }

type TokenPlan =
  | { kind: 'valid' }
  | { kind: 'noPractitioner' }
  | { kind: 'extraProperty'; claim: 'requesting_device' | 'requesting_organization' | 'requesting_practitioner'; key: string }
  | { kind: 'delete'; claim: string }
  | { kind: 'wrongType'; claim: string; value: Json }
  | { kind: 'lifetime'; delta: number }
  | { kind: 'expired'; ago: number }
  | { kind: 'future'; ahead: number }
  | { kind: 'reason'; value: string }
  | { kind: 'scope'; value: string }
  | { kind: 'nested'; which: number }
  | { kind: 'wrongResource'; which: number }
  | { kind: 'requestedRecord' }
  | { kind: 'header'; header: Json }
  | { kind: 'signature'; sig: string }
  | { kind: 'garbage'; token: string }
  | { kind: 'authorization'; value: string | undefined }
  | { kind: 'huge'; size: number };

type BodyPlan =
  | { kind: 'valid'; style: 'compact' | 'pretty' | 'reversed' }
  | { kind: 'malformed'; op: number; at: number }
  | { kind: 'number'; at: number; literal: string }
  | { kind: 'deep'; at: number; levels: number; container: 'array' | 'object' }
  | { kind: 'long'; at: number; length: number; ch: string }
  | { kind: 'unicode'; at: number; value: string }
  | { kind: 'rawBytes'; at: number; seq: number }
  | { kind: 'bom'; bytes: number[] }
  | { kind: 'proto'; at: number; key: '__proto__' | 'constructor' | 'prototype'; escaped: boolean; value: Json }
  | { kind: 'wrongType'; at: number; value: number }
  | { kind: 'mutate'; ops: Array<{ op: 'delete' | 'replace' | 'add'; at: number; key: string; value: Json }> }
  | { kind: 'bytes'; ops: Array<{ op: 'set' | 'insert' | 'delete'; at: number; byte: number }> };

interface CasePlan { family: 'headers' | 'token' | 'body' | 'mix'; headers: HeaderPlan; token: TokenPlan; body: BodyPlan }

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const PRINTABLE = [...Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)), '\t', 'é', 'ÿ', '\u00a0'];
const headerText = (max = 60) => fc.string({ unit: fc.constantFrom(...PRINTABLE), maxLength: max });
const trimmed = (s: string) => s.replace(/^[ \t]+|[ \t]+$/g, '');

function headerPlanArb(std: StandardName): fc.Arbitrary<HeaderPlan> {
  const ids = Object.fromEntries(STANDARDS[std].interactions.map((i) => [i.name, i.id]));
  const spine = (valid: fc.Arbitrary<string>, invalid: fc.Arbitrary<string>) =>
    fc.oneof(
      { weight: 6, arbitrary: valid.map((value): HeaderChoice => ({ value })) },
      { weight: 1, arbitrary: fc.constant<HeaderChoice>({ fail: 'SPINE_HEADER_INVALID' }) },
      { weight: 3, arbitrary: invalid.map((value): HeaderChoice => ({ value, fail: 'SPINE_HEADER_INVALID' })) },
    );
  const trace = fc.oneof(
    spine(fc.oneof(fc.uuid(), fc.uuid().map((u) => u.toUpperCase())), fc.oneof(headerText().filter((s) => !UUID.test(trimmed(s))), fc.uuid().map((u) => `{${u}}`), fc.uuid().map((u) => u.replaceAll('-', '')))),
    fc.tuple(fc.uuid(), fc.uuid()).map(([a, b]): HeaderChoice => ({ value: [a, b], fail: 'SPINE_HEADER_INVALID' })),
  );
  const from = spine(fc.oneof(fc.constant(CONSUMER_ASID), fc.stringMatching(/^[0-9]{1,20}$/)), fc.oneof(headerText().filter((s) => !/^[0-9]{1,20}$/.test(trimmed(s))), fc.stringMatching(/^[0-9]{21,30}$/)));
  const to = spine(fc.constant(PROVIDER_ASID), fc.oneof(headerText().filter((s) => trimmed(s) !== PROVIDER_ASID), fc.stringMatching(/^[0-9]{1,20}$/).filter((s) => s !== PROVIDER_ASID)));
  const interaction = fc.oneof(
    { weight: 6, arbitrary: fc.constant<HeaderChoice>({ value: ids['cancel']! }) },
    { weight: 1, arbitrary: fc.constant<HeaderChoice>({ fail: 'SPINE_HEADER_INVALID' }) },
    {
      weight: 3,
      arbitrary: fc
        .oneof(fc.constantFrom(...Object.entries(ids).filter(([n]) => n !== 'cancel').map(([, id]) => id)), headerText(), fc.constant(ids['cancel']!.toUpperCase()))
        .filter((s) => trimmed(s) !== ids['cancel'])
        .map((value): HeaderChoice => ({ value, fail: trimmed(value) === '' ? 'SPINE_HEADER_INVALID' : 'INTERACTION_MISMATCH' })),
    },
  );
  const missingIfMatch: HeaderChoice = std === 'nhs-booking' ? { fail: 'IF_MATCH_MISSING' } : {};
  const ifMatch = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom<HeaderChoice>({ value: 'W/"1"' }, { value: '"1"' }, { value: ' W/"1" ' }) },
    { weight: 1, arbitrary: fc.constant<HeaderChoice>(missingIfMatch) },
    { weight: 2, arbitrary: fc.integer({ min: 2, max: 10_000 }).map((n): HeaderChoice => ({ value: n % 2 ? `W/"${n}"` : `"${n}"`, fail: 'VERSION_CONFLICT' })) },
    {
      weight: 3,
      arbitrary: fc.oneof(
        fc.constantFrom('*', 'W/1', '1', 'W/"1', '"1" "2"', 'w/"1"', 'W/""', 'W/"1", W/"1"', `W/"${'1'.repeat(65)}"`, 'W/"a b"'),
        headerText().filter((s) => !s.includes('"')),
      // An empty If-Match is malformed (400) under both standards: only a missing one is 412 (ruling 4).
      ).map((value): HeaderChoice => ({ value, fail: 'IF_MATCH_INVALID' })),
    },
    { weight: 1, arbitrary: fc.constant<HeaderChoice>({ value: ['W/"1"', 'W/"1"'], fail: 'IF_MATCH_INVALID' }) },
  );
  const fhirJson = (s: string) => /^\s*application\/(fhir\+json|json\+fhir)/i.test(s);
  const contentType = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom<HeaderChoice>({ value: 'application/fhir+json' }, { value: 'application/fhir+json; charset=utf-8' }, { value: 'application/fhir+json;charset=UTF-8' }, { value: 'application/json+fhir' }, { value: 'Application/FHIR+JSON' }) },
    { weight: 1, arbitrary: fc.constant<HeaderChoice>({ fail: 'UNSUPPORTED_MEDIA_TYPE' }) },
    // Ruling 21: FHIR XML is accepted; these JSON bodies read as XML are not XML (400).
    { weight: 1, arbitrary: fc.constant<HeaderChoice>({ value: 'application/fhir+xml', fail: 'BODY_INVALID' }) },
    {
      weight: 3,
      arbitrary: fc.oneof(
        fc.constantFrom('application/json', 'application/xml', 'text/plain', 'application/fhir+json; charset=iso-8859-1', 'application/fhir+json; charset=utf-16', 'application/fhir+json; version=3.0', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'application/fhir+jsonx'),
        headerText().filter((s) => !fhirJson(s) && !/^\s*application\/(fhir\+xml|xml\+fhir)/i.test(s)),
      ).map((value): HeaderChoice => ({ value, fail: 'UNSUPPORTED_MEDIA_TYPE' })),
    },
  );
  return fc.record({ trace, from, to, interaction, ifMatch, contentType });
}

function validHeaders(std: StandardName): HeaderPlan {
  return {
    trace: { value: randomUUID() }, from: { value: CONSUMER_ASID }, to: { value: PROVIDER_ASID },
    interaction: { value: STANDARDS[std].interactions.find((i) => i.name === 'cancel')!.id },
    ifMatch: { value: 'W/"1"' }, contentType: { value: 'application/fhir+json; charset=utf-8' },
  };
}

const CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'reason_for_request', 'requested_scope', 'requesting_device', 'requesting_organization', 'requesting_practitioner'];
/** Deep claim mutations, each breaking ruling 3 (applied to a fresh valid payload). */
const NESTED: Array<(c: Record<string, any>) => void> = [
  (c) => { c.requesting_device.identifier = []; },
  (c) => { delete c.requesting_device.model; },
  (c) => { c.requesting_device.version = ''; },
  (c) => { c.requesting_device.identifier = [{ system: 'x' }]; },
  (c) => { delete c.requesting_organization.name; },
  (c) => { c.requesting_organization.identifier = []; },
  (c) => { c.requesting_organization.identifier.push({ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'B2002' }); },
  (c) => { c.requesting_practitioner.name = []; },
  (c) => { c.requesting_practitioner.id = 'someone-else'; },
  (c) => { c.requesting_practitioner.identifier = c.requesting_practitioner.identifier.map((i: any) => (i.system === 'https://fhir.nhs.uk/Id/sds-user-id' ? { ...i, value: '12345' } : i)); },
  (c) => { c.requesting_practitioner.identifier = c.requesting_practitioner.identifier.filter((i: any) => i.system !== 'https://fhir.nhs.uk/Id/sds-user-id'); },
  (c) => { c.sub = 'not-the-practitioner'; },
  (c) => { c.exp = c.iat + 299; },
  (c) => { c.exp = c.iat + 301; },
  (c) => { c.iat = String(c.iat); },
];
/** Embedded resources of the wrong type: an invalid resource under gp-connect (422), a plain failure under nhs-booking. */
const WRONG_RESOURCE: Array<(c: Record<string, any>) => void> = [
  (c) => { c.requesting_device.resourceType = 'Patient'; },
  (c) => { c.requesting_organization.resourceType = 'Device'; },
  (c) => { c.requesting_practitioner.resourceType = 'Organization'; },
  (c) => { delete c.requesting_device.resourceType; },
];

function tokenPlanArb(std: StandardName): fc.Arbitrary<TokenPlan> {
  const scope = STANDARDS[std].interactions.find((i) => i.name === 'cancel')!.scope;
  const b64 = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), maxLength: 120 });
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant<TokenPlan>({ kind: 'valid' }) },
    { weight: 1, arbitrary: fc.constant<TokenPlan>({ kind: 'noPractitioner' }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('extraProperty' as const), claim: fc.constantFrom('requesting_device' as const, 'requesting_organization' as const, 'requesting_practitioner' as const), key: fc.constantFrom('foo', 'nhsNumber', 'resourcetype', 'Identifier') }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), claim: fc.constantFrom(...CLAIMS) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('wrongType' as const), claim: fc.constantFrom(...CLAIMS.filter((c) => c !== 'requesting_practitioner')), value: fc.constantFrom<Json>(1, 1.5, -1, true, null, '', '  ', {}, [], ['x'], '1469436687') })
      // iss and aud are any non-empty string (no audience configured): a numeric string is still valid.
      .filter((p) => !(['iss', 'aud'].includes(p.claim) && typeof p.value === 'string' && p.value.trim() !== '')) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('lifetime' as const), delta: fc.integer({ min: -1_000_000, max: 1_000_000 }).filter((d) => d !== 300) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('expired' as const), ago: fc.integer({ min: 5, max: 100_000_000 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('future' as const), ahead: fc.integer({ min: 310, max: 100_000_000 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('reason' as const), value: fc.oneof(fc.constantFrom('DIRECTCARE', 'directcare ', 'secondaryuses', ''), fc.string({ maxLength: 20 })).filter((s) => s !== 'directcare') }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('scope' as const), value: fc.oneof(fc.constantFrom(...STANDARDS[std].interactions.map((i) => i.scope), 'patient/*.write', 'patient/appointment.write', 'patient/appointment.*', `${scope} `, 'user/*.*'), fc.string({ maxLength: 30 })).filter((s) => s !== scope) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('nested' as const), which: fc.nat({ max: NESTED.length - 1 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('wrongResource' as const), which: fc.nat({ max: WRONG_RESOURCE.length - 1 }) }) },
    { weight: 1, arbitrary: fc.constant<TokenPlan>({ kind: 'requestedRecord' }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('header' as const), header: fc.constantFrom<Json>({ alg: 'HS256', typ: 'JWT' }, { alg: 'RS256', typ: 'JWT' }, { alg: 'None', typ: 'JWT' }, { alg: 'none' }, { alg: 'none', typ: 'JWT', kid: '1' }, { typ: 'JWT' }, [], 'none', { alg: 'none', typ: 'jwt' }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('signature' as const), sig: b64.filter((s) => s.length > 0) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('garbage' as const), token: fc.oneof(b64, fc.tuple(b64, b64, b64).map((p) => p.join('.')), fc.tuple(b64, b64).map((p) => `${p.join('.')}.`), fc.tuple(b64, b64, b64, b64).map((p) => p.join('.'))) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('authorization' as const), value: fc.constantFrom(undefined, '', 'Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'Token abc', 'Bearer a b', 'Bearer\tx') }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('huge' as const), size: fc.integer({ min: 6500, max: 8500 }) }) },
  );
}

/** Whether a token plan is valid for the standard, and the code it fails with otherwise. */
function tokenFailure(std: StandardName, p: TokenPlan): ErrorCode | undefined {
  if (p.kind === 'valid') return undefined;
  if (p.kind === 'requestedRecord' && std === 'nhs-booking') return undefined;
  if (p.kind === 'noPractitioner') return std === 'nhs-booking' ? undefined : 'JWT_INVALID';
  if (p.kind === 'extraProperty') return std === 'nhs-booking' ? undefined : 'JWT_CLAIM_RESOURCE_INVALID';
  if (p.kind === 'delete' && p.claim === 'requesting_practitioner') return std === 'nhs-booking' ? undefined : 'JWT_INVALID';
  const embedded = p.kind === 'wrongResource' || (p.kind === 'wrongType' && ['requesting_device', 'requesting_organization'].includes(p.claim) && isObj(p.value));
  if (embedded) return std === 'gp-connect' ? 'JWT_CLAIM_RESOURCE_INVALID' : 'JWT_INVALID';
  return 'JWT_INVALID';
}

function authorization(std: StandardName, p: TokenPlan): string | undefined {
  const now = Math.floor(Date.now() / 1000);
  const scope = STANDARDS[std].interactions.find((i) => i.name === 'cancel')!.scope;
  const c: Record<string, any> = validClaims({ standard: std, scope, nowSeconds: now });
  let header: Json = { alg: 'none', typ: 'JWT' };
  let sig = '';
  switch (p.kind) {
    case 'valid': break;
    case 'noPractitioner': delete c['requesting_practitioner']; break;
    case 'extraProperty': c[p.claim][p.key] = 'x'; break;
    case 'delete': delete c[p.claim]; break;
    case 'wrongType': c[p.claim] = p.value; break;
    case 'lifetime': c['exp'] = c['iat'] + p.delta; break;
    case 'expired': c['exp'] = now - 61 - p.ago; c['iat'] = c['exp'] - 300; break;
    case 'future': c['iat'] = now + p.ahead; c['exp'] = c['iat'] + 300; break;
    case 'reason': c['reason_for_request'] = p.value; break;
    case 'scope': c['requested_scope'] = p.value; break;
    case 'nested': NESTED[p.which]!(c); break;
    case 'wrongResource': WRONG_RESOURCE[p.which]!(c); break;
    case 'requestedRecord': c['requested_record'] = { resourceType: 'Patient' }; break;
    case 'header': header = p.header; break;
    case 'signature': sig = p.sig; break;
    case 'garbage': return `Bearer ${p.token}`;
    case 'authorization': return p.value;
    case 'huge': c['padding'] = 'x'.repeat(p.size); break;
  }
  const token = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(c)).toString('base64url')}.${sig}`;
  return `Bearer ${token}`;
}

/** Raw byte sequences placed inside a JSON string; `invalid`: not valid UTF-8 or a raw control character. */
const RAW_SEQUENCES: Array<{ name: string; bytes: number[]; invalid: boolean }> = [
  { name: 'NUL', bytes: [0x00], invalid: true },
  { name: 'raw newline', bytes: [0x0a], invalid: true },
  { name: 'raw US', bytes: [0x1f], invalid: true },
  { name: 'lone high surrogate (CESU-8)', bytes: [0xed, 0xa0, 0x80], invalid: true },
  { name: 'lone low surrogate (CESU-8)', bytes: [0xed, 0xb0, 0x80], invalid: true },
  { name: 'overlong /', bytes: [0xc0, 0xaf], invalid: true },
  { name: 'overlong 3-byte', bytes: [0xe0, 0x80, 0xaf], invalid: true },
  { name: 'stray continuation', bytes: [0x80], invalid: true },
  { name: 'truncated 4-byte', bytes: [0xf0, 0x9f], invalid: true },
  { name: '0xFF', bytes: [0xff], invalid: true },
  { name: 'above U+10FFFF', bytes: [0xf4, 0x90, 0x80, 0x80], invalid: true },
  { name: 'BOM inside a string', bytes: [0xef, 0xbb, 0xbf], invalid: false },
  { name: 'U+2028', bytes: [0xe2, 0x80, 0xa8], invalid: false },
  { name: 'U+FFFF', bytes: [0xef, 0xbf, 0xbf], invalid: false },
  { name: 'emoji', bytes: [0xf0, 0x9f, 0x98, 0x80], invalid: false },
];
const UNICODE_EDGES = ['\ud800', '\udc00', 'a\ud83d', '\ude00b', '\ufeff', '\u0000', '\u2028\u2029', '\uffff', '\ufffe', 'e\u0301', '\u202e', '😀', '\u200b', '\u{10ffff}', 'Ａ', 'ß', '\u0085'];

const MALFORMED: Array<(s: string, at: number) => string> = [
  (s, at) => s.slice(0, Math.floor(at * (s.length - 1))), // truncated
  (s) => `${s}x`,
  (s) => `${s}}`,
  (s) => `${s},{}`,
  (s) => `${s.slice(0, -1)},}`,
  (s) => s.replace('"', "'"),
  (s) => s.replace(':', ''),
  (s) => s.replace('"resourceType"', 'resourceType'),
  (s) => `/* c */${s}`,
  (s) => s.replace('"cancelled"', 'NaN'),
  (s) => s.replace('"cancelled"', 'Infinity'),
  (s) => s.replace('"cancelled"', 'undefined'),
  (s) => s.replace('"cancelled"', '01'),
  (s) => s.replace('"cancelled"', '.5'),
  (s) => s.replace('"cancelled"', '+1'),
  (s) => s.replace('"cancelled"', '0x10'),
  (s) => s.replace('"cancelled"', '"can\\xcelled"'),
  (s) => s.replace('"cancelled"', '"can\tcelled"'),
  (s) => s.replace('"cancelled"', '"cancelled'),
  (s) => s.replace('{', '{"status":"cancelled",'), // duplicate key
  (s) => s.replace('{', '{"resourceType":"Appointment",'),
  (s) => s.replace('"resourceType":"Appointment"', '"resourceType":"Patient"'),
  (s) => s.replace(/"id":"[^"]*",/, ''),
  (s) => s.replace(/"id":"[^"]*"/, '"id":"other-id"'),
  (s) => s.replace(/"id":"[^"]*"/, '"id":7'),
  () => '',
  () => 'null',
  () => '[]',
  () => '"Appointment"',
  () => '12',
  () => 'true',
  (s) => `[${s}]`,
  (s) => `${s}${s}`,
  (s) => `\u0000${s}`,
  (s) => s.replaceAll(',', ' , ,'),
];
const NUMBERS = ['1e400', '-1e400', '123456789012345678901234567890', '1e308', '-0', '1e-400', '9007199254740993', '1E+2', '0.1', '-12345678901234567890.5'];

function bodyPlanArb(): fc.Arbitrary<BodyPlan> {
  const at = fc.nat({ max: 1_000_000 });
  const jsonValue = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>;
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('valid' as const), style: fc.constantFrom('compact' as const, 'pretty' as const, 'reversed' as const) }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('malformed' as const), op: fc.nat({ max: MALFORMED.length - 1 }), at: fc.double({ min: 0, max: 1, noNaN: true }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('number' as const), at, literal: fc.constantFrom(...NUMBERS) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('deep' as const), at, levels: fc.oneof(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 81, max: 5000 })), container: fc.constantFrom('array' as const, 'object' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('long' as const), at, length: fc.oneof(fc.integer({ min: 1000, max: 20_000 }), fc.integer({ min: 20_000, max: 300_000 })), ch: fc.constantFrom('a', 'é', '😀', '\\', '"', ' ') }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('unicode' as const), at, value: fc.oneof(fc.constantFrom(...UNICODE_EDGES), fc.array(fc.constantFrom(...UNICODE_EDGES), { minLength: 2, maxLength: 6 }).map((a) => a.join('')), fc.string({ unit: 'binary', minLength: 1, maxLength: 12 })) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('rawBytes' as const), at, seq: fc.nat({ max: RAW_SEQUENCES.length - 1 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('bom' as const), bytes: fc.constantFrom<number[]>([0xef, 0xbb, 0xbf], [0xff, 0xfe], [0xfe, 0xff], [0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('proto' as const), at, key: fc.constantFrom('__proto__' as const, 'constructor' as const, 'prototype' as const), escaped: fc.boolean(), value: fc.constantFrom<Json>({}, { polluted: true }, null, 'x', []) }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('wrongType' as const), at, value: fc.nat({ max: 100 }) }) },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('mutate' as const), ops: fc.array(fc.record({ op: fc.constantFrom('delete' as const, 'replace' as const, 'add' as const), at, key: fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom('id', 'extension', 'status', 'meta', 'x', 'resourceType', '_start')), value: jsonValue }), { minLength: 1, maxLength: 3 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('bytes' as const), ops: fc.array(fc.record({ op: fc.constantFrom('set' as const, 'insert' as const, 'delete' as const), at, byte: fc.nat({ max: 255 }) }), { minLength: 1, maxLength: 4 }) }) },
  );
}

function caseArb(std: StandardName): fc.Arbitrary<CasePlan> {
  const valid = fc.constant(null);
  return fc.oneof(
    { weight: 2, arbitrary: fc.record({ family: fc.constant('headers' as const), headers: headerPlanArb(std), token: valid, body: valid }) },
    { weight: 2, arbitrary: fc.record({ family: fc.constant('token' as const), headers: valid, token: tokenPlanArb(std), body: valid }) },
    { weight: 5, arbitrary: fc.record({ family: fc.constant('body' as const), headers: valid, token: valid, body: bodyPlanArb() }) },
    { weight: 1, arbitrary: fc.record({ family: fc.constant('mix' as const), headers: headerPlanArb(std), token: tokenPlanArb(std), body: bodyPlanArb() }) },
  ).map((c) => ({
    family: c.family,
    headers: c.headers ?? validHeaders(std),
    token: c.token ?? { kind: 'valid' },
    body: c.body ?? { kind: 'valid', style: 'compact' },
  }));
}

// ---------------------------------------------------------------------------------------------
// Materializing a body plan against a stored appointment

interface BuiltBody { bytes: Buffer; validity: Validity; codes: ErrorCode[]; note: string }

const BODY_CODES: ErrorCode[] = ['BODY_INVALID', 'PROFILE_INVALID', 'BUSINESS_RULE', 'PARAMETER_INVALID'];
const CHANGED: ErrorCode[] = ['PROFILE_INVALID', 'BUSINESS_RULE', 'PARAMETER_INVALID'];

function buildBody(plan: BodyPlan, valid: Json, m: Model): BuiltBody {
  const pick = (list: Path[], at: number) => list[at % list.length]!;
  const idOrType = (p: Path) => p.length === 1 && (p[0] === 'id' || p[0] === 'resourceType');
  const text = (v: Json) => Buffer.from(JSON.stringify(v), 'utf8');
  const withoutServerMeta = (v: Json) => {
    const c = clone(v);
    const meta = getAt(c, ['meta']);
    if (isObj(meta)) { delete meta['versionId']; delete meta['lastUpdated']; }
    return c;
  };
  switch (plan.kind) {
    case 'valid': {
      const s = plan.style === 'pretty' ? JSON.stringify(valid, null, 2)
        : plan.style === 'reversed' ? JSON.stringify(Object.fromEntries(Object.entries(valid as object).reverse()))
        : JSON.stringify(valid);
      return { bytes: Buffer.from(s, 'utf8'), validity: 'valid', codes: [], note: `valid ${plan.style}` };
    }
    case 'malformed':
      return { bytes: Buffer.from(MALFORMED[plan.op]!(JSON.stringify(valid), plan.at), 'utf8'), validity: 'invalid', codes: ['BODY_INVALID'], note: `malformed #${plan.op}` };
    case 'number': {
      const p = pick(m.mutable, plan.at);
      const b = clone(valid);
      const marker = '@@NUMBER@@';
      setAt(b, p, marker);
      const s = JSON.stringify(b).replace(`"${marker}"`, plan.literal);
      const infinite = !Number.isFinite(Number(plan.literal));
      const same = Number(plan.literal) === getAt(valid, p);
      return { bytes: Buffer.from(s), validity: same ? 'either' : 'invalid', codes: infinite || idOrType(p) ? ['BODY_INVALID'] : CHANGED, note: `number ${plan.literal} at ${pathText(p)}` };
    }
    case 'deep': {
      // Written as text: JSON.stringify itself would overflow the stack at thousands of levels.
      const p = pick(m.objects, plan.at);
      const b = clone(valid);
      const marker = '@@DEEP@@';
      setAt(b, [...p, 'nested'], marker);
      const [open, close] = plan.container === 'array' ? ['[', ']'] : ['{"a":', '}'];
      const s = JSON.stringify(b).replace(`"${marker}"`, `${open.repeat(plan.levels)}"x"${close.repeat(plan.levels)}`);
      const tooDeep = Math.max(depth(b), p.length + 1 + plan.levels) > MAX_DEPTH;
      return { bytes: Buffer.from(s), validity: 'invalid', codes: tooDeep ? ['BODY_INVALID'] : CHANGED, note: `deep ${plan.levels} ${plan.container} at ${pathText(p)}` };
    }
    case 'long': {
      const p = pick(m.strings, plan.at);
      const b = clone(valid);
      setAt(b, p, plan.ch.repeat(plan.length));
      return { bytes: text(b), validity: 'invalid', codes: idOrType(p) ? ['BODY_INVALID'] : CHANGED, note: `long ${plan.length} at ${pathText(p)}` };
    }
    case 'unicode': {
      const p = pick(m.strings, plan.at);
      const b = clone(valid);
      setAt(b, p, plan.value);
      const same = plan.value === getAt(valid, p);
      return { bytes: text(b), validity: same ? 'either' : 'invalid', codes: idOrType(p) ? ['BODY_INVALID'] : CHANGED, note: `unicode ${JSON.stringify(plan.value)} at ${pathText(p)}` };
    }
    case 'rawBytes': {
      const p = pick(m.strings, plan.at);
      const seq = RAW_SEQUENCES[plan.seq]!;
      const b = clone(valid);
      const marker = '@@RAW@@';
      setAt(b, p, marker);
      const [before, after] = JSON.stringify(b).split(marker) as [string, string];
      const bytes = Buffer.concat([Buffer.from(before), Buffer.from(seq.bytes), Buffer.from(after)]);
      return { bytes, validity: 'invalid', codes: seq.invalid || idOrType(p) ? ['BODY_INVALID'] : CHANGED, note: `raw ${seq.name} at ${pathText(p)}` };
    }
    case 'bom':
      // Not JSON as RFC 8259 sends it, and a reader that does not skip it (the demo provider's
      // JSON.parse) sees another document than one that does: refused, never forwarded.
      return { bytes: Buffer.concat([Buffer.from(plan.bytes), text(valid)]), validity: 'invalid', codes: ['BODY_INVALID'], note: `bom ${plan.bytes}` };
    case 'proto': {
      const p = pick(m.objects, plan.at);
      const b = clone(valid);
      setAt(b, [...p, plan.key], plan.value);
      let s = JSON.stringify(b);
      if (plan.escaped) s = s.replace(`"${plan.key}"`, `"${plan.key.slice(0, -1)}\\u${plan.key.charCodeAt(plan.key.length - 1).toString(16).padStart(4, '0')}"`);
      return { bytes: Buffer.from(s), validity: 'invalid', codes: ['BODY_INVALID'], note: `proto ${plan.key} at ${pathText(p)}` };
    }
    case 'wrongType': {
      const p = pick(m.all, plan.at);
      const others = otherTypes(getAt(valid, p)!);
      const value = others[plan.value % others.length]!;
      const b = clone(valid);
      setAt(b, p, value);
      return { bytes: text(b), validity: 'invalid', codes: idOrType(p) ? ['BODY_INVALID'] : ['PROFILE_INVALID'], note: `wrong type ${JSON.stringify(value)} at ${pathText(p)}` };
    }
    case 'mutate': {
      const b = clone(valid);
      const notes: string[] = [];
      let proto = false;
      for (const op of plan.ops) {
        const p = pick(m.mutable, op.at);
        if (op.op === 'delete' && deleteAt(b, p)) notes.push(`delete ${pathText(p)}`);
        else if (op.op === 'replace' && setAt(b, p, op.value)) notes.push(`replace ${pathText(p)}`);
        else if (op.op === 'add') {
          const parent = isObj(getAt(b, p)) ? p : pick(m.objects, op.at);
          if (!isObj(getAt(b, parent))) continue;
          setAt(b, [...parent, op.key], op.value);
          proto ||= ['__proto__', 'constructor', 'prototype'].includes(op.key);
          notes.push(`add ${pathText([...parent, op.key])}`);
        }
      }
      // An allowed change (server meta only) or none at all may still be a valid cancel.
      const same = deepEqual(withoutServerMeta(b), withoutServerMeta(valid));
      return { bytes: text(b), validity: same ? 'either' : 'invalid', codes: proto ? ['BODY_INVALID'] : BODY_CODES, note: `mutate ${notes.join(', ')}` };
    }
    case 'bytes': {
      const bytes = [...text(valid)];
      for (const op of plan.ops) {
        const i = op.at % (bytes.length + (op.op === 'insert' ? 1 : 0));
        if (op.op === 'set') bytes[i] = op.byte;
        else if (op.op === 'insert') bytes.splice(i, 0, op.byte);
        else bytes.splice(i, 1);
      }
      return { bytes: Buffer.from(bytes), validity: 'either', codes: BODY_CODES, note: `bytes ${JSON.stringify(plan.ops)}` };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Running cases

interface Runner {
  model: Model;
  cases: number;
  putAnswers200: number;
  failures: string[];
  run(plan: CasePlan): Promise<void>;
  close(): void;
}

let runnerSerial = 0;
/** Body kinds that can never be a valid cancel (the others may turn out unchanged or allowed). */
const ALWAYS_INVALID = new Set<BodyPlan['kind']>(['malformed', 'deep', 'long', 'rawBytes', 'bom', 'proto', 'wrongType']);

function createRunner(h: Harness, std: StandardName): Runner {
  const client = keepAliveClient(h.gateway.port, { maxSockets: BATCH });
  const template = TEMPLATE[std];
  const serial = ++runnerSerial;
  let n = 0;
  const fresh = () => {
    const id = `fz-${serial}-${++n}`;
    h.provider.store.create(clone(template), id);
    return id;
  };
  // The target of every case built to be invalid: it must stay uncancelled at version 1.
  const shared = fresh();
  const m = model(validCancel(h, std, shared), std);
  // Provider PUTs per X-Request-ID, indexed incrementally.
  const putsByRid = new Map<string, number>();
  let scanned = 0;
  const putsFor = (rid: string) => {
    for (; scanned < h.provider.requests.length; scanned++) {
      const r = h.provider.requests[scanned]!;
      if (r.method !== 'PUT') continue;
      const k = String(r.headers['x-request-id']);
      putsByRid.set(k, (putsByRid.get(k) ?? 0) + 1);
    }
    return putsByRid.get(rid) ?? 0;
  };
  const lastPutBody = (rid: string) => {
    for (let i = h.provider.requests.length - 1; i >= 0; i--) {
      const r = h.provider.requests[i]!;
      if (r.method === 'PUT' && r.headers['x-request-id'] === rid) return r.body;
    }
    return undefined;
  };

  const runner: Runner = {
    model: m,
    cases: 0,
    putAnswers200: 0,
    failures: [],
    close: () => client.close(),
    async run(plan) {
      const rid = `${std}-${serial}-${++runner.cases}`;
      // Which parts fail, in pipeline order; the first is the answer when only one part fails.
      const hp = plan.headers;
      const headerFails = [hp.trace, hp.from, hp.to, hp.interaction, hp.ifMatch, hp.contentType].map((c) => c.fail).filter((c): c is ErrorCode => c !== undefined);
      const tokenFail = tokenFailure(std, plan.token);
      // Build against the shared target unless the case may succeed.
      const maybeValid = headerFails.length === 0 && tokenFail === undefined && !ALWAYS_INVALID.has(plan.body.kind);
      const id = maybeValid ? fresh() : shared;
      const body = buildBody(plan.body, validCancel(h, std, id), m);
      if (body.bytes.length > MAX_BODY) Object.assign(body, { validity: 'invalid', codes: ['BODY_TOO_LARGE'] });
      const fails: ErrorCode[] = [...headerFails, ...(tokenFail ? [tokenFail] : []), ...(body.validity === 'invalid' ? body.codes : [])];
      const validity: Validity = fails.length > 0 ? 'invalid' : body.validity;
      const expected = new Set<ErrorCode>(fails.length ? fails : body.codes);
      if (fails.length && body.validity === 'either') for (const c of body.codes) expected.add(c);

      const headers: Record<string, string | string[]> = { 'X-Request-ID': rid };
      const put = (name: string, c: HeaderChoice) => { if (c.value !== undefined) headers[name] = c.value; };
      put('Ssp-TraceID', hp.trace); put('Ssp-From', hp.from); put('Ssp-To', hp.to); put('Ssp-InteractionID', hp.interaction);
      put('If-Match', hp.ifMatch); put('Content-Type', hp.contentType);
      const auth = authorization(std, plan.token);
      if (auth !== undefined) headers['Authorization'] = auth;

      const what = `${rid} [${plan.family}; body: ${body.note}; token: ${JSON.stringify(plan.token).slice(0, 200)}; headers: ${JSON.stringify(hp).slice(0, 300)}]`;
      let r;
      try {
        r = await client.request({ method: 'PUT', path: `/STU3/1/Appointment/${id}`, headers, body: body.bytes });
      } catch (e) {
        runner.failures.push(`${what}: no answer (${(e as Error).message})`);
        return;
      }
      const puts = putsFor(rid);
      const problems: string[] = [];
      if (r.status === 200) {
        runner.putAnswers200++;
        if (validity === 'invalid') problems.push('an invalid request was answered 200');
        if (puts !== 1) problems.push(`answered 200 but the provider got ${puts} PUTs`);
        else if (!lastPutBody(rid)!.equals(body.bytes)) problems.push('the forwarded body differs from the bytes sent');
      } else {
        if (puts !== 0) problems.push(`answered ${r.status} but the provider got ${puts} PUT(s)`);
        if (validity === 'valid') problems.push(`a valid cancel was refused: ${r.status} ${r.body.toString().slice(0, 300)}`);
        if (r.status < 300) problems.push(`unexpected success status ${r.status}`);
        // Ruling 21: with no Accept, the answer's format follows the request's Content-Type.
        const sentType = String(headers['Content-Type'] ?? '');
        const wantXml = !Array.isArray(headers['Content-Type']) && /^\s*(application|text)\/(fhir\+xml|xml\+fhir|xml)\s*(;|$)/i.test(sentType);
        const ct = wantXml ? 'application/fhir+xml; charset=utf-8' : 'application/fhir+json; charset=utf-8';
        if (r.headers['content-type'] !== ct) problems.push(`content-type ${r.headers['content-type']} for a request of ${sentType}`);
        if (r.headers['cache-control'] !== 'no-store') problems.push('no Cache-Control: no-store');
        const decoded = r.headers['content-type']?.includes('xml') ? xmlCodec.decode(r.body, { maxDepth: 64, maxNodes: 100_000 }) : undefined;
        const codes = catalogueCodes(std, r.status, decoded ? (decoded.ok ? decoded.resource : undefined) : r.json);
        if (codes.length === 0) problems.push(`not a catalogued OperationOutcome: ${r.status} ${r.body.toString().slice(0, 300)}`);
        else if (expected.size && !codes.some((c) => expected.has(c))) problems.push(`answered ${r.status} ${codes.join('|')}, expected one of ${[...expected].join('|')}: ${r.body.toString().slice(0, 400)}`);
      }
      if (problems.length) runner.failures.push(`${what}: ${problems.join('; ')}`);
    },
  };
  return runner;
}

/** Runs `runs` generated cases; a failing batch ends the run (no shrinking: each case is real I/O). */
async function fuzz(h: Harness, std: StandardName, seed: number, runs: number): Promise<{ runner: Runner; replay?: string }> {
  const runner = createRunner(h, std);
  const details = await fc.check(
    fc.asyncProperty(fc.array(caseArb(std), { minLength: BATCH, maxLength: BATCH }), async (batch) => {
      const before = runner.failures.length;
      await Promise.all(batch.map((c) => runner.run(c)));
      return runner.failures.length === before;
    }),
    { seed, numRuns: Math.ceil(runs / BATCH), endOnFailure: true },
  );
  runner.close();
  return { runner, replay: details.failed ? `seed ${details.seed}, path ${details.counterexamplePath}${details.errorInstance ? `: ${String((details.errorInstance as Error).stack ?? details.errorInstance).slice(0, 1500)}` : ''}` : undefined };
}

// ---------------------------------------------------------------------------------------------

const hNhs = await startHarness({ standard: 'nhs-booking' });
const hGp = await startHarness({ standard: 'gp-connect' });
t.teardown(async () => {
  crashes.stop();
  await hNhs.close();
  await hGp.close();
});

const totals = { cases: 0 };

for (const [std, h, seed, runs] of [['nhs-booking', hNhs, SEED, RUNS_NHS], ['gp-connect', hGp, SEED + 1, RUNS_GP]] as const) {
  t.test(`${std}: ${runs} generated requests (seed ${seed})`, async (t) => {
    const putsBefore = h.provider.requests.filter((r) => r.method === 'PUT').length;
    const { runner, replay } = await fuzz(h, std, seed, runs);
    t.notOk(replay, `no failing batch${replay ? ` (${replay}; FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS})` : ''}`);
    totals.cases += runner.cases;
    t.same(runner.failures.slice(0, 10), [], 'every answer as expected');
    if (!replay) t.ok(runner.cases >= runs, `${runner.cases} cases run`);
    const puts = h.provider.requests.filter((r) => r.method === 'PUT').length - putsBefore;
    t.equal(puts, runner.putAnswers200, `the provider's PUTs (${puts}) equal the gateway's 200s`);
    t.ok(runner.putAnswers200 > runs / 100, `valid cancels were generated and accepted (${runner.putAnswers200})`);
  });
}

for (const [std, h] of [['nhs-booking', hNhs], ['gp-connect', hGp]] as const) {
  t.test(`${std}: a wrong type at every element of a valid cancel (exhaustive)`, async (t) => {
    const runner = createRunner(h, std);
    const body = validCancel(h, std, h.provider.store.ids()[0]!);
    const plans: CasePlan[] = [];
    runner.model.all.forEach((p, at) => otherTypes(getAt(body, p)!, ONE_PER_TYPE).forEach((v) => {
      plans.push({ family: 'body', headers: validHeaders(std), token: { kind: 'valid' }, body: { kind: 'wrongType', at, value: otherTypes(getAt(body, p)!).indexOf(v) } });
    }));
    const queue = [...plans];
    await Promise.all(Array.from({ length: BATCH }, async () => {
      for (let c = queue.shift(); c; c = queue.shift()) await runner.run(c);
    }));
    runner.close();
    totals.cases += runner.cases;
    t.same(runner.failures, [], `${plans.length} wrong-type bodies refused with 422 (400 for id/resourceType), none forwarded`);
    t.equal(runner.putAnswers200, 0);
  });
}

// Regressions: failure modes this fuzzer found, pinned as plain cases.
t.test('regression: a UTF-8 BOM before a valid cancel is refused (400), never forwarded', async (t) => {
  for (const [std, h] of [['nhs-booking', hNhs], ['gp-connect', hGp]] as const) {
    const id = `bom-${std}`;
    h.provider.store.create(clone(TEMPLATE[std]), id);
    const req = await cancelRequest(h, std, id);
    const puts = seen(h.provider, 'PUT', `/Appointment/${id}`);
    const gets = seen(h.provider, 'GET', `/Appointment/${id}`);
    const r = await h.request({ ...req, body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(String(req.body))]) });
    assertOutcome(t, r, 400, 'BAD_REQUEST', { issue: std === 'gp-connect' ? 'invalid' : 'structure', profile: STANDARDS[std].operationOutcomeProfile });
    t.equal(seen(h.provider, 'PUT', `/Appointment/${id}`), puts, `${std}: the provider got no PUT`);
    t.equal(seen(h.provider, 'GET', `/Appointment/${id}`), gets, `${std}: nor even the read`);
    const ok = await h.request(req);
    t.equal(ok.status, 200, `${std}: the same cancel without the BOM is accepted`);
  }
});

t.test('regression: gp-connect, an empty If-Match is malformed (400), not "no If-Match"', async (t) => {
  const h = hGp;
  const id = 'empty-if-match';
  h.provider.store.create(clone(TEMPLATE['gp-connect']), id);
  const req = await cancelRequest(h, 'gp-connect', id);
  const puts = seen(h.provider, 'PUT', `/Appointment/${id}`);
  const r = await h.request({ ...req, headers: { ...req.headers, 'If-Match': '' } });
  assertOutcome(t, r, 400, 'BAD_REQUEST', { expression: 'http.If-Match', profile: STANDARDS['gp-connect'].operationOutcomeProfile });
  t.equal(seen(h.provider, 'PUT', `/Appointment/${id}`), puts, 'the provider got no PUT');
  const headers = { ...req.headers };
  delete headers['If-Match'];
  const ok = await h.request({ ...req, headers });
  t.equal(ok.status, 200, 'no If-Match at all is still allowed');
  t.notOk(h.provider.requests.filter((x) => x.method === 'PUT').at(-1)!.headers['if-match'], 'and forwarded without one');
});

t.test('afterwards: no crash, no unhandled rejection, reads still served', async (t) => {
  t.same(crashes.seen, [], 'no unhandled rejection or uncaught exception');
  for (const [std, h] of [['nhs-booking', hNhs], ['gp-connect', hGp]] as const) {
    const id = h.provider.store.ids()[0]!;
    const r = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders(std, 'read') });
    t.equal(r.status, 200, `${std}: a valid read is answered`);
    t.equal(r.json?.id, id);
  }
  if (RUNS >= 10_000) t.ok(totals.cases >= 10_000, `${totals.cases} generated cases in total`);
});

