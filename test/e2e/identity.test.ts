/**
 * Issue 3 — identity end to end: Spine headers (ruling 2) and the JWT (ruling 3) on every request,
 * over real mTLS through the real gateway (nhs-booking, default config) in front of the recording
 * demo provider. Every row asserts the status, the Spine code, the issue expression, and whether the
 * provider saw the request; JWT rows also assert that the diagnostics name the claim and echo
 * neither the token nor any claim value (ruling 19).
 *
 * The gateway clock is pinned for each row (h.clock), so the timing boundaries (skew, future iat)
 * are exact and cannot flake on a second tick.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import { assertOutcome } from '../helpers/assert.js';
import { PROVIDER_ASID, cancelRequest, identityHeaders, seen, startHarness, type Harness, type Reply } from '../helpers/harness.js';
import { unsignedToken, validClaims } from '../helpers/tokens.js';
import { STANDARDS } from '../../src/standards/index.js';

type Headers = Record<string, string | string[]>;
type Claims = Record<string, unknown>;

const STD = 'nhs-booking' as const;
const interaction = (name: string) => STANDARDS[STD].interactions.find((i) => i.name === name)!;
const READ = interaction('read');
const CANCEL = interaction('cancel');
const SLOT_SEARCH = interaction('slot-search');
const READ_ID = 'appt-1';
const READ_PATH = `/STU3/1/Appointment/${READ_ID}`;

const h = await startHarness({ standard: STD });
t.teardown(() => h.close());

/** Valid read-scope claims at `now`, then changed by `mutate`. */
function claimsAt(now: number, mutate?: (c: Claims) => void, scope = READ.scope): Claims {
  const c = validClaims({ standard: STD, scope, nowSeconds: now });
  mutate?.(c);
  return c;
}

/** Spine headers of the read interaction plus `Authorization: Bearer <token>` (no header when token is null). */
function readHeaders(token: string | null, spine: Record<string, string | string[] | null> = {}): Headers {
  const base: Headers = identityHeaders(STD, 'read');
  delete base['Authorization'];
  if (token !== null) base['Authorization'] = `Bearer ${token}`;
  for (const [k, v] of Object.entries(spine)) {
    if (v === null) delete base[k];
    else base[k] = v;
  }
  return base;
}

/** Every string/number leaf of a claim set that could identify a value (the fixed words the rules name are excluded). */
function claimValues(claims: Claims | undefined): string[] {
  const named = new Set(['directcare', 'Device', 'Organization', 'Practitioner']);
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string' || typeof v === 'number') {
      const s = String(v);
      if (s.length >= 4 && !named.has(s)) out.push(s);
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(claims);
  return out;
}

/** Pin the gateway clock to `now` (+0.5 s inside the second) for the duration of `fn`. */
async function atClock<T>(hh: Harness, now: number, fn: () => Promise<T>): Promise<T> {
  const original = hh.clock.now;
  hh.clock.now = () => now * 1000 + 500;
  try {
    return await fn();
  } finally {
    hh.clock.now = original;
  }
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

type Spine = 'MISSING_OR_INVALID_HEADER' | 'BAD_REQUEST' | 'ACCESS DENIED';
interface Built { headers: Headers; token?: string; claims?: Claims }
interface Row {
  name: string;
  build: (now: number) => Built | Promise<Built>;
  status: 200 | 400 | 403;
  spine?: Spine;
  /** The issue expression; for JWT rows `jwt.<claim>`, and the diagnostics must name <claim>. */
  expression?: string;
  /** Extra pattern the diagnostics must match. */
  diagnostics?: RegExp;
  /** The FHIR issue code, when the row pins it. */
  issue?: string;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** One row: a real GET read over mTLS; rejected rows leave the provider untouched, accepted rows reach it. */
async function runRow(tt: Test, hh: Harness, row: Row, path = READ_PATH): Promise<Reply> {
  const now = nowSeconds();
  const built = await row.build(now);
  return atClock(hh, now, async () => {
    const before = hh.provider.requests.length;
    const r = await hh.request({ method: 'GET', path, headers: built.headers });
    if (row.status === 200) {
      tt.equal(r.status, 200, `status 200 (${r.body.toString().slice(0, 200)})`);
      tt.equal(r.json?.resourceType, 'Appointment', 'the appointment came back');
      tt.equal(hh.provider.requests.length, before + 1, 'the provider saw the request');
      const last = hh.provider.requests.at(-1);
      tt.equal(last?.method, 'GET');
      tt.equal(last?.url, path.replace('/STU3/1', ''), 'forwarded to the provider path');
      return r;
    }
    assertOutcome(tt, r, row.status, row.spine!, { expression: row.expression, ...(row.issue ? { issue: row.issue } : {}) });
    tt.equal(hh.provider.requests.length, before, 'the provider saw nothing');
    if (row.expression === 'http.Authorization' || row.expression?.startsWith('jwt.')) {
      // NHS Booking §b: bearer-token errors follow RFC 6750 §3.1 (review of stop 35).
      const challenge = row.expression === 'http.Authorization'
        ? (/^missing/.test(row.name) ? /^Bearer$/ : /^Bearer error="invalid_request"$/)
        : row.expression === 'jwt.requested_scope' ? /^Bearer error="insufficient_scope", scope="patient\/appointment\.read"$/ : /^Bearer error="invalid_token"$/;
      tt.match(r.headers['www-authenticate'], challenge, 'the RFC 6750 challenge');
    }
    const diagnostics = ((r.json?.issue ?? []) as Array<{ diagnostics?: string }>).map((i) => i.diagnostics ?? '').join('\n');
    if (row.expression?.startsWith('jwt.')) {
      const claim = row.expression.slice('jwt.'.length);
      tt.match(diagnostics, new RegExp(escape(claim)), `diagnostics name ${claim}`);
      if (built.token) {
        tt.notOk(diagnostics.includes(built.token), 'diagnostics do not contain the token');
        tt.notOk(r.body.toString().includes(built.token), 'the answer does not contain the token');
        for (const part of built.token.split('.').filter((p) => p.length >= 8)) {
          tt.notOk(r.body.toString().includes(part), 'the answer contains no token segment');
        }
      }
      const body = r.body.toString();
      const echoed = claimValues(built.claims).filter((v) => body.includes(v));
      tt.same(echoed, [], 'the answer echoes no claim value');
    }
    if (row.diagnostics) tt.match(diagnostics, row.diagnostics);
    return r;
  });
}

/** A row whose token is the unsigned form of valid read claims changed by `mutate`. */
function claimRow(name: string, mutate: (c: Claims, now: number) => void, status: 200 | 403, claim?: string): Row {
  return {
    name,
    status,
    ...(status === 403 ? { spine: 'ACCESS DENIED' as const, expression: `jwt.${claim}` } : {}),
    build(now) {
      const claims = claimsAt(now, (c) => mutate(c, now));
      const token = unsignedToken(claims);
      return { headers: readHeaders(token), token, claims };
    },
  };
}

const REQUIRED = ['iss', 'sub', 'aud', 'exp', 'iat', 'reason_for_request', 'requested_scope', 'requesting_device', 'requesting_organization'];

/** A valid unsigned token, padded (an extra claim) to exactly `bytes` long. */
function paddedToken(now: number, bytes: number): { token: string; claims: Claims } {
  const claims = claimsAt(now);
  // Each 3 padding characters add 4 to the token; start just below and step up.
  const start = Math.max(0, Math.floor(((bytes - unsignedToken(claims).length) * 3) / 4) - 24);
  for (let pad = start; pad < start + 64; pad++) {
    claims['padding'] = 'a'.repeat(pad);
    const token = unsignedToken(claims);
    if (token.length === bytes) return { token, claims };
  }
  throw new Error(`no padding gives a token of ${bytes} bytes`);
}

const rows: Row[] = [
  claimRow('baseline: valid read-scope token -> 200', () => {}, 200),
  ...REQUIRED.map((claim) => claimRow(`missing ${claim} -> 403`, (c) => { delete c[claim]; }, 403, claim)),
  // Wrong types.
  claimRow('exp as a string -> 403', (c) => { c['exp'] = String(c['exp']); }, 403, 'exp'),
  claimRow('iat as a float -> 403', (c) => { c['iat'] = (c['iat'] as number) + 0.5; }, 403, 'iat'),
  claimRow('requesting_device as a string -> 403', (c) => { c['requesting_device'] = 'CONS-APP-4 device'; }, 403, 'requesting_device'),
  // Wrong values.
  claimRow("reason_for_request 'research' -> 403", (c) => { c['reason_for_request'] = 'research'; }, 403, 'reason_for_request'),
  claimRow('scope of another interaction (slot search) -> 403', (c) => { c['requested_scope'] = SLOT_SEARCH.scope; }, 403, 'requested_scope'),
  claimRow('write scope on a read -> 403', (c) => { c['requested_scope'] = CANCEL.scope; }, 403, 'requested_scope'),
  claimRow('organization without the ODS identifier -> 403', (c) => {
    const org = c['requesting_organization'] as { identifier: unknown[] };
    org.identifier = [{ system: 'https://consumersupplier.com/Id/other-org-code', value: 'A1001' }];
  }, 403, 'requesting_organization.identifier'),
  claimRow('device without model -> 403', (c) => { delete (c['requesting_device'] as Claims)['model']; }, 403, 'requesting_device.model'),
  // Lifetime: exp - iat exactly 300.
  claimRow('exp - iat = 299 -> 403', (c) => { c['exp'] = (c['iat'] as number) + 299; }, 403, 'exp'),
  claimRow('exp - iat = 301 -> 403', (c) => { c['exp'] = (c['iat'] as number) + 301; }, 403, 'exp'),
  // Expiry with the 60 s skew (clock pinned: exact).
  claimRow('expired 61 s ago (beyond the 60 s skew) -> 403', (c, now) => { c['exp'] = now - 61; c['iat'] = now - 361; }, 403, 'exp'),
  claimRow('expired 30 s ago (within the skew) -> 200', (c, now) => { c['exp'] = now - 30; c['iat'] = now - 330; }, 200),
  claimRow('expired exactly 60 s ago (skew boundary) -> 200', (c, now) => { c['exp'] = now - 60; c['iat'] = now - 360; }, 200),
  // iat in the future: tolerated up to 300 s.
  claimRow('iat 200 s in the future -> 200', (c, now) => { c['iat'] = now + 200; c['exp'] = now + 500; }, 200),
  claimRow('iat 300 s in the future (boundary) -> 200', (c, now) => { c['iat'] = now + 300; c['exp'] = now + 600; }, 200),
  claimRow('iat 301 s in the future -> 403', (c, now) => { c['iat'] = now + 301; c['exp'] = now + 601; }, 403, 'iat'),
  claimRow('iat 400 s in the future -> 403', (c, now) => { c['iat'] = now + 400; c['exp'] = now + 700; }, 403, 'iat'),
  // Practitioner.
  claimRow('sub different from requesting_practitioner.id -> 403', (c) => { c['sub'] = '99999'; }, 403, 'sub'),
  claimRow('requesting_practitioner absent -> 200', (c) => { delete c['requesting_practitioner']; }, 200),
  claimRow('requesting_practitioner without its sds-role-profile-id -> 403', (c) => { const p = c['requesting_practitioner'] as { identifier: Array<{ system: string }> }; p.identifier = p.identifier.filter((i) => !i.system.endsWith('/sds-role-profile-id')); }, 403, 'requesting_practitioner.identifier.sds-role-profile-id'),
  claimRow('requesting_practitioner without a consumer-local identifier -> 403', (c) => { const p = c['requesting_practitioner'] as { identifier: Array<{ system: string }> }; p.identifier = p.identifier.filter((i) => i.system.startsWith('https://fhir.nhs.uk/')); }, 403, 'requesting_practitioner.identifier'),
  // Token form.
  {
    name: 'HS256-signed token in unsigned mode -> 403',
    status: 403, spine: 'ACCESS DENIED', expression: 'jwt.signature',
    async build(now) {
      const claims = claimsAt(now);
      const token = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('a-shared-secret-of-32-bytes-long!'));
      return { headers: readHeaders(token), token, claims };
    },
  },
  {
    name: 'RS256-signed token in unsigned mode -> 403',
    status: 403, spine: 'ACCESS DENIED', expression: 'jwt.signature',
    async build(now) {
      const claims = claimsAt(now);
      const { privateKey } = await generateKeyPair('RS256');
      const token = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT' }).sign(privateKey);
      return { headers: readHeaders(token), token, claims };
    },
  },
  {
    name: 'token of exactly 8192 bytes (the limit) -> 200',
    status: 200,
    build(now) {
      const { token, claims } = paddedToken(now, 8192);
      return { headers: readHeaders(token), token, claims };
    },
  },
  {
    // Valid claims, only too long: the size is the only reason to refuse it, before any decoding.
    name: 'token of 8193 bytes (over 8 KiB) -> 403 without decoding',
    status: 403, spine: 'ACCESS DENIED', expression: 'http.Authorization', diagnostics: /too large/,
    build(now) {
      const { token, claims } = paddedToken(now, 8193);
      return { headers: readHeaders(token), token, claims };
    },
  },
  {
    name: "payload not base64url (contains '*') -> 403",
    status: 403, spine: 'ACCESS DENIED', expression: 'jwt.payload', diagnostics: /base64url/,
    build(now) {
      const claims = claimsAt(now);
      const [hd, pl] = unsignedToken(claims).split('.') as [string, string];
      const token = `${hd}.${pl.slice(0, 10)}*${pl.slice(10)}.`;
      return { headers: readHeaders(token), token, claims };
    },
  },
  {
    name: "extra JOSE header key ({alg:'none',typ:'JWT',kid:'x'}) -> 403",
    status: 403, spine: 'ACCESS DENIED', expression: 'jwt.header',
    build(now) {
      const claims = claimsAt(now);
      const token = unsignedToken(claims, { alg: 'none', typ: 'JWT', kid: 'x' });
      return { headers: readHeaders(token), token, claims };
    },
  },
  {
    name: 'missing Authorization header -> 403',
    status: 403, spine: 'ACCESS DENIED', expression: 'http.Authorization',
    build: () => ({ headers: readHeaders(null) }),
  },
  {
    name: "'Basic xyz' scheme -> 403",
    status: 403, spine: 'ACCESS DENIED', expression: 'http.Authorization',
    build: () => {
      const headers = readHeaders(null);
      headers['Authorization'] = 'Basic xyz';
      return { headers };
    },
  },
  // Spine headers (ruling 2): they are checked before the JWT.
  ...(['Ssp-TraceID', 'Ssp-From', 'Ssp-To', 'Ssp-InteractionID'] as const).map((name): Row => ({
    name: `${name} missing -> 400`,
    status: 400, spine: 'MISSING_OR_INVALID_HEADER', expression: `http.${name}`, issue: 'required',
    build: (now) => ({ headers: readHeaders(unsignedToken(claimsAt(now)), { [name]: null }) }),
  })),
  ...(['Ssp-TraceID', 'Ssp-From', 'Ssp-To', 'Ssp-InteractionID'] as const).map((name): Row => ({
    name: `${name} present but empty -> 400 (invalid, not required)`,
    status: 400, spine: 'MISSING_OR_INVALID_HEADER', expression: `http.${name}`, issue: 'invalid',
    build: (now) => ({ headers: readHeaders(unsignedToken(claimsAt(now)), { [name]: '' }) }),
  })),
  {
    name: 'Ssp-TraceID not a UUID -> 400',
    status: 400, spine: 'MISSING_OR_INVALID_HEADER', expression: 'http.Ssp-TraceID', issue: 'invalid',
    build: (now) => ({ headers: readHeaders(unsignedToken(claimsAt(now)), { 'Ssp-TraceID': 'not-a-uuid-0000' }) }),
  },
  {
    name: 'Ssp-From with letters -> 400',
    status: 400, spine: 'MISSING_OR_INVALID_HEADER', expression: 'http.Ssp-From', issue: 'invalid',
    build: (now) => ({ headers: readHeaders(unsignedToken(claimsAt(now)), { 'Ssp-From': '2000000003AB' }) }),
  },
  {
    name: 'Ssp-To another ASID -> 400',
    status: 400, spine: 'MISSING_OR_INVALID_HEADER', expression: 'http.Ssp-To', issue: 'invalid',
    build: (now) => ({ headers: readHeaders(unsignedToken(claimsAt(now)), { 'Ssp-To': '918999198739' }) }),
  },
  {
    name: 'Ssp-InteractionID of the cancel on a GET read -> 400 BAD_REQUEST',
    status: 400, spine: 'BAD_REQUEST', expression: 'http.Ssp-InteractionID',
    build: (now) => ({ headers: readHeaders(unsignedToken(claimsAt(now)), { 'Ssp-InteractionID': CANCEL.id }) }),
  },
  {
    name: 'duplicate Ssp-To headers (both ours) -> 400',
    status: 400, spine: 'MISSING_OR_INVALID_HEADER', expression: 'http.Ssp-To', issue: 'invalid',
    build: (now) => ({ headers: readHeaders(unsignedToken(claimsAt(now)), { 'Ssp-To': [PROVIDER_ASID, PROVIDER_ASID] }) }),
  },
  {
    name: 'Spine header failure wins over a missing token (order: Spine headers, then JWT) -> 400',
    status: 400, spine: 'MISSING_OR_INVALID_HEADER', expression: 'http.Ssp-TraceID',
    build: () => ({ headers: readHeaders(null, { 'Ssp-TraceID': null }) }),
  },
];

t.test('unsigned mode (default config): one real request per row', async (t) => {
  for (const row of rows) {
    await t.test(row.name, async (tt) => { await runRow(tt, h, row); });
  }
});

t.test('cancel route requires the WRITE scope; a rejected cancel is audited and logged without the token', async (t) => {
  const id = 'appt-2';
  const req = await cancelRequest(h, STD, id);
  const now = nowSeconds();
  const readToken = unsignedToken(claimsAt(now)); // read scope
  const headers: Headers = { ...(req.headers as Headers), Authorization: `Bearer ${readToken}` };
  const traceId = headers['Ssp-TraceID'] as string;
  const puts = seen(h.provider, 'PUT', `/Appointment/${id}`);
  const gets = seen(h.provider, 'GET', `/Appointment/${id}`);
  const auditBefore = h.audit.length;
  const logsBefore = h.logs.length;

  const r = await h.request({ ...req, headers });
  assertOutcome(t, r, 403, 'ACCESS DENIED', { expression: 'jwt.requested_scope', issue: 'forbidden' });
  t.match(r.json.issue[0].diagnostics, /requested_scope/);
  t.equal(seen(h.provider, 'PUT', `/Appointment/${id}`), puts, 'the provider saw no PUT');
  t.equal(seen(h.provider, 'GET', `/Appointment/${id}`), gets, 'the provider saw no GET (no read of the current appointment)');

  // Audit (ruling 19): one record, rejected, 403, JWT_INVALID, no requester (identity not established), no token.
  t.equal(h.audit.length, auditBefore + 1, 'one audit record');
  const rec = h.audit.at(-1)!;
  t.equal(rec.outcome, 'rejected');
  t.equal(rec.status, 403);
  t.equal(rec.code, 'JWT_INVALID');
  t.equal(rec.appointmentId, id);
  t.equal(rec.interaction, CANCEL.id);
  t.equal(rec.traceId, traceId);
  t.equal(rec.requester, undefined, 'no requester from a refused token');
  t.notOk(JSON.stringify(rec).includes(readToken), 'the audit record does not contain the token');

  // Decision log: one JSON line for this request, without the token or any of its segments.
  const lines = h.logs.slice(logsBefore);
  const decisions = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'decision' && l['traceId'] === traceId);
  t.equal(decisions.length, 1, 'one decision line');
  t.equal(decisions[0]?.['status'], 403);
  t.equal(decisions[0]?.['code'], 'JWT_INVALID');
  t.equal(decisions[0]?.['outcome'], 'rejected');
  const [hd, pl] = readToken.split('.') as [string, string];
  for (const l of lines) {
    t.notOk(l.includes(readToken), 'no log line contains the token');
    t.notOk(l.includes(pl) || l.includes(hd), 'no log line contains a token segment');
  }

  // Control: the same cancel with its write-scope token goes through (only the scope was wrong).
  const ok = await h.request(req);
  t.equal(ok.status, 200, ok.body.toString().slice(0, 200));
  t.equal(seen(h.provider, 'PUT', `/Appointment/${id}`), puts + 1, 'the provider saw the PUT');
  t.equal(h.audit.at(-1)?.outcome, 'forwarded');
  t.equal(h.audit.at(-1)?.requester?.odsCode, 'A1001');
});

t.test('configured audience: another aud is refused, the configured one accepted', async (t) => {
  const audience = 'https://provider.example/STU3/1';
  const ha = await startHarness({ standard: STD, config: { jwt: { audience } } });
  t.teardown(() => ha.close());
  const audRow = (name: string, aud: string | undefined, status: 200 | 403): Row => ({
    name, status,
    ...(status === 403 ? { spine: 'ACCESS DENIED' as const, expression: 'jwt.aud' } : {}),
    build(now) {
      const claims = claimsAt(now, (c) => { if (aud !== undefined) c['aud'] = aud; });
      const token = unsignedToken(claims);
      return { headers: readHeaders(token), token, claims };
    },
  });
  for (const row of [
    audRow('the example payload aud (another provider) -> 403', undefined, 403),
    audRow('a prefix-extended aud -> 403', `${audience}/extra`, 403),
    audRow('the configured aud -> 200', audience, 200),
  ]) {
    await t.test(row.name, async (tt) => { await runRow(tt, ha, row); });
  }
});

t.test('signed mode (JWKS file, RS256 only)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-jwks-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const other = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
  const hs = await startHarness({ standard: STD, config: { jwt: { mode: 'signed', jwksFile, algorithms: ['RS256'], issuer: 'https://consumersupplier.thirdparty.nhs.uk/', audience: 'https://providersupplier.thirdparty.nhs.uk/STU3/1' } } });
  t.teardown(() => hs.close());

  const signedRow = (name: string, status: 200 | 403, claim: string | undefined, sign: (claims: Claims) => Promise<string> | string, mutate?: (c: Claims, now: number) => void): Row => ({
    name, status,
    ...(status === 403 ? { spine: 'ACCESS DENIED' as const, expression: `jwt.${claim}` } : {}),
    async build(now) {
      const claims = claimsAt(now, mutate && ((c) => mutate(c, now)));
      const token = await sign(claims);
      return { headers: readHeaders(token), token, claims };
    },
  });
  const rs256 = (key: CryptoKey | Uint8Array) => (claims: Claims) => new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: 'k1' }).sign(key);
  const pem = new TextEncoder().encode(await exportSPKI(publicKey));

  for (const row of [
    signedRow('correctly signed RS256 with valid claims -> 200', 200, undefined, rs256(privateKey)),
    signedRow('correctly signed RS256 without kid -> 200', 200, undefined, (c) => new SignJWT(c).setProtectedHeader({ alg: 'RS256' }).sign(privateKey)),
    signedRow('alg none (unsigned) token -> 403', 403, 'header.alg', (c) => unsignedToken(c)),
    signedRow('RS/HS confusion: HS256 keyed with the RSA public key PEM -> 403', 403, 'header.alg',
      (c) => new SignJWT(c).setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: 'k1' }).sign(pem)),
    signedRow('signed by another key (same kid) -> 403', 403, 'signature', rs256(other.privateKey)),
    signedRow('signed by another key (no kid) -> 403', 403, 'signature', (c) => new SignJWT(c).setProtectedHeader({ alg: 'RS256' }).sign(other.privateKey)),
    signedRow('correctly signed but reason_for_request research -> 403 (claims still checked)', 403, 'reason_for_request', rs256(privateKey),
      (c) => { c['reason_for_request'] = 'research'; }),
    signedRow('correctly signed but expired beyond the skew -> 403', 403, 'exp', rs256(privateKey),
      (c, now) => { c['exp'] = now - 61; c['iat'] = now - 361; }),
    // One boundary in both modes (ruling 3): exactly at the skew is still accepted, as unsigned.
    signedRow('correctly signed, expired exactly 60 s ago (skew boundary) -> 200, as unsigned', 200, undefined, rs256(privateKey),
      (c, now) => { c['exp'] = now - 60; c['iat'] = now - 360; }),
    signedRow('correctly signed, nbf 61 s ahead -> 403, as unsigned', 403, 'nbf', rs256(privateKey),
      (c, now) => { c['nbf'] = now + 61; }),
    signedRow('correctly signed, write scope on a read -> 403', 403, 'requested_scope', rs256(privateKey),
      (c) => { c['requested_scope'] = CANCEL.scope; }),
  ]) {
    await t.test(row.name, async (tt) => { await runRow(tt, hs, row); });
  }
});

t.test('signed mode: a JWKS URL that cannot be fetched is the gateway\'s fault: 500 (retry), never 403', async (t) => {
  const { privateKey } = await generateKeyPair('RS256');
  const hs = await startHarness({ standard: STD, config: { jwt: { mode: 'signed', jwksUrl: 'https://127.0.0.1:9/jwks.json', algorithms: ['RS256'], issuer: 'https://consumersupplier.thirdparty.nhs.uk/', audience: 'https://providersupplier.thirdparty.nhs.uk/STU3/1' } } });
  t.teardown(() => hs.close());
  const now = Math.floor(hs.clock.now() / 1000);
  const token = await new SignJWT(claimsAt(now)).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: 'k1' }).sign(privateKey);
  const before = hs.provider.requests.length;
  const r = await hs.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: readHeaders(token) });
  assertOutcome(t, r, 500, 'INTERNAL_SERVER_ERROR');
  t.equal(hs.provider.requests.length, before, 'nothing reached the provider');
});
