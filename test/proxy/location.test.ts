import t from 'tap';
import { publicPassthroughLocation } from '../../src/cancel/answer.js';
import { identityHeaders, startHarness } from '../helpers/harness.js';

const PUBLIC = 'https://gateway.example.nhs.uk/STU3/1';

t.test('publicPassthroughLocation: the provider\'s own resource URLs lead to the gateway; others are left alone', async (t) => {
  const upstream = new URL('http://10.0.0.5:8080/fhir/');
  const cases: Array<[string, string]> = [
    ['/Appointment/a1/_history/1', `${PUBLIC}/Appointment/a1/_history/1`],
    ['Appointment/a1', `${PUBLIC}/Appointment/a1`],
    ['/fhir/Appointment/a1/_history/2', `${PUBLIC}/Appointment/a1/_history/2`],
    ['http://10.0.0.5:8080/fhir/Appointment/a1/_history/3', `${PUBLIC}/Appointment/a1/_history/3`],
    ['http://10.0.0.5:8080/fhir/Slot/s-9', `${PUBLIC}/Slot/s-9`],
    ['https://elsewhere.example/fhir/Appointment/a1', 'https://elsewhere.example/fhir/Appointment/a1'],
    ['//evil.example/Appointment/a1', '//evil.example/Appointment/a1'],
    ['/Appointment/a1?x=1', '/Appointment/a1?x=1'],
    ['/some/page', '/some/page'],
    ['http://10.0.0.5:8080/fhir/Appointment/a1?_format=xml', 'http://10.0.0.5:8080/fhir/Appointment/a1?_format=xml'],
    ['not a url at all', 'not a url at all'],
  ];
  for (const [given, expected] of cases) t.equal(publicPassthroughLocation(given, upstream, PUBLIC), expected, given);
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
