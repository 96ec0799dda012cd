import t from 'tap';
import https from 'node:https';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issueCertificate } from '../../demo/certs.js';
import { assertOutcome } from '../helpers/assert.js';
import { identityHeaders, pki, startHarness } from '../helpers/harness.js';

t.test('client allow-list: a trusted certificate not on the list gets 403, one on it passes', async (t) => {
  const h = await startHarness({ config: { tls: { ...tlsFiles(), allowedClients: { subjects: ['ssp.allowed.nhs.uk'], sans: ['ssp.test.nhs.uk'] } } } });
  t.teardown(() => h.close());
  const p = pki();
  const before = h.provider.requests.length;
  const other = issueCertificate(p.ca, { commonName: 'other.nhs.uk', kind: 'client', dnsNames: ['other.nhs.uk'] });
  const r = await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: identityHeaders('nhs-booking', 'read'), cert: other });
  assertOutcome(t, r, 403, 'ACCESS DENIED', { issue: 'forbidden' });
  t.equal(h.provider.requests.length, before, 'nothing forwarded');
  const bySubject = issueCertificate(p.ca, { commonName: 'ssp.allowed.nhs.uk', kind: 'client' });
  t.equal((await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: identityHeaders('nhs-booking', 'read'), cert: bySubject })).status, 200, 'allowed by subject CN');
  t.equal((await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: identityHeaders('nhs-booking', 'read') })).status, 200, 'allowed by SAN');
  // DNS names compare without case and a final dot (RFC 4343, RFC 5280 §7.2).
  for (const name of ['SSP.Test.NHS.uk', 'ssp.test.nhs.uk.']) {
    const cert = issueCertificate(p.ca, { commonName: 'someone.nhs.uk', kind: 'client', dnsNames: [name] });
    t.equal((await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: identityHeaders('nhs-booking', 'read'), cert })).status, 200, `SAN ${name} allowed`);
  }
});

function tlsFiles() {
  const p = pki();
  return { cert: p.files.serverCert, key: p.files.serverKey, clientCa: p.files.ca, watch: false };
}

t.test('an HTTPS provider with its own CA, requiring the gateway\'s client certificate', async (t) => {
  const providerCa = createCa({ commonName: 'Provider CA' });
  const providerCert = issueCertificate(providerCa, { commonName: 'localhost', kind: 'server' });
  const gatewayClient = issueCertificate(providerCa, { commonName: 'gateway', kind: 'client' });
  const seenCerts: string[] = [];
  const upstream = https.createServer({ cert: providerCert.cert, key: providerCert.key, ca: providerCa.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    seenCerts.push((req.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN as string);
    res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"7"' });
    res.end(JSON.stringify({ resourceType: 'Appointment', id: 'x1', meta: { versionId: '7' }, status: 'booked' }));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { upstream.closeAllConnections(); upstream.close(() => r()); }));
  const dir = mkdtempSync(join(tmpdir(), 'gw-up-'));
  writeFileSync(join(dir, 'ca.pem'), providerCa.cert);
  writeFileSync(join(dir, 'client.pem'), gatewayClient.cert);
  writeFileSync(join(dir, 'client-key.pem'), gatewayClient.key);
  const port = (upstream.address() as import('node:net').AddressInfo).port;
  const h = await startHarness({ config: { upstream: { url: `https://localhost:${port}`, ca: join(dir, 'ca.pem'), cert: join(dir, 'client.pem'), key: join(dir, 'client-key.pem') } } });
  t.teardown(() => h.close());
  const r = await h.request({ method: 'GET', path: '/STU3/1/Appointment/x1', headers: identityHeaders('nhs-booking', 'read') });
  t.equal(r.status, 200, r.body.toString());
  t.equal(r.json.id, 'x1');
  t.same(seenCerts, ['gateway'], 'the provider saw the gateway\'s client certificate');

  // Without the provider's CA the gateway refuses the provider's certificate: 500, not a bypass.
  const h2 = await startHarness({ config: { upstream: { url: `https://localhost:${port}` } } });
  t.teardown(() => h2.close());
  assertOutcome(t, await h2.request({ method: 'GET', path: '/STU3/1/Appointment/x1', headers: identityHeaders('nhs-booking', 'read') }), 500, 'INTERNAL_SERVER_ERROR');
});
