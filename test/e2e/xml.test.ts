/**
 * Issue 15 / ruling 21: FHIR XML end to end. The status table of a cancel (200, 400, 403, 404, 409,
 * 412, 415, 422, 500) with XML bodies, under both standards: the same checks in the same order,
 * gateway-made OperationOutcomes in XML (negotiated), the original XML bytes forwarded, and nothing
 * of a refused body reaching the provider. Also XXE and billion laughs.
 */
import t from 'tap';
import { xmlCodec } from '../../src/adapters/codec-xml.js';
import { STANDARDS } from '../../src/standards/index.js';
import type { Resource } from '../../demo/provider/store.js';
import { cancelRequest, identityHeaders, seen, startHarness, type Harness, type Reply, type RequestOptions, type StandardName } from '../helpers/harness.js';

const XML = 'application/fhir+xml';

/** The OperationOutcome of an XML answer, read back with the gateway's own codec. */
type Tap = Pick<typeof t, 'equal' | 'match' | 'ok'>;
function outcome(tt: Tap, r: Reply, status: number, spine: string): void {
  tt.equal(r.status, status, `status ${status}`);
  tt.match(String(r.headers['content-type']), /^application\/fhir\+xml; charset=utf-8$/, 'an XML answer');
  tt.equal(r.headers['cache-control'], 'no-store');
  const d = xmlCodec.decode(r.body, { maxDepth: 64, maxNodes: 10_000 });
  tt.ok(d.ok, 'well-formed FHIR XML');
  const oo = d.ok ? (d.resource as any) : undefined;
  tt.equal(oo?.resourceType, 'OperationOutcome');
  tt.equal(oo?.issue?.[0]?.details?.coding?.[0]?.code, spine, `Spine code ${spine}`);
}

async function xmlCancel(h: Harness, standard: StandardName, id: string, mutate?: (r: any) => void): Promise<RequestOptions> {
  const read = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders(standard, 'read') });
  const r = read.json;
  r.status = 'cancelled';
  if (standard === 'gp-connect') r.extension = [...(r.extension ?? []), { url: STANDARDS['gp-connect'].cancel.reasonExtensionUrl, valueString: 'Patient request' }];
  mutate?.(r);
  return {
    method: 'PUT', path: `/STU3/1/Appointment/${id}`, body: xmlCodec.encode(r),
    headers: { ...identityHeaders(standard, 'cancel'), 'If-Match': String(read.headers.etag), 'Content-Type': XML, Accept: XML },
  };
}

for (const standard of ['nhs-booking', 'gp-connect'] as const) {
  t.test(`${standard}: the cancel status table with FHIR XML bodies`, async (t) => {
    const h = await startHarness({ standard });
    t.teardown(() => h.close());
    let n = 0;
    const fresh = (change?: (r: any) => void) => {
      const r = structuredClone(h.provider.store.read(h.provider.store.ids()[0]!)!.resource) as any;
      const id = `xml-${++n}`;
      r.id = id;
      r.status = 'booked';
      r.start = new Date(Date.now() + 86400_000).toISOString().replace(/\.\d+Z$/, 'Z');
      r.end = new Date(Date.now() + 90000_000).toISOString().replace(/\.\d+Z$/, 'Z');
      change?.(r);
      h.provider.store.create(r as Resource, id);
      return id;
    };
    const puts = () => seen(h.provider, 'PUT', '/Appointment/xml-');

    // 200: the XML bytes forwarded unchanged, the answer repaired from an XML body.
    const okId = fresh();
    const ok = await xmlCancel(h, standard, okId);
    const before = puts();
    const r200 = await h.request(ok);
    t.equal(r200.status, 200, r200.body.toString().slice(0, 300));
    t.equal(puts(), before + 1);
    t.ok(h.provider.requests.filter((x) => x.method === 'PUT').at(-1)!.body.equals(ok.body as Buffer), 'the original XML bytes were forwarded');
    t.match(String(r200.headers['content-type']), /xml/, 'the provider answered in XML');
    t.match(String(r200.headers.etag), /^W\/"\d+"$/, 'ETag repaired from the XML body');
    t.equal(h.provider.store.read(okId)!.resource.status, 'cancelled');

    const cases: Array<[string, () => Promise<RequestOptions>, number, string]> = [
      ['400 not FHIR XML (no namespace)', async () => ({ ...(await xmlCancel(h, standard, fresh())), body: '<Appointment><id value="x"/></Appointment>' }), 400, 'BAD_REQUEST'],
      ['400 XXE', async () => {
        const id = fresh();
        const req = await xmlCancel(h, standard, id);
        return { ...req, body: `<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><Appointment xmlns="http://hl7.org/fhir"><id value="${id}"/><comment value="&x;"/></Appointment>` };
      }, 400, 'BAD_REQUEST'],
      ['400 billion laughs', async () => {
        const id = fresh();
        const req = await xmlCancel(h, standard, id);
        const ents = Array.from({ length: 9 }, (_, i) => `<!ENTITY l${i + 1} "${`&l${i};`.repeat(10)}">`).join('');
        return { ...req, body: `<?xml version="1.0"?><!DOCTYPE a [<!ENTITY l0 "lol">${ents}]><Appointment xmlns="http://hl7.org/fhir"><id value="${id}"/><comment value="&l9;"/></Appointment>` };
      }, 400, 'BAD_REQUEST'],
      ['403/400 bad token', async () => {
        const req = await xmlCancel(h, standard, fresh());
        return { ...req, headers: { ...req.headers, Authorization: 'Bearer nope' } };
      }, standard === 'gp-connect' ? 400 : 403, standard === 'gp-connect' ? 'BAD_REQUEST' : 'ACCESS DENIED'],
      ['404 no such appointment', async () => {
        const id = fresh();
        const req = await xmlCancel(h, standard, id);
        return { ...req, path: '/STU3/1/Appointment/no-such', body: (req.body as Buffer).toString().replace(`<id value="${id}"/>`, '<id value="no-such"/>') };
      }, 404, 'NO_RECORD_FOUND'],
      ['409 stale If-Match', async () => {
        const req = await xmlCancel(h, standard, fresh());
        return { ...req, headers: { ...req.headers, 'If-Match': 'W/"99"' } };
      }, 409, standard === 'gp-connect' ? 'FHIR_CONSTRAINT_VIOLATION' : 'CONFLICTING_VALUES'],
      ['415 Content-Encoding', async () => {
        const req = await xmlCancel(h, standard, fresh());
        return { ...req, headers: { ...req.headers, 'Content-Encoding': 'gzip' } };
      }, 415, standard === 'gp-connect' ? 'BAD_REQUEST' : 'UNSUPPORTED_MEDIA_TYPE'],
      ['422 a difference beyond the cancellation', async () => xmlCancel(h, standard, fresh(), (r) => (r.minutesDuration = 99)), 422, 'INVALID_RESOURCE'],
      ['422 profile', async () => xmlCancel(h, standard, fresh(), (r) => (r.participant[0].status = 'not-a-code')), 422, 'INVALID_RESOURCE'],
    ];
    if (standard === 'nhs-booking') {
      cases.push(['412 no If-Match', async () => {
        const req = await xmlCancel(h, standard, fresh());
        const headers = { ...(req.headers as Record<string, string>) };
        delete headers['If-Match'];
        return { ...req, headers };
      }, 412, 'MISSING_OR_INVALID_HEADER']);
    }
    for (const [name, build, status, spine] of cases) {
      const req = await build();
      const p0 = puts();
      const r = await h.request(req);
      t.test(name, async (t) => {
        outcome(t, r, status, spine);
        t.equal(puts(), p0, 'nothing forwarded');
      });
    }

    // Rulings 20/21: a value that is not of its type is a profile failure with its path (422), as
    // the same value is in JSON, not an unreadable body (400); the JSON twin gets the same answer.
    const badValues: Array<[string, (r: any) => void, string, string]> = [
      ['an integer written as a decimal', (r) => (r.minutesDuration = 15), '<minutesDuration value="15"/>', '<minutesDuration value="15.0"/>'],
      ['an integer that is not a number', (r) => (r.priority = 5), '<priority value="5"/>', '<priority value="five"/>'],
    ];
    for (const [name, seed, from, to] of badValues) {
      const id = fresh(seed);
      const req = await xmlCancel(h, standard, id);
      const xml = (req.body as Buffer).toString();
      t.ok(xml.includes(from), `${name}: the XML carries ${from}`);
      const p0 = puts();
      const r = await h.request({ ...req, body: xml.replace(from, to) });
      t.test(`422 ${name} (XML)`, async (t) => {
        outcome(t, r, 422, 'INVALID_RESOURCE');
        t.match(r.body.toString(), new RegExp(`Appointment\\.${from.slice(1, from.indexOf(' '))}`), 'the issue names the element');
        t.equal(puts(), p0, 'nothing forwarded');
      });
    }
    const jsonTwin = fresh((r) => (r.minutesDuration = 15));
    const jreq = await xmlCancel(h, standard, jsonTwin);
    const jbody = JSON.stringify({ ...(xmlCodec.decode(jreq.body as Buffer, { maxDepth: 64, maxNodes: 10_000 }) as any).resource }).replace('"minutesDuration":15', '"minutesDuration":15.0');
    t.match(jbody, /"minutesDuration":15\.0/);
    const j422 = await h.request({ ...jreq, body: jbody, headers: { ...(jreq.headers as Record<string, string>), 'Content-Type': 'application/fhir+json', Accept: 'application/fhir+json' } });
    t.equal(j422.status, 422, 'JSON: an integer written as 15.0 is refused by the profile too');
    t.match(JSON.stringify(j422.json), /Appointment\.minutesDuration/);

    // 500: the provider down after the checks; the OperationOutcome in XML.
    const downId = fresh();
    const down = await xmlCancel(h, standard, downId);
    const stop = h.provider.fault('status-503-html', { method: 'GET' });
    const r500 = await h.request(down);
    stop();
    outcome(t, r500, 500, 'INTERNAL_SERVER_ERROR');

    // Negotiation: _format beats Accept beats Content-Type.
    const asJson = await h.request({ ...(await xmlCancel(h, standard, fresh())), headers: { ...(down.headers as Record<string, string>), 'If-Match': 'W/"99"', Accept: 'application/fhir+json' } });
    t.match(String(asJson.headers['content-type']), /json/, 'Accept: JSON wins over an XML Content-Type');
    const formatXml = await h.request({ method: 'GET', path: '/STU3/1/Appointment/none?_format=xml', headers: { ...identityHeaders(standard, 'read'), 'Ssp-To': '1' } });
    t.match(String(formatXml.headers['content-type']), /xml/, '_format=xml on a refused read');
  });
}

t.test('ruling 21: a narrative stored in another serialisation is compared as XML reads it (unchanged XML cancel 200; a changed div 422)', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  let n = 0;
  const fresh = () => {
    const r = structuredClone(h.provider.store.read(h.provider.store.ids()[0]!)!.resource) as any;
    r.id = `div-${++n}`;
    r.status = 'booked';
    r.text = { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">a<br />b &quot;x&quot;&#160;<p  class="c">y</p></div>' };
    h.provider.store.create(r as Resource, r.id);
    return r.id as string;
  };
  const id = fresh();
  const same = await xmlCancel(h, 'nhs-booking', id);
  t.notMatch((same.body as Buffer).toString(), /<br \/>/, 'the XML body carries the div in XML\'s own form');
  const r = await h.request(same);
  t.equal(r.status, 200, r.body.toString().slice(0, 400));
  t.equal(seen(h.provider, 'PUT', `/Appointment/${id}`), 1, 'forwarded');
  const changedId = fresh();
  const changed = await xmlCancel(h, 'nhs-booking', changedId, (a) => (a.text.div = a.text.div.replace('a<br />b', 'a<br />c')));
  const r422 = await h.request(changed);
  outcome(t, r422, 422, 'INVALID_RESOURCE');
  t.match(r422.body.toString(), /Appointment\.text\.div/);
  t.equal(seen(h.provider, 'PUT', `/Appointment/${changedId}`), 0, 'nothing forwarded');
});

t.test('ruling 21: _format on a cancel and on a version read reaches the provider as Accept (the query is not forwarded)', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  for (const format of ['xml', 'application/fhir+xml']) {
    t.test(`_format=${format}`, async (t) => {
      const target = structuredClone(h.provider.store.read(id)!.resource) as any;
      const copyId = `fmt-${format.length}`;
      target.id = copyId;
      target.status = 'booked';
      h.provider.store.create(target as Resource, copyId);
      const req = await cancelRequest(h, 'nhs-booking', copyId);
      const r = await h.request({ ...req, path: `${req.path}?_format=${format}` });
      t.equal(r.status, 200, r.body.toString().slice(0, 300));
      t.match(String(r.headers['content-type']), /^application\/fhir\+xml/, 'the answer in XML, as asked');
      const put = h.provider.requests.filter((x) => x.method === 'PUT').at(-1)!;
      t.equal(put.headers.accept, 'application/fhir+xml');
      t.notMatch(put.url, /\?/, 'no query forwarded');
      const vread = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${copyId}/_history/1?_format=${format}`, headers: identityHeaders('nhs-booking', 'read') });
      t.match(String(vread.headers['content-type']), /xml/, 'the version read in XML');
      t.equal(h.provider.requests.at(-1)!.headers.accept, 'application/fhir+xml');
    });
  }
});

t.test('ruling 13 in XML: a read answered in XML without ETag gets it from meta.versionId', async (t) => {
  const h = await startHarness({ provider: { omitEtag: true } });
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  const r = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: { ...identityHeaders('nhs-booking', 'read'), Accept: XML } });
  t.equal(r.status, 200);
  t.match(String(r.headers['content-type']), /xml/);
  t.match(String(r.headers.etag), /^W\/"\d+"$/, 'ETag from the XML body');
  const json = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders('nhs-booking', 'read') });
  t.equal(json.headers.etag, r.headers.etag, 'the same as its JSON twin');
});

t.test('ruling 21: the TKW provider simulator\'s appointment (meta written out of FHIR order) read, cancelled and forwarded as XML', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[1]!;
  const req = await xmlCancel(h, 'nhs-booking', id);
  // meta as versionId, profile, lastUpdated (TKW's RetrieveAppointment answers): not STU3's order.
  const moved = String(req.body).replace(/<meta>(.*?)<\/meta>/, (_m, inner: string) => {
    const last = /<lastUpdated [^>]*\/>/.exec(inner)?.[0] ?? '';
    return `<meta>${inner.replace(last, '')}${last}</meta>`;
  });
  const r = await h.request({ ...req, body: moved });
  t.equal(r.status, 200, r.body.toString().slice(0, 300));
  t.equal(h.provider.requests.filter((x) => x.method === 'PUT').at(-1)?.body.toString(), moved, 'the bytes as sent');
});
