/**
 * Ruling 24 on passthrough: upstream.timeoutMs bounds the exchange up to the status line; from
 * there the body has upstream.bodyTimeoutMs — whether the gateway buffers it (a read without
 * ETag) or streams it (a read with one).
 */
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { identityHeaders, startHarness } from '../helpers/harness.js';

const body = (id: string) => JSON.stringify({ resourceType: 'Appointment', id, meta: { versionId: '3' }, status: 'booked' });

/** A provider that sends its status line and headers at once, then the body `gapMs` later in two halves. */
async function lateBody(gapMs: number, etag: boolean) {
  const server = http.createServer((req, res) => {
    req.resume();
    const text = body('late-1');
    res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': String(Buffer.byteLength(text)), ...(etag ? { ETag: 'W/"3"' } : {}) });
    res.flushHeaders();
    const half = Math.floor(text.length / 2);
    res.write(text.slice(0, half));
    const timer = setTimeout(() => res.end(text.slice(half)), gapMs);
    res.on('close', () => clearTimeout(timer));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

const read = { method: 'GET', path: '/STU3/1/Appointment/late-1', headers: identityHeaders('nhs-booking', 'read') };

for (const etag of [false, true]) {
  const how = etag ? 'streamed (the provider sent an ETag)' : 'buffered (the gateway makes the ETag)';
  t.test(`${how}: a body within bodyTimeoutMs but past timeoutMs is served`, async (t) => {
    const up = await lateBody(700, etag);
    const h = await startHarness({ config: { upstream: { url: up.url, timeoutMs: 300, bodyTimeoutMs: 5000 } } });
    t.teardown(async () => { await h.close(); await up.close(); });
    const r = await h.request(read);
    t.equal(r.status, 200);
    t.equal(r.json?.id, 'late-1', 'the whole body');
    t.equal(r.headers.etag, 'W/"3"');
  });
}

t.test('buffered: a body stalled past bodyTimeoutMs is not served (500), though timeoutMs is long', async (t) => {
  const up = await lateBody(3000, false);
  const h = await startHarness({ config: { upstream: { url: up.url, timeoutMs: 10_000, bodyTimeoutMs: 300 } } });
  t.teardown(async () => { await h.close(); await up.close(); });
  const r = await h.request(read);
  t.equal(r.status, 500);
});

t.test('ruling 11 + 13: a conditional vread the provider answers 304 is passed on as 304 (not a redirect)', async (t) => {
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.headers['if-none-match'] === 'W/"1"') {
      res.writeHead(304, { ETag: 'W/"1"' });
      return res.end();
    }
    const text = JSON.stringify({ resourceType: 'Appointment', id: 'c1', meta: { versionId: '1' }, status: 'booked' });
    res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"1"' });
    res.end(text);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const h = await startHarness({ config: { upstream: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } } });
  t.teardown(async () => { await h.close(); server.closeAllConnections(); await new Promise((r) => server.close(r)); });
  const headers = { ...identityHeaders('nhs-booking', 'read'), 'If-None-Match': 'W/"1"' };
  for (const path of ['/STU3/1/Appointment/c1', '/STU3/1/Appointment/c1/_history/1']) {
    const r = await h.request({ method: 'GET', path, headers });
    t.equal(r.status, 304, `${path}: 304`);
    t.equal(r.headers.etag, 'W/"1"');
    t.equal(r.body.length, 0, 'no body');
  }
});
