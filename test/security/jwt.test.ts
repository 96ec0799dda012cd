/**
 * Issue 13 item 12 (rulings 3, 26): duplicate JWT claims are refused like any JWT failure, `nbf` is
 * honoured in unsigned mode, and signed mode needs `jwt.issuer` and `jwt.audience` configured.
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, ConfigError } from '../../src/config.js';
import { STANDARDS } from '../../src/standards/index.js';
import { assertOutcome } from '../helpers/assert.js';
import { identityHeaders, pki, startHarness } from '../helpers/harness.js';
import { validClaims } from '../helpers/tokens.js';

const h = await startHarness();
t.teardown(() => h.close());
const id = h.provider.store.ids()[0]!;
const readScope = STANDARDS['nhs-booking'].interactions.find((i) => i.name === 'read')!.scope;
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
const header = b64(JSON.stringify({ alg: 'none', typ: 'JWT' }));

function readWith(token: string) {
  return h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: { ...identityHeaders('nhs-booking', 'read'), Authorization: `Bearer ${token}` } });
}

t.test('a duplicated claim (last one would win under JSON.parse) → 403, nothing forwarded', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const claims = validClaims({ standard: 'nhs-booking', scope: readScope, nowSeconds: now });
  const text = JSON.stringify(claims);
  const before = h.provider.requests.length;
  for (const [name, payload] of [
    ['requested_scope', text.replace('{', `{"requested_scope":"patient/appointment.write",`)],
    ['sub', text.replace('{', '{"sub":"someone-else",')],
    ['iss', text.slice(0, -1) + ',"iss":"https://attacker.example"}'],
  ] as const) {
    const r = await readWith(`${header}.${b64(payload)}.`);
    assertOutcome(t, r, 403, 'ACCESS DENIED');
    t.match(r.json.issue[0].diagnostics, /more than once/, `${name}: names the failure`);
  }
  t.equal(h.provider.requests.length, before, 'the provider saw nothing');
  t.equal((await readWith(`${header}.${b64(text)}.`)).status, 200, 'the same claims without a duplicate pass');
});

t.test('nbf is honoured in unsigned mode (with the clock skew)', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const token = (nbf: unknown) => `${header}.${b64(JSON.stringify({ ...validClaims({ standard: 'nhs-booking', scope: readScope, nowSeconds: now }), nbf }))}.`;
  const future = await readWith(token(now + 3600));
  assertOutcome(t, future, 403, 'ACCESS DENIED');
  t.match(future.json.issue[0].diagnostics, /nbf/);
  assertOutcome(t, await readWith(token('soon')), 403, 'ACCESS DENIED');
  t.equal((await readWith(token(now + 30))).status, 200, 'within the 60 s skew: accepted');
  t.equal((await readWith(token(now - 10))).status, 200, 'nbf in the past: accepted');
});

t.test('signed mode without jwt.issuer or jwt.audience is a configuration error', async (t) => {
  const p = pki();
  const base = {
    standard: 'nhs-booking', tls: { cert: p.files.serverCert, key: p.files.serverKey, clientCa: p.files.ca },
    upstream: { url: 'http://127.0.0.1:1' }, spine: { providerAsids: ['1'] }, publicBaseUrl: 'https://g.example/STU3/1',
  };
  // A public key set (check-config reads it: JSON, public keys only).
  const jwks = join(mkdtempSync(join(tmpdir(), 'gw-jwks-')), 'jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [{ ...generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }), kid: 'k1' }] }));
  for (const [label, jwt, wanted] of [
    ['neither', { mode: 'signed', jwksFile: jwks }, [/jwt\.issuer/, /jwt\.audience/]],
    ['no audience', { mode: 'signed', jwksFile: jwks, issuer: 'https://issuer.example' }, [/jwt\.audience/]],
    ['no issuer', { mode: 'signed', jwksFile: jwks, audience: 'https://g.example' }, [/jwt\.issuer/]],
  ] as const) {
    try {
      buildConfig({ ...base, jwt });
      t.fail(`${label}: accepted`);
    } catch (e) {
      t.ok(e instanceof ConfigError, `${label}: ConfigError`);
      for (const w of wanted) t.ok((e as ConfigError).problems.some((p) => w.test(p)), `${label}: names ${w}`);
    }
  }
  t.doesNotThrow(() => buildConfig({ ...base, jwt: { mode: 'signed', jwksFile: jwks, issuer: 'https://issuer.example', audience: 'https://g.example' } }));
});
