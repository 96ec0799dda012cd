/**
 * README, Configuration: every start-up problem is printed with its path, and with the variable
 * when one set it — also those found only when the material is loaded or the port is bound
 * (review of stop 35).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { createCa, issueCertificate } from '../../demo/certs.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-startup-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ca = createCa({ commonName: 'Startup CA' });
const server = issueCertificate(ca, { commonName: 'localhost', kind: 'server' });
const other = issueCertificate(ca, { commonName: 'other', kind: 'client' });
const write = (name: string, content: string) => {
  const f = join(dir, name);
  writeFileSync(f, content);
  return f;
};
const config = write('config.json', JSON.stringify({
  listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 },
  publicBaseUrl: 'https://localhost:8443/STU3/1', upstream: { url: 'http://127.0.0.1:9' }, spine: { providerAsids: ['918999198738'] },
  tls: { cert: write('s.pem', server.cert), key: write('s.key', server.key), clientCa: write('ca.pem', ca.cert) },
}));

/** Runs the gateway until it exits (or 20 s), returning its exit code and stderr. */
function start(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(packageRoot, 'dist', 'src', 'main.js'), '--config', config], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

t.test('a key that does not match its certificate names the variable that set it', async (t) => {
  const r = await start({ GATEWAY_TLS_KEY: write('other.key', other.key) });
  t.equal(r.code, 1);
  t.match(r.stderr, /tls\.key does not match tls\.cert \(from GATEWAY_TLS_KEY\)/);
});

t.test('a port in use names its key and the variable', async (t) => {
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => busy.close(() => r())));
  const port = (busy.address() as AddressInfo).port;
  const r = await start({ GATEWAY_PORT: String(port) });
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`listen\\.port: cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use \\(EADDRINUSE\\) \\(from GATEWAY_PORT\\)`));
});

t.test('an address that is not this machine\'s names the host key and its variable', async (t) => {
  const r = await start({ GATEWAY_LISTEN_HOST: '203.0.113.7' });
  t.equal(r.code, 1);
  t.match(r.stderr, /listen\.host: cannot listen on 203\.0\.113\.7:\d+: the address is not this machine's \(EADDRNOTAVAIL\) \(from GATEWAY_LISTEN_HOST\)/);
});
