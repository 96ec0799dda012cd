/**
 * GP Connect §a ("Servers SHALL support gzip"): when an answer is compressed (src/http/answer-gzip.ts).
 * Accept-Encoding is read as RFC 9110 §12.5.3 has it; a compressed answer says so (Content-Encoding,
 * Vary, its own Content-Length) and keeps its ETag as it was.
 */
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { acceptsGzip, gzipWhole, isIdentityCoding, varyAsCompressed } from '../../src/http/answer-gzip.js';

t.test('Accept-Encoding: gzip, x-gzip or * with a weight above 0; an explicit gzip;q=0 wins over *', async (t) => {
  for (const v of ['gzip', 'GZIP', 'x-gzip', 'deflate, gzip;q=0.5', '*', 'br;q=1, *;q=0.1', 'gzip;q=1.000']) t.ok(acceptsGzip(v), v);
  for (const v of [undefined, '', 'identity', 'br', 'gzip;q=0', 'gzip;q=0.000', '*;q=0', 'gzip;q=0, *', 'gzip;q=2', 'gzip;q=abc']) t.notOk(acceptsGzip(v), String(v));
  t.ok(acceptsGzip(['br', 'gzip']), 'repeated headers are one list');
});

t.test('a Content-Encoding leaves the body as it is only when absent or identity', async (t) => {
  t.ok(isIdentityCoding(undefined));
  t.ok(isIdentityCoding(' Identity '));
  t.notOk(isIdentityCoding('gzip'));
  t.notOk(isIdentityCoding(['identity', 'gzip']));
});

t.test('a compressed answer: Content-Encoding, Vary merged, its own Content-Length, the ETag unchanged', async (t) => {
  const body = Buffer.from(JSON.stringify({ resourceType: 'Appointment', id: 'a1', text: 'x'.repeat(500) }));
  const server = http.createServer((req, res) => {
    res.setHeader('ETag', '"7"');
    res.setHeader('Vary', 'Accept');
    res.setHeader('Content-Length', body.length);
    res.end(gzipWhole(res, body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const got = await new Promise<{ headers: http.IncomingHttpHeaders; bytes: Buffer }>((resolve, reject) => {
    http.get({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', path: '/' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, bytes: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
  t.equal(got.headers['content-encoding'], 'gzip');
  t.equal(got.headers.vary, 'Accept, Accept-Encoding');
  t.equal(Number(got.headers['content-length']), got.bytes.length, 'Content-Length of the compressed bytes');
  t.equal(got.headers.etag, '"7"', 'a strong ETag stays strong: a weakened one would come back as a weak If-Match, forwarded as received');
  t.same(gunzipSync(got.bytes), body);
});

t.test('a 304 varies on Accept-Encoding when its 200 would have been compressed (RFC 9110 §15.4.5)', async (t) => {
  let enabled = true;
  const server = http.createServer((req, res) => {
    res.statusCode = 304;
    res.setHeader('Vary', 'Accept');
    varyAsCompressed(res, enabled, 304);
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const vary = (acceptEncoding?: string) => new Promise<unknown>((resolve, reject) => {
    http.get({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', path: '/', headers: acceptEncoding ? { 'Accept-Encoding': acceptEncoding } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.headers.vary));
    }).on('error', reject);
  });
  t.equal(await vary('gzip'), 'Accept, Accept-Encoding');
  t.equal(await vary(), 'Accept', 'not asked for gzip: its 200 was not compressed');
  enabled = false;
  t.equal(await vary('gzip'), 'Accept', 'nhs-booking: never compressed');
});
