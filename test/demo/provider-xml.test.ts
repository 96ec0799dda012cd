import http from 'node:http';
import t from 'tap';
import { startDemoProvider, type DemoProvider } from '../../demo/provider/server.js';
import { answerFormat } from '../../demo/provider/format.js';
import { decodeFhirXml, encodeFhirXml } from '../../src/fhir/xml/index.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(base: string, method: string, path: string, opts: { body?: Buffer; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, agent: false, headers: { ...(opts.body ? { 'Content-Length': String(opts.body.length) } : {}), ...opts.headers } });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.end(opts.body);
  });
}

const XML = 'application/fhir+xml;charset=utf-8';
const JSON_CT = 'application/fhir+json;charset=utf-8';
const LIMITS = { maxDepth: 64, maxNodes: 100_000 };
const xml = (a: Answer): Record<string, any> => {
  const d = decodeFhirXml(a.body, LIMITS);
  if (!d.ok) throw new Error(d.diagnostics);
  return d.resource as Record<string, any>;
};
const json = (a: Answer): Record<string, any> => JSON.parse(a.body.toString('utf8')) as Record<string, any>;

let provider: DemoProvider;
t.before(async () => {
  provider = await startDemoProvider({ seed: 'both' });
});
t.teardown(() => provider.close());

t.test('GET in XML by Accept or _format: the same resource and headers as JSON', async (t) => {
  for (const id of ['appt-1', '1001']) {
    const asJson = await request(provider.url, 'GET', `/Appointment/${id}`);
    for (const [how, path, headers] of [
      ['Accept', `/Appointment/${id}`, { Accept: 'application/fhir+xml' }],
      ['legacy Accept', `/Appointment/${id}`, { Accept: 'application/xml+fhir' }],
      ['_format=xml', `/Appointment/${id}?_format=xml`, {}],
      ['_format media type', `/Appointment/${id}?_format=${encodeURIComponent('application/fhir+xml')}`, { Accept: 'application/fhir+json' }],
    ] as const) {
      const a = await request(provider.url, 'GET', path, { headers });
      t.equal(a.status, 200, `${id} ${how}`);
      t.equal(a.headers['content-type'], XML, `${id} ${how}: XML`);
      t.equal(a.headers['etag'], asJson.headers['etag']);
      t.same(xml(a), json(asJson), `${id} ${how}: the same resource`);
    }
  }
  const jsonWins = await request(provider.url, 'GET', '/Appointment/appt-1?_format=json', { headers: { Accept: 'application/fhir+xml' } });
  t.equal(jsonWins.headers['content-type'], JSON_CT, '_format comes before Accept');
  const plain = await request(provider.url, 'GET', '/Appointment/appt-1', { headers: { Accept: '*/*' } });
  t.equal(plain.headers['content-type'], JSON_CT, 'JSON by default');
});

t.test('PUT with an XML body is decoded and stored; the answer is XML; bad XML is 400 in XML', async (t) => {
  const before = json(await request(provider.url, 'GET', '/Appointment/appt-3'));
  const sent = Buffer.from(encodeFhirXml({ ...before, status: 'cancelled' }), 'utf8');
  const put = await request(provider.url, 'PUT', '/Appointment/appt-3', { body: sent, headers: { 'Content-Type': 'application/fhir+xml', 'If-Match': 'W/"1"' } });
  t.equal(put.status, 200);
  t.equal(put.headers['content-type'], XML, 'answered in the request format');
  t.equal(put.headers['etag'], 'W/"2"');
  t.equal(xml(put)['status'], 'cancelled');
  t.equal(provider.store.read('appt-3')!.resource['status'], 'cancelled', 'stored');
  t.same(provider.requests.at(-1)!.body, sent, 'the exact bytes were recorded');
  const nowJson = json(await request(provider.url, 'GET', '/Appointment/appt-3'));
  t.same({ ...nowJson, meta: undefined }, { ...before, status: 'cancelled', meta: undefined }, 'nothing else changed');

  const legacy = Buffer.from(encodeFhirXml({ ...nowJson, status: 'cancelled' }), 'utf8');
  const put2 = await request(provider.url, 'PUT', '/Appointment/appt-3', { body: legacy, headers: { 'Content-Type': 'application/xml+fhir; charset=utf-8', Accept: 'application/fhir+json' } });
  t.equal(put2.status, 200, 'legacy media type');
  t.equal(put2.headers['content-type'], JSON_CT, 'Accept wins over the request format');

  for (const [name, body] of [
    ['XXE', `<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><Appointment xmlns="http://hl7.org/fhir"><id value="appt-3"/><description value="&x;"/></Appointment>`],
    ['not XML', '{"resourceType":"Appointment"}'],
    ['not an Appointment', '<Patient xmlns="http://hl7.org/fhir"><id value="appt-3"/></Patient>'],
  ] as const) {
    const bad = await request(provider.url, 'PUT', '/Appointment/appt-3', { body: Buffer.from(body), headers: { 'Content-Type': 'application/fhir+xml' } });
    t.equal(bad.status, 400, name);
    t.equal(bad.headers['content-type'], XML, `${name}: OperationOutcome in XML`);
    t.equal(xml(bad)['resourceType'], 'OperationOutcome');
  }
  t.equal(provider.store.currentVersion('appt-3'), '3', 'refused bodies store nothing');
});

t.test('search, metadata and 404 in XML', async (t) => {
  const search = await request(provider.url, 'GET', '/Appointment?_format=xml');
  t.equal(search.status, 200);
  const bundle = xml(search);
  t.equal(bundle['resourceType'], 'Bundle');
  t.equal(bundle['entry'].length, provider.store.ids().length);
  const meta = xml(await request(provider.url, 'GET', '/metadata', { headers: { Accept: 'application/fhir+xml' } }));
  t.same(meta['format'], ['application/fhir+json', 'application/fhir+xml']);
  const missing = await request(provider.url, 'GET', '/Appointment/nope', { headers: { Accept: 'application/fhir+xml' } });
  t.equal(missing.status, 404);
  t.equal(xml(missing)['resourceType'], 'OperationOutcome');
});

t.test('a stored resource FHIR XML cannot express is a 500 OperationOutcome in XML, JSON still served', async (t) => {
  provider.store.update('appt-4', { ...provider.store.read('appt-4')!.resource, text: { status: 'generated', div: 'not xhtml' } });
  const a = await request(provider.url, 'GET', '/Appointment/appt-4', { headers: { Accept: 'application/fhir+xml' } });
  t.equal(a.status, 500);
  t.equal(xml(a)['resourceType'], 'OperationOutcome');
  t.equal((await request(provider.url, 'GET', '/Appointment/appt-4')).status, 200);
});

t.test('answer format negotiation', async (t) => {
  const cases: [string, Record<string, string>, 'json' | 'xml'][] = [
    ['/x', {}, 'json'],
    ['/x?_format=xml', {}, 'xml'],
    ['/x?_format=application/fhir%2Bxml', {}, 'xml'],
    ['/x?_format=application/fhir+xml', {}, 'xml'],
    ['/x?_format=json', { accept: 'application/fhir+xml' }, 'json'],
    ['/x', { accept: 'application/fhir+xml;q=0.5, application/fhir+json' }, 'json'],
    ['/x', { accept: 'application/fhir+json;q=0.1, application/fhir+xml;q=0.9' }, 'xml'],
    ['/x', { accept: 'application/fhir+xml;q=0' }, 'json'],
    ['/x', { accept: 'text/html, application/xml' }, 'xml'],
    ['/x', { 'content-type': 'application/fhir+xml' }, 'xml'],
    ['/x', { 'content-type': 'application/fhir+xml', accept: 'application/json' }, 'json'],
    ['/x?_format=nonsense', { accept: 'application/fhir+xml' }, 'xml'],
  ];
  for (const [url, headers, want] of cases) t.equal(answerFormat(url, headers), want, `${url} ${JSON.stringify(headers)}`);
});
