/**
 * Issue 5: the same cases under each standard, one real gateway + demo provider per standard, so that
 * switching `standard: gp-connect` is shown to switch every behaviour (status, Spine code, issue
 * code, OperationOutcome profile, If-Match handling, Cache-Control). Expectations per standard come
 * from ../shared/spec/README.md (rulings 1-14, "Where GP Connect 1.2.7 differs") and the README table.
 */
import t from 'tap';
import { STANDARDS } from '../../src/standards/index.js';
import { assertOutcome } from '../helpers/assert.js';
import { cancelRequest, seen, startHarness, type Harness, type Reply, type RequestOptions, type StandardName } from '../helpers/harness.js';

type Expect =
  | { status: 200 }
  | { status: number; spine: string; issue?: string; expression?: string | RegExp };

interface Case {
  name: string;
  /** Build the request for appointment `id` (a fresh copy of a seeded appointment). */
  build(h: Harness, standard: StandardName, id: string): Promise<RequestOptions>;
  /** Request path part whose PUT the provider must (true) or must not (false) have seen. */
  expect: Record<StandardName, Expect & { forwarded: boolean }>;
  /** Set when the provider must not be contacted at all (not even the read of ruling 8). */
  noProviderContact?: boolean;
  extra?(t: Tap, r: Reply, h: Harness, standard: StandardName, req: RequestOptions, id: string): void;
}
type Tap = Pick<typeof t, 'equal' | 'ok' | 'match' | 'same' | 'notOk'>;

const headersWithout = (req: RequestOptions, name: string): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers ?? {})) if (k.toLowerCase() !== name.toLowerCase() && typeof v === 'string') out[k] = v;
  return out;
};

const CASES: Case[] = [
  {
    name: 'valid cancel',
    build: (h, s, id) => cancelRequest(h, s, id),
    expect: { 'nhs-booking': { status: 200, forwarded: true }, 'gp-connect': { status: 200, forwarded: true } },
    extra(t, r, h, standard, req, id) {
      t.equal(r.json?.resourceType, 'Appointment');
      t.equal(r.json?.status, 'cancelled', 'the provider stored the cancellation');
      t.equal(h.provider.store.read(id)?.resource['status'], 'cancelled');
      t.equal(r.headers.etag, `W/"${r.json?.meta?.versionId}"`, 'ETag of the new version');
      const put = h.provider.requests.filter((x) => x.method === 'PUT').at(-1)!;
      t.ok(put.body.equals(Buffer.from(String(req.body))), 'the original bytes were forwarded');
      if (standard === 'gp-connect') {
        const reasonUrl = STANDARDS['gp-connect'].cancel.reasonExtensionUrl;
        t.ok((r.json?.extension ?? []).some((e: { url?: string; valueString?: string }) => e.url === reasonUrl && e.valueString === 'Patient request'), 'GP Connect reason extension in the answer');
        t.equal(r.headers['cache-control'], 'no-store', 'gp-connect: Cache-Control: no-store on the 200');
      } else {
        t.match(String(r.headers.location), /^https:\/\/gateway\.example\.nhs\.uk\/STU3\/1\/Appointment\//, 'nhs-booking: absolute Location');
      }
    },
  },
  {
    name: 'missing Spine header (Ssp-TraceID)',
    build: async (h, s, id) => {
      const req = await cancelRequest(h, s, id);
      return { ...req, headers: headersWithout(req, 'Ssp-TraceID') };
    },
    noProviderContact: true,
    expect: {
      'nhs-booking': { status: 400, spine: 'MISSING_OR_INVALID_HEADER', expression: 'http.Ssp-TraceID', forwarded: false },
      'gp-connect': { status: 400, spine: 'BAD_REQUEST', expression: 'http.Ssp-TraceID', forwarded: false },
    },
  },
  {
    name: 'bad JWT claim (reason_for_request)',
    build: async (h, s, id) => {
      const req = await cancelRequest(h, s, id);
      const [hd, payload] = String(req.headers!['Authorization']).slice('Bearer '.length).split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'));
      claims.reason_for_request = 'secondaryuses';
      return { ...req, headers: { ...req.headers, Authorization: `Bearer ${hd}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.` } };
    },
    noProviderContact: true,
    expect: {
      'nhs-booking': { status: 403, spine: 'ACCESS DENIED', issue: 'forbidden', expression: 'jwt.reason_for_request', forwarded: false },
      'gp-connect': { status: 400, spine: 'BAD_REQUEST', issue: 'invalid', expression: 'jwt.reason_for_request', forwarded: false },
    },
  },
  {
    name: 'missing If-Match',
    build: async (h, s, id) => {
      const req = await cancelRequest(h, s, id);
      return { ...req, headers: headersWithout(req, 'If-Match') };
    },
    expect: {
      'nhs-booking': { status: 412, spine: 'MISSING_OR_INVALID_HEADER', expression: 'http.If-Match', forwarded: false },
      'gp-connect': { status: 200, forwarded: true },
    },
    extra(t, r, h, standard, _req, id) {
      if (standard !== 'gp-connect') return;
      const put = h.provider.requests.filter((x) => x.method === 'PUT' && x.url.endsWith(`/Appointment/${id}`)).at(-1);
      t.ok(put, 'the provider saw the PUT');
      t.equal(put?.headers['if-match'], undefined, 'forwarded as received: no If-Match added');
      t.equal(r.json?.status, 'cancelled');
    },
  },
  {
    name: 'stale If-Match',
    build: async (h, s, id) => {
      const req = await cancelRequest(h, s, id);
      // Someone else updated the appointment after our read: our If-Match is now stale.
      const stored = h.provider.store.read(id)!;
      h.provider.store.update(id, stored.resource);
      return req;
    },
    expect: {
      'nhs-booking': { status: 409, spine: 'CONFLICTING_VALUES', issue: 'conflict', expression: 'http.If-Match', forwarded: false },
      'gp-connect': { status: 409, spine: 'FHIR_CONSTRAINT_VIOLATION', issue: 'conflict', expression: 'http.If-Match', forwarded: false },
    },
  },
  {
    name: 'wrong media type',
    build: async (h, s, id) => {
      const req = await cancelRequest(h, s, id);
      return { ...req, headers: { ...headersWithout(req, 'Content-Type'), 'Content-Type': 'application/json' } };
    },
    noProviderContact: true,
    expect: {
      'nhs-booking': { status: 415, spine: 'UNSUPPORTED_MEDIA_TYPE', expression: 'http.Content-Type', forwarded: false },
      'gp-connect': { status: 415, spine: 'BAD_REQUEST', expression: 'http.Content-Type', forwarded: false },
    },
  },
  {
    name: 'body not JSON',
    build: async (h, s, id) => ({ ...(await cancelRequest(h, s, id)), body: '{"resourceType": "Appointment", "status": cancelled}' }),
    noProviderContact: true,
    expect: {
      'nhs-booking': { status: 400, spine: 'BAD_REQUEST', forwarded: false },
      'gp-connect': { status: 400, spine: 'BAD_REQUEST', forwarded: false },
    },
  },
  {
    name: 'profile failure (participant removed)',
    build: (h, s, id) => cancelRequest(h, s, id, (r) => delete r.participant),
    noProviderContact: true,
    expect: {
      'nhs-booking': { status: 422, spine: 'INVALID_RESOURCE', expression: /participant/, forwarded: false },
      'gp-connect': { status: 422, spine: 'INVALID_RESOURCE', expression: /participant/, forwarded: false },
    },
  },
  {
    name: 'a changed element (description)',
    build: (h, s, id) => cancelRequest(h, s, id, (r) => (r.description = `${r.description} (edited)`)),
    expect: {
      'nhs-booking': { status: 422, spine: 'INVALID_RESOURCE', issue: 'business-rule', expression: 'Appointment.description', forwarded: false },
      'gp-connect': { status: 422, spine: 'INVALID_RESOURCE', issue: 'business-rule', expression: 'Appointment.description', forwarded: false },
    },
  },
  {
    name: 'unknown id',
    build: async (h, s, id) => {
      const req = await cancelRequest(h, s, id);
      const body = JSON.parse(String(req.body));
      body.id = 'no-such-appt';
      return { ...req, path: '/STU3/1/Appointment/no-such-appt', body: JSON.stringify(body) };
    },
    expect: {
      'nhs-booking': { status: 404, spine: 'NO_RECORD_FOUND', issue: 'not-found', forwarded: false },
      'gp-connect': { status: 404, spine: 'NO_RECORD_FOUND', issue: 'not-found', forwarded: false },
    },
    extra(t, _r, h) {
      t.equal(seen(h.provider, 'GET', '/Appointment/no-such-appt'), 1, 'the provider was asked for the appointment');
      t.equal(seen(h.provider, 'PUT', '/Appointment/no-such-appt'), 0);
    },
  },
  {
    name: 'provider down',
    build: async (h, s, id) => {
      const req = await cancelRequest(h, s, id);
      h.provider.fault('refuse', { path: new RegExp(`/Appointment/${id}$`) });
      return req;
    },
    expect: {
      'nhs-booking': { status: 500, spine: 'INTERNAL_SERVER_ERROR', forwarded: false },
      'gp-connect': { status: 500, spine: 'INTERNAL_SERVER_ERROR', forwarded: false },
    },
  },
];

let counter = 0;
/** A fresh copy of the first seeded appointment under a new id, so cases do not interfere. */
function freshAppointment(h: Harness): string {
  const template = h.provider.store.read(h.provider.store.ids()[0]!)!.resource;
  const id = `case-${++counter}`;
  h.provider.store.create({ ...structuredClone(template), id }, id);
  return id;
}

for (const standard of ['nhs-booking', 'gp-connect'] as const) {
  t.test(standard, async (t) => {
    const h = await startHarness({ standard });
    t.teardown(() => h.close());
    const ooProfile = STANDARDS[standard].operationOutcomeProfile;

    t.test('the OperationOutcome profile is the standard\'s', async (t) => {
      t.equal(ooProfile, standard === 'gp-connect'
        ? 'https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1'
        : 'https://fhir.nhs.uk/STU3/StructureDefinition/Spine-OperationOutcome-1');
    });

    for (const c of CASES) {
      t.test(c.name, async (t) => {
        const id = freshAppointment(h);
        const req = await c.build(h, standard, id);
        const before = h.provider.requests.length;
        const putsBefore = seen(h.provider, 'PUT', `/Appointment/`);
        const r = await h.request(req);
        const e = c.expect[standard];
        if ('spine' in e) {
          // Every gateway error carries the standard's OperationOutcome profile (ruling 14).
          assertOutcome(t, r, e.status, e.spine, { issue: e.issue, expression: e.expression, profile: ooProfile });
        } else {
          t.equal(r.status, 200, `status 200 (${r.body.toString('utf8').slice(0, 300)})`);
        }
        t.equal(seen(h.provider, 'PUT', `/Appointment/`) - putsBefore, e.forwarded ? 1 : 0, e.forwarded ? 'the provider saw the PUT' : 'the provider saw no PUT');
        if (c.noProviderContact) t.equal(h.provider.requests.length, before, 'the provider was not contacted at all');
        c.extra?.(t, r, h, standard, req, id);
      });
    }
  });
}
