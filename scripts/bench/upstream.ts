/**
 * Bench child: the fast upstream. Answers any id (so every cancel can name a fresh appointment):
 * GET .../Appointment/{id} -> 200, the stored appointment, version 1; PUT -> 200, the cancelled
 * appointment, version 2, with Location. Plain HTTP for the proxies under test, and the same
 * answers over mTLS for scenario A (clients straight to the upstream). Runs in its own process so
 * its CPU is not charged to the proxy being measured.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { storedBody, updatedBody } from './fixtures.js';

const FHIR_JSON = 'application/fhir+json;charset=utf-8';
const LAST_MODIFIED = new Date('2024-01-01T09:00:00Z').toUTCString();
const ID_AT_END = /\/Appointment\/([A-Za-z0-9.-]{1,64})$/;

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const m = ID_AT_END.exec(q < 0 ? url : url.slice(0, q));
  req.on('data', () => {});
  req.on('end', () => {
    if (!m) {
      res.writeHead(404, { 'Content-Length': '0' }).end();
      return;
    }
    const id = m[1]!;
    if (req.method === 'GET') {
      const body = storedBody(id);
      res.writeHead(200, { 'Content-Type': FHIR_JSON, 'Content-Length': Buffer.byteLength(body), ETag: 'W/"1"', 'Last-Modified': LAST_MODIFIED });
      res.end(body);
    } else if (req.method === 'PUT') {
      const body = updatedBody(id);
      res.writeHead(200, {
        'Content-Type': FHIR_JSON, 'Content-Length': Buffer.byteLength(body), ETag: 'W/"2"', 'Last-Modified': LAST_MODIFIED,
        Location: `/Appointment/${id}/_history/2`,
      });
      res.end(body);
    } else {
      res.writeHead(405, { 'Content-Length': '0' }).end();
    }
  });
}

const tlsFiles = JSON.parse(process.env.BENCH_TLS ?? '{}') as { cert: string; key: string; ca: string; ciphers: string };
const plain = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, handler);
const secure = https.createServer(
  {
    cert: readFileSync(tlsFiles.cert), key: readFileSync(tlsFiles.key), ca: readFileSync(tlsFiles.ca),
    requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2', ciphers: tlsFiles.ciphers, honorCipherOrder: true,
    keepAliveTimeout: 65_000, requestTimeout: 0,
  },
  handler,
);
const listen = (s: http.Server) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));
const [port, tlsPort] = await Promise.all([listen(plain), listen(secure)]);
process.send!({ type: 'ready', port, tlsPort });
process.on('disconnect', () => process.exit(0));
