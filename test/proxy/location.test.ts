import t from 'tap';
import { publicLocation, publicPassthroughLocation } from '../../src/cancel/answer.js';
import { identityHeaders, startHarness } from '../helpers/harness.js';

const PUBLIC = 'https://gateway.example.nhs.uk/STU3/1';

t.test('publicPassthroughLocation: a Location leads to a route the gateway serves, or is dropped (ruling 22)', async (t) => {
  const serves = (path: string) => /^\/Appointment\/[^/]+(\/_history\/[^/]+)?$/.test(path);
  const cases: Array<[string, string | undefined]> = [
    ['/Appointment/a1/_history/1', `${PUBLIC}/Appointment/a1/_history/1`],
    ['Appointment/a1', `${PUBLIC}/Appointment/a1`],
    ['/fhir/Appointment/a1/_history/2', `${PUBLIC}/Appointment/a1/_history/2`],
    ['http://10.0.0.5:8080/fhir/Appointment/a1/_history/3', `${PUBLIC}/Appointment/a1/_history/3`],
    [`${PUBLIC}/Appointment/a1/_history/4`, `${PUBLIC}/Appointment/a1/_history/4`],
    ['http://10.0.0.5:8080/fhir/Slot/s-9', undefined],
    ['/Slot/s-9', undefined],
    ['https://provider.example.nhs.uk/STU3/1/Appointment/a1', `${PUBLIC}/Appointment/a1`],
    ['//evil.example/Appointment/a1', `${PUBLIC}/Appointment/a1`],
    ['/Appointment/../Slot/9', undefined],
    ['/Appointment/a1#x', undefined],
    ['/Appointment/a1?x=1', undefined],
    ['/some/page', undefined],
    ['http://10.0.0.5:8080/fhir/Appointment/a1?_format=xml', undefined],
    ['not a url at all', undefined],
  ];
  for (const [given, expected] of cases) t.equal(publicPassthroughLocation(given, PUBLIC, serves), expected, given);
});

t.test('publicPassthroughLocation on the provider\'s base: any route the gateway serves, its query kept (review of stop 35)', async (t) => {
  const serves = (path: string) => /^\/(Appointment(\/[^/]+(\/_history\/[^/]+)?)?|Slot|metadata)$/.test(path);
  const base = new URL('http://10.0.0.5:8080/fhir/');
  const cases: Array<[string, string | undefined]> = [
    ['/fhir/Slot?page=2', `${PUBLIC}/Slot?page=2`],
    ['Slot?start=ge2030-01-01&status=free', `${PUBLIC}/Slot?start=ge2030-01-01&status=free`],
    ['http://10.0.0.5:8080/fhir/Appointment?patient=9', `${PUBLIC}/Appointment?patient=9`],
    ['http://10.0.0.5:8080/fhir/metadata', `${PUBLIC}/metadata`],
    ['/fhir/Appointment/a1?_format=xml', `${PUBLIC}/Appointment/a1?_format=xml`],
    ['/fhir/Appointment/a1/_history/2', `${PUBLIC}/Appointment/a1/_history/2`],
    ['/fhir/Slot/9', undefined],
    ['/fhir/', undefined],
    ['/fhir/Slot?page=2#top', undefined],
    ['/fhir/Appointment/%2e%2e', undefined],
    ['/fhir/Appointment/a%20b', undefined],
    ['/Slot?page=2', undefined],
    ['http://10.0.0.6:8080/fhir/Slot?page=2', undefined],
    ['http://10.0.0.6:8080/fhir/Appointment/a1', `${PUBLIC}/Appointment/a1`],
  ];
  for (const [given, expected] of cases) t.equal(publicPassthroughLocation(given, PUBLIC, serves, base), expected, given);
});

t.test('publicLocation: a cancel\'s Location never carries a version id the router does not serve (`.`, `..`)', async (t) => {
  t.equal(publicLocation('Appointment/p1/_history/..', 'p1', PUBLIC), `${PUBLIC}/Appointment/p1`);
  t.equal(publicLocation('/fhir/Appointment/p1/_history/.', 'p1', PUBLIC), `${PUBLIC}/Appointment/p1`);
  t.equal(publicLocation('/fhir/Appointment/p1/_history/.2', 'p1', PUBLIC), `${PUBLIC}/Appointment/p1/_history/.2`, 'a dot inside an id is an id');
  t.equal(publicLocation('/fhir/Appointment/p1/_history/7', 'p1', PUBLIC), `${PUBLIC}/Appointment/p1/_history/7`);
  t.equal(publicLocation('/fhir/Appointment/other/_history/7', 'p1', PUBLIC), `${PUBLIC}/Appointment/p1`);
  t.equal(publicLocation('/fhir/Appointment/p1/_history/7', 'p1', PUBLIC, '7'), `${PUBLIC}/Appointment/p1/_history/7`, 'the version the answer is');
  t.equal(publicLocation('/fhir/Appointment/p1/_history/1', 'p1', PUBLIC, '2'), `${PUBLIC}/Appointment/p1`, 'an older version than the answer: the plain form');
});

t.test('ruling 22: a book passed through answers 201 with a Location on the gateway', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const stored = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${h.provider.store.ids()[0]!}`, headers: identityHeaders('nhs-booking', 'read') });
  t.equal(stored.status, 200);
  const fresh = { ...stored.json, id: undefined, meta: { profile: stored.json.meta?.profile } };
  const r = await h.request({
    method: 'POST', path: '/STU3/1/Appointment',
    headers: { ...identityHeaders('nhs-booking', 'book'), 'Content-Type': 'application/fhir+json' },
    body: JSON.stringify(fresh),
  });
  t.equal(r.status, 201, 'created');
  t.match(String(r.headers.location), new RegExp(`^${PUBLIC.replace(/[.]/g, '\\.')}/Appointment/[A-Za-z0-9.-]+/_history/1$`), 'absolute, on the public base URL');
  const path = new URL(String(r.headers.location)).pathname;
  const back = await h.request({ method: 'GET', path, headers: identityHeaders('nhs-booking', 'vread') });
  t.equal(back.status, 200, 'and the gateway serves it');
});

t.test('ruling 22: a passthrough Location that would not lead to a gateway route is not passed on', async (t) => {
  const http = await import('node:http');
  let location = '';
  const upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(201, { Location: location, 'Content-Location': location, 'Content-Length': '0' });
      res.end();
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { upstream.closeAllConnections(); upstream.close(() => r()); }));
  const base = `http://127.0.0.1:${(upstream.address() as import('node:net').AddressInfo).port}`;
  const h = await startHarness({ config: { upstream: { url: base } } });
  t.teardown(() => h.close());
  const book = (): Promise<Awaited<ReturnType<typeof h.request>>> => h.request({
    method: 'POST', path: '/STU3/1/Appointment',
    headers: { ...identityHeaders('nhs-booking', 'book'), 'Content-Type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Appointment', status: 'booked' }),
  });
  for (const [given, expected] of [
    [`${base}/Slot/9`, undefined],
    ['https://internal.example/fhir/Appointment/a1/_history/7', `${PUBLIC}/Appointment/a1/_history/7`],
    ['https://internal.example/fhir/Appointment?patient=1', undefined],
    [`${base}/Appointment/a1/_history/1`, `${PUBLIC}/Appointment/a1/_history/1`],
  ] as const) {
    location = given;
    const r = await book();
    t.equal(r.status, 201, given);
    t.equal(r.headers.location, expected, `Location for ${given}`);
    t.equal(r.headers['content-location'], expected, `Content-Location for ${given}`);
  }
});
