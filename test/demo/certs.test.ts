import t, { type Test } from 'tap';
import tls from 'node:tls';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createCa, createCrl, ensureDevCertificates, issueCertificate, type CertAuthority, type Pem } from '../../demo/certs.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

interface Outcome {
  /** Server emitted 'secureConnection' with socket.authorized === true and the round trip worked. */
  accepted: boolean;
  serverAuthorized: boolean | undefined;
  serverAuthorizationError: string | undefined;
  tlsClientError: { code?: string; message: string } | undefined;
  clientSecureConnect: boolean;
  clientError: { code?: string; message: string } | undefined;
  reply: string;
}

interface ServerOpts {
  trust?: CertAuthority;
  crl?: string;
  serverPem?: Pem;
  /** Only for the diagnostics test: the gateway itself always runs with true. */
  rejectUnauthorized?: boolean;
}

const ca = createCa();
const server = issueCertificate(ca, { commonName: 'localhost', kind: 'server' });

/** mTLS server as the gateway runs it: requestCert + rejectUnauthorized, trusting `trust`. */
async function startServer(
  tt: Test,
  opts: ServerOpts = {},
): Promise<{ port: number; events: { tlsClientError?: Error & { code?: string }; authorized?: boolean; authorizationError?: string }[] }> {
  const events: { tlsClientError?: Error & { code?: string }; authorized?: boolean; authorizationError?: string }[] = [];
  const srv = tls.createServer({
    cert: (opts.serverPem ?? server).cert,
    key: (opts.serverPem ?? server).key,
    ca: (opts.trust ?? ca).cert,
    ...(opts.crl ? { crl: opts.crl } : {}),
    requestCert: true,
    rejectUnauthorized: opts.rejectUnauthorized ?? true,
  });
  srv.on('secureConnection', (sock) => {
    events.push({ authorized: sock.authorized, authorizationError: sock.authorizationError?.toString() });
    sock.on('error', () => {});
    if (!sock.authorized) return void sock.destroy();
    sock.end('pong');
  });
  srv.on('tlsClientError', (err) => events.push({ tlsClientError: err }));
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const sockets = new Set<import('node:net').Socket>();
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  tt.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  });
  return { port: (srv.address() as AddressInfo).port, events };
}

async function attempt(
  tt: Test,
  client: Pem | undefined,
  serverOpts: ServerOpts = {},
  clientCa: string = ca.cert,
): Promise<Outcome> {
  const { port, events } = await startServer(tt, serverOpts);
  let clientSecureConnect = false;
  let clientError: Outcome['clientError'];
  let reply = '';
  await new Promise<void>((resolve) => {
    const sock = tls.connect({
      host: '127.0.0.1',
      port,
      ca: clientCa,
      ...(client ? { cert: client.cert, key: client.key } : {}),
    });
    const timer = setTimeout(() => sock.destroy(), 5000);
    sock.on('secureConnect', () => {
      clientSecureConnect = true;
      sock.write('ping');
    });
    sock.on('data', (d) => (reply += d.toString()));
    sock.on('error', (e: Error & { code?: string }) => (clientError ??= { code: e.code, message: e.message }));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  // Let the server-side events land (tlsClientError can trail the client's close).
  await new Promise((r) => setTimeout(r, 50));
  const sc = events.find((e) => e.authorized !== undefined);
  const ce = events.find((e) => e.tlsClientError)?.tlsClientError;
  const outcome: Outcome = {
    accepted: sc?.authorized === true && reply === 'pong',
    serverAuthorized: sc?.authorized,
    serverAuthorizationError: sc?.authorizationError,
    tlsClientError: ce ? { code: ce.code, message: ce.message } : undefined,
    clientSecureConnect,
    clientError,
    reply,
  };
  tt.comment(
    `server tlsClientError=${ce ? `${ce.code ?? '-'}: ${ce.message.trim()}` : 'none'}; ` +
      `server secureConnection=${sc ? `authorized=${sc.authorized} authorizationError=${sc.authorizationError ?? '-'}` : 'none'}; ` +
      `client secureConnect=${clientSecureConnect}; client error=${clientError ? `${clientError.code ?? '-'}: ${clientError.message}` : 'none'}; reply=${JSON.stringify(reply)}`,
  );
  return outcome;
}

function refused(tt: Test, o: Outcome): void {
  tt.notOk(o.accepted, 'connection refused');
  tt.not(o.serverAuthorized, true, 'server never saw an authorized socket');
  tt.not(o.reply, 'pong', 'no application data reached the client');
}

t.test('valid client cert is accepted', async (t) => {
  const client = issueCertificate(ca, { commonName: 'client-ok', kind: 'client' });
  const o = await attempt(t, client);
  t.ok(o.clientSecureConnect, 'client secureConnect');
  t.equal(o.serverAuthorized, true, 'server socket.authorized');
  t.ok(o.accepted);
  t.equal(o.tlsClientError, undefined);
});

t.test('no client cert is refused', async (t) => {
  refused(t, await attempt(t, undefined));
});

t.test('cert from another CA is refused', async (t) => {
  const other = createCa({ commonName: 'other CA' });
  refused(t, await attempt(t, issueCertificate(other, { commonName: 'intruder', kind: 'client' })));
});

t.test('expired cert is refused', async (t) => {
  const client = issueCertificate(ca, {
    commonName: 'expired',
    kind: 'client',
    notBefore: new Date(Date.now() - 30 * DAY),
    notAfter: new Date(Date.now() - DAY),
  });
  refused(t, await attempt(t, client));
});

t.test('not-yet-valid cert is refused', async (t) => {
  const client = issueCertificate(ca, {
    commonName: 'future',
    kind: 'client',
    notBefore: new Date(Date.now() + DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
  });
  refused(t, await attempt(t, client));
});

t.test('CRL: revoked serial refused, other cert from same CA accepted', async (t) => {
  const revoked = issueCertificate(ca, { commonName: 'revoked', kind: 'client', serialNumber: '1a2b3c4d' });
  const good = issueCertificate(ca, { commonName: 'good', kind: 'client' });
  t.equal(revoked.serialNumber, '1a2b3c4d');
  const crl = createCrl(ca, [revoked.serialNumber, '7f00000000000001']);
  t.match(crl, /^-----BEGIN X509 CRL-----\r?\n/);
  refused(t, await attempt(t, revoked, { crl }));
  const o = await attempt(t, good, { crl });
  t.ok(o.accepted, 'non-revoked cert accepted with the same CRL');
});

t.test('CRL with no revoked certificates still lets valid certs in', async (t) => {
  const crl = createCrl(ca, []);
  const o = await attempt(t, issueCertificate(ca, { commonName: 'good', kind: 'client' }), { crl });
  t.ok(o.accepted);
});

t.test('client cert with extKeyUsage codeSigning is refused', async (t) => {
  const client = issueCertificate(ca, { commonName: 'codesigner', kind: 'client', extKeyUsage: 'codeSigning' });
  refused(t, await attempt(t, client));
});

t.test('client cert with extKeyUsage serverAuth only is refused', async (t) => {
  const client = issueCertificate(ca, { commonName: 'server-as-client', kind: 'client', extKeyUsage: 'serverAuth' });
  refused(t, await attempt(t, client));
});

// With rejectUnauthorized: true Node destroys the socket after a failed chain check without
// surfacing why (tlsClientError is only ECONNRESET "socket hang up"). The reason is only
// observable as socket.authorizationError when rejectUnauthorized is false and the app rejects.
t.test('diagnostics: authorizationError per refusal (rejectUnauthorized: false)', async (t) => {
  const past = { notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) };
  const future = { notBefore: new Date(Date.now() + DAY), notAfter: new Date(Date.now() + 30 * DAY) };
  const revoked = issueCertificate(ca, { commonName: 'revoked', kind: 'client' });
  const crl = createCrl(ca, [revoked.serialNumber]);
  const cases: [string, Pem | undefined, string, ServerOpts?][] = [
    ['no cert', undefined, 'UNABLE_TO_GET_ISSUER_CERT'],
    ['other CA', issueCertificate(createCa({ commonName: 'other CA' }), { commonName: 'x', kind: 'client' }), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['expired', issueCertificate(ca, { commonName: 'x', kind: 'client', ...past }), 'CERT_HAS_EXPIRED'],
    ['not yet valid', issueCertificate(ca, { commonName: 'x', kind: 'client', ...future }), 'CERT_NOT_YET_VALID'],
    ['revoked', revoked, 'CERT_REVOKED', { crl }],
    ['codeSigning', issueCertificate(ca, { commonName: 'x', kind: 'client', extKeyUsage: 'codeSigning' }), 'INVALID_PURPOSE'],
  ];
  for (const [name, client, expected, extra] of cases) {
    t.comment(`case: ${name}`);
    const o = await attempt(t, client, { ...extra, rejectUnauthorized: false });
    t.equal(o.serverAuthorized, false, `${name}: not authorized`);
    t.equal(o.serverAuthorizationError, expected, `${name}: authorizationError`);
    t.notOk(o.accepted);
  }
});

t.test('openssl parses and verifies the CRL', async (t) => {
  const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
  if (!hasOpenssl) {
    t.comment('openssl not installed: CRL parse assertion not run');
    return;
  }
  const dir = t.testdir({});
  const crlPath = join(dir, 'crl.pem');
  const caPath = join(dir, 'ca.pem');
  writeFileSync(crlPath, createCrl(ca, ['1a2b3c4d', '05']));
  writeFileSync(caPath, ca.cert);
  const text = execFileSync('openssl', ['crl', '-in', crlPath, '-noout', '-text'], { encoding: 'utf8' });
  t.match(text, /Version 2/);
  t.match(text, /sha256WithRSAEncryption/);
  t.match(text, /Serial Number: 1A2B3C4D/i);
  t.match(text, /Serial Number: 05/i);
  t.match(text, /Authority Key Identifier/);
  const verify = spawnSync('openssl', ['crl', '-in', crlPath, '-noout', '-CAfile', caPath], { encoding: 'utf8' });
  t.match(verify.stdout + verify.stderr, /verify OK/, 'openssl verifies the CRL signature against the CA');

  const emptyPath = join(dir, 'empty.pem');
  writeFileSync(emptyPath, createCrl(ca, []));
  const emptyText = execFileSync('openssl', ['crl', '-in', emptyPath, '-noout', '-text'], { encoding: 'utf8' });
  t.match(emptyText, /No Revoked Certificates/);
});

t.test('ensureDevCertificates writes files and reuses them', async (t) => {
  const dir = join(t.testdir({}), 'certs');
  const first = ensureDevCertificates(dir);
  const keys = ['caCert', 'caKey', 'serverCert', 'serverKey', 'clientCert', 'clientKey'] as const;
  const contents1 = keys.map((k) => readFileSync(first[k], 'utf8'));
  t.match(contents1[0], /BEGIN CERTIFICATE/);
  t.match(contents1[1], /PRIVATE KEY/);
  const second = ensureDevCertificates(dir);
  t.same(second, first, 'same paths');
  t.same(keys.map((k) => readFileSync(second[k], 'utf8')), contents1, 'same file contents (reused)');

  // The dev material works end to end.
  const devCa = {
    cert: contents1[0]!,
    key: contents1[1]!,
  };
  const o = await attempt(
    t,
    { cert: contents1[4]!, key: contents1[5]! },
    { trust: devCa as CertAuthority, serverPem: { cert: contents1[2]!, key: contents1[3]! } },
    devCa.cert,
  );
  t.ok(o.accepted, 'dev client cert accepted by dev server cert');

  // Material that expires within 30 days is regenerated.
  const shortCa = createCa({ notAfter: new Date(Date.now() + 10 * DAY) });
  writeFileSync(first.caCert, shortCa.cert);
  writeFileSync(first.caKey, shortCa.key);
  ensureDevCertificates(dir);
  t.not(readFileSync(first.caCert, 'utf8'), shortCa.cert, 'short-lived CA replaced');
  t.not(readFileSync(first.serverCert, 'utf8'), contents1[2], 'server cert reissued');
});
