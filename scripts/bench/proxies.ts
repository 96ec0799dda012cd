/**
 * Bench child: the two reference proxies the gateway is measured against, with the gateway's TLS
 * settings (TLS 1.2+, Spine cipher list, client certificate required) and the same keep-alive
 * upstream pool (64 sockets, lifo) and http-proxy-3 as src/proxy/forward.ts.
 *   B  pass-through: mTLS in, proxy.web out, no checks at all.
 *   C  B plus the least any validating gateway must do: read the body and JSON.parse it, GET the
 *      current appointment from the upstream and JSON.parse it, then forward the buffered bytes.
 * BENCH_KIND selects which; BENCH_TLS carries the PEM paths; BENCH_UPSTREAM the upstream origin.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';

const kind = process.env.BENCH_KIND === 'C' ? 'C' : 'B';
const upstream = new URL(process.env.BENCH_UPSTREAM ?? 'http://127.0.0.1:1');
const tls = JSON.parse(process.env.BENCH_TLS ?? '{}') as { cert: string; key: string; ca: string; ciphers: string };
const agent = new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 64, scheduling: 'lifo' });
const proxy = createProxyServer({ target: upstream.href, agent, xfwd: true, changeOrigin: true });
const ID_AT_END = /\/Appointment\/([A-Za-z0-9.-]{1,64})$/;

const fail = (res: http.ServerResponse, status: number) => {
  if (res.headersSent) res.destroy();
  else res.writeHead(status, { 'Content-Length': '0' }).end();
};

function readAll(stream: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function getCurrent(id: string, headers: http.OutgoingHttpHeaders): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: upstream.hostname, port: upstream.port, path: `/Appointment/${id}`, method: 'GET', agent, headers }, (res) => {
      readAll(res).then(resolve, reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function validating(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const body = await readAll(req);
  const submitted = JSON.parse(body.toString('utf8')) as { id?: unknown };
  const id = ID_AT_END.exec(req.url ?? '')?.[1];
  if (!id) return fail(res, 404);
  const stored = JSON.parse((await getCurrent(id, { accept: 'application/fhir+json', authorization: req.headers.authorization })).toString('utf8')) as { id?: unknown };
  if (stored.id !== submitted.id) return fail(res, 422);
  proxy.web(req, res, { buffer: Readable.from([body]) }, () => fail(res, 502));
}

const server = https.createServer(
  {
    cert: readFileSync(tls.cert), key: readFileSync(tls.key), ca: readFileSync(tls.ca),
    requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2', ciphers: tls.ciphers, honorCipherOrder: true,
    keepAliveTimeout: 5000,
  },
  kind === 'B'
    ? (req, res) => proxy.web(req, res, {}, () => fail(res, 502))
    : (req, res) => void validating(req, res).catch(() => fail(res, 500)),
);
server.listen(0, '127.0.0.1', () => process.send!({ type: 'ready', port: (server.address() as AddressInfo).port }));
process.on('disconnect', () => process.exit(0));
