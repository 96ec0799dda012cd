/**
 * Issue 19 item 4: a refused handshake is diagnosable from the gateway's side — one warn line per
 * refusal with the reason, the peer address and the certificate's subject, issuer, serial and
 * fingerprint; rate-limited. From the client's side, a missing certificate gets the TLS alert
 * that names it (a certificate that fails verification is closed without one: Node's TLS judges
 * it after the handshake and has no way to send an alert).
 */
import t from 'tap';
import tls from 'node:tls';
import { createCa, issueCertificate } from '../../demo/certs.js';
import { createRefusalLog } from '../../src/edge/refusal-log.js';
import { createLogger } from '../../src/log.js';
import { ManualClock } from '../../src/ports/clock.js';
import { startHarness } from '../helpers/harness.js';
import { eventually, rawTls } from '../reliability/support.js';
import { pki } from '../helpers/harness.js';

t.test('an untrusted client certificate: one warn line naming it', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const other = createCa({ commonName: 'Some Other CA' });
  const stranger = issueCertificate(other, { commonName: 'stranger.example', kind: 'client' });
  // Let the gateway refuse (and close) the connection itself: a client that hangs up first is a
  // different refusal ("reset", no certificate seen).
  const conn = await rawTls(h.gateway.port, { cert: stranger }).catch(() => undefined);
  await conn?.closed();
  const refused = () => h.logs.find((l) => l.includes('tls handshake refused') && l.includes('"untrusted"'));
  t.ok(await eventually(() => refused() !== undefined), 'logged');
  const line = JSON.parse(refused()!);
  t.equal(line.level, 'warn');
  t.equal(line.reason, 'untrusted');
  t.match(line.peer, /127\.0\.0\.1/);
  t.equal(line.subject, 'stranger.example');
  t.equal(line.issuer, 'Some Other CA');
  t.match(line.fingerprint256, /^[0-9A-F:]{95}$/);
  t.ok(line.serial);
});

t.test('with a CRL configured, a self-signed client certificate is still "untrusted", not "crl"', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { createCrl } = await import('../../demo/certs.js');
  const crlFile = join(mkdtempSync(join(tmpdir(), 'gw-crl-reason-')), 'crl.pem');
  writeFileSync(crlFile, createCrl(pki().ca, []));
  const h = await startHarness({ config: { tls: { crl: crlFile } } });
  t.teardown(() => h.close());
  // A self-signed certificate (a CA's own) presented as the client's: OpenSSL says UNABLE_TO_GET_CRL.
  const self = createCa({ commonName: 'self-signed.example' });
  const conn = await rawTls(h.gateway.port, { cert: self }).catch(() => undefined);
  await conn?.closed();
  const refused = () => h.logs.find((l) => l.includes('tls handshake refused') && l.includes('self-signed.example'));
  t.ok(await eventually(() => refused() !== undefined), 'logged');
  t.equal(JSON.parse(refused()!).reason, 'untrusted');
});

t.test('no client certificate: the client receives the TLS alert that says so', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const clientSees = (maxVersion: tls.SecureVersion) =>
    new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: h.gateway.port, servername: 'localhost', ca: pki().ca.cert, maxVersion });
      // TLS 1.3: the client's handshake completes first; the alert arrives with its first read.
      s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
      s.on('error', (e: Error & { code?: string }) => resolve(String(e.code)));
      s.on('close', () => resolve('closed without an alert'));
    });
  // The alert, whatever the OpenSSL build calls its code (Node 20: ERR_SSL_SSLV3_ALERT_…,
  // Node 26: ERR_SSL_SSL/TLS_ALERT_…).
  t.match(await clientSees('TLSv1.3'), /^ERR_SSL_.*ALERT_CERTIFICATE_REQUIRED$/, 'TLS 1.3: certificate_required');
  t.match(await clientSees('TLSv1.2'), /^ERR_SSL_.*ALERT_HANDSHAKE_FAILURE$/, 'TLS 1.2: handshake_failure (its alert for a missing certificate)');
  t.ok(await eventually(() => h.logs.some((l) => l.includes('tls handshake refused') && l.includes('"no-certificate"'))), 'and the gateway logged it');
});

t.test('rate-limited: at most N lines a second, the rest counted', async (t) => {
  const lines: string[] = [];
  const clock = new ManualClock();
  const log = createRefusalLog(createLogger('debug', { write: (s: string) => lines.push(s) }), clock, 3);
  for (let i = 0; i < 10; i++) log('untrusted', '10.0.0.1');
  t.equal(lines.length, 3);
  clock.advance(1000);
  log('expired', '10.0.0.2');
  t.equal(lines.length, 4);
  t.equal(JSON.parse(lines[3]!).suppressedSinceLast, 7);
});
