/**
 * Issue 13 items 4, 9, 10 and 15 (rulings 23, 24, 26), verified end to end: a client hang-up never
 * lets a second write of the same version through; a provider 200 naming another resource, or a 200
 * whose body outlasts its bound, becomes a 500 saying the write may have been applied; a provider
 * answer larger than upstream.maxAnswerBytes is not buffered without bound.
 */
import t from 'tap';
import { gunzipSync, gzipSync } from 'node:zlib';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { startDemoProvider } from '../../demo/provider/server.js';
import { cancelRequest, identityHeaders, pki, startHarness } from '../helpers/harness.js';
import { eventually } from '../reliability/support.js';

t.test('item 4: cancel A hangs up after its PUT was forwarded; cancel B with the same If-Match is refused, one PUT reaches the provider', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  const a = await cancelRequest(h, 'nhs-booking', id);
  const b = await cancelRequest(h, 'nhs-booking', id);
  const undo = h.provider.fault('slow', { method: 'PUT', delayMs: 600 });
  const p = pki();
  const req = https.request({ host: '127.0.0.1', port: h.gateway.port, method: 'PUT', path: a.path, servername: 'localhost', agent: false, ca: p.ca.cert, cert: p.client.cert, key: p.client.key, headers: a.headers as Record<string, string> });
  req.on('error', () => {});
  req.end(a.body);
  const puts = () => h.provider.requests.filter((r) => r.method === 'PUT').length;
  while (puts() === 0) await new Promise((r) => setImmediate(r));
  req.destroy(); // A hangs up while its PUT is being applied
  const second = await h.request(b);
  undo();
  t.equal(second.status, 409, 'B (same If-Match) gets 409 once A\'s write is over');
  t.equal(puts(), 1, 'only A\'s PUT reached the provider');
  t.equal(h.provider.store.currentVersion(id), '2');
});

/** A provider of our own for answers the demo provider cannot give; GETs serve a real stored appointment. */
async function oddProvider(onPut: (res: http.ServerResponse, id: string) => void) {
  const demo = await startDemoProvider({ seed: 'nhs-booking' });
  const id = demo.store.ids()[0]!;
  const stored = JSON.stringify(demo.store.read(id)!.resource);
  await demo.close();
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'PUT') return onPut(res, id);
      res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"1"', 'Set-Cookie': 'provider-session=abc; HttpOnly', 'Set-Cookie2': 'legacy-session=def; Version=1' });
      res.end(stored);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    id, stored, held, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => { for (const r of held) r.destroy(); server.closeAllConnections(); await new Promise((r) => server.close(r)); },
  };
}

t.test('item 9: a provider 200 naming another appointment is not passed on: 500 "may have been applied", breach counted', async (t) => {
  const up = await oddProvider((res, id) => {
    const other = { resourceType: 'Appointment', id: `${id}-other`, status: 'cancelled', meta: { versionId: '2' }, description: 'another patient' };
    res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"2"' });
    res.end(JSON.stringify(other));
  });
  const h = await startHarness({ config: { upstream: { url: up.url } } });
  t.teardown(async () => { await h.close(); await up.close(); });
  const r = await h.request(await cancelRequest(h, 'nhs-booking', up.id));
  t.equal(r.status, 500);
  t.notOk(r.body.toString().includes('another patient'), 'the other resource is not passed on');
  t.match(r.json?.issue?.[0]?.diagnostics, /may have been applied/i);
  t.ok(h.audit.some((a) => a.appointmentId === up.id && a.status === 500), 'audited');
});

t.test('item 10: a provider 200 whose body outlasts its bound → 500 "may have been applied"', async (t) => {
  let held: http.ServerResponse | undefined;
  const up = await oddProvider((res) => {
    res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"2"' });
    res.write('{"resourceType":"Appointment",');
    held = res;
  });
  const h = await startHarness({ config: { upstream: { url: up.url, timeoutMs: 1000, bodyTimeoutMs: 300 } } });
  t.teardown(async () => { held?.destroy(); await h.close(); await up.close(); });
  const req = await cancelRequest(h, 'nhs-booking', up.id);
  const r = await h.request(req);
  t.equal(r.status, 500);
  t.match(r.json?.issue?.[0]?.diagnostics, /may have been applied/i);
  // Ruling 19: the audit record and the decision line say the write may have been applied.
  const traceId = String(req.headers!['Ssp-TraceID']);
  t.ok(await eventually(() => h.audit.some((a) => a.traceId === traceId)), 'an audit record');
  t.equal(h.audit.find((a) => a.traceId === traceId)?.inDoubt, true, 'audited as in doubt');
  t.ok(h.logs.some((l) => l.includes('"msg":"decision"') && l.includes(traceId) && l.includes('"inDoubt":true')), 'the decision line too');
});

t.test('item 15: a provider answer over upstream.maxAnswerBytes is not buffered: 500, the gateway keeps serving', async (t) => {
  const up = await oddProvider((res) => {
    res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"2"' });
    res.end(`{"resourceType":"Appointment","x":"${'a'.repeat(300_000)}"}`);
  });
  const h = await startHarness({ config: { upstream: { url: up.url, maxAnswerBytes: 65536 } } });
  t.teardown(async () => { await h.close(); await up.close(); });
  const r = await h.request(await cancelRequest(h, 'nhs-booking', up.id));
  t.equal(r.status, 500);
  t.ok(r.body.length < 8192, 'the oversized answer is not passed on');
});

t.test('item 15: a passthrough answer the gateway buffers (a read without ETag, an error) is bounded by upstream.maxAnswerBytes too', async (t) => {
  const big = `{"resourceType":"Appointment","id":"big-1","meta":{"versionId":"1"},"description":"${'a'.repeat(4000)}"}`;
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Type': 'application/fhir+json' }); // no ETag: the gateway reads the body to make one
    res.end(big);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const h = await startHarness({ config: { upstream: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, maxAnswerBytes: 1024 } } });
  t.teardown(async () => { await h.close(); server.closeAllConnections(); await new Promise((r) => server.close(r)); });
  const r = await h.request({ method: 'GET', path: '/STU3/1/Appointment/big-1', headers: identityHeaders('nhs-booking', 'read') });
  t.equal(r.status, 500, 'over the bound: 500, as for a cancel\'s read');
  t.notOk(r.body.toString().includes('aaaa'), 'the oversized answer is not passed on');
});

t.test('a passthrough answer over the bound gives up its provider connection: the pool keeps serving (fourteenth review)', async (t) => {
  let big = true;
  const server = http.createServer((req, res) => {
    req.resume();
    const body = big ? Buffer.alloc(4096, 'x') : Buffer.from('{"resourceType":"Appointment","id":"big-1","meta":{"versionId":"1"},"status":"booked"}');
    // an error over maxAnswerBytes (the gateway reads errors to check them), then a normal read
    res.writeHead(big ? 503 : 200, { 'Content-Type': big ? 'text/plain' : 'application/fhir+json', 'Content-Length': body.length, ...(big ? {} : { ETag: 'W/"1"' }) });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000; // the provider would keep an unread connection for a minute
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const h = await startHarness({ config: { upstream: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, maxAnswerBytes: 1024, maxSockets: 2, timeoutMs: 5000 } } });
  t.teardown(async () => { await h.close(); server.closeAllConnections(); await new Promise((r) => server.close(r)); });
  const read = () => h.request({ method: 'GET', path: '/STU3/1/Appointment/big-1', headers: identityHeaders('nhs-booking', 'read') });
  for (let i = 0; i < 2; i++) t.equal((await read()).status, 503, 'the refusal keeps its status');
  big = false;
  const r = await read();
  t.equal(r.status, 200, 'a normal read afterwards finds a socket (the two half-read connections were closed, not kept in the pool)');
});

t.test('ruling 11: a provider\'s gzip\'d OperationOutcome to the PUT is passed on as sent (not replaced)', async (t) => {
  const oo = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'business-rule', diagnostics: 'the provider says no' }] };
  const up = await oddProvider((res) => {
    res.writeHead(422, { 'Content-Type': 'application/fhir+json', 'Content-Encoding': 'gzip' });
    res.end(gzipSync(JSON.stringify(oo)));
  });
  const h = await startHarness({ config: { upstream: { url: up.url } } });
  t.teardown(async () => { await h.close(); await up.close(); });
  const r = await h.request(await cancelRequest(h, 'nhs-booking', up.id));
  t.equal(r.status, 422);
  t.equal(r.headers['content-encoding'], 'gzip', 'as the provider coded it');
  t.same(JSON.parse(gunzipSync(r.body).toString()), oo, 'the provider\'s own OperationOutcome');
});

t.test('a provider 204 to the PUT reaches the client as a 204 without Content-Length (RFC 9110 §8.6)', async (t) => {
  const up = await oddProvider((res) => {
    res.writeHead(204, { ETag: 'W/"2"' });
    res.end();
  });
  const h = await startHarness({ config: { upstream: { url: up.url } } });
  t.teardown(async () => { await h.close(); await up.close(); });
  const r = await h.request(await cancelRequest(h, 'nhs-booking', up.id));
  t.equal(r.status, 204);
  t.notOk('content-length' in r.headers, 'no Content-Length');
  t.equal(r.headers.etag, 'W/"2"');
});

t.test('item 8/16: the provider\'s Set-Cookie is not passed on; client X-Forwarded-* and Forwarded are replaced', async (t) => {
  const up = await oddProvider((res) => res.end());
  const h = await startHarness({ config: { upstream: { url: up.url } } });
  t.teardown(async () => { await h.close(); await up.close(); });
  const r = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${up.id}`, headers: { ...identityHeaders('nhs-booking', 'read'), 'X-Forwarded-For': '10.9.9.9', Forwarded: 'for=10.9.9.9', 'X-Forwarded-Host': 'evil.example' } });
  t.equal(r.status, 200);
  t.notOk('set-cookie' in r.headers, 'no Set-Cookie reaches the client');
  t.notOk('set-cookie2' in r.headers, 'nor the obsolete Set-Cookie2 (RFC 2965), which some stacks still honour');
});

t.test("ruling 25: a cancel's 200 passes on neither the provider's Set-Cookie nor its Set-Cookie2", async (t) => {
  const up = await oddProvider((res) => {
    const done = { ...JSON.parse(up.stored), status: 'cancelled', meta: { versionId: '2' } };
    res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"2"', 'Set-Cookie': 'provider-session=abc', 'Set-Cookie2': 'legacy-session=def; Version=1' });
    res.end(JSON.stringify(done));
  });
  const h = await startHarness({ config: { upstream: { url: up.url } } });
  t.teardown(async () => { await h.close(); await up.close(); });
  const r = await h.request(await cancelRequest(h, 'nhs-booking', up.id));
  t.equal(r.status, 200);
  t.notOk('set-cookie' in r.headers, 'no Set-Cookie');
  t.notOk('set-cookie2' in r.headers, 'no Set-Cookie2');
});
