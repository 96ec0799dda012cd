/**
 * Issue 5, gp-connect only: the NHS GP Connect provider-test expectations that concern a gateway
 * (../shared/spec/gp-connect-1.2.7.md §b JWT claims, §d cancel rules, §f If-Match/ETag, §a amend vs
 * cancel and Cache-Control), plus the README's gp-connect rulings. Real gateway over mTLS in front
 * of the real demo provider.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { STANDARDS } from '../../src/standards/index.js';
import { shiftAllInstants } from '../../demo/provider/seed/index.js';
import type { Resource } from '../../demo/provider/store.js';
import { assertOutcome } from '../helpers/assert.js';
import { cancelRequest, identityHeaders, readThrough, seen, startHarness, type Harness, type RequestOptions } from '../helpers/harness.js';
import { unsignedToken, validClaims } from '../helpers/tokens.js';

const execFileAsync = promisify(execFile);
const GPC = STANDARDS['gp-connect'];
const OO_PROFILE = GPC.operationOutcomeProfile;
const REASON_URL = GPC.cancel.reasonExtensionUrl;
const BOOKING_ORG_URL = 'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1';
const AMEND_ID = 'urn:nhs:names:services:gpconnect:fhir:rest:update:appointment-1';
const cancelScope = GPC.interactions.find((i) => i.name === 'cancel')!.scope;

const h = await startHarness({ standard: 'gp-connect' });
t.teardown(() => h.close());

let counter = 0;
/** A fresh copy of a seeded appointment under a new id (optionally changed), so tests do not interfere. */
function fresh(harness: Harness, change?: (r: Record<string, any>) => Record<string, any> | void): string {
  const template = structuredClone(harness.provider.store.read(harness.provider.store.ids()[0]!)!.resource) as Record<string, any>;
  const id = `gpc-${++counter}`;
  template.id = id;
  const r = change?.(template) ?? template;
  harness.provider.store.create(r as Resource, id);
  return id;
}

/** Send `req` and return the reply with how many requests (any) and PUTs the provider saw meanwhile. */
async function send(req: RequestOptions, harness: Harness = h) {
  const before = harness.provider.requests.length;
  const putsBefore = seen(harness.provider, 'PUT', '/Appointment/');
  const r = await harness.request(req);
  return { r, contacted: harness.provider.requests.length - before, puts: seen(harness.provider, 'PUT', '/Appointment/') - putsBefore };
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A cancel of a fresh appointment whose bearer token carries `claims` (built by `edit` from valid ones). */
async function cancelWithClaims(edit: (c: Record<string, any>, now: number) => void): Promise<RequestOptions> {
  const req = await cancelRequest(h, 'gp-connect', fresh(h));
  const now = nowSeconds();
  const claims = validClaims({ standard: 'gp-connect', scope: cancelScope, nowSeconds: now }) as Record<string, any>;
  edit(claims, now);
  return { ...req, headers: { ...req.headers, Authorization: `Bearer ${unsignedToken(claims)}` } };
}

t.test('§b JWT claims', async (t) => {
  const rejected: Array<[string, (c: Record<string, any>, now: number) => void, number, string, string]> = [
    ...(['iss', 'sub', 'aud', 'exp', 'iat', 'reason_for_request', 'requested_scope', 'requesting_device', 'requesting_organization'] as const).map(
      (claim) => [`${claim} missing`, (c: Record<string, any>) => delete c[claim], 400, 'BAD_REQUEST', `jwt.${claim}`] as [string, (c: Record<string, any>) => void, number, string, string],
    ),
    ['requesting_practitioner missing (required in GP Connect)', (c) => delete c.requesting_practitioner, 400, 'BAD_REQUEST', 'jwt.requesting_practitioner'],
    ['exp - iat = 299', (c, now) => { c.iat = now; c.exp = now + 299; }, 400, 'BAD_REQUEST', 'jwt.exp'],
    ['exp - iat = 301', (c, now) => { c.iat = now; c.exp = now + 301; }, 400, 'BAD_REQUEST', 'jwt.exp'],
    ['exp - iat = -1', (c, now) => { c.iat = now; c.exp = now - 1; }, 400, 'BAD_REQUEST', 'jwt.exp'],
    ['expired (iat now-600, exp iat+300)', (c, now) => { c.iat = now - 600; c.exp = c.iat + 300; }, 400, 'BAD_REQUEST', 'jwt.exp'],
    ['reason_for_request wrong', (c) => (c.reason_for_request = 'secondaryuses'), 400, 'BAD_REQUEST', 'jwt.reason_for_request'],
    ['requested_scope badScope', (c) => (c.requested_scope = 'badScope'), 400, 'BAD_REQUEST', 'jwt.requested_scope'],
    ['read scope on cancel', (c) => (c.requested_scope = 'patient/*.read'), 400, 'BAD_REQUEST', 'jwt.requested_scope'],
    ['sub differs from requesting_practitioner.id', (c) => (c.sub = '99999'), 400, 'BAD_REQUEST', 'jwt.sub'],
    ['requested_record present (0.x claim)', (c) => (c.requested_record = { resourceType: 'Patient', identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: '9476719931' }] }), 400, 'BAD_REQUEST', 'jwt.requested_record'],
    ['requesting_device with an unknown property', (c) => (c.requesting_device.colour = 'blue'), 422, 'INVALID_RESOURCE', 'jwt.requesting_device'],
    ['requesting_device with a wrong resourceType', (c) => (c.requesting_device.resourceType = 'Patient'), 422, 'INVALID_RESOURCE', 'jwt.requesting_device.resourceType'],
    ['requesting_organization with an unknown property', (c) => (c.requesting_organization.colour = 'blue'), 422, 'INVALID_RESOURCE', 'jwt.requesting_organization'],
    ['requesting_device.identifier with an unknown property', (c) => (c.requesting_device.identifier[0].foo = 'x'), 422, 'INVALID_RESOURCE', 'jwt.requesting_device'],
    ['requesting_practitioner.name with an unknown property', (c) => (c.requesting_practitioner.name[0].foo = 'x'), 422, 'INVALID_RESOURCE', 'jwt.requesting_practitioner'],
    ['requesting_practitioner with a wrong resourceType', (c) => (c.requesting_practitioner.resourceType = 'Patient'), 422, 'INVALID_RESOURCE', 'jwt.requesting_practitioner.resourceType'],
  ];
  for (const [name, edit, status, spine, expression] of rejected) {
    t.test(`${name} -> ${status} ${spine}`, async (t) => {
      const { r, contacted } = await send(await cancelWithClaims(edit));
      assertOutcome(t, r, status, spine, { issue: 'invalid', profile: OO_PROFILE, expression });
      t.equal(contacted, 0, 'the provider was not contacted');
    });
  }

  const accepted: Array<[string, (c: Record<string, any>, now: number) => void]> = [
    ['iat 200 s in the future', (c, now) => { c.iat = now + 200; c.exp = c.iat + 300; }],
    ['role-profile and local identifiers absent', (c) => {
      c.requesting_practitioner.identifier = c.requesting_practitioner.identifier.filter((i: { system: string }) => i.system === 'https://fhir.nhs.uk/Id/sds-user-id');
    }],
    ["'UNK' SDS user and role-profile ids", (c) => {
      for (const i of c.requesting_practitioner.identifier) if (/sds-(user|role-profile)-id$/.test(i.system)) i.value = 'UNK';
    }],
  ];
  for (const [name, edit] of accepted) {
    t.test(`${name} -> 200`, async (t) => {
      const { r, puts } = await send(await cancelWithClaims(edit));
      t.equal(r.status, 200, r.body.toString('utf8').slice(0, 300));
      t.equal(r.json?.status, 'cancelled');
      t.equal(puts, 1, 'forwarded');
    });
  }
});

t.test('§b token structure faults -> 400 BAD_REQUEST (never 403 in GP Connect)', async (t) => {
  const claims = validClaims({ standard: 'gp-connect', scope: cancelScope, nowSeconds: nowSeconds() });
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const valid = unsignedToken(claims);
  const cases: Array<[string, string | undefined]> = [
    ['Authorization missing', undefined],
    ['not Bearer', `Basic ${valid}`],
    ['signed (a third segment)', `Bearer ${valid}c2lnbmF0dXJl`],
    ["alg other than 'none'", `Bearer ${unsignedToken(claims, { alg: 'HS256', typ: 'JWT' })}`],
    ['an extra header key', `Bearer ${unsignedToken(claims, { alg: 'none', typ: 'JWT', kid: '1' })}`],
    ['base64 padding', `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}==.`],
    ['payload not JSON', `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${Buffer.from('not json').toString('base64url')}.`],
  ];
  for (const [name, authorization] of cases) {
    t.test(name, async (t) => {
      const req = await cancelRequest(h, 'gp-connect', fresh(h));
      const headers = { ...req.headers };
      if (authorization === undefined) delete headers['Authorization'];
      else headers['Authorization'] = authorization;
      const { r, contacted } = await send({ ...req, headers });
      // The Authorization header's own problems are the header's (http.Authorization), the token's are jwt.*.
      assertOutcome(t, r, 400, 'BAD_REQUEST', { issue: 'invalid', profile: OO_PROFILE, expression: /^(jwt\.|http\.Authorization$)/ });
      t.equal(r.headers['www-authenticate'], undefined, 'no RFC 6750 challenge under GP Connect');
      t.equal(contacted, 0, 'the provider was not contacted');
    });
  }
});

t.test('§e: a malformed body or another resource is 400 BAD_REQUEST with issue code invalid (review of stop 35)', async (t) => {
  for (const [name, body, type] of [
    ['not JSON', '{', 'application/fhir+json'],
    ['another resource', '{"resourceType":"Patient","id":"x"}', 'application/fhir+json'],
    ['not XML', '<Appointment', 'application/fhir+xml'],
  ] as const) {
    const req = await cancelRequest(h, 'gp-connect', fresh(h));
    const { r, contacted } = await send({ ...req, body, headers: { ...req.headers, 'Content-Type': type, Accept: 'application/fhir+json' } });
    assertOutcome(t, r, 400, 'BAD_REQUEST', { issue: 'invalid', profile: OO_PROFILE });
    t.equal(contacted, 0, `${name}: the provider was not contacted`);
  }
});

t.test('§d cancel rejections: 422, nothing forwarded', async (t) => {
  type Mutate = (r: Record<string, any>) => void;
  // [name, mutate, spine, expression, provider contacted before the decision (diff needs the stored copy)]
  const cases: Array<[string, Mutate, string, string | RegExp, boolean]> = [
    ['comment changed', (r) => (r.comment = `${r.comment} changed`), 'INVALID_RESOURCE', 'Appointment.comment', true],
    ['description changed', (r) => (r.description = `${r.description} changed`), 'INVALID_RESOURCE', 'Appointment.description', true],
    ['appointmentType.text added', (r) => (r.appointmentType = { text: 'Urgent' }), 'INVALID_RESOURCE', /appointmentType/, false],
    ['an extra participant', (r) => r.participant.push({ actor: { reference: 'Practitioner/3' }, status: 'accepted' }), 'INVALID_RESOURCE', /^Appointment\.participant/, true],
    ['an absolute participant reference', (r) => (r.participant[0].actor.reference = 'https://provider.nhs.uk/GP0001/STU3/1/gpconnect/Patient/2'), 'INVALID_RESOURCE', 'Appointment.participant[0].actor.reference', false],
    ['a network-path participant reference', (r) => (r.participant[0].actor.reference = '//evil.example/Patient/2'), 'INVALID_RESOURCE', 'Appointment.participant[0].actor.reference', false],
    ['a host-relative participant reference', (r) => (r.participant[0].actor.reference = '/Patient/2'), 'INVALID_RESOURCE', 'Appointment.participant[0].actor.reference', false],
    // With the contained Organization kept, it is no longer referenced (dom-3) and the profile answers.
    ['an absolute booking-organisation reference (contained kept)', (r) => {
      const ext = r.extension.find((e: { url: string }) => e.url === BOOKING_ORG_URL);
      ext.valueReference.reference = 'https://provider.nhs.uk/GP0001/STU3/1/gpconnect/Organization/1';
    }, 'INVALID_RESOURCE', /^Appointment\.contained|valueReference/, false],
    ['an absolute booking-organisation reference (contained dropped)', (r) => {
      const ext = r.extension.find((e: { url: string }) => e.url === BOOKING_ORG_URL);
      ext.valueReference.reference = 'https://provider.nhs.uk/GP0001/STU3/1/gpconnect/Organization/1';
      delete r.contained;
    }, 'INVALID_RESOURCE', /^Appointment\.extension\[\d+\]\.valueReference\.reference$/, false],
    ['serviceType changed (omitting it is tolerated, changing it is not)', (r) => (r.serviceType = [{ text: 'Another slot type' }]), 'INVALID_RESOURCE', /^Appointment\.serviceType/, true],
    ['reason extension with an unknown URL', (r) => {
      for (const e of r.extension) if (e.url === REASON_URL) e.url = 'https://example.org/StructureDefinition/cancellation-reason';
    }, 'INVALID_RESOURCE', /extension/, false],
    ['reason extension with an empty URL', (r) => {
      for (const e of r.extension) if (e.url === REASON_URL) e.url = '';
    }, 'INVALID_RESOURCE', /extension/, false],
    ['reason extension absent', (r) => (r.extension = r.extension.filter((e: { url: string }) => e.url !== REASON_URL)), 'INVALID_RESOURCE', 'Appointment.extension', false],
    ["reason valueString ''", (r) => {
      for (const e of r.extension) if (e.url === REASON_URL) e.valueString = '';
    }, 'INVALID_PARAMETER', /^Appointment\.extension\[\d+\]\.valueString$/, false],
    ['reason valueString of no-break spaces (blank as the amend\'s description is)', (r) => {
      for (const e of r.extension) if (e.url === REASON_URL) e.valueString = '\u00a0\u00a0';
    }, 'INVALID_PARAMETER', /^Appointment\.extension\[\d+\]\.valueString$/, false],
    ['reason valueString of a NUL and a zero-width space (nothing a reader sees; review of stop 34)', (r) => {
      for (const e of r.extension) if (e.url === REASON_URL) e.valueString = '\u0000\u200b';
    }, 'INVALID_PARAMETER', /^Appointment\.extension\[\d+\]\.valueString$/, false],
    ['reason present', (r) => (r.reason = { coding: [{ system: 'http://snomed.info/sct', code: '1', display: 'x' }] }), 'INVALID_RESOURCE', /reason/, false],
    ['specialty present', (r) => (r.specialty = [{ text: 'GP' }]), 'INVALID_RESOURCE', /specialty/, false],
    ['indication present', (r) => (r.indication = [{ reference: 'Condition/1' }]), 'INVALID_RESOURCE', /indication/, false],
    ['supportingInformation present', (r) => (r.supportingInformation = [{ reference: 'Observation/1' }]), 'INVALID_RESOURCE', /supportingInformation/, false],
    ['incomingReferral present', (r) => (r.incomingReferral = [{ reference: 'ReferralRequest/1' }]), 'INVALID_RESOURCE', /incomingReferral/, false],
  ];
  for (const [name, mutate, spine, expression, readsProvider] of cases) {
    t.test(`${name} -> 422 ${spine}`, async (t) => {
      const req = await cancelRequest(h, 'gp-connect', fresh(h), mutate);
      const { r, contacted, puts } = await send(req);
      assertOutcome(t, r, 422, spine, { profile: OO_PROFILE, expression });
      t.equal(puts, 0, 'no PUT upstream');
      if (!readsProvider) t.equal(contacted, 0, 'decided on the body alone: the provider was not contacted');
    });
  }

  t.test('§c/§d tolerated omissions (1.2.7 backwards compatibility): serviceCategory and serviceType left out -> 200, forwarded as sent', async (t) => {
    const id = fresh(h);
    t.ok(h.provider.store.read(id)!.resource['serviceCategory'] && h.provider.store.read(id)!.resource['serviceType'], 'the stored appointment has both');
    const req = await cancelRequest(h, 'gp-connect', id, (r) => { delete r.serviceCategory; delete r.serviceType; });
    const r = await h.request(req);
    t.equal(r.status, 200, r.body.toString().slice(0, 300));
    const put = h.provider.requests.filter((x) => x.method === 'PUT' && x.url.endsWith(`/Appointment/${id}`)).at(-1);
    t.equal(put?.body?.toString(), String(req.body), 'the body as sent');
    const one = await h.request(await cancelRequest(h, 'gp-connect', fresh(h), (x) => { delete x.serviceCategory; }));
    t.equal(one.status, 200, 'either alone too');
  });

  t.test('an appointment whose start is in the past -> 422 business-rule, before the provider is contacted', async (t) => {
    // Every instant moved back 30 days (start, end, created), consistently, as the seed does forward.
    const id = fresh(h, (r) => shiftAllInstants(r, -30));
    const stored = h.provider.store.read(id)!.resource;
    t.ok(Date.parse(String(stored['start'])) < Date.now() && Date.parse(String(stored['end'])) < Date.now(), 'the stored appointment is in the past');
    const { r, contacted, puts } = await send(await cancelRequest(h, 'gp-connect', id));
    assertOutcome(t, r, 422, 'INVALID_RESOURCE', { issue: 'business-rule', profile: OO_PROFILE, expression: 'Appointment.start' });
    t.equal(contacted, 0, 'the provider was not contacted');
    t.equal(puts, 0);
    t.equal(h.provider.store.read(id)!.resource['status'], 'booked', 'still booked');
  });

  t.test('an appointment already cancelled -> 422 INVALID_RESOURCE', async (t) => {
    const id = fresh(h, (r) => {
      r.status = 'cancelled';
      r.extension = [...r.extension, { url: REASON_URL, valueString: 'Clinic closed' }];
    });
    // Send it back as read (with its stored reason), not adding a second one.
    const req = await cancelRequest(h, 'gp-connect', id, (r) => r.extension.pop());
    const { r, puts } = await send(req);
    assertOutcome(t, r, 422, 'INVALID_RESOURCE', { issue: 'business-rule', profile: OO_PROFILE, expression: 'Appointment.status' });
    t.equal(puts, 0, 'no PUT upstream');
  });
});

t.test('§f If-Match and ETag', async (t) => {
  t.test('absent -> 200, forwarded without If-Match', async (t) => {
    const id = fresh(h);
    const req = await cancelRequest(h, 'gp-connect', id);
    delete req.headers!['If-Match'];
    const { r, puts } = await send(req);
    t.equal(r.status, 200, r.body.toString('utf8').slice(0, 300));
    t.equal(puts, 1);
    const put = h.provider.requests.filter((x) => x.method === 'PUT' && x.url.endsWith(`/Appointment/${id}`)).at(-1)!;
    t.notOk('if-match' in put.headers, 'no If-Match added');
  });

  t.test('matching -> 200; ETag W/"<meta.versionId>" of a new version', async (t) => {
    const id = fresh(h);
    const { etag } = await readThrough(h, 'gp-connect', id);
    const req = await cancelRequest(h, 'gp-connect', id);
    t.equal(req.headers!['If-Match'], etag);
    const { r, puts } = await send(req);
    t.equal(r.status, 200, r.body.toString('utf8').slice(0, 300));
    t.equal(puts, 1);
    t.equal(h.provider.requests.filter((x) => x.method === 'PUT').at(-1)!.headers['if-match'], etag, 'If-Match forwarded unchanged');
    t.equal(r.headers.etag, `W/"${r.json.meta.versionId}"`, 'ETag = W/"meta.versionId"');
    t.not(r.headers.etag, etag, 'a new version');
    t.equal(r.headers['content-location'], `${h.config.publicBaseUrl}/Appointment/${id}/_history/${r.json.meta.versionId}`, 'Content-Location (R for update): the new version on the gateway');
    t.equal(r.headers['cache-control'], 'no-store');
  });

  t.test('stale -> 409 FHIR_CONSTRAINT_VIOLATION, issue conflict', async (t) => {
    const id = fresh(h);
    const req = await cancelRequest(h, 'gp-connect', id);
    h.provider.store.update(id, h.provider.store.read(id)!.resource); // someone else's update
    const { r, puts } = await send(req);
    assertOutcome(t, r, 409, 'FHIR_CONSTRAINT_VIOLATION', { issue: 'conflict', profile: OO_PROFILE, expression: 'http.If-Match' });
    t.equal(puts, 0);
  });

  t.test('provider omits ETag: the read and the cancel still carry W/"<meta.versionId>"', async (t) => {
    const h2 = await startHarness({ standard: 'gp-connect', provider: { omitEtag: true } });
    t.teardown(() => h2.close());
    const id = h2.provider.store.ids()[0]!;
    const r = await h2.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders('gp-connect', 'read') });
    t.equal(r.status, 200);
    t.notOk('etag' in h2.provider.requests.at(-1)!.headers, 'sanity: a request, not an answer, is recorded');
    t.equal(r.headers.etag, `W/"${r.json.meta.versionId}"`, 'ETag derived from meta.versionId');
    t.equal(r.headers['cache-control'], 'no-store');
    const req = await cancelRequest(h2, 'gp-connect', id);
    const c = await h2.request(req);
    t.equal(c.status, 200, c.body.toString('utf8').slice(0, 300));
    t.equal(c.headers.etag, `W/"${c.json.meta.versionId}"`);
  });
});

t.test('no If-Match: two concurrent cancels of one appointment are still decided one at a time', async (t) => {
  const id = fresh(h);
  const a = await cancelRequest(h, 'gp-connect', id);
  const b = await cancelRequest(h, 'gp-connect', id);
  delete a.headers!['If-Match'];
  delete b.headers!['If-Match'];
  const putsBefore = seen(h.provider, 'PUT', `/Appointment/${id}`);
  const replies = await Promise.all([h.request(a), h.request(b)]);
  const statuses = replies.map((r) => r.status).sort();
  t.same(statuses, [200, 422], 'one cancelled, the other finds it already cancelled');
  assertOutcome(t, replies.find((r) => r.status === 422)!, 422, 'INVALID_RESOURCE', { profile: OO_PROFILE, expression: 'Appointment.status' });
  t.equal(seen(h.provider, 'PUT', `/Appointment/${id}`) - putsBefore, 1, 'exactly one PUT reached the provider');
});

t.test('amend shares the path; only the interaction id tells it apart', async (t) => {
  const amendBody = async (harness: Harness, id: string) => {
    const { resource, etag } = await readThrough(harness, 'gp-connect', id);
    resource.comment = 'Amended comment'; // an amend changes things a cancel may not
    return {
      method: 'PUT', path: `/STU3/1/Appointment/${id}`, body: JSON.stringify(resource),
      headers: { ...identityHeaders('gp-connect', 'cancel'), 'Ssp-InteractionID': AMEND_ID, 'If-Match': etag, 'Content-Type': 'application/fhir+json' },
    };
  };

  t.test('amend disabled (default) -> 400 BAD_REQUEST, nothing forwarded', async (t) => {
    const { r, contacted } = await send(await amendBody(h, fresh(h)));
    assertOutcome(t, r, 400, 'BAD_REQUEST', { profile: OO_PROFILE, expression: 'http.Ssp-InteractionID' });
    t.equal(contacted, 0);
    // Recorded as what the client asked for, never as the route's default cancel (ruling 19).
    const rec = h.audit.at(-1)!;
    t.equal(rec.code, 'INTERACTION_MISMATCH');
    t.equal(rec.interaction, AMEND_ID);
    const line = JSON.parse(h.logs.filter((l) => l.includes('"msg":"decision"')).at(-1)!);
    t.equal(line.interaction, 'amend');
  });

  t.test('an interaction id of no standard -> 400, audited without an interaction, logged as unknown', async (t) => {
    const req = await amendBody(h, fresh(h));
    const { r, contacted } = await send({ ...req, headers: { ...req.headers, 'Ssp-InteractionID': 'urn:example:not-an-interaction' } });
    assertOutcome(t, r, 400, 'BAD_REQUEST', { profile: OO_PROFILE, expression: 'http.Ssp-InteractionID' });
    t.equal(contacted, 0);
    const rec = h.audit.at(-1)!;
    t.equal(rec.code, 'INTERACTION_MISMATCH');
    t.equal(rec.interaction, undefined, 'no interaction claimed');
    const line = JSON.parse(h.logs.filter((l) => l.includes('"msg":"decision"')).at(-1)!);
    t.equal(line.interaction, 'unknown');
  });

  t.test('amend enabled -> guarded (ruling 27), a comment-only amend forwarded unchanged', async (t) => {
    const h2 = await startHarness({ standard: 'gp-connect', config: { interactions: { amend: true } } });
    t.teardown(() => h2.close());
    const req = await amendBody(h2, h2.provider.store.ids()[0]!);
    const { r, puts } = await send(req, h2);
    t.equal(r.status, 200, r.body.toString('utf8').slice(0, 300));
    t.equal(puts, 1, 'the provider saw the PUT');
    const put = h2.provider.requests.filter((x) => x.method === 'PUT').at(-1)!;
    t.ok(put.body.equals(Buffer.from(req.body)), 'the body bytes are unchanged');
    t.equal(put.headers['ssp-interactionid'], AMEND_ID);
    t.equal(r.json.comment, 'Amended comment');
    t.equal(r.headers['cache-control'], 'no-store');
    // The same amend under cancel's interaction id is judged as a cancel.
    const asCancel = await send({ ...(await amendBody(h2, h2.provider.store.ids()[1]!)), headers: { ...req.headers, 'Ssp-InteractionID': GPC.interactions.find((i) => i.name === 'cancel')!.id } }, h2);
    t.equal(asCancel.r.status, 422);
    t.equal(asCancel.puts, 0);
  });
});

t.test('Cache-Control: no-store on every response', async (t) => {
  const id = fresh(h);
  const read = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders('gp-connect', 'read') });
  t.equal(read.status, 200);
  t.equal(read.headers['cache-control'], 'no-store', '200 read');
  const search = await h.request({ method: 'GET', path: '/STU3/1/Patient/2/Appointment', headers: identityHeaders('gp-connect', 'search') });
  t.equal(search.status, 200);
  t.equal(search.headers['cache-control'], 'no-store', '200 search (streamed)');
  const cancel = await h.request(await cancelRequest(h, 'gp-connect', id));
  t.equal(cancel.status, 200);
  t.equal(cancel.headers['cache-control'], 'no-store', '200 cancel');
  const err = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: { ...identityHeaders('gp-connect', 'read'), 'Ssp-To': '1' } });
  assertOutcome(t, err, 400, 'BAD_REQUEST', { profile: OO_PROFILE }); // asserts no-store too
  const providerErr = await h.request({ method: 'GET', path: '/STU3/1/Appointment/no-such-id', headers: identityHeaders('gp-connect', 'read') });
  t.equal(providerErr.status, 404);
  t.equal(providerErr.headers['cache-control'], 'no-store', 'a provider error passed through');
});

t.test('the demo token (demo/token.ts write gp-connect) is accepted by the gp-connect gateway', async (t) => {
  // Run the demo script itself, with the loader this test runs under, so its claims are exercised as shipped.
  const script = fileURLToPath(new URL('../../demo/token.ts', import.meta.url));
  // Only tap's TypeScript loader is passed on (its coverage/mock hooks are not needed in the child).
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const run = async (kind: string) => {
    const { stdout } = await execFileAsync(process.execPath, [...loader, script, kind, 'gp-connect'], { encoding: 'utf8', timeout: 30_000 });
    return stdout.trim();
  };
  const [write, read] = await Promise.all([run('write'), run('read')]);
  t.match(write, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.$/, 'an unsigned JWT');
  const req = await cancelRequest(h, 'gp-connect', fresh(h));
  const { r, puts } = await send({ ...req, headers: { ...req.headers, Authorization: `Bearer ${write}` } });
  t.equal(r.status, 200, r.body.toString('utf8').slice(0, 300));
  t.equal(puts, 1);
  const rr = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${fresh(h)}`, headers: { ...identityHeaders('gp-connect', 'read'), Authorization: `Bearer ${read}` } });
  t.equal(rr.status, 200, 'the read token is accepted for a read');
  // And the write token is not a read token (scopes differ).
  const wrong = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${fresh(h)}`, headers: { ...identityHeaders('gp-connect', 'read'), Authorization: `Bearer ${write}` } });
  assertOutcome(t, wrong, 400, 'BAD_REQUEST', { expression: 'jwt.requested_scope' });
});

t.test('§a Accept-Encoding gzip: "Servers SHALL support gzip" — every answer the client accepts it for is compressed', async (t) => {
  const { gunzipSync } = await import('node:zlib');
  const unzip = (b: Buffer) => JSON.parse(gunzipSync(b).toString('utf8'));
  const id = fresh(h);
  // A read (passthrough, streamed): compressed, Vary, and the provider asked for no encoding.
  const readPlain = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders('gp-connect', 'read') });
  const before = h.provider.requests.length;
  const read = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: { ...identityHeaders('gp-connect', 'read'), 'Accept-Encoding': 'gzip, deflate' } });
  t.equal(read.status, 200);
  t.equal(read.headers['content-encoding'], 'gzip', 'read: gzip');
  t.match(String(read.headers.vary), /Accept-Encoding/, 'read: Vary: Accept-Encoding');
  t.equal(read.headers['cache-control'], 'no-store');
  t.same(unzip(read.body), readPlain.json, 'read: the same resource');
  t.equal(h.provider.requests.slice(before).at(-1)?.headers['accept-encoding'], undefined, 'the provider was asked for no encoding');
  // A cancel's 200 (the gateway's own answer): compressed; the body is the provider's.
  const cancel = await cancelRequest(h, 'gp-connect', id);
  const done = await h.request({ ...cancel, headers: { ...cancel.headers, 'Accept-Encoding': 'gzip' } });
  t.equal(done.status, 200);
  t.equal(done.headers['content-encoding'], 'gzip', 'cancel: gzip');
  t.equal(Number(done.headers['content-length']), done.body.length, 'cancel: Content-Length of the compressed bytes');
  t.equal(unzip(done.body).status, 'cancelled', 'cancel: the provider\'s cancelled appointment');
  // A gateway-made OperationOutcome: compressed too.
  const refused = await h.request({ ...cancel, headers: { ...cancel.headers, 'Content-Type': 'text/plain', 'Accept-Encoding': 'x-gzip' } });
  t.equal(refused.status, 415);
  t.equal(refused.headers['content-encoding'], 'gzip', 'an OperationOutcome: gzip');
  t.equal(unzip(refused.body).resourceType, 'OperationOutcome');
  // Not accepted: not compressed.
  for (const ae of [undefined, 'identity', 'gzip;q=0', 'br', '*;q=0', 'gzip;q=0, *']) {
    const r = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: { ...identityHeaders('gp-connect', 'read'), ...(ae === undefined ? {} : { 'Accept-Encoding': ae }) } });
    t.equal(r.headers['content-encoding'], undefined, `Accept-Encoding ${String(ae)}: not compressed`);
  }
  const star = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: { ...identityHeaders('gp-connect', 'read'), 'Accept-Encoding': '*' } });
  t.equal(star.headers['content-encoding'], 'gzip', 'Accept-Encoding *: gzip');
});

t.test('§a gzip: an answer the provider encoded itself is passed on once encoded, never twice', async (t) => {
  const { gunzipSync } = await import('node:zlib');
  const hz = await startHarness({ standard: 'gp-connect', provider: { gzip: true } });
  t.teardown(() => hz.close());
  const id = fresh(hz);
  const ae = { 'Accept-Encoding': 'gzip' };
  const read = await hz.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: { ...identityHeaders('gp-connect', 'read'), ...ae } });
  t.equal(read.headers['content-encoding'], 'gzip');
  t.equal(JSON.parse(gunzipSync(read.body).toString()).id, id, 'read: one gunzip gives the resource');
  const vread = await hz.request({ method: 'GET', path: `/STU3/1/Appointment/${id}/_history/1`, headers: { ...identityHeaders('gp-connect', 'read'), ...ae } });
  t.equal(vread.status, 200);
  t.equal(JSON.parse(gunzipSync(vread.body).toString()).id, id, 'version read: one gunzip gives the resource');
  // The cancel built from the (provider-compressed) read, as a client decoding gzip would.
  const current = JSON.parse(gunzipSync(read.body).toString());
  current.status = 'cancelled';
  current.extension = [...(current.extension ?? []), { url: REASON_URL, valueString: 'Patient request' }];
  const done = await hz.request({
    method: 'PUT', path: `/STU3/1/Appointment/${id}`, body: JSON.stringify(current),
    headers: { ...identityHeaders('gp-connect', 'cancel'), 'If-Match': String(read.headers.etag), 'Content-Type': 'application/fhir+json', ...ae },
  });
  t.equal(done.status, 200);
  t.equal(JSON.parse(gunzipSync(done.body).toString()).status, 'cancelled', "cancel: one gunzip gives the provider's answer");
});
