/**
 * limits.maxBodyBytes holds for every request body, a passthrough book's too (ruling 6, README
 * "Larger request bodies get 413"): over it → 413 and nothing reaches the provider; under it the
 * body is forwarded as sent, with its length.
 */
import t from 'tap';
import { assertOutcome } from '../helpers/assert.js';
import { identityHeaders, startHarness } from '../helpers/harness.js';

const LIMIT = 4096;
const h = await startHarness({ config: { limits: { maxBodyBytes: LIMIT } } });
t.teardown(() => h.close());
const posts = () => h.provider.requests.filter((r) => r.method === 'POST').length;
const book = (body: string, extra: Record<string, string> = {}) =>
  h.request({ method: 'POST', path: '/STU3/1/Appointment', headers: { ...identityHeaders('nhs-booking', 'book'), 'Content-Type': 'application/fhir+json', ...extra }, body });

t.test('a book over the limit: 413, the provider sees nothing', async (t) => {
  const before = posts();
  const body = JSON.stringify({ resourceType: 'Appointment', status: 'booked', description: 'x'.repeat(LIMIT) });
  assertOutcome(t, await book(body), 413, 'BAD_REQUEST');
  t.equal(posts(), before, 'nothing forwarded');
});

t.test('a book within the limit reaches the provider byte for byte, with its length', async (t) => {
  const stored = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${h.provider.store.ids()[0]!}`, headers: identityHeaders('nhs-booking', 'read') });
  const body = JSON.stringify({ ...stored.json, id: undefined, meta: undefined });
  t.ok(Buffer.byteLength(body) < LIMIT, 'the body fits');
  const before = h.provider.requests.length;
  const r = await book(body);
  t.equal(r.status, 201);
  const seen = h.provider.requests.slice(before).find((x) => x.method === 'POST');
  t.equal(seen?.body.toString(), body, 'the bytes as sent');
  t.equal(seen?.headers['content-length'], String(Buffer.byteLength(body)), 'with their length');
  t.notOk(seen?.headers['transfer-encoding'], 'not chunked');
});

t.test('a transfer coding besides chunked (gzip, chunked) is refused: 400, nothing forwarded', async (t) => {
  const before = posts();
  const r = await book(JSON.stringify({ resourceType: 'Appointment', status: 'booked' }), { 'Transfer-Encoding': 'gzip, chunked' });
  assertOutcome(t, r, 400, 'BAD_REQUEST');
  t.equal(posts(), before, 'nothing forwarded');
});

t.test('ruling 25: a book body that is not FHIR (a form carrying _method=DELETE) is 415, nothing forwarded', async (t) => {
  const before = posts();
  for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json']) {
    assertOutcome(t, await book('_method=DELETE', { 'Content-Type': type }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  }
  t.equal(posts(), before, 'nothing forwarded');
});

t.test('ruling 25: _method[] on a read is the override too (400)', async (t) => {
  const before = h.provider.requests.length;
  const r = await h.request({ method: 'GET', path: '/STU3/1/Appointment?_method[]=DELETE', headers: identityHeaders('nhs-booking', 'search') });
  assertOutcome(t, r, 400, 'BAD_REQUEST');
  t.equal(h.provider.requests.length, before);
});
