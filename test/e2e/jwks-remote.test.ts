/**
 * Signed mode with a remote key set (jwt.jwksUrl) while the identity provider misbehaves
 * (fourteenth review): once the cached set is stale, a hanging provider must not cost every
 * request its 5 s timeout; a key the last keys lack while the set cannot be refreshed is the key
 * set being unavailable (500, retry), not the token's fault (403); a configuration reload keeps the
 * keys already fetched; and the cause of a failure is logged. jose's cache ages by Date.now, so the
 * test moves Date.now forward instead of waiting.
 */
import t, { type Test } from 'tap';
import https from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issueCertificate } from '../../demo/certs.js';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { buildConfig } from '../../src/config.js';
import { STANDARDS } from '../../src/standards/index.js';
import { identityHeaders, startHarness, type Harness } from '../helpers/harness.js';
import { validClaims } from '../helpers/tokens.js';

const ISS = 'https://consumersupplier.thirdparty.nhs.uk/';
const AUD = 'https://providersupplier.thirdparty.nhs.uk/STU3/1';
const realNow = Date.now.bind(Date);
const realMonotonic = performance.now.bind(performance);
/** Time moved forward on both clocks; `wallBack` steps the wall clock alone back (NTP, a resumed VM). */
let offset = 0;
let wallBack = 0;
Date.now = () => realNow() + offset - wallBack;
performance.now = () => realMonotonic() + offset;
t.teardown(() => {
  Date.now = realNow;
  performance.now = realMonotonic;
});

type Mode = 'ok' | 'hang' | '500';
// The identity provider's key set server, on a CA of its own that only jwt.jwksCa trusts.
const idpCa = createCa({ commonName: 'Identity provider CA' });
const idpCert = issueCertificate(idpCa, { commonName: 'localhost', kind: 'server' });
const dir = mkdtempSync(join(tmpdir(), 'gw-jwks-ca-'));
const jwksCa = join(dir, 'idp-ca.pem');
writeFileSync(jwksCa, idpCa.cert);
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

async function keySetServer(): Promise<{ url: string; keys: unknown[]; mode: Mode; fetches: number; close(): Promise<void> }> {
  const state = { url: '', keys: [] as unknown[], mode: 'ok' as Mode, fetches: 0, close: async () => {} };
  const server = https.createServer({ cert: idpCert.cert, key: idpCert.key }, (req, res) => {
    state.fetches++;
    if (state.mode === 'hang') return; // accepts, never answers
    if (state.mode === '500') return void res.writeHead(500).end('down');
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `https://localhost:${(server.address() as AddressInfo).port}/jwks.json`;
  state.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return state;
}

async function keyPair(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  return { privateKey, kid, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

const scope = STANDARDS['nhs-booking'].interactions.find((i) => i.name === 'read')!.scope;
async function read(h: Harness, key: { privateKey: CryptoKey; kid: string }) {
  const claims = { ...validClaims({ standard: 'nhs-booking', scope, nowSeconds: Math.floor(Date.now() / 1000), audience: AUD }), iss: ISS };
  const token = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid }).sign(key.privateKey);
  return h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: { ...identityHeaders('nhs-booking', 'read'), Authorization: `Bearer ${token}` } });
}

async function gatewayOn(url: string, ca: string | null = jwksCa): Promise<Harness> {
  return startHarness({ config: { jwt: { mode: 'signed', jwksUrl: url, ...(ca ? { jwksCa: ca } : {}), algorithms: ['RS256'], issuer: ISS, audience: AUD } } });
}

/** A key set server publishing k1 (k2 made, not yet published) and a gateway on it that has verified k1 once. */
async function servingK1(t: Test) {
  offset = 0;
  const idp = await keySetServer();
  t.teardown(() => idp.close());
  const k1 = await keyPair('k1');
  const k2 = await keyPair('k2');
  idp.keys = [k1.jwk];
  const h = await gatewayOn(idp.url);
  t.teardown(() => h.close());
  t.equal((await read(h, k1)).status, 200);
  return { idp, k1, k2, h };
}

t.test('jwt.jwksCa: the key set server is trusted by the CA given, and only by it', async (t) => {
  offset = 0;
  const idp = await keySetServer();
  t.teardown(() => idp.close());
  const k1 = await keyPair('k1');
  idp.keys = [k1.jwk];
  const without = await gatewayOn(idp.url, null);
  t.teardown(() => without.close());
  const refused = await read(without, k1);
  t.equal(refused.status, 500, 'the system store does not know the CA: the key set is unavailable (500, never 403) ' + refused.body.toString().slice(0, 300));
  t.ok(without.logs.some((l) => l.includes('the JWT key set could not be fetched') && /"reason":"[A-Z_]+"/.test(l)), 'and the log names the cause, e.g. a TLS code');
  const h = await gatewayOn(idp.url);
  t.teardown(() => h.close());
  t.equal((await read(h, k1)).status, 200, 'with jwt.jwksCa');
});

t.test('a stale key set and a hanging identity provider: the last keys answer at once, one refresh runs behind them', async (t) => {
  offset = 0;
  const idp = await keySetServer();
  t.teardown(() => idp.close());
  const k1 = await keyPair('k1');
  idp.keys = [k1.jwk];
  const h = await gatewayOn(idp.url);
  t.teardown(() => h.close());
  t.equal((await read(h, k1)).status, 200);
  t.equal(idp.fetches, 1);
  offset = 11 * 60_000; // past jose's 10-minute cache
  idp.mode = 'hang';
  for (let i = 0; i < 3; i++) {
    const t0 = realNow();
    t.equal((await read(h, k1)).status, 200, `request ${i}: verified with the keys last fetched`);
    t.ok(realNow() - t0 < 2000, `request ${i} did not wait for the provider (${realNow() - t0} ms)`);
  }
  t.equal(idp.fetches, 2, 'one refresh, not one per request');
  offset = 0;
});

t.test('a new key while the set cannot be refreshed is 500 (retry), not 403; a configuration reload keeps the fetched keys; the cause is logged', async (t) => {
  const { idp, k1, k2, h } = await servingK1(t);

  idp.keys = [k1.jwk, k2.jwk];
  idp.mode = '500';
  offset = 31_000; // past jose's 30 s cooldown: an unknown kid makes it fetch again, which fails
  const rotated = await read(h, k2);
  t.equal(rotated.status, 500, 'the key set is unavailable: the client may retry');
  t.equal(rotated.json.issue[0].details.coding[0].code, 'INTERNAL_SERVER_ERROR');
  t.ok(h.logs.some((l) => l.includes('"level":"warn"') && l.includes('the JWT key set could not be fetched')), 'the failure is logged');
  t.notOk(h.logs.some((l) => l.includes('eyJ')), 'never a token');

  t.ok(h.gateway.reloadConfig(buildConfig(JSON.parse(JSON.stringify({ ...h.config, upstream: { ...h.config.upstream, timeoutMs: 2500 } })))), 'reloaded');
  t.equal((await read(h, k1)).status, 200, 'after the reload the keys already fetched still verify');

  idp.mode = 'ok';
  offset = 11 * 60_000 + 31_000;
  // Stale: the last keys answer and one refresh runs; once it has brought k2, k2 verifies.
  const first = await read(h, k2);
  t.ok(first.status === 200 || first.status === 500, `during the refresh (${first.status})`);
  let status = first.status;
  for (let i = 0; i < 50 && status !== 200; i++) status = (await read(h, k2)).status;
  t.equal(status, 200, 'the rotated key, once the provider is back');
  offset = 0;
});

t.test('a changed jwt.jwksCa keeps the keys already fetched; an unknown kid while the provider hangs makes one fetch, not one per request', async (t) => {
  offset = 0;
  const idp = await keySetServer();
  t.teardown(() => idp.close());
  const k1 = await keyPair('k1');
  idp.keys = [k1.jwk];
  const caFile = join(dir, 'rotating-ca.pem');
  writeFileSync(caFile, idpCa.cert);
  const h = await gatewayOn(idp.url, caFile);
  t.teardown(() => h.close());
  t.equal((await read(h, k1)).status, 200);
  // The CA file becomes a bundle (the current CA and the next), a normal rotation step; then a reload.
  writeFileSync(caFile, idpCa.cert + createCa({ commonName: 'Next identity provider CA' }).cert);
  idp.mode = '500';
  t.ok(h.gateway.reloadConfig(buildConfig(JSON.parse(JSON.stringify({ ...h.config, upstream: { ...h.config.upstream, timeoutMs: 2600 } })))), 'reloaded');
  t.equal((await read(h, k1)).status, 200, 'the keys fetched before the change still verify');

  idp.mode = 'hang';
  offset = 31_000; // past the pause after a successful fetch
  const before = idp.fetches;
  const statuses: number[] = [];
  for (const kid of ['u1', 'u2', 'u3']) statuses.push((await read(h, { privateKey: k1.privateKey, kid })).status);
  t.same(statuses, [500, 500, 500], 'unknown keys while the set cannot be fetched: unavailable, retry');
  t.equal(idp.fetches - before, 1, 'one fetch for all of them');
  const t0 = realNow();
  t.equal((await read(h, { privateKey: k1.privateKey, kid: 'u4' })).status, 500);
  t.ok(realNow() - t0 < 2000, `a later one does not wait for the provider (${realNow() - t0} ms)`);
  offset = 0;
});

t.test('a token without kid signed by a key published since the last fetch makes one paced fetch, then verifies; a wall clock stepped back does not stop fetches', async (t) => {
  const { idp, k1, k2, h } = await servingK1(t);
  idp.keys = [k1.jwk, k2.jwk];
  offset = 5 * 60_000; // the set is not stale yet, and the pause after the fetch is over
  wallBack = 60 * 60_000; // and the wall clock was stepped back an hour
  const before = idp.fetches;
  const claims = { ...validClaims({ standard: 'nhs-booking', scope, nowSeconds: Math.floor(Date.now() / 1000), audience: AUD }), iss: ISS };
  const kidless = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT' }).sign(k2.privateKey);
  const r = await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: { ...identityHeaders('nhs-booking', 'read'), Authorization: `Bearer ${kidless}` } });
  t.equal(r.status, 200, 'verified by the newly published key');
  t.equal(idp.fetches - before, 1, 'after one fetch');
  t.equal((await read(h, { privateKey: k2.privateKey, kid: 'k2' })).status, 200, 'and by kid');
  const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT' }).sign((await keyPair('x')).privateKey);
  const refused = await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: { ...identityHeaders('nhs-booking', 'read'), Authorization: `Bearer ${forged}` } });
  t.equal(refused.status, 403, 'a token no published key signed is refused');
  t.equal(idp.fetches - before, 1, 'without another fetch (within 30 s of the last)');
  offset = 0;
  wallBack = 0;
});
