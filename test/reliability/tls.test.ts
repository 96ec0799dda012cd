/**
 * Issue 8 item 3 (ruling 15): client certificates and TLS parameters the gateway must refuse at the
 * handshake, with no HTTP answer, each counted by reason in
 * `cancel_gateway_tls_handshake_failures_total{reason=...}` on the admin listener: no certificate,
 * unknown CA, expired, not yet valid, revoked (CRL), wrong extended key usage, TLS 1.0 and 1.1, a weak
 * cipher. The trusted client certificate keeps working throughout.
 */
import t from 'tap';
import tls from 'node:tls';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, createCrl, issueCertificate, type Pem } from '../../demo/certs.js';
import { identityHeaders, pki, startHarness } from '../helpers/harness.js';
import { metricValue } from './support.js';

const p = pki();
const HOUR = 3600_000;
const revoked = issueCertificate(p.ca, { commonName: 'revoked.test.nhs.uk', kind: 'client' });
const dir = mkdtempSync(join(tmpdir(), 'gw-tls-'));
const crlFile = join(dir, 'ca.crl');
writeFileSync(crlFile, createCrl(p.ca, [revoked.serialNumber]));

const h = await startHarness({ config: { tls: { cert: p.files.serverCert, key: p.files.serverKey, clientCa: p.files.ca, crl: crlFile, watch: false } } });
t.teardown(async () => {
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});
const id = h.provider.store.ids()[0]!;
const METRIC = 'cancel_gateway_tls_handshake_failures_total';

/**
 * Connect, and once the handshake is done (from the client's side) send a read. Resolves with what
 * came back: 'no-answer' when the connection ended without a single byte of HTTP.
 */
function attempt(cert: Pem | null, options: tls.ConnectionOptions = {}): Promise<{ outcome: 'no-answer' | 'answer'; received: string; error?: string }> {
  return new Promise((resolve) => {
    let received = '';
    let error: string | undefined;
    const socket = tls.connect({
      host: '127.0.0.1', port: h.gateway.port, servername: 'localhost', ca: p.ca.cert,
      ...(cert ? { cert: cert.cert, key: cert.key } : {}), ...options,
    });
    const headers = Object.entries(identityHeaders('nhs-booking', 'read')).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.once('secureConnect', () => socket.write(`GET /STU3/1/Appointment/${id} HTTP/1.1\r\nHost: localhost\r\n${headers}Connection: close\r\n\r\n`));
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.on('error', (e) => (error = e.message));
    socket.setTimeout(5000, () => socket.destroy(new Error('client timeout')));
    socket.on('close', () => resolve({ outcome: received.length ? 'answer' : 'no-answer', received, error }));
  });
}

t.test('the trusted client certificate is served (control)', async (t) => {
  const r = await attempt(p.client);
  t.equal(r.outcome, 'answer');
  t.match(r.received, /^HTTP\/1\.1 200 /);
});

t.test('ruling 15: every family of the Spine list can be negotiated, the EDH (DHE) suites too', async (t) => {
  for (const cipher of ['ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES256-GCM-SHA384', 'DHE-RSA-AES128-GCM-SHA256']) {
    const r = await attempt(p.client, { maxVersion: 'TLSv1.2', ciphers: cipher });
    t.match(r.received, /^HTTP\/1\.1 200 /, `${cipher}: served`);
  }
});

const other = createCa({ commonName: 'Rogue CA' });
const cases: Array<{ name: string; reason: string; cert: Pem | null; options?: tls.ConnectionOptions }> = [
  { name: 'no client certificate', reason: 'no-certificate', cert: null },
  { name: 'a certificate from an unknown CA', reason: 'untrusted', cert: issueCertificate(other, { commonName: 'rogue.example', kind: 'client' }) },
  { name: 'an expired certificate', reason: 'expired', cert: issueCertificate(p.ca, { commonName: 'expired', kind: 'client', notBefore: new Date(Date.now() - 48 * HOUR), notAfter: new Date(Date.now() - 24 * HOUR) }) },
  { name: 'a certificate not yet valid', reason: 'not-yet-valid', cert: issueCertificate(p.ca, { commonName: 'future', kind: 'client', notBefore: new Date(Date.now() + 24 * HOUR), notAfter: new Date(Date.now() + 48 * HOUR) }) },
  { name: 'a revoked certificate (CRL)', reason: 'revoked', cert: revoked },
  { name: 'a certificate for code signing (wrong extended key usage)', reason: 'key-usage', cert: issueCertificate(p.ca, { commonName: 'codesign', kind: 'client', extKeyUsage: 'codeSigning' }) },
  { name: 'a server certificate used as a client one (serverAuth only)', reason: 'key-usage', cert: issueCertificate(p.ca, { commonName: 'server-as-client', kind: 'client', extKeyUsage: 'serverAuth' }) },
  // OpenSSL 3 will not even offer TLS 1.0/1.1 at its default security level: lower it on the client.
  { name: 'TLS 1.0', reason: 'protocol-version', cert: p.client, options: { minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' } },
  { name: 'TLS 1.1', reason: 'protocol-version', cert: p.client, options: { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' } },
  { name: 'a weak cipher only (AES128-SHA, TLS 1.2)', reason: 'cipher', cert: p.client, options: { maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA' } },
  { name: 'a non-AEAD cipher only (ECDHE-RSA-AES128-SHA256, TLS 1.2)', reason: 'cipher', cert: p.client, options: { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA256' } },
];

for (const c of cases) {
  t.test(`${c.name}: refused with no HTTP answer, counted as reason="${c.reason}"`, async (t) => {
    const before = await metricValue(h.gateway.adminPort, METRIC, { reason: c.reason });
    const providerBefore = h.provider.requests.length;
    const r = await attempt(c.cert, c.options);
    t.equal(r.outcome, 'no-answer', `no HTTP answer${r.received ? ` (got ${JSON.stringify(r.received.slice(0, 80))})` : ''}`);
    t.equal(h.provider.requests.length, providerBefore, 'nothing reached the provider');
    // The server counts after its side of the handshake; allow it a moment.
    let after = before;
    for (let i = 0; i < 50 && after === before; i++) {
      await new Promise((res) => setTimeout(res, 20));
      after = await metricValue(h.gateway.adminPort, METRIC, { reason: c.reason });
    }
    t.equal(after, before + 1, `${METRIC}{reason="${c.reason}"} went up by one`);
  });
}

t.test('the trusted client certificate still works after the refusals', async (t) => {
  const r = await attempt(p.client);
  t.match(r.received, /^HTTP\/1\.1 200 /);
  t.equal(await metricValue(h.gateway.adminPort, METRIC, { reason: 'other' }), 0, 'no refusal fell into reason="other"');
});

t.test('ruling 15: a resumed session is served while its certificate is valid; its dates are checked on resumption', async (t) => {
  const { outsideValidity } = await import('../../src/edge/tls-listener.js');
  const cert = { valid_from: 'Jan  1 00:00:00 2026 GMT', valid_to: 'Jan  1 00:00:00 2027 GMT' };
  t.equal(outsideValidity(cert, Date.parse('2026-06-01T00:00:00Z')), undefined);
  t.equal(outsideValidity(cert, Date.parse('2027-01-01T00:00:01Z')), 'expired', 'expired since the session began: refused on resumption');
  t.equal(outsideValidity(cert, Date.parse('2025-12-31T23:59:59Z')), 'not-yet-valid');
  // A real resumption (TLS 1.2 session ticket) of a valid certificate is still served.
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    let session: Buffer | undefined;
    await new Promise<void>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: h.gateway.port, servername: 'localhost', ca: p.ca.cert, cert: p.client.cert, key: p.client.key, minVersion: version, maxVersion: version });
      s.on('session', (x: Buffer) => (session = x));
      s.once('secureConnect', () => s.write(`GET /STU3/1/Appointment/${id} HTTP/1.1\r\nHost: localhost\r\n${Object.entries(identityHeaders('nhs-booking', 'read')).map(([k, v]) => `${k}: ${v}\r\n`).join('')}Connection: close\r\n\r\n`));
      s.on('data', () => {});
      s.on('error', () => {});
      s.on('close', () => resolve());
    });
    t.ok(session, `${version}: the server issued a session`);
    let reused = false;
    const r = await attempt(p.client, { session, minVersion: version, maxVersion: version, ...({} as object) });
    const again = await new Promise<boolean>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: h.gateway.port, servername: 'localhost', ca: p.ca.cert, cert: p.client.cert, key: p.client.key, session, minVersion: version, maxVersion: version });
      s.once('secureConnect', () => { reused = s.isSessionReused(); s.end(); });
      s.on('error', () => resolve(false));
      s.on('close', () => resolve(true));
    });
    t.ok(again, `${version}: connected`);
    t.ok(reused, `${version}: the session was resumed`);
    t.match(r.received, /^HTTP\/1\.1 200 /, `${version}: a resumed session with a valid certificate is served`);
  }
});
