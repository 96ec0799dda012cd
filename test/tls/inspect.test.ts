import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { buildConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { packageRoot } from '../../src/paths.js';
import { crlBlocks, crlSignedBy, parseCrl } from '../../src/tls/crl.js';
import { reportCrlStatus } from '../../src/tls/crl-status.js';
import { inspectTls, type Finding, type InspectOptions } from '../../src/tls/inspect.js';
import { loadTlsMaterial } from '../../src/tls/material.js';
import { createCa, createCrl, issueCertificate } from '../../demo/certs.js';

/**
 * check-config's TLS inspection (issue 19) against generated material, good and bad: every case
 * asserts the config key and the problem, so a check that stops looking fails here.
 */

const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'gw-inspect-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const ca = createCa({ commonName: 'Inspect Root CA' });
const server = issueCertificate(ca, { commonName: 'localhost', kind: 'server' });
const otherCa = createCa({ commonName: 'Some Other CA' });
const sameNameCa = createCa({ commonName: 'Inspect Root CA' }); // same subject, another key
const leafOnly = issueCertificate(ca, { commonName: 'not-a-ca', kind: 'client' });
const soon = issueCertificate(ca, { commonName: 'localhost', kind: 'server', notAfter: new Date(Date.now() + 10 * DAY) });
const expired = issueCertificate(ca, { commonName: 'localhost', kind: 'server', notBefore: new Date(Date.now() - 20 * DAY), notAfter: new Date(Date.now() - DAY) });
const goodCrl = createCrl(ca, []);

let n = 0;
function file(content: string): string {
  const f = join(dir, `f${n++}.pem`);
  writeFileSync(f, content);
  return f;
}

const opts: InspectOptions = { now: Date.now(), certWarningDays: 30, crlWarningHours: 48 };

function inspect(tls: Record<string, string>, extra: Record<string, unknown> = {}, o: Partial<InspectOptions> = {}): Finding[] {
  const config = buildConfig({
    publicBaseUrl: 'https://localhost:8443/STU3/1',
    tls: { cert: file(server.cert), key: file(server.key), clientCa: file(ca.cert), ...tls },
    upstream: { url: 'https://127.0.0.1:9443' },
    spine: { providerAsids: ['918999198738'] },
    ...extra,
  });
  return inspectTls(config, { ...opts, ...o });
}

const errors = (f: Finding[]) => f.filter((x) => x.level === 'error').map((x) => `${x.what}: ${x.message}`);
const warnings = (f: Finding[]) => f.filter((x) => x.level === 'warning').map((x) => `${x.what}: ${x.message}`);

t.test('good material with a CRL: nothing to say', async (t) => {
  const f = inspect({ crl: file(goodCrl) });
  t.same(f, []);
});

t.test('each kind of bad material is an error naming its key', async (t) => {
  const garbage = '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n';
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['garbage certificate', { cert: file(garbage) }, /^tls\.cert: certificate 1 does not parse/],
    ['not PEM at all', { cert: file('hello') }, /^tls\.cert: holds no PEM certificate/],
    ['a key that is not the certificate\'s', { key: file(otherCa.key) }, /^tls\.key: does not match the certificate in tls\.cert/],
    ['a key that does not parse', { key: file('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n') }, /^tls\.key: does not parse as an unencrypted PEM private key/],
    ['a private key given as the client CA bundle', { clientCa: file(ca.key) }, /^tls\.clientCa: holds a private key/],
    ['a leaf certificate as the client CA bundle', { clientCa: file(leafOnly.cert) }, /^tls\.clientCa: CN=not-a-ca: not a CA certificate/],
    ['an expired server certificate', { cert: file(expired.cert), key: file(expired.key) }, /^tls\.cert: CN=localhost: expired on /],
    ['a chain in the wrong order', { cert: file(ca.cert + server.cert), key: file(ca.key) }, /^tls\.cert: chain out of order or broken/],
  ];
  for (const [name, tls, want] of cases) {
    const e = errors(inspect(tls));
    t.ok(e.some((x) => want.test(x)), `${name}: ${e.join(' | ') || '(no error)'}`);
  }
  const keyAsCa = errors(inspect({ clientCa: file(ca.key) }));
  t.ok(keyAsCa.some((x) => /tls\.clientCa: holds no PEM certificate/.test(x)), 'and holds no certificate');
});

t.test('an intermediate without its root in the client CA bundle: chain incomplete', async (t) => {
  // A certificate whose issuer is not in the bundle stands in for an intermediate without its root.
  const foreignIssued = issueCertificate(otherCa, { commonName: 'x', kind: 'client' });
  const e = errors(inspect({ clientCa: file(ca.cert + foreignIssued.cert) }));
  t.ok(e.some((x) => /^tls\.clientCa: CN=x: chain incomplete, its issuer \(CN=Some Other CA, O=cancel-gateway demo\) is not in the bundle/.test(x)), e.join(' | '));
});

t.test('CRLs: expired, not yet valid, foreign, forged, garbage, missing for a CA', async (t) => {
  const cases: Array<[string, string, string, RegExp]> = [
    ['expired CRL', createCrl(ca, [], { thisUpdate: new Date(Date.now() - 10 * DAY), nextUpdate: new Date(Date.now() - DAY) }), ca.cert, /^tls\.crl: CRL 1 \(CN=Inspect Root CA, O=cancel-gateway demo\): expired \(nextUpdate /],
    ['CRL from the future', createCrl(ca, [], { thisUpdate: new Date(Date.now() + DAY), nextUpdate: new Date(Date.now() + 10 * DAY) }), ca.cert, /^tls\.crl: CRL 1 \(CN=Inspect Root CA, O=cancel-gateway demo\): not valid before /],
    ['CRL signed by another CA', createCrl(otherCa, []), ca.cert, /^tls\.crl: CRL 1 is issued by a CA that is not in tls\.clientCa/],
    ['CRL under the CA\'s name signed by another key', createCrl(sameNameCa, []), ca.cert, /^tls\.crl: CRL 1 \(CN=Inspect Root CA, O=cancel-gateway demo\): signature does not verify/],
    ['garbage CRL', '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n', ca.cert, /^tls\.crl: CRL 1 does not parse/],
    ['no CRL in the file', ca.cert, ca.cert, /^tls\.crl: holds no PEM CRL/],
    ['a CA of the bundle without a CRL', goodCrl, ca.cert + otherCa.cert, /^tls\.crl: no CRL signed by CN=Some Other CA/],
  ];
  for (const [name, crl, bundle, want] of cases) {
    const e = errors(inspect({ crl: file(crl), clientCa: file(bundle) }));
    t.ok(e.some((x) => want.test(x)), `${name}: ${e.join(' | ') || '(no error)'}`);
  }
  t.same(errors(inspect({ crl: file(goodCrl + createCrl(otherCa, [])), clientCa: file(ca.cert + otherCa.cert) })), [], 'one CRL per CA of the bundle: fine');
});

t.test('expiring soon: warnings, with the window configurable; no error', async (t) => {
  const f = inspect({ cert: file(soon.cert), key: file(soon.key), crl: file(createCrl(ca, [], { nextUpdate: new Date(Date.now() + 12 * 3_600_000) })) });
  t.same(errors(f), []);
  const w = warnings(f);
  t.ok(w.some((x) => /^tls\.cert: CN=localhost: expires on .* within 30 days$/.test(x)), w.join(' | '));
  t.ok(w.some((x) => /^tls\.crl: CRL 1 \(CN=Inspect Root CA, O=cancel-gateway demo\): nextUpdate .* is within 48 hours$/.test(x)), w.join(' | '));
  t.same(warnings(inspect({ cert: file(soon.cert), key: file(soon.key) }, {}, { certWarningDays: 5 })), [], 'a 5-day window: no warning for 10 days left');
  const late = warnings(inspect({}, {}, { now: Date.now() + 340 * DAY }));
  t.ok(late.length === 1 && /^tls\.cert: CN=localhost: expires on/.test(late[0]!), `a year-long certificate, 25 days before its end: ${late.join(' | ')}`);
});

t.test('publicBaseUrl host not in the server certificate: warning', async (t) => {
  const w = warnings(inspect({}, { publicBaseUrl: 'https://gateway.example.nhs.uk/STU3/1' }));
  t.ok(w.some((x) => /^tls\.cert: CN=localhost: does not name gateway\.example\.nhs\.uk/.test(x)), w.join(' | '));
});

t.test('upstream CA and client pair are checked likewise', async (t) => {
  const client = issueCertificate(ca, { commonName: 'gateway', kind: 'client' });
  const ok = inspect({}, { upstream: { url: 'https://127.0.0.1:9443', ca: file(ca.cert), cert: file(client.cert), key: file(client.key) } });
  t.same(errors(ok), []);
  const bad = errors(inspect({}, { upstream: { url: 'https://127.0.0.1:9443', ca: file(server.key), cert: file(client.cert), key: file(server.key) } }));
  t.ok(bad.some((x) => /^upstream\.ca: holds a private key/.test(x)), bad.join(' | '));
  t.ok(bad.some((x) => /^upstream\.key: does not match the certificate in upstream\.cert/.test(x)), bad.join(' | '));
  const pinned = issueCertificate(ca, { commonName: 'provider', kind: 'server' });
  t.ok(errors(inspect({}, { upstream: { url: 'https://127.0.0.1:9443', ca: file(pinned.cert) } })).some((x) => /upstream\.ca: CN=provider: not a CA/.test(x)), 'a non-CA, non-self-signed upstream.ca is refused');
});

t.test('a signed mode\'s jwt.jwksCa is checked as a trust bundle (review of stop 33)', async (t) => {
  const jwt = (ca: string) => ({ jwt: { mode: 'signed', jwksUrl: 'https://idp.example/jwks.json', jwksCa: ca, issuer: 'https://idp.example', audience: 'https://gw.example' } });
  t.same(errors(inspect({}, jwt(file(ca.cert)))), [], 'a CA certificate');
  t.ok(errors(inspect({}, jwt(file('this is not a certificate')))).some((x) => /^jwt\.jwksCa: /.test(x)), 'text that holds no certificate');
  t.ok(errors(inspect({}, jwt(file(leafOnly.cert)))).some((x) => /^jwt\.jwksCa: .*not a CA/.test(x)), 'a leaf issued by a CA');
});

t.test('CRL reader: dates, issuer and signature of a generated CRL', async (t) => {
  const next = new Date(Math.floor(Date.now() / 1000) * 1000 + 5 * DAY);
  const pem = createCrl(ca, ['0a0b', '0c'], { nextUpdate: next });
  const [der] = crlBlocks(pem);
  const crl = parseCrl(der!);
  t.equal(crl.nextUpdate, next.getTime());
  t.equal(crl.revokedCount, 2);
  t.equal(crl.signatureAlgorithm, '1.2.840.113549.1.1.11');
  t.equal(crlSignedBy(crl, new X509Certificate(ca.cert).publicKey), true);
  t.equal(crlSignedBy(crl, new X509Certificate(otherCa.cert).publicKey), false);
  t.throws(() => parseCrl(Buffer.concat([der!, Buffer.from([0])])), /trailing bytes/);
  t.throws(() => parseCrl(der!.subarray(0, der!.length - 3)), /DER/);
});

t.test('material summary, metric and warning for CRL nextUpdate', async (t) => {
  const next = Math.floor(Date.now() / 1000) * 1000 + 20 * 3_600_000;
  const crlFile = file(createCrl(ca, [], { nextUpdate: new Date(next) }));
  const m = loadTlsMaterial({ cert: file(server.cert), key: file(server.key), clientCa: file(ca.cert), crl: crlFile, minVersion: 'TLSv1.2', ciphers: 'AESGCM+EECDH', handshakeTimeoutMs: 1000, watch: false, expiryWarningDays: 30, crlWarningHours: 48 });
  t.same(m.crls, [{ issuer: 'CN=Inspect Root CA, O=cancel-gateway demo', nextUpdate: next }]);
  const metrics = createMetrics();
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (s: string) => lines.push(s) });
  reportCrlStatus(m.crls, { metrics, logger, now: Date.now(), warningHours: 48 });
  t.match(await metrics.scrape(), `cancel_gateway_crl_next_update_seconds{issuer="CN=Inspect Root CA, O=cancel-gateway demo"} ${next / 1000}`);
  t.equal(lines.length, 1);
  t.match(JSON.parse(lines[0]!), { level: 'warn', issuer: 'CN=Inspect Root CA, O=cancel-gateway demo', nextUpdate: new Date(next).toISOString() });
  lines.length = 0;
  reportCrlStatus(m.crls, { metrics, logger, now: next + 1, warningHours: 48 });
  t.match(JSON.parse(lines[0]!), { level: 'error', msg: /CRL expired/ });
  lines.length = 0;
  reportCrlStatus(m.crls, { metrics, logger, now: Date.now(), warningHours: 1 });
  t.same(lines, [], 'outside the window: no log line');
});

t.test('check-config: exits 1 listing the problem, 0 with a warning, --warn-days moves the window', async (t) => {
  const main = join(packageRoot, 'dist', 'src', 'main.js');
  const run = (cfg: string, ...args: string[]) => spawnSync(process.execPath, [main, 'check-config', '--config', cfg, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  const json = (tls: Record<string, string>) => {
    const f = join(dir, `config${n++}.json`);
    writeFileSync(f, JSON.stringify({
      // Free ports: check-config binds the listen and admin addresses (a demo on 8443 would warn).
      listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 },
      publicBaseUrl: 'https://localhost:8443/STU3/1', upstream: { url: 'http://127.0.0.1:9' }, spine: { providerAsids: ['918999198738'] },
      tls: { cert: file(server.cert), key: file(server.key), clientCa: file(ca.cert), ...tls },
    }));
    return f;
  };
  const bad = run(json({ key: file(otherCa.key) }));
  t.equal(bad.status, 1, bad.stderr);
  t.match(bad.stderr, /1 problem\(s\)\n {2}- tls\.key: does not match the certificate in tls\.cert/);
  t.notMatch(bad.stdout, /valid/);
  const warned = run(json({ cert: file(soon.cert), key: file(soon.key) }));
  t.equal(warned.status, 0, warned.stderr);
  t.match(warned.stdout, /valid \(standard nhs-booking/);
  t.match(warned.stderr, /warning: tls\.cert: CN=localhost: expires on .* within 30 days/);
  const narrow = run(json({ cert: file(soon.cert), key: file(soon.key) }), '--warn-days', '7');
  t.equal(narrow.status, 0);
  t.equal(narrow.stderr, '', 'no warning with a 7-day window');
  t.equal(run(json({}), '--warn-days', 'soon').status, 2, 'a bad --warn-days is a usage error');
  // Good TLS material, an unreachable store: exit 1 and never a "valid" line first.
  const pgDown = json({});
  writeFileSync(pgDown, JSON.stringify({ ...JSON.parse(readFileSync(pgDown, 'utf8')), store: { kind: 'postgres', url: 'postgres://gw:secret@127.0.0.1:1/gw', timeoutMs: 500 } }));
  const down = run(pgDown);
  t.equal(down.status, 1, down.stderr);
  t.notMatch(down.stdout, /valid/, 'not called valid when the store cannot be opened');
  t.match(down.stderr, /store \(postgres\): .*cannot reach the database \(ECONNREFUSED\)/);
  t.notMatch(down.stderr, /secret|SQLSTATE/);
  // Addresses start-up could not listen on: a name that does not resolve, an address not this machine's.
  const hosts = json({});
  writeFileSync(hosts, JSON.stringify({ ...JSON.parse(readFileSync(hosts, 'utf8')), listen: { host: 'no-such-host.invalid', port: 0 }, admin: { host: '192.0.2.7', port: 0 } }));
  const unbindable = run(hosts);
  t.equal(unbindable.status, 1, unbindable.stderr);
  t.notMatch(unbindable.stdout, /valid/, 'not called valid when start-up could not listen');
  t.match(unbindable.stderr, /2 problem\(s\)/);
  t.match(unbindable.stderr, /- listen\.host, listen\.port: cannot listen on 'no-such-host\.invalid' port 0 on this machine \((ENOTFOUND|EAI_AGAIN): the name does not resolve\)/);
  t.match(unbindable.stderr, /- admin\.host, admin\.port: cannot listen on '192\.0\.2\.7' port 0 on this machine \(EADDRNOTAVAIL: not an address of this machine\)/);
  // With the store unreachable too, every problem is listed in the one run.
  const both = json({});
  writeFileSync(both, JSON.stringify({ ...JSON.parse(readFileSync(hosts, 'utf8')), store: { kind: 'postgres', url: 'postgres://gw:secret@127.0.0.1:1/gw', timeoutMs: 500 } }));
  const all = run(both);
  t.equal(all.status, 1);
  t.match(all.stderr, /store \(postgres\): .*ECONNREFUSED/);
  t.match(all.stderr, /EADDRNOTAVAIL/, 'the listen problems as well as the store\'s');
  // A port in use (the gateway itself, when check-config runs in its pod) is a warning, not a problem.
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const inUse = json({});
  writeFileSync(inUse, JSON.stringify({ ...JSON.parse(readFileSync(inUse, 'utf8')), listen: { host: '127.0.0.1', port: (busy.address() as AddressInfo).port } }));
  const used = run(inUse);
  busy.close();
  t.equal(used.status, 0, used.stderr);
  t.match(used.stderr, /warning: listen: '127\.0\.0\.1' port \d+ is in use/);
  t.match(used.stdout, /valid/);
  // A privileged port without the privilege: only checkable when not root.
  if (process.getuid?.() === 0) t.comment('running as root: a port below 1024 can be bound, EACCES not exercised');
});

t.test('start-up refuses client-trust material that can never admit a client, as check-config does (review of stop 35)', async (t) => {
  const { startupTlsProblems } = await import('../../src/tls/inspect.js');
  const config = (tls: Record<string, string>) => buildConfig({
    publicBaseUrl: 'https://localhost:8443/STU3/1',
    tls: { cert: file(server.cert), key: file(server.key), clientCa: file(ca.cert), ...tls },
    upstream: { url: 'https://127.0.0.1:9443' },
    spine: { providerAsids: ['918999198738'] },
  });
  t.same(startupTlsProblems(config({ crl: file(goodCrl) })), [], 'good material: nothing');
  t.match(startupTlsProblems(config({ clientCa: file(leafOnly.cert) })), [/^tls\.clientCa: .* holds no CA certificate/], 'a leaf alone');
  t.match(startupTlsProblems(config({ crl: file(createCrl(otherCa, [])) })), [/^tls\.crl: .*: no CRL in it is issued by a CA of tls\.clientCa; with a CRL configured, every client would be refused/], 'a foreign CRL');
  t.same(startupTlsProblems(config({ crl: file(goodCrl + createCrl(otherCa, [])) })), [], 'one foreign CRL beside a good one: clients are admitted, check-config says the rest');
  // The process itself: exit 1 with the problem, before anything listens.
  const main = join(packageRoot, 'dist', 'src', 'main.js');
  const f = join(dir, `start${n++}.json`);
  writeFileSync(f, JSON.stringify({
    listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 },
    publicBaseUrl: 'https://localhost:8443/STU3/1', upstream: { url: 'http://127.0.0.1:9' }, spine: { providerAsids: ['918999198738'] },
    tls: { cert: file(server.cert), key: file(server.key), clientCa: file(leafOnly.cert) },
  }));
  const r = spawnSync(process.execPath, [main, '--config', f], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 20_000 });
  t.equal(r.status, 1, r.stderr);
  t.match(r.stderr, /1 configuration problem\(s\):\n {2}- tls\.clientCa: .* holds no CA certificate/);
});
