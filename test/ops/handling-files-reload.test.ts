/**
 * Files read when a handling is built — the provider's client certificate, key and CA, and a signed
 * mode's JWKS file — are watched like the listener's (tls.watch): a renewed Secret or a rotated key
 * set takes effect without a SIGHUP, which nothing in Kubernetes sends (fourteenth review: the
 * gateway kept presenting its old client certificate, and refused tokens signed by a new key).
 */
import t from 'tap';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { createCa, issueCertificate } from '../../demo/certs.js';
import { identityHeaders, startHarness } from '../helpers/harness.js';
import { adminGet, sample } from '../helpers/admin.js';
import { validClaims } from '../helpers/tokens.js';
import { STANDARDS } from '../../src/standards/index.js';
import { eventually } from '../reliability/support.js';

/** Replaces `file` at once, as a Secret swap or `mv` does (never half written). */
function replace(file: string, content: string): void {
  writeFileSync(`${file}.next`, content);
  renameSync(`${file}.next`, file);
}

const reloads = (logs: string[], what: 'reloaded' | 'reload failed'): number =>
  logs.filter((l) => l.includes(`"msg":"provider TLS and JWKS files ${what}`)).length;

t.test("a renewed client certificate for the provider is presented without a restart; a key that does not match keeps the current one", async (t) => {
  const providerCa = createCa({ commonName: 'Provider CA' });
  const providerCert = issueCertificate(providerCa, { commonName: 'localhost', kind: 'server' });
  const seen: string[] = [];
  const upstream = https.createServer({ cert: providerCert.cert, key: providerCert.key, ca: providerCa.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    seen.push((req.socket as TLSSocket).getPeerCertificate().subject.CN as string);
    res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"7"' });
    res.end(JSON.stringify({ resourceType: 'Appointment', id: 'x1', meta: { versionId: '7' }, status: 'booked' }));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { upstream.closeAllConnections(); upstream.close(() => r()); }));
  const dir = mkdtempSync(join(tmpdir(), 'gw-up-rotate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = issueCertificate(providerCa, { commonName: 'gateway-2026', kind: 'client' });
  writeFileSync(join(dir, 'ca.pem'), providerCa.cert);
  writeFileSync(join(dir, 'client.pem'), first.cert);
  writeFileSync(join(dir, 'client-key.pem'), first.key);
  const port = (upstream.address() as AddressInfo).port;
  const h = await startHarness({ config: { tls: { watch: true }, upstream: { url: `https://localhost:${port}`, ca: join(dir, 'ca.pem'), cert: join(dir, 'client.pem'), key: join(dir, 'client-key.pem') } } });
  t.teardown(() => h.close());
  const read = () => h.request({ method: 'GET', path: '/STU3/1/Appointment/x1', headers: identityHeaders('nhs-booking', 'read') });
  t.equal((await read()).status, 200);
  t.equal(seen.at(-1), 'gateway-2026');
  const expiry = async (cn: string) => sample((await adminGet(h, '/metrics')).body, 'cancel_gateway_certificate_expiry_seconds', { role: 'upstream-client', subject: `CN=${cn}` });
  t.ok((await expiry('gateway-2026') ?? 0) > 86400, 'the provider client certificate has its expiry metric');

  const renewed = issueCertificate(providerCa, { commonName: 'gateway-2027', kind: 'client' });
  replace(join(dir, 'client-key.pem'), renewed.key);
  replace(join(dir, 'client.pem'), renewed.cert);
  t.ok(await eventually(() => reloads(h.logs, 'reloaded') > 0, 5000), 'reloaded on the change');
  t.equal((await read()).status, 200);
  t.equal(seen.at(-1), 'gateway-2027', 'the provider sees the renewed certificate');
  t.ok((await expiry('gateway-2027') ?? 0) > 86400, 'and the metric follows the renewed certificate');
  t.equal(await expiry('gateway-2026'), undefined, 'the old one is gone from it');

  const failedBefore = reloads(h.logs, 'reload failed');
  replace(join(dir, 'client-key.pem'), first.key); // no longer the certificate's key
  t.ok(await eventually(() => reloads(h.logs, 'reload failed') > failedBefore, 5000), 'a mismatched pair is refused and logged');
  t.equal((await read()).status, 200, 'the current material stays in use');
  t.equal(seen.at(-1), 'gateway-2027');

  // A CA file that holds no certificate (Node's TLS would take it and fail every exchange) is
  // refused the same way (review of stop 33).
  replace(join(dir, 'client-key.pem'), renewed.key);
  t.ok(await eventually(() => reloads(h.logs, 'reloaded') > 1, 5000), 'the pair is good again');
  const failedNow = reloads(h.logs, 'reload failed');
  replace(join(dir, 'ca.pem'), 'garbage');
  t.ok(await eventually(() => reloads(h.logs, 'reload failed') > failedNow, 5000), 'a CA file of garbage is refused');
  t.ok(h.logs.some((l) => l.includes('upstream.ca holds no PEM certificate')), 'saying why');
  t.equal((await read()).status, 200, 'the provider is still reached with the CA that was kept');
});

t.test('a rotated JWKS file (signed mode) is read again without a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-jwks-rotate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const k1 = await generateKeyPair('RS256');
  const k2 = await generateKeyPair('RS256');
  const jwk = async (key: CryptoKey, kid: string) => ({ ...(await exportJWK(key)), kid, alg: 'RS256', use: 'sig' });
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [await jwk(k1.publicKey, 'k1')] }));
  const issuer = 'https://consumersupplier.thirdparty.nhs.uk/';
  const audience = 'https://providersupplier.thirdparty.nhs.uk/STU3/1';
  const h = await startHarness({ config: { tls: { watch: true }, jwt: { mode: 'signed', jwksFile, algorithms: ['RS256'], issuer, audience } } });
  t.teardown(() => h.close());
  const scope = STANDARDS['nhs-booking'].interactions.find((i) => i.name === 'read')!.scope;
  const read = async (key: CryptoKey, kid: string) => {
    const claims = { ...validClaims({ standard: 'nhs-booking', scope, nowSeconds: Math.floor(Date.now() / 1000) }), iss: issuer, aud: audience };
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid }).sign(key);
    return h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: { ...identityHeaders('nhs-booking', 'read'), Authorization: `Bearer ${token}` } });
  };
  t.equal((await read(k1.privateKey, 'k1')).status, 200);
  t.equal((await read(k2.privateKey, 'k2')).status, 403, 'an unknown key before the rotation');

  replace(jwksFile, JSON.stringify({ keys: [await jwk(k1.publicKey, 'k1'), await jwk(k2.publicKey, 'k2')] }));
  t.ok(await eventually(() => reloads(h.logs, 'reloaded') > 0, 5000), 'reloaded on the change');
  t.equal((await read(k2.privateKey, 'k2')).status, 200, 'the new key is trusted');

  replace(jwksFile, '{"keys": [');
  t.ok(await eventually(() => reloads(h.logs, 'reload failed') > 0, 5000), 'an unreadable key set is refused and logged');
  t.equal((await read(k2.privateKey, 'k2')).status, 200, 'the current key set stays in use');
  // Judged as start-up and a SIGHUP judge it: an empty set, or one holding a private key, is refused too.
  replace(jwksFile, '{"keys": []}');
  t.ok(await eventually(() => reloads(h.logs, 'reload failed') > 1, 5000), 'an empty key set is refused');
  t.ok(h.logs.some((l) => l.includes('needs a non-empty \\"keys\\" array')), 'saying why');
  replace(jwksFile, JSON.stringify({ keys: [{ ...(await jwk(k2.publicKey, 'k2')), d: 'private' }] }));
  t.ok(await eventually(() => reloads(h.logs, 'reload failed') > 2, 5000), 'a key set holding private key material is refused');
  t.equal((await read(k2.privateKey, 'k2')).status, 200, 'the current key set stays in use');
});

/** Starts the built gateway with `upstream` (a YAML flow mapping built from the test PKI and `dir`): its exit status and output. */
async function startWithUpstream(t: { teardown(fn: () => void): void }, upstream: (files: { ca: string; clientCert: string; serverKey: string }, dir: string) => string): Promise<{ status: number | null; output: string }> {
  const { spawnSync } = await import('node:child_process');
  const { packageRoot } = await import('../../src/paths.js');
  const { pki } = await import('../helpers/harness.js');
  const p = pki();
  const dir = mkdtempSync(join(tmpdir(), 'gw-up-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'gateway.yaml'), [
    'listen: { host: 127.0.0.1, port: 0 }', 'admin: { host: 127.0.0.1, port: 0 }', 'publicBaseUrl: https://gw.example/STU3/1',
    `tls: { cert: ${p.files.serverCert}, key: ${p.files.serverKey}, clientCa: ${p.files.ca} }`,
    `upstream: ${upstream(p.files, dir)}`, 'spine: { providerAsids: ["918999198738"] }',
  ].join('\n'));
  const r = spawnSync(process.execPath, [join(packageRoot, 'dist/src/main.js'), '--config', join(dir, 'gateway.yaml')], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, output: r.stdout + r.stderr };
}

t.test('a CA file that holds no certificate is refused at start-up (upstream.ca)', async (t) => {
  const r = await startWithUpstream(t, (_, dir) => {
    writeFileSync(join(dir, 'ca.pem'), 'garbage');
    return `{ url: "https://localhost:9", ca: ${join(dir, 'ca.pem')} }`;
  });
  t.equal(r.status, 1, 'the gateway does not start');
  t.match(r.output, /upstream\.ca holds no PEM certificate/, 'saying why');
});

t.test('a provider client certificate that does not match its key is refused at start-up, as check-config says (review of stop 34)', async (t) => {
  const r = await startWithUpstream(t, (f) => `{ url: "https://localhost:9", ca: ${f.ca}, cert: ${f.clientCert}, key: ${f.serverKey} }`);
  t.equal(r.status, 1, 'the gateway does not start');
  t.match(r.output, /upstream\.key: does not match the certificate in upstream\.cert/, 'saying why');
});
