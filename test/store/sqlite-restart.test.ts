/**
 * Issue 18 item 6, the embedded store end to end: a gateway process on sqlite keeps every version it
 * replaced across a restart (history, and a vread the provider cannot answer), and an operator's
 * `vault restore` brings a cancelled appointment back, after which it can be cancelled again.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/paths.js';
import { startDemoProvider } from '../../demo/provider/server.js';
import { identityHeaders, PROVIDER_ASID, pki, send, type RequestOptions } from '../helpers/harness.js';
import { startGateway, type Gw } from '../helpers/gateway-process.js';
import { adminGet } from '../helpers/admin.js';
import { xmlCodec } from '../../src/adapters/codec-xml.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'gw-sqlite-'));
const provider = await startDemoProvider({ seed: 'nhs-booking' });
const p = pki();
const configFile = join(dir, 'gateway.json');
writeFileSync(configFile, JSON.stringify({
  standard: 'nhs-booking', listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 },
  basePath: '/STU3/1', publicBaseUrl: 'https://gateway.test/STU3/1',
  tls: { cert: p.files.serverCert, key: p.files.serverKey, clientCa: p.files.ca, watch: false },
  upstream: { url: provider.url }, spine: { providerAsids: [PROVIDER_ASID] },
  log: { level: 'info' }, audit: { destination: join(dir, 'audit.jsonl') },
  store: { kind: 'sqlite', path: join(dir, 'vault.sqlite') },
}));
let gw: Gw | undefined;
t.teardown(async () => {
  gw?.proc.kill('SIGKILL');
  await provider.close();
  rmSync(dir, { recursive: true, force: true });
});
const id = provider.store.ids()[0]!;

function cancel(ifMatch: string): RequestOptions {
  const r = structuredClone(provider.store.read(id)!.resource) as Record<string, any>;
  r.status = 'cancelled';
  return { method: 'PUT', path: `/STU3/1/Appointment/${id}`, body: JSON.stringify(r), headers: { ...identityHeaders('nhs-booking', 'cancel'), 'If-Match': ifMatch, 'Content-Type': 'application/fhir+json' } };
}
const vault = (...args: string[]) => run(process.execPath, [join(packageRoot, 'dist/src/main.js'), 'vault', ...args, '--config', configFile]);
const stop = async (g: Gw) => {
  const exited = new Promise((r) => g.proc.once('exit', r));
  g.proc.kill('SIGTERM');
  await exited;
};

t.test('a restarted sqlite gateway still has its history', async (t) => {
  gw = await startGateway(configFile);
  const v = provider.store.currentVersion(id);
  const r = await send(gw.port, cancel(`W/"${v}"`));
  t.equal(r.status, 200, r.body.toString().slice(0, 200));
  await stop(gw);
  gw = await startGateway(configFile);
  const history = await vault('history', id);
  t.match(history.stdout, new RegExp(`\\b${v}\\b`), 'the replaced version is listed after the restart');
  // The configuration named as the vault command's parser reads it: --config=FILE and -c FILE too.
  const cli = (...args: string[]) => run(process.execPath, [join(packageRoot, 'dist/src/main.js'), 'vault', ...args]);
  t.equal((await cli('history', id, `--config=${configFile}`)).stdout, history.stdout, '--config=FILE');
  t.equal((await cli('history', id, '-c', configFile)).stdout, history.stdout, '-c FILE');
  const stopFault = provider.fault('not-found', { method: 'GET', path: /_history/ });
  const vread = await send(gw.port, { method: 'GET', path: `/STU3/1/Appointment/${id}/_history/${v}`, headers: identityHeaders('nhs-booking', 'read') });
  stopFault();
  t.equal(vread.status, 200, 'a vread the provider cannot answer, from the vault');
  t.equal(vread.json.status, 'booked');
  t.equal(vread.headers.etag, `W/"${v}"`);
  // What the provider was asked: the gateway's own forwarding headers, never the client's (ruling 25).
  const asked = provider.requests.filter((q) => q.method === 'GET' && q.url.includes('/_history/')).at(-1)!;
  t.equal(asked.headers['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For: the client as the gateway saw it');
  t.match(String(asked.headers.forwarded), /^for=127\.0\.0\.1;proto=https/);
  // A redirect is never followed: the kept version is served, the provider's failure counted, the
  // decision line says where the answer came from.
  const stopRedirect = provider.fault('redirect', { method: 'GET', path: /_history/ });
  const redirected = await send(gw.port, { method: 'GET', path: `/STU3/1/Appointment/${id}/_history/${v}`, headers: { ...identityHeaders('nhs-booking', 'read'), 'X-Request-ID': 'vread-redirect' } });
  stopRedirect();
  t.equal(redirected.status, 200, 'a redirect for a kept version: served from the vault');
  const metrics = await adminGet({ gateway: { adminPort: gw.adminPort } } as never, '/metrics');
  t.match(metrics.body, /cancel_gateway_upstream_errors_total\{kind="redirect"\} [1-9]/, 'counted as a failed provider call');
  const line = gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'decision' && l.requestId === 'vread-redirect');
  t.equal(line?.servedFrom, 'vault', 'the decision line says the vault answered');
});

t.test('a version kept as FHIR XML is read back as JSON when the client names no format (ruling 21)', async (t) => {
  const xmlId = provider.store.ids()[1]!;
  const r = structuredClone(provider.store.read(xmlId)!.resource) as Record<string, any>;
  const v = provider.store.currentVersion(xmlId);
  r.status = 'cancelled';
  const put = await send(gw!.port, { method: 'PUT', path: `/STU3/1/Appointment/${xmlId}`, body: xmlCodec.encode(r), headers: { ...identityHeaders('nhs-booking', 'cancel'), 'If-Match': `W/"${v}"`, 'Content-Type': 'application/fhir+xml', Accept: 'application/fhir+xml' } });
  t.equal(put.status, 200, put.body.toString().slice(0, 200));
  t.match(String(put.headers['content-type']), /xml/, 'the provider answered the write in XML: the new version is kept as XML');
  const after = String(put.headers.etag).replace(/^W\/"|"$/g, '');
  const stopFault = provider.fault('not-found', { method: 'GET', path: /_history/ });
  const plain = await send(gw!.port, { method: 'GET', path: `/STU3/1/Appointment/${xmlId}/_history/${after}`, headers: identityHeaders('nhs-booking', 'read') });
  const asXml = await send(gw!.port, { method: 'GET', path: `/STU3/1/Appointment/${xmlId}/_history/${after}?_format=xml`, headers: identityHeaders('nhs-booking', 'read') });
  stopFault();
  t.equal(plain.status, 200);
  t.match(String(plain.headers['content-type']), /^application\/fhir\+json/, 'JSON when nothing is asked for');
  t.equal(plain.json.id, xmlId);
  t.equal(plain.json.status, 'cancelled', 'the version the cancel made');
  t.match(String(asXml.headers['content-type']), /^application\/fhir\+xml/, 'XML when asked for');
});

t.test('vault restore brings the cancelled appointment back; it can be cancelled again', async (t) => {
  const before = provider.store.currentVersion(id);
  t.equal(provider.store.read(id)!.resource.status, 'cancelled');
  const kept = (await vault('history', id)).stdout;
  const first = /\b(\d+)\b/.exec(kept.split('\n').find((l) => l.trim()) ?? '')?.[1];
  t.ok(first, `a kept version to restore (${kept.slice(0, 200)})`);
  const restored = await vault('restore', id, '--to', '1', '--yes');
  t.match(restored.stdout + restored.stderr, /restor/i);
  t.equal(provider.store.read(id)!.resource.status, 'booked', 'booked again at the provider');
  const ifMatch = provider.requests.filter((r) => r.method === 'PUT').at(-1)!.headers['if-match'];
  t.equal(String(ifMatch).replace(/^W\//, '').replace(/"/g, ''), before, 'written with the current version as If-Match');
  const again = await send(gw!.port, cancel(`W/"${provider.store.currentVersion(id)}"`));
  t.equal(again.status, 200, 'and cancelled again through the gateway');
});
