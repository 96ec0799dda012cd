import t from 'tap';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCrl, issueCertificate } from '../../demo/certs.js';
import { identityHeaders, pki, startHarness, type Harness } from '../helpers/harness.js';
import { adminGet, sample } from '../helpers/admin.js';

/**
 * Kubernetes mounts a Secret as files that are symlinks through `..data`, and rotates it by
 * pointing `..data` at a new folder in one rename. The gateway watches the folder (issue 7 item 5).
 */
function k8sSecretDir(files: Record<string, string>): { dir: string; swap(files: Record<string, string>): void } {
  const dir = mkdtempSync(join(tmpdir(), 'gw-secret-'));
  let n = 0;
  const writeVersion = (f: Record<string, string>) => {
    const v = `..2026_11_25_${n++}`;
    mkdirSync(join(dir, v));
    for (const [name, content] of Object.entries(f)) writeFileSync(join(dir, v, name), content);
    return v;
  };
  symlinkSync(writeVersion(files), join(dir, '..data'));
  for (const name of Object.keys(files)) symlinkSync(join('..data', name), join(dir, name));
  return {
    dir,
    swap(f) {
      const v = writeVersion(f);
      symlinkSync(v, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    },
  };
}

function get(h: Harness, agent: https.Agent | false, client = pki().client): Promise<{ status: number; serial: string; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const p = pki();
    const req = https.request({
      host: '127.0.0.1', port: h.gateway.port, path: '/STU3/1/Appointment/appt-1', servername: 'localhost', agent,
      ca: p.ca.cert, cert: client.cert, key: client.key, headers: identityHeaders('nhs-booking', 'read'),
    }, (res) => {
      const socket = res.socket as TLSSocket;
      const serial = socket.getPeerCertificate().serialNumber;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, serial, socket }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(h: Harness, result: 'success' | 'failure', count: number): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const text = (await adminGet(h, '/metrics')).body;
    if ((sample(text, 'cancel_gateway_reloads_total', { kind: 'tls', result }) ?? 0) >= count) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${result} reload seen`);
}

t.test('a rotated certificate is used for new handshakes while an open connection survives', async (t) => {
  const p = pki();
  const first = issueCertificate(p.ca, { commonName: 'localhost', kind: 'server', serialNumber: '0a01' });
  const secret = k8sSecretDir({ 'tls.crt': first.cert, 'tls.key': first.key, 'ca.crt': p.ca.cert });
  const h = await startHarness({
    config: { tls: { cert: join(secret.dir, 'tls.crt'), key: join(secret.dir, 'tls.key'), clientCa: join(secret.dir, 'ca.crt'), watch: true } },
  });
  t.teardown(() => h.close());
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());

  const before = await get(h, agent);
  t.equal(before.status, 200);
  t.equal(before.serial.toLowerCase(), '0a01');

  const second = issueCertificate(p.ca, { commonName: 'localhost', kind: 'server', serialNumber: '0a02' });
  secret.swap({ 'tls.crt': second.cert, 'tls.key': second.key, 'ca.crt': p.ca.cert });
  await until(h, 'success', 1);

  const kept = await get(h, agent);
  t.equal(kept.status, 200, 'the open connection still serves requests');
  t.equal(kept.socket, before.socket, 'on the same socket');
  t.equal(kept.serial.toLowerCase(), '0a01', 'which keeps its original certificate');
  const fresh = await get(h, false);
  t.equal(fresh.status, 200);
  t.equal(fresh.serial.toLowerCase(), '0a02', 'a new handshake uses the new certificate');

  // A broken rotation (key not matching the certificate) keeps the previous material.
  const third = issueCertificate(p.ca, { commonName: 'localhost', kind: 'server', serialNumber: '0a03' });
  secret.swap({ 'tls.crt': third.cert, 'tls.key': second.key, 'ca.crt': p.ca.cert });
  await until(h, 'failure', 1);
  const still = await get(h, false);
  t.equal(still.status, 200, 'still serving');
  t.equal(still.serial.toLowerCase(), '0a02', 'with the last good certificate');
  t.ok(h.logs.some((l) => l.includes('tls reload failed')), 'the failed reload is logged');

  // A garbage certificate file is refused the same way.
  secret.swap({ 'tls.crt': 'not a certificate', 'tls.key': second.key, 'ca.crt': p.ca.cert });
  await until(h, 'failure', 2);
  t.equal((await get(h, false)).serial.toLowerCase(), '0a02');

  // An expired certificate does not replace a valid one: one bad push of a shared Secret would
  // make every replica unready at once (fourteenth review).
  const expired = issueCertificate(p.ca, { commonName: 'localhost', kind: 'server', serialNumber: '0a04', notBefore: new Date(Date.now() - 3 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
  secret.swap({ 'tls.crt': expired.cert, 'tls.key': expired.key, 'ca.crt': p.ca.cert });
  await until(h, 'failure', 3);
  t.equal((await get(h, false)).serial.toLowerCase(), '0a02', 'the valid certificate stays');
  t.ok(h.logs.some((l) => l.includes('the new server certificate has expired; keeping the current one')), 'and the refusal says why');
  t.equal((await adminGet(h, '/readyz')).status, 200, 'still ready');
});

t.test('a server certificate kept over an expired or future one still lets a new CRL and client CA apply', async (t) => {
  const p = pki();
  const first = issueCertificate(p.ca, { commonName: 'localhost', kind: 'server', serialNumber: '0b01' });
  const client = issueCertificate(p.ca, { commonName: 'soon.revoked', kind: 'client', serialNumber: '0c0c' });
  const files = (cert: { cert: string; key: string }, revoked: string[]) => ({ 'tls.crt': cert.cert, 'tls.key': cert.key, 'ca.crt': p.ca.cert, 'crl.pem': createCrl(p.ca, revoked) });
  const secret = k8sSecretDir(files(first, []));
  const h = await startHarness({
    config: { tls: { cert: join(secret.dir, 'tls.crt'), key: join(secret.dir, 'tls.key'), clientCa: join(secret.dir, 'ca.crt'), crl: join(secret.dir, 'crl.pem'), watch: true } },
  });
  t.teardown(() => h.close());
  t.equal((await get(h, false, client)).status, 200, 'the client is served before its revocation');

  // One push carries an expired certificate and a CRL revoking the client (review of stop 33):
  // the certificate is refused, the revocation is not.
  const expired = issueCertificate(p.ca, { commonName: 'localhost', kind: 'server', serialNumber: '0b02', notBefore: new Date(Date.now() - 3 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
  secret.swap(files(expired, ['0c0c']));
  await until(h, 'failure', 1);
  t.ok(h.logs.some((l) => l.includes('tls reload failed in part') && l.includes('has expired')), 'the refused certificate is logged');
  await t.rejects(get(h, false, client), 'the revoked client is refused at the handshake');
  const other = await get(h, false);
  t.equal(other.status, 200, 'another client is served');
  t.equal(other.serial.toLowerCase(), '0b01', 'with the certificate that was kept');
  t.equal((await adminGet(h, '/readyz')).status, 200, 'still ready');

  // A certificate not valid yet is kept out as well (clients would refuse it), with its reason.
  const future = issueCertificate(p.ca, { commonName: 'localhost', kind: 'server', serialNumber: '0b03', notBefore: new Date(Date.now() + 86400_000), notAfter: new Date(Date.now() + 3 * 86400_000) });
  secret.swap(files(future, ['0c0c']));
  await until(h, 'failure', 2);
  t.ok(h.logs.some((l) => l.includes('not valid before')), 'the refusal names when it becomes valid');
  t.equal((await get(h, false)).serial.toLowerCase(), '0b01', 'the current certificate stays');

  // Fixed with a good certificate: taken.
  const good = issueCertificate(p.ca, { commonName: 'localhost', kind: 'server', serialNumber: '0b04' });
  secret.swap(files(good, ['0c0c']));
  await until(h, 'success', 1);
  t.equal((await get(h, false)).serial.toLowerCase(), '0b04');
});
