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
