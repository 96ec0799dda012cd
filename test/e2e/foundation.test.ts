import t from 'tap';
import https from 'node:https';
import { createCa, issueCertificate } from '../../demo/certs.js';
import { assertOutcome } from '../helpers/assert.js';
import { cancelRequest, identityHeaders, pki, seen, send, startHarness } from '../helpers/harness.js';

const h = await startHarness();
t.teardown(() => h.close());
const id = h.provider.store.ids()[0]!;

/** Resolves 'no-response' when the TLS handshake is refused and no HTTP answer ever comes. */
function tryConnect(cert: { cert: string; key: string } | null): Promise<string> {
  return new Promise((resolve) => {
    const req = https.request({
      host: '127.0.0.1', port: h.gateway.port, path: `/STU3/1/Appointment/${id}`, servername: 'localhost',
      ca: pki().ca.cert, ...(cert ?? {}), agent: false, headers: identityHeaders('nhs-booking', 'read'),
    }, (res) => resolve(`http ${res.statusCode}`));
    req.on('error', () => resolve('no-response'));
    req.setTimeout(5000, () => req.destroy());
    req.end();
  });
}

t.test('a read passes through: 200, the stored appointment, ETag', async (t) => {
  const before = h.provider.requests.length;
  const r = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders('nhs-booking', 'read') });
  t.equal(r.status, 200);
  t.equal(r.json.resourceType, 'Appointment');
  t.equal(r.json.id, id);
  t.match(String(r.headers.etag), /^W\/"\d+"$/);
  t.equal(h.provider.requests.length, before + 1, 'the provider saw the read');
  const seenReq = h.provider.requests.at(-1)!;
  t.equal(seenReq.url, `/Appointment/${id}`, 'the base path is replaced by the provider base');
  t.ok(seenReq.headers['x-forwarded-for'], 'X-Forwarded-For added');
  t.equal(seenReq.headers['x-forwarded-proto'], 'https');
  // NHS Booking says nothing of content codings: an Accept-Encoding changes nothing (GP Connect's §a gzip is its own).
  const gz = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: { ...identityHeaders('nhs-booking', 'read'), 'Accept-Encoding': 'gzip' } });
  t.equal(gz.headers['content-encoding'], undefined, 'nhs-booking: not compressed');
  t.equal(gz.json.id, id);
});

t.test('a passthrough query reaches the provider byte for byte (ruling 13: untouched; review of stop 33)', async (t) => {
  const query = `patient=1&q='x'"y"<z>&w=a%26b&v=%zz`;
  const r = await h.request({ method: 'GET', path: `/STU3/1/Appointment?${query}`, headers: identityHeaders('nhs-booking', 'search') });
  t.ok(r.status < 500, `answered (${r.status})`);
  t.equal(h.provider.requests.at(-1)!.url, `/Appointment?${query}`, 'no character re-encoded');
});

t.test('no client certificate: no HTTP response at all', async (t) => {
  t.equal(await tryConnect(null), 'no-response');
});

t.test('a certificate from an unknown CA: no HTTP response', async (t) => {
  const other = createCa({ commonName: 'Rogue CA' });
  t.equal(await tryConnect(issueCertificate(other, { commonName: 'rogue', kind: 'client' })), 'no-response');
  t.equal(await tryConnect(pki().client), 'http 200', 'the trusted certificate still works');
});

t.test('unknown path -> 404, wrong method -> 405, outside the base path -> 404', async (t) => {
  const before = h.provider.requests.length;
  assertOutcome(t, await h.request({ method: 'GET', path: '/STU3/1/Patient', headers: identityHeaders('nhs-booking', 'read') }), 404, 'BAD_REQUEST', { issue: 'not-found' });
  const r = await h.request({ method: 'DELETE', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders('nhs-booking', 'read') });
  assertOutcome(t, r, 405, 'BAD_REQUEST', { issue: 'not-supported' });
  t.match(String(r.headers.allow), /GET/);
  assertOutcome(t, await h.request({ method: 'GET', path: `/other/Appointment/${id}` }), 404, 'BAD_REQUEST');
  assertOutcome(t, await h.request({ method: 'GET', path: `/STU3/1/Appointment/${'x'.repeat(65)}` }), 404, 'BAD_REQUEST');
  t.equal(h.provider.requests.length, before, 'the provider saw nothing');
});

t.test('the forwarded body is byte-identical; hop-by-hop and unlisted headers are dropped', async (t) => {
  const req = await cancelRequest(h, 'nhs-booking', id);
  // Odd but valid formatting that a re-serializing proxy would change.
  const body = Buffer.from(`{ "resourceType" :"Appointment",\n\t${String(req.body).slice(1).replace('"status":"cancelled"', '"status" : "cancelled"')}`.replace('\t"resourceType":"Appointment",', '\t'));
  const bytes = Buffer.from(JSON.stringify(JSON.parse(body.toString())) === JSON.stringify(JSON.parse(String(req.body))) ? body : Buffer.from(String(req.body)));
  const r = await h.request({
    ...req,
    body: bytes,
    headers: {
      ...req.headers, Connection: 'keep-alive, X-Hop, If-Match, Authorization', 'X-Hop': 'secret', 'X-Custom': 'kept', 'Cache-Control': 'no-cache',
      'X-Original-URL': '/Appointment/another', 'X-Rewrite-URL': '/Appointment/another', 'X-Forwarded-Prefix': '/elsewhere', 'Accept-Encoding': 'gzip', TE: 'trailers',
      X_Original_URL: '/Appointment/another', Content_Range: 'bytes 0-1/2', X_Forwarded_Server: 'evil', Proxy: 'http://evil.example:8080',
      'X-Real-IP': '10.9.9.9', 'True-Client-IP': '10.9.9.9', 'X-SSL-Client-Cert': 'forged', 'X-ARR-ClientCert': 'forged', SSL_CLIENT_S_DN: 'CN=forged', 'X-Forwarded': 'for=10.9.9.9',
      'Client-Cert': ':forged:', 'X-Remote-User': 'admin', 'NHSD-End-User-Organisation-ODS': 'X99', 'X-Original-URI': '/Appointment/another', 'X-Envoy-Original-Path': '/x',
      Cookie: 'session=someone-else', Destination: '/Appointment/another', 'X-Custom-Client': 'c1',
    },
  });
  t.equal(r.status, 200, r.body.toString().slice(0, 300));
  const put = h.provider.requests.filter((x) => x.method === 'PUT').at(-1)!;
  t.ok(put.body.equals(bytes), 'the provider received exactly the bytes sent');
  t.notOk(put.headers['x-hop'], 'a header named in Connection is not forwarded');
  // Ruling 11: headers unchanged except hop-by-hop ones and X-Forwarded-* (the gateway's own).
  t.equal(put.headers['x-custom'], 'kept', 'an end-to-end header reaches the provider unchanged');
  t.equal(put.headers['cache-control'], 'no-cache', 'Cache-Control too');
  t.equal(put.headers['x-custom-client'], 'c1', 'and a custom header whatever words its name holds');
  t.notOk(put.headers['x-original-url'] ?? put.headers['x-rewrite-url'], 'path overrides never reach the provider');
  t.notOk(put.headers['x-forwarded-prefix'], 'a client X-Forwarded-* is not passed on');
  t.notOk(put.headers.te, 'TE is hop-by-hop');
  t.notOk(put.headers['accept-encoding'], 'Accept-Encoding: the gateway reads every answer it judges');
  for (const name of ['x_original_url', 'content_range', 'x_forwarded_server', 'proxy', 'x-real-ip', 'true-client-ip', 'x-ssl-client-cert', 'x-arr-clientcert', 'ssl_client_s_dn', 'x-forwarded',
    'client-cert', 'x-remote-user', 'nhsd-end-user-organisation-ods', 'x-original-uri', 'x-envoy-original-path', 'cookie', 'destination']) {
    t.notOk(name in put.headers, `${name}: a spelling with _, a client address or certificate, or Proxy (httpoxy) never reaches the provider`);
  }
  t.equal(put.headers['if-match'], req.headers!['If-Match'], 'If-Match forwarded unchanged, even when named in Connection');
  t.equal(put.headers.authorization, req.headers!.Authorization, 'Authorization too');
  t.notOk(put.headers['keep-alive'], 'Keep-Alive is not forwarded');
});

t.test('provider down -> 500 OperationOutcome, nothing hangs', async (t) => {
  const h2 = await startHarness();
  const rid = h2.provider.store.ids()[0]!;
  await h2.provider.close();
  const r = await h2.request({ method: 'GET', path: `/STU3/1/Appointment/${rid}`, headers: { ...identityHeaders('nhs-booking', 'read'), 'X-Request-ID': 'req-123' } });
  assertOutcome(t, r, 500, 'INTERNAL_SERVER_ERROR');
  t.equal(r.headers['x-correlation-id'], 'req-123', 'X-Correlation-ID echoes X-Request-ID');
  await h2.gateway.close();
});

t.test('ruling 14: X-Correlation-ID equals X-Request-ID for any visible-ASCII id; an oversized one is not reflected', async (t) => {
  const path = `/STU3/1/Appointment/${h.provider.store.ids()[0]!}`;
  for (const id of ['abc/def+ghi=', 'urn:uuid:2b6a1c3e-0000-4000-8000-000000000000', 'a b', 'x'.repeat(256)]) {
    const r = await h.request({ method: 'PUT', path, headers: { 'X-Request-ID': id } });
    t.equal(r.status, 400, 'refused (no Spine headers)');
    t.equal(r.headers['x-correlation-id'], id, `echoed: ${id.slice(0, 40)}`);
  }
  const long = await h.request({ method: 'PUT', path, headers: { 'X-Request-ID': 'x'.repeat(257) } });
  t.equal(long.headers['x-correlation-id'], undefined, 'over 256 characters: not reflected');
  // On every answer, not only errors: a read the provider answered with its ETag is streamed through.
  const read = await h.request({ method: 'GET', path, headers: { ...identityHeaders('nhs-booking', 'read'), 'X-Request-ID': 'read-7' } });
  t.equal(read.status, 200);
  t.equal(read.headers['x-correlation-id'], 'read-7', 'a streamed passthrough answer echoes it too');
});

t.test("ruling 14: the provider's own X-Correlation-ID never replaces the echo of the client's X-Request-ID", async (t) => {
  const hx = await startHarness({ provider: { extraHeaders: { 'X-Correlation-ID': 'PROVIDER-MARKER-9434765919' } } });
  t.teardown(() => hx.close());
  const id = hx.provider.store.ids()[0]!;
  const read = await hx.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: { ...identityHeaders('nhs-booking', 'read'), 'X-Request-ID': 'rid-1' } });
  t.equal(read.headers['x-correlation-id'], 'rid-1', 'a passthrough read');
  const bare = await hx.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders('nhs-booking', 'read') });
  t.equal(bare.headers['x-correlation-id'], undefined, "no X-Request-ID: none, not the provider's");
  const req = await cancelRequest(hx, 'nhs-booking', id);
  const r = await hx.request({ ...req, headers: { ...req.headers, 'X-Request-ID': 'rid-2' } });
  t.equal(r.status, 200);
  t.equal(r.headers['x-correlation-id'], 'rid-2', "a cancel's 200");
});

t.test('the upstream never sees a PUT rejected before forwarding', async (t) => {
  const req = await cancelRequest(h, 'nhs-booking', h.provider.store.ids()[1]!);
  const before = seen(h.provider, 'PUT', '');
  const r = await h.request({ ...req, headers: { ...req.headers, 'Ssp-To': '1' } });
  t.equal(r.status, 400);
  t.equal(seen(h.provider, 'PUT', ''), before);
});

void send;

t.test('a repeated single-valued header is refused, not guessed (Node keeps only the first Authorization)', async (t) => {
  const req = await cancelRequest(h, 'nhs-booking', h.provider.store.ids()[2]!);
  const before = h.provider.requests.length;
  const auth = req.headers!.Authorization as string;
  const cases: Array<[string, string[], number, string]> = [
    ['Authorization', [auth, 'Bearer garbage'], 403, 'ACCESS DENIED'],
    ['If-Match', [req.headers!['If-Match'] as string, 'W/"9"'], 400, 'MISSING_OR_INVALID_HEADER'],
    ['Ssp-InteractionID', [req.headers!['Ssp-InteractionID'] as string, req.headers!['Ssp-InteractionID'] as string], 400, 'MISSING_OR_INVALID_HEADER'],
    ['Content-Type', ['application/fhir+json', 'text/plain'], 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ];
  for (const [name, values, status, spine] of cases) {
    assertOutcome(t, await h.request({ ...req, headers: { ...req.headers, [name]: values } }), status, spine);
  }
  t.equal(h.provider.requests.length, before, 'nothing reached the provider');
});

t.test('a passthrough write with Content-Type sent twice is refused, not guessed (review of stop 33)', async (t) => {
  const before = h.provider.requests.length;
  const headers = { ...identityHeaders('nhs-booking', 'book'), 'Content-Type': ['application/fhir+json', 'application/x-www-form-urlencoded'] };
  const r = await h.request({ method: 'POST', path: '/STU3/1/Appointment', headers, body: '{"resourceType":"Appointment","status":"booked"}' });
  assertOutcome(t, r, 415, 'UNSUPPORTED_MEDIA_TYPE');
  t.equal(h.provider.requests.length, before, 'nothing reached the provider');
});

t.test('a fragment (#) in a passthrough query is 400, nothing forwarded (RFC 9112 §3.2.1; review of stop 33)', async (t) => {
  const before = h.provider.requests.length;
  const r = await h.request({ method: 'GET', path: '/STU3/1/Appointment?patient=1#frag', headers: identityHeaders('nhs-booking', 'search') });
  assertOutcome(t, r, 400, 'BAD_REQUEST');
  t.equal(h.provider.requests.length, before, 'nothing reached the provider');
});
