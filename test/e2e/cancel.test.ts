/**
 * The cancel decision end to end (issue 4): the real gateway over mTLS in front of the real demo
 * provider, one test per status the founding text names (200, 400, 403 is in the identity tests,
 * 409, 412, 422, 500) plus 404, 413 and 415. Every test asserts the status, the Spine code, the
 * issue code where the rulings give one, and what the provider received (rulings 1, 8-12 of
 * ../../../shared/spec/README.md).
 */
import t from 'tap';
import http from 'node:http';
import { assertOutcome } from '../helpers/assert.js';
import { cancelRequest, identityHeaders, seen, startHarness, type Harness, type Reply, type RequestOptions } from '../helpers/harness.js';
import type { AuditRecord } from '../../src/ops/audit.js';

const PUBLIC = 'https://gateway.example.nhs.uk/STU3/1';
const REASON_URL = 'https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-AppointmentCancellationReason-1';

const h = await startHarness();
t.teardown(() => h.close());

type T = Pick<typeof t, 'ok' | 'equal' | 'same' | 'match' | 'notMatch' | 'not' | 'notOk'>;

let counter = 0;
/** A fresh booked appointment (version 1) on the harness's provider, copied from appt-1's first version. */
function freshAppointment(hh: Harness = h, mutate?: (r: any) => void): string {
  const id = `appt-x${++counter}`;
  const r = structuredClone(hh.provider.store.vread('appt-1', '1')!.resource);
  mutate?.(r);
  hh.provider.store.create(r, id);
  return id;
}

/** What the provider received for one appointment since request index `from`. */
function upstreamSince(hh: Harness, from: number, id: string): { gets: number; puts: number; total: number } {
  const rs = hh.provider.requests.slice(from);
  const mine = rs.filter((r) => r.url.split('?')[0] === `/Appointment/${id}`);
  return { gets: mine.filter((r) => r.method === 'GET').length, puts: mine.filter((r) => r.method === 'PUT').length, total: rs.length };
}

/** The request with one header replaced (undefined removes it). */
function withHeader(req: RequestOptions, name: string, value: string | undefined): RequestOptions {
  const headers = { ...req.headers };
  for (const k of Object.keys(headers)) if (k.toLowerCase() === name.toLowerCase()) delete headers[k];
  if (value !== undefined) headers[name] = value;
  return { ...req, headers };
}

/** Send a request and report what the provider saw of it. */
async function sendCounting(hh: Harness, req: RequestOptions, id: string): Promise<{ r: Reply; up: ReturnType<typeof upstreamSince> }> {
  const from = hh.provider.requests.length;
  const r = await hh.request(req);
  return { r, up: upstreamSince(hh, from, id) };
}

/** The audit record for a trace id; it is written right after the answer, so wait a moment for it. */
async function auditFor(hh: Harness, traceId: string): Promise<AuditRecord | undefined> {
  for (let i = 0; i < 50; i++) {
    const rec = hh.audit.find((a) => a.traceId === traceId);
    if (rec) return rec;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}

/** 200 checks shared by every successful cancel (founding text, ruling 12). */
function assertCancelled(t: T, hh: Harness, r: Reply, id: string, sentBody: string | Buffer | undefined, up: ReturnType<typeof upstreamSince>): void {
  t.equal(r.status, 200, `200 (${r.status === 200 ? '' : r.body.toString().slice(0, 300)})`);
  t.equal(r.json?.resourceType, 'Appointment');
  t.equal(r.json?.id, id);
  t.equal(r.json?.status, 'cancelled');
  t.equal(r.json?.meta?.versionId, '2', 'the body carries the newly assigned versionId');
  t.equal(r.headers.location, `${PUBLIC}/Appointment/${id}/_history/2`, 'Location absolute on publicBaseUrl');
  t.equal(r.headers['content-location'], `${PUBLIC}/Appointment/${id}/_history/2`, 'Content-Location: the new version, on the gateway (GP Connect marks it R)');
  t.equal(r.headers.etag, 'W/"2"', 'ETag of the new version');
  const lm = String(r.headers['last-modified'] ?? '');
  t.ok(lm && Number.isFinite(Date.parse(lm)), 'Last-Modified present and a date');
  const stored = hh.provider.store.read(id)!;
  t.equal(stored.versionId, '2');
  t.equal(stored.resource.status, 'cancelled', 'the provider now holds the cancelled appointment');
  t.same(r.json, stored.resource, "the body is the provider's updated Appointment");
  t.equal(lm, new Date(stored.lastUpdated).toUTCString(), 'Last-Modified is the new version time');
  const previous = hh.provider.store.vread(id, '1');
  t.equal(previous?.resource.status, 'booked', 'the previous version is kept');
  t.equal(up.gets, 1, 'the provider was read once');
  t.equal(up.puts, 1, 'the provider received exactly one PUT');
  const put = hh.provider.requests.filter((x) => x.method === 'PUT' && x.url === `/Appointment/${id}`).at(-1);
  t.ok(put && sentBody !== undefined && put.body.equals(Buffer.from(sentBody)), 'the PUT carried the bytes sent');
}

t.test('200: a valid cancel', async (t) => {
  const id = 'appt-1';
  const req = await cancelRequest(h, 'nhs-booking', id);
  const { r, up } = await sendCounting(h, req, id);
  assertCancelled(t, h, r, id, req.body, up);
  t.not(r.headers['cache-control'], 'no-store', 'no-store is for errors only under nhs-booking');
  t.equal(h.provider.store.history(id).length, 2, 'two versions stored');
});

t.test('200: the CareConnect cancellation-reason extension may be added', async (t) => {
  const id = 'appt-2';
  const req = await cancelRequest(h, 'nhs-booking', id, (r) => {
    r.extension = [...(r.extension ?? []), { url: REASON_URL, valueString: 'Patient no longer needs the appointment' }];
  });
  const { r, up } = await sendCounting(h, req, id);
  assertCancelled(t, h, r, id, req.body, up);
  const ext = (h.provider.store.read(id)!.resource.extension as Array<{ url: string }>) ?? [];
  t.ok(ext.some((e) => e.url === REASON_URL), 'the stored appointment carries the reason');
});

t.test('200: If-Match in the strong form "<v>" is accepted', async (t) => {
  const id = 'appt-3';
  const req = await cancelRequest(h, 'nhs-booking', id);
  t.equal(req.headers!['If-Match'], 'W/"1"', 'the helper read version 1');
  const strong = withHeader(req, 'If-Match', '"1"');
  const { r, up } = await sendCounting(h, strong, id);
  assertCancelled(t, h, r, id, req.body, up);
  t.equal(h.provider.requests.filter((x) => x.method === 'PUT' && x.url === `/Appointment/${id}`).at(-1)?.headers['if-match'], '"1"', 'If-Match forwarded unchanged');
});

t.test('200: Content-Type application/json+fhir and application/fhir+json;charset=utf-8 are accepted', async (t) => {
  for (const ct of ['application/json+fhir', 'application/fhir+json;charset=utf-8']) {
    const id = freshAppointment();
    const req = withHeader(await cancelRequest(h, 'nhs-booking', id), 'Content-Type', ct);
    const { r, up } = await sendCounting(h, req, id);
    t.test(ct, async (t) => assertCancelled(t, h, r, id, req.body, up));
  }
});

t.test('200: a provider that omits ETag and Last-Modified: the gateway adds both', async (t) => {
  const h2 = await startHarness({ provider: { omitEtag: true, omitLastModified: true } });
  t.teardown(() => h2.close());
  const id = 'appt-4';
  // The provider itself really omits them.
  const direct = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(`${h2.provider.url}/Appointment/${id}`, (res) => (res.resume(), resolve(res))).on('error', reject);
  });
  t.equal(direct.statusCode, 200);
  t.notOk(direct.headers.etag, 'the provider sends no ETag');
  t.notOk(direct.headers['last-modified'], 'the provider sends no Last-Modified');
  const req = await cancelRequest(h2, 'nhs-booking', id);
  t.equal(req.headers!['If-Match'], 'W/"1"', 'the gateway read gave an ETag from meta.versionId');
  const { r, up } = await sendCounting(h2, req, id);
  assertCancelled(t, h2, r, id, req.body, up);
});

t.test('rulings 8, 12, 13: a bare provider ETag is the version, written as an entity tag; a broken one is replaced from meta.versionId', async (t) => {
  for (const [name, etagOf, readEtag] of [
    ['bare', (v: string) => v, (v: string) => `W/"${v}"`],
    ['a star on every answer', () => '*', undefined],
  ] as const) {
    t.test(name, async (t) => {
      const hx = await startHarness({ provider: { etagOf } });
      t.teardown(() => hx.close());
      const id = 'appt-4';
      const read = await hx.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders('nhs-booking', 'read') });
      t.equal(read.status, 200);
      t.equal(read.headers.etag, 'W/"1"', 'the passthrough read carries an entity tag');
      const req = await cancelRequest(hx, 'nhs-booking', id);
      const before = seen(hx.provider, 'PUT', `/Appointment/${id}`);
      const r = await hx.request(req);
      if (readEtag) {
        t.equal(r.status, 200, r.body.toString().slice(0, 300));
        t.equal(r.headers.etag, readEtag('2'), "the cancel's 200 carries an entity tag");
        t.equal(seen(hx.provider, 'PUT', `/Appointment/${id}`), before + 1);
      } else {
        t.equal(r.status, 500, 'a read whose ETag names no version: which version it is cannot be told');
        t.equal(seen(hx.provider, 'PUT', `/Appointment/${id}`), before, 'nothing forwarded');
      }
    });
  }
});

t.test('rulings 12, 13, 17: a provider that gzips its answers unasked is read decoded (read, cancel, vread)', async (t) => {
  const { gunzipSync } = await import('node:zlib');
  const hx = await startHarness({ provider: { gzip: true, omitEtag: true } });
  t.teardown(() => hx.close());
  const id = 'appt-4';
  const read = await hx.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders('nhs-booking', 'read') });
  t.equal(read.status, 200);
  t.equal(read.headers['content-encoding'], 'gzip', 'the body passed on as the provider coded it');
  t.equal(JSON.parse(gunzipSync(read.body).toString()).id, id);
  t.equal(read.headers.etag, 'W/"1"', 'the ETag made from the decoded meta.versionId');
  const submitted = { ...structuredClone(hx.provider.store.read(id)!.resource), status: 'cancelled' };
  const before = seen(hx.provider, 'PUT', `/Appointment/${id}`);
  const r = await hx.request({
    method: 'PUT', path: `/STU3/1/Appointment/${id}`, body: JSON.stringify(submitted),
    headers: { ...identityHeaders('nhs-booking', 'cancel'), 'If-Match': 'W/"1"', 'Content-Type': 'application/fhir+json' },
  });
  t.equal(r.status, 200, r.body.toString().slice(0, 200));
  t.equal(seen(hx.provider, 'PUT', `/Appointment/${id}`), before + 1, 'forwarded once');
  t.equal(r.headers.etag, 'W/"2"', "the cancel's ETag from the decoded answer");
  const vread = await hx.request({ method: 'GET', path: `/STU3/1/Appointment/${id}/_history/1`, headers: identityHeaders('nhs-booking', 'read') });
  t.equal(vread.status, 200);
  t.equal(vread.headers.etag, 'W/"1"');
});

t.test("200: a provider's absolute Location on its own origin is rewritten onto publicBaseUrl", async (t) => {
  const h3 = await startHarness({ provider: { relativeLocation: false } });
  t.teardown(() => h3.close());
  const id = 'appt-5';
  const req = await cancelRequest(h3, 'nhs-booking', id);
  const { r, up } = await sendCounting(h3, req, id);
  assertCancelled(t, h3, r, id, req.body, up);
  t.notMatch(String(r.headers.location), h3.provider.url, 'no internal origin leaks');
});

t.test('412: no If-Match; the provider is not contacted', async (t) => {
  const id = freshAppointment();
  const req = withHeader(await cancelRequest(h, 'nhs-booking', id), 'If-Match', undefined);
  const { r, up } = await sendCounting(h, req, id);
  assertOutcome(t, r, 412, 'MISSING_OR_INVALID_HEADER', { issue: 'required', expression: 'http.If-Match' });
  t.equal(up.total, 0, 'no GET and no PUT upstream');
  t.equal(h.provider.store.read(id)!.versionId, '1');
});

t.test('400: malformed If-Match -> MISSING_OR_INVALID_HEADER; nothing upstream', async (t) => {
  const id = freshAppointment();
  const req = await cancelRequest(h, 'nhs-booking', id);
  for (const v of ['1', 'W/1', 'W/""', 'W/"1", W/"2"', '*']) {
    const { r, up } = await sendCounting(h, withHeader(req, 'If-Match', v), id);
    t.test(`If-Match: ${v}`, async (t) => {
      assertOutcome(t, r, 400, 'MISSING_OR_INVALID_HEADER', { issue: 'invalid', expression: 'http.If-Match' });
      t.equal(up.total, 0, 'no GET and no PUT upstream');
    });
  }
  // The same valid value twice is still refused: which one would the provider read?
  const twice = await sendCounting(h, { ...req, headers: { ...req.headers, 'If-Match': ['W/"1"', 'W/"1"'] } }, id);
  t.test('If-Match sent twice', async (t) => {
    assertOutcome(t, twice.r, 400, 'MISSING_OR_INVALID_HEADER', { issue: 'invalid', expression: 'http.If-Match' });
    t.equal(twice.up.total, 0, 'no GET and no PUT upstream');
  });
  t.equal(h.provider.store.read(id)!.versionId, '1');
});

t.test('400: invalid bodies -> BAD_REQUEST; nothing upstream', async (t) => {
  const id = freshAppointment();
  const req = await cancelRequest(h, 'nhs-booking', id);
  const body = String(req.body);
  const good = JSON.parse(body);
  t.equal(body.indexOf('"status":"cancelled"') > 0, true, 'the body sets status once');
  const deep = 65;
  const cases: Record<string, string> = {
    'not JSON': body.slice(0, -1),
    'not JSON: trailing data': `${body} {}`,
    'a JSON array': `[${body}]`,
    'a JSON string': JSON.stringify(body),
    'resourceType Patient': JSON.stringify({ ...good, resourceType: 'Patient' }),
    'id missing': JSON.stringify({ ...good, id: undefined }),
    'id empty': JSON.stringify({ ...good, id: '' }),
    'id different from the URL': JSON.stringify({ ...good, id: 'appt-2' }),
    'duplicate keys (status booked, then cancelled)': `{"status":"booked",${body.slice(1)}`,
    'duplicate keys in a nested object': body.replace('"meta":{', '"meta":{"versionId":"7",'),
    'a __proto__ key': `{"__proto__":{"status":"booked"},${body.slice(1)}`,
    'a constructor key': body.replace('"meta":{', '"meta":{"constructor":{},'),
    'nesting deeper than 64': `{"x":${'['.repeat(deep)}${']'.repeat(deep)},${body.slice(1)}`,
    'not UTF-8': '',
  };
  for (const [name, text] of Object.entries(cases)) {
    const bytes = name === 'not UTF-8' ? Buffer.concat([Buffer.from(body.slice(0, 20)), Buffer.from([0xff, 0xfe]), Buffer.from(body.slice(20))]) : text;
    const { r, up } = await sendCounting(h, { ...req, body: bytes }, id);
    t.test(name, async (t) => {
      assertOutcome(t, r, 400, 'BAD_REQUEST', { issue: 'structure' });
      t.equal(up.total, 0, 'no GET and no PUT upstream');
    });
  }
  t.equal(h.provider.store.read(id)!.versionId, '1');
});

t.test('400: nesting exactly at the limit is not a body error (it reaches the profile check)', async (t) => {
  const id = freshAppointment();
  const req = await cancelRequest(h, 'nhs-booking', id);
  // The Appointment object is depth 1; 63 more arrays make 64.
  const text = `{"x":${'['.repeat(63)}${']'.repeat(63)},${String(req.body).slice(1)}`;
  const { r, up } = await sendCounting(h, { ...req, body: text }, id);
  assertOutcome(t, r, 422, 'INVALID_RESOURCE', { expression: 'Appointment.<unknown>' });
  t.equal(up.total, 0, 'nothing upstream');
});

t.test('415: unsupported or missing Content-Type; nothing upstream', async (t) => {
  const id = freshAppointment();
  const req = await cancelRequest(h, 'nhs-booking', id);
  for (const ct of ['text/plain', 'application/json', 'application/x-www-form-urlencoded', 'application/fhir+json; charset=iso-8859-1', undefined]) {
    const { r, up } = await sendCounting(h, withHeader(req, 'Content-Type', ct), id);
    t.test(`Content-Type: ${ct ?? '(none)'}`, async (t) => {
      assertOutcome(t, r, 415, 'UNSUPPORTED_MEDIA_TYPE', { issue: 'not-supported' });
      t.equal(up.total, 0, 'no GET and no PUT upstream');
    });
  }
  t.equal(h.provider.store.read(id)!.versionId, '1');
});

t.test('413: a body over limits.maxBodyBytes; nothing upstream', async (t) => {
  const small = await startHarness({ config: { limits: { maxBodyBytes: 4096 } } });
  t.teardown(() => small.close());
  const id = 'appt-1';
  const req = await cancelRequest(small, 'nhs-booking', id, (r) => {
    r.description = 'x'.repeat(5000);
  });
  t.ok(Buffer.byteLength(String(req.body)) > 4096, 'the body is over the limit');
  const declared = await sendCounting(small, req, id);
  t.test('with Content-Length', async (t) => {
    assertOutcome(t, declared.r, 413, 'BAD_REQUEST', { issue: 'too-long' });
    t.equal(declared.up.total, 0, 'no GET and no PUT upstream');
  });
  const chunked = await sendCounting(small, withHeader(req, 'Transfer-Encoding', 'chunked'), id);
  t.test('chunked (no Content-Length)', async (t) => {
    assertOutcome(t, chunked.r, 413, 'BAD_REQUEST', { issue: 'too-long' });
    t.equal(chunked.up.total, 0, 'no GET and no PUT upstream');
  });
  // A body just under the limit is still read and decided normally.
  const ok = await cancelRequest(small, 'nhs-booking', id);
  t.ok(Buffer.byteLength(String(ok.body)) <= 4096, 'a normal body fits');
  const { r, up } = await sendCounting(small, ok, id);
  assertCancelled(t, small, r, id, ok.body, up);
});

t.test('422 profile: one issue with its expression; nothing upstream', async (t) => {
  const id = freshAppointment();
  const cases: Array<[string, (r: any) => void, string | RegExp]> = [
    ['status missing', (r) => delete r.status, 'Appointment.status'],
    ['an unknown element (not a FHIR name: never echoed, ruling 20)', (r) => (r.colour = 'blue'), 'Appointment.<unknown>'],
    ['a FHIR element name where Appointment has none', (r) => (r.gender = 'male'), 'Appointment.gender'],
    ['a bad instant', (r) => (r.start = '2030-02-30T25:00:00Z'), 'Appointment.start'],
    ['an instant without a time zone', (r) => (r.end = '2030-01-01T10:00:00'), 'Appointment.end'],
  ];
  // Ruling 20: the contained rows of nhs-booking-2.0.1.md §c, and the table's slot and patient participant.
  const of = (r: any, type: string) => r.contained.find((c: any) => c.resourceType === type);
  const at = (type: string, path: string) => new RegExp(`^Appointment\\.contained\\[\\d\\]\\.${path.replace(/\./g, '\\.')}$`);
  const rows: Array<[string, (r: any) => void, string | RegExp]> = [
    ['a contained Slot without identifier', (r) => delete of(r, 'Slot').identifier, at('Slot', 'identifier')],
    ['a contained Slot neither busy nor free', (r) => (of(r, 'Slot').status = 'busy-tentative'), at('Slot', 'status')],
    ['a contained DocumentReference not current', (r) => (of(r, 'DocumentReference').status = 'superseded'), at('DocumentReference', 'status')],
    ['a contained DocumentReference of another type', (r) => (of(r, 'DocumentReference').type.coding[0].code = 'X'), at('DocumentReference', 'type.coding.code')],
    ['a contained Patient without meta', (r) => delete of(r, 'Patient').meta, at('Patient', 'meta')],
    ['the patient participant not accepted', (r) => (r.participant[0].status = 'tentative'), 'Appointment.participant[0].status'],
    ['the patient participant with a 9-digit NHS number', (r) => (r.participant[0].actor.identifier.value = '123456789'), 'Appointment.participant[0].actor.identifier'],
  ];
  const seeded = h.provider.store.read(id)!.resource as any;
  t.equal(seeded.participant[0].actor.reference, `#${of(seeded, 'Patient').id}`, 'the first participant is the contained Patient');
  cases.push(...rows);
  for (const [name, mutate, expression] of cases) {
    const req = await cancelRequest(h, 'nhs-booking', id, mutate);
    const { r, up } = await sendCounting(h, req, id);
    t.test(name, async (t) => {
      assertOutcome(t, r, 422, 'INVALID_RESOURCE', { expression });
      t.match(r.json?.issue?.[0]?.code, /^(structure|invalid)$/, 'a profile issue code (catalogue: structure / invalid)');
      t.equal(up.total, 0, 'no GET and no PUT upstream');
    });
  }
  t.equal(h.provider.store.read(id)!.versionId, '1');
});

t.test('422 business rule: status must be cancelled; nothing forwarded', async (t) => {
  const id = freshAppointment();
  const req = await cancelRequest(h, 'nhs-booking', id, (r) => (r.status = 'booked'));
  const { r, up } = await sendCounting(h, req, id);
  assertOutcome(t, r, 422, 'INVALID_RESOURCE', { issue: 'business-rule', expression: 'Appointment.status' });
  t.equal(up.puts, 0, 'no PUT');
  t.equal(up.gets, 1, 'a business rule is decided after the provider read (ruling 1)');
  t.equal(h.provider.store.read(id)!.versionId, '1');
  // Ruling 1: the version check comes before the business rules, so stale + booked is 409.
  const stale = await cancelRequest(h, 'nhs-booking', id, (x) => (x.status = 'booked'));
  const conflict = await h.request({ ...stale, headers: { ...stale.headers, 'If-Match': 'W/"99"' } });
  assertOutcome(t, conflict, 409, 'CONFLICTING_VALUES');
});

t.test('a body with a byte order mark is refused (two readers must not disagree)', async (t) => {
  const id = freshAppointment();
  const req = await cancelRequest(h, 'nhs-booking', id);
  const { r, up } = await sendCounting(h, { ...req, body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(String(req.body))]) }, id);
  assertOutcome(t, r, 400, 'BAD_REQUEST');
  t.equal(up.puts + up.gets, 0, 'no provider contact');
});

t.test('422 business rules: differences from the stored appointment; read but not forwarded', async (t) => {
  const contained = h.provider.store.vread('appt-1', '1')!.resource.contained as Array<{ id: string; resourceType: string }>;
  t.ok(contained.some((c) => c.id === 'P1' && c.resourceType === 'Patient'), 'the contained Patient of the seed is P1');
  const twoParticipants = freshAppointment(h, (r) => {
    r.participant.push({ actor: { reference: 'Practitioner/123', display: 'Dr Smith' }, status: 'accepted' });
  });
  const cases: Array<{ name: string; id: string; mutate: (r: any) => void; paths: Array<string | RegExp> }> = [
    {
      name: 'a changed contained Patient family name',
      id: freshAppointment(),
      mutate: (r) => (r.contained.find((c: any) => c.id === 'P1').name[0].family = 'Smith'),
      paths: ["Appointment.contained[1].name[0].family"],
    },
    { name: 'a changed description', id: freshAppointment(), mutate: (r) => (r.description = 'Something else'), paths: ['Appointment.description'] },
    { name: 'a removed participant', id: twoParticipants, mutate: (r) => r.participant.pop(), paths: ['Appointment.participant[1]'] },
    { name: 'a changed start (Z vs +00:00 is a difference)', id: freshAppointment(), mutate: (r) => (r.start = r.start.replace(/\.000Z$/, '.000+00:00')), paths: ['Appointment.start'] },
    { name: 'another extension added', id: freshAppointment(), mutate: (r) => (r.extension = [{ url: 'https://example.org/x', valueString: 'x' }]), paths: ['Appointment.extension'] },
    {
      name: 'several changes: one issue per difference',
      id: freshAppointment(),
      mutate: (r) => {
        r.description = 'Changed';
        r.contained.find((c: any) => c.id === 'P1').name[0].family = 'Smith';
        r.participant[0].actor.display = 'Someone else';
      },
      paths: ['Appointment.contained[1].name[0].family', 'Appointment.description', 'Appointment.participant[0].actor.display'],
    },
  ];
  for (const c of cases) {
    const req = await cancelRequest(h, 'nhs-booking', c.id, c.mutate);
    const { r, up } = await sendCounting(h, req, c.id);
    t.test(c.name, async (t) => {
      assertOutcome(t, r, 422, 'INVALID_RESOURCE', { issue: 'business-rule' });
      const exprs: string[] = (r.json?.issue ?? []).flatMap((i: { expression?: string[] }) => i.expression ?? []);
      t.same(exprs, c.paths, 'one issue per difference, each with its path');
      t.equal(r.json?.issue?.length, c.paths.length, 'one issue per difference');
      for (const i of r.json?.issue ?? []) t.equal(i.code, 'business-rule');
      t.notMatch(r.body.toString(), /Smith|Something else|Someone else|Changed/, 'no submitted values echoed');
      t.equal(up.gets, 1, 'the current appointment was read');
      t.equal(up.puts, 0, 'nothing forwarded');
      t.equal(h.provider.store.read(c.id)!.versionId, '1');
    });
  }
});

t.test('422: an already cancelled appointment cannot be cancelled again', async (t) => {
  const id = freshAppointment();
  const first = await cancelRequest(h, 'nhs-booking', id);
  t.equal((await h.request(first)).status, 200, 'first cancel succeeds');
  const again = await cancelRequest(h, 'nhs-booking', id);
  t.equal(again.headers!['If-Match'], 'W/"2"', 'the second cancel carries the new ETag');
  const { r, up } = await sendCounting(h, again, id);
  assertOutcome(t, r, 422, 'INVALID_RESOURCE', { issue: 'business-rule', expression: 'Appointment.status' });
  t.equal(up.gets, 1, 'the current appointment was read');
  t.equal(up.puts, 0, 'nothing forwarded');
  t.equal(h.provider.store.history(id).length, 2, 'no third version');
});

t.test('409: a stale If-Match; read but not forwarded', async (t) => {
  const id = freshAppointment();
  const req = withHeader(await cancelRequest(h, 'nhs-booking', id), 'If-Match', 'W/"99"');
  const { r, up } = await sendCounting(h, req, id);
  assertOutcome(t, r, 409, 'CONFLICTING_VALUES', { issue: 'conflict' });
  t.equal(up.gets, 1, 'the current appointment was read');
  t.equal(up.puts, 0, 'nothing forwarded');
  t.equal(h.provider.store.read(id)!.versionId, '1');
});

t.test("404: unknown id (the provider's 404 on the read); not forwarded", async (t) => {
  const id = 'appt-unknown';
  const template = await cancelRequest(h, 'nhs-booking', freshAppointment());
  const body = JSON.parse(String(template.body));
  body.id = id;
  const req: RequestOptions = { ...template, path: `/STU3/1/Appointment/${id}`, body: JSON.stringify(body) };
  const { r, up } = await sendCounting(h, req, id);
  assertOutcome(t, r, 404, 'NO_RECORD_FOUND', { issue: 'not-found' });
  t.equal(up.gets, 1, 'the provider was asked');
  t.equal(up.puts, 0, 'no PUT');
  t.notOk(h.provider.store.has(id));
});

t.test("ruling 22: a provider's redirect of a passthrough read never sends the client back to the URL it asked for", async (t) => {
  const id = freshAppointment();
  const remove = h.provider.fault('redirect', { method: 'GET', path: new RegExp(`^/Appointment/${id}$`) });
  try {
    const r = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders('nhs-booking', 'read') });
    // Its Location (…/moved/Appointment/{id}) would lead back to this very URL: a redirect with
    // nothing to follow is the provider's failure, not a bare 307 (review of stop 34).
    t.equal(r.status, 500, 'the provider\'s failure');
    t.equal(r.headers.location, undefined, 'no Location');
    t.equal(h.provider.requests.filter((x) => x.url.startsWith('/moved')).length, 0, 'never followed');
  } finally {
    remove();
  }
});

t.test('500: provider read faults; not forwarded', async (t) => {
  for (const fault of ['status-500', 'redirect', 'garbage', 'refuse', 'empty-200', 'reset-mid-response'] as const) {
    const id = freshAppointment();
    const req = await cancelRequest(h, 'nhs-booking', id);
    const remove = h.provider.fault(fault, { method: 'GET', path: new RegExp(`^/Appointment/${id}$`) });
    let res;
    try {
      res = await sendCounting(h, req, id);
    } finally {
      remove();
    }
    const { r, up } = res;
    t.test(fault, async (t) => {
      assertOutcome(t, r, 500, 'INTERNAL_SERVER_ERROR', { issue: 'exception' });
      t.equal(up.gets, 1, 'the read was attempted once');
      t.equal(up.puts, 0, 'no PUT');
      t.equal(h.provider.requests.filter((x) => x.url.startsWith('/moved')).length, 0, 'a redirect is never followed');
      t.equal(h.provider.store.read(id)!.versionId, '1');
    });
  }
});

t.test('500: a provider read that hangs past upstream.timeoutMs', async (t) => {
  // A second gateway with a short provider timeout, in front of the main harness's provider.
  const fast = await startHarness({ config: { upstream: { url: h.provider.url, timeoutMs: 500 } } });
  t.teardown(() => fast.close());
  const id = freshAppointment();
  const req = await cancelRequest(fast, 'nhs-booking', id);
  const remove = h.provider.fault('hang', { method: 'GET', path: new RegExp(`^/Appointment/${id}$`) });
  const from = h.provider.requests.length;
  const started = Date.now();
  let r: Reply;
  try {
    r = await fast.request(req);
  } finally {
    remove();
  }
  const took = Date.now() - started;
  const up = upstreamSince(h, from, id);
  assertOutcome(t, r, 500, 'INTERNAL_SERVER_ERROR', { issue: 'exception' });
  t.ok(took >= 450 && took < 3000, `answered after the timeout (${took} ms)`);
  t.equal(up.gets, 1, 'the read was attempted once');
  t.equal(up.puts, 0, 'no PUT');
});

t.test("provider errors on the PUT keep their status with the gateway's OperationOutcome; never retried", async (t) => {
  for (const [fault, status] of [['status-503-html', 503], ['status-504', 504]] as const) {
    const id = freshAppointment();
    const req = await cancelRequest(h, 'nhs-booking', id);
    const remove = h.provider.fault(fault, { method: 'PUT', path: new RegExp(`^/Appointment/${id}$`) });
    let res;
    try {
      res = await sendCounting(h, { ...req, headers: { ...req.headers, 'X-Request-ID': `put-${status}` } }, id);
    } finally {
      remove();
    }
    const { r, up } = res;
    t.test(fault, async (t) => {
      assertOutcome(t, r, status, 'INTERNAL_SERVER_ERROR', { issue: 'exception' });
      t.notMatch(r.body.toString(), /<html|Gateway Timeout/i, "the provider's body is not passed on");
      t.equal(r.headers['x-correlation-id'], `put-${status}`);
      t.equal(up.gets, 1);
      t.equal(up.puts, 1, 'exactly one PUT: no retry');
    });
  }
});

t.test('concurrency: 20 identical cancels -> one 200, 19 x 409, one PUT', async (t) => {
  const id = freshAppointment();
  const req = await cancelRequest(h, 'nhs-booking', id);
  // The provider takes its time over the PUT, so every request arrives while the first is still
  // being decided: without per-appointment serialization all 20 would read version 1 and be forwarded.
  const remove = h.provider.fault('slow', { method: 'PUT', path: new RegExp(`^/Appointment/${id}$`), delayMs: 400 });
  const from = h.provider.requests.length;
  let replies: Reply[];
  try {
    replies = await Promise.all(Array.from({ length: 20 }, () => h.request(req)));
  } finally {
    remove();
  }
  const up = upstreamSince(h, from, id);
  const ok = replies.filter((r) => r.status === 200);
  const conflicts = replies.filter((r) => r.status === 409);
  t.equal(ok.length, 1, 'exactly one 200');
  t.equal(conflicts.length, 19, 'the others 409');
  for (const r of conflicts) {
    t.equal(r.json?.issue?.[0]?.details?.coding?.[0]?.code, 'CONFLICTING_VALUES');
    t.same(r.json?.issue?.[0]?.expression, ['http.If-Match'], "the gateway's version check answered, not the provider");
  }
  assertOutcome(t, conflicts[0]!, 409, 'CONFLICTING_VALUES', { issue: 'conflict' });
  t.equal(up.puts, 1, 'the provider received exactly one PUT for the appointment');
  t.equal(up.gets, 20, 'every request read the current appointment');
  t.equal(h.provider.store.history(id).length, 2, 'one new version');
});

t.test('audit: a diff rejection and a success', async (t) => {
  const rejectedId = freshAppointment();
  const bad = await cancelRequest(h, 'nhs-booking', rejectedId, (r) => (r.description = 'Changed'));
  const rb = await h.request(bad);
  t.equal(rb.status, 422);
  const rec = await auditFor(h, bad.headers!['Ssp-TraceID'] as string);
  t.ok(rec, 'an audit record for the rejection');
  t.equal(rec?.appointmentId, rejectedId);
  t.equal(rec?.outcome, 'rejected');
  t.equal(rec?.status, 422);
  t.equal(rec?.code, 'BUSINESS_RULE');
  t.same(rec?.differingPaths, ['Appointment.description']);
  t.equal(rec?.versionBefore, '1');
  t.equal(rec?.versionAfter, undefined);
  t.equal(rec?.interaction, 'urn:nhs:names:services:careconnect:fhir:rest:update:appointment');
  t.notMatch(JSON.stringify(rec), /Changed|Chalmers|1234554321|Bearer|eyJ/, 'no patient data, no token');

  const okId = freshAppointment();
  const good = await cancelRequest(h, 'nhs-booking', okId);
  const rg = await h.request(good);
  t.equal(rg.status, 200);
  const rec2 = await auditFor(h, good.headers!['Ssp-TraceID'] as string);
  t.ok(rec2, 'an audit record for the success');
  t.equal(rec2?.appointmentId, okId);
  t.equal(rec2?.outcome, 'forwarded');
  t.equal(rec2?.status, 200);
  t.equal(rec2?.code, undefined);
  t.equal(rec2?.versionBefore, '1');
  t.equal(rec2?.versionAfter, '2');
  t.equal(rec2?.requester?.odsCode, 'A1001');
  t.equal(rec2?.differingPaths, undefined);
  t.notMatch(JSON.stringify(rec2), /Chalmers|1234554321|Bearer|eyJ/, 'no patient data, no token');

  // An early rejection is audited too (ruling 19).
  const early = withHeader(await cancelRequest(h, 'nhs-booking', okId), 'If-Match', undefined);
  await h.request(early);
  const rec3 = await auditFor(h, early.headers!['Ssp-TraceID'] as string);
  t.equal(rec3?.status, 412);
  t.equal(rec3?.code, 'IF_MATCH_MISSING');
  t.equal(rec3?.outcome, 'rejected');
});


t.test('a version read takes only _format: another parameter is 415, not silently dropped (README review of stop 33)', async (t) => {
  const before = h.provider.requests.length;
  for (const query of ['_summary=true', '_format=turtle', '_elements=status']) {
    const r = await h.request({ method: 'GET', path: `/STU3/1/Appointment/appt-1/_history/1?${query}`, headers: identityHeaders('nhs-booking', 'read') });
    assertOutcome(t, r, 415, 'UNSUPPORTED_MEDIA_TYPE');
  }
  // Two formats: refused too (its answer's own format is negotiation's business).
  t.equal((await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1/_history/1?_format=json&_format=xml', headers: identityHeaders('nhs-booking', 'read') })).status, 415);
  t.equal(h.provider.requests.length, before, 'nothing reached the provider');
  const ok = await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1/_history/1?_format=xml', headers: identityHeaders('nhs-booking', 'read') });
  t.equal(ok.status, 200, '_format is accepted');
  t.match(String(ok.headers['content-type']), /fhir\+xml/);
});
