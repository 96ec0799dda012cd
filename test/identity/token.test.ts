import t from 'tap';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import fc from 'fast-check';
import { createSignedVerifier, decodeBase64url, decodeUnsigned, readBearer, unsignedTokenWithScope, utf8Text } from '../../src/identity/token.js';
import { unsignedToken, validClaims } from '../helpers/tokens.js';
import { writtenNumber } from '../../src/fhir/strict-json.js';

const NOW_S = 1_700_000_000;
const NOW_MS = NOW_S * 1000;
const MAX = 8192;
const SCOPE = 'patient/appointment.write';
const payload = validClaims({ standard: 'nhs-booking', scope: SCOPE, nowSeconds: NOW_S });
const good = unsignedToken(payload);

/** A tap subtest (the type of `t` inside `t.test(name, async (t) => …)`). */
type Asserts = Parameters<Parameters<typeof t.test>[0]>[0];

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');

t.test('readBearer', async (t) => {
  t.same(readBearer(`Bearer ${good}`, MAX), { ok: true, value: good });
  t.same(readBearer(`bearer ${good}`, MAX), { ok: true, value: good }, 'scheme is case-insensitive (RFC 6750)');
  t.same(readBearer([`Bearer ${good}`], MAX), { ok: true, value: good });

  const exact = 'a'.repeat(MAX);
  t.same(readBearer(`Bearer ${exact}`, MAX), { ok: true, value: exact }, 'exactly maxBytes is accepted');

  const cases: Array<[string, string | string[] | undefined, string]> = [
    ['missing', undefined, 'missing'],
    ['empty', '', 'missing'],
    ['blank', '   ', 'missing'],
    ['Basic scheme', `Basic ${good}`, 'not a Bearer token'],
    ['no scheme', good, 'not a Bearer token'],
    ['scheme only', 'Bearer', 'not a Bearer token'],
    ['empty token', 'Bearer ', 'empty Bearer token'],
    ['two tokens', `Bearer ${good} ${good}`, 'not a Bearer token'],
    ['two headers', [`Bearer ${good}`, `Bearer ${good}`], 'more than one Authorization header'],
    ['oversized', `Bearer ${'a'.repeat(MAX + 1)}`, 'token too large'],
    // Garbage that would fail decoding: the size check must answer first, without decoding.
    ['oversized non-base64url', `Bearer ${'%'.repeat(MAX + 1)}`, 'token too large'],
    ['oversized multi-byte', `Bearer ${'é'.repeat(MAX / 2 + 1)}`, 'token too large'],
  ];
  for (const [name, header, reason] of cases) {
    const r = readBearer(header, MAX);
    t.same(r, { ok: false, failure: { claim: 'authorization', reason } }, name);
  }
});

t.test('decodeUnsigned accepts the standard unsigned form', async (t) => {
  const r = decodeUnsigned(good);
  t.same(r, { ok: true, value: payload });
});

t.test('decodeUnsigned failures', async (t) => {
  const [h, p] = good.split('.') as [string, string];
  const cases: Array<[string, string, string]> = [
    ['two segments, no trailing dot', `${h}.${p}`, 'token'],
    ['four segments', `${h}.${p}..`, 'token'],
    ['single segment', h, 'token'],
    ['empty string', '', 'token'],
    ['signed: 3rd segment non-empty', `${h}.${p}.c2lnbmF0dXJl`, 'signature'],
    ['empty header', `.${p}.`, 'header'],
    ['empty payload', `${h}..`, 'payload'],
    ['padding = in header', `${b64('{"alg":"none","typ":"JWT"}')}=.${p}.`, 'header'],
    ['padding = in payload', `${h}.${p}==.`, 'payload'],
    ['+ (standard base64) in payload', `${h}.${p.replace(/[-_]/g, '+')}+.`, 'payload'],
    ['/ (standard base64) in header', `${h}/.${p}.`, 'header'],
    ['not base64url at all', `${h}.%%%%.`, 'payload'],
    ['impossible base64 length (4n+1)', `${h}.${p + 'A'.repeat((1 - (p.length % 4) + 4) % 4)}.`, 'payload'],
    ['non-canonical trailing bits', `${h}.${b64('{}').slice(0, -1)}z.`, 'payload'],
    ['header not JSON', `${b64('alg none')}.${p}.`, 'header'],
    ['header JSON array', `${b64('["none"]')}.${p}.`, 'header'],
    ['payload not JSON', `${h}.${b64('{"iss":')}.`, 'payload'],
    ['payload JSON string', `${h}.${b64('"x"')}.`, 'payload'],
    ['payload JSON null', `${h}.${b64('null')}.`, 'payload'],
    ['payload JSON array', `${h}.${b64('[]')}.`, 'payload'],
    ['payload invalid UTF-8', `${h}.${Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')}.`, 'payload'],
    ['alg HS256', unsignedToken(payload, { alg: 'HS256', typ: 'JWT' }), 'header.alg'],
    ['alg RS256', unsignedToken(payload, { alg: 'RS256', typ: 'JWT' }), 'header.alg'],
    ['alg NONE (case)', unsignedToken(payload, { alg: 'NONE', typ: 'JWT' }), 'header.alg'],
    ['alg missing', unsignedToken(payload, { typ: 'JWT' }), 'header.alg'],
    ['typ missing', unsignedToken(payload, { alg: 'none' }), 'header.typ'],
    ['typ lower-case', unsignedToken(payload, { alg: 'none', typ: 'jwt' }), 'header.typ'],
    ['typ JWS', unsignedToken(payload, { alg: 'none', typ: 'JOSE' }), 'header.typ'],
    ['extra header key kid', unsignedToken(payload, { alg: 'none', typ: 'JWT', kid: 'k1' }), 'header'],
    ['extra header key cty', unsignedToken(payload, { alg: 'none', typ: 'JWT', cty: 'JWT' }), 'header'],
  ];
  for (const [name, token, claim] of cases) {
    const r = decodeUnsigned(token);
    t.equal(r.ok, false, `${name}: rejected`);
    if (!r.ok) {
      t.equal(r.failure.claim, claim, `${name}: claim`);
      if (token.length >= 8) t.notOk(r.failure.reason.includes(token.slice(0, 8)), `${name}: reason does not echo the token`);
    }
  }
});

t.test('signed mode', async (t) => {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const jwks = { keys: [jwk] };
  const ISS = 'https://issuer.example.nhs.uk/';
  const AUD = 'https://gateway.example.nhs.uk/STU3/1';
  const claims = { ...payload, iss: ISS, aud: AUD, iat: NOW_S, exp: NOW_S + 300 };

  const verify = createSignedVerifier({
    jwks,
    algorithms: ['RS256'],
    issuer: ISS,
    audience: AUD,
    now: () => NOW_MS,
  });
  const sign = (body: Record<string, unknown>, key = privateKey, kid = 'k1') =>
    new SignJWT(body).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid }).sign(key);

  await t.test('good RS256 token', async (t) => {
    const r = await verify(await sign(claims));
    t.ok(r.ok);
    if (r.ok) {
      t.equal(r.value['iss'], ISS);
      t.equal(r.value['requested_scope'], SCOPE);
      t.same(r.value['requesting_organization'], payload['requesting_organization']);
    }
  });

  const expectFailure = async (t: Asserts, token: string, claim: string, v = verify) => {
    const r = await v(token);
    t.equal(r.ok, false, 'rejected');
    if (!r.ok) {
      t.equal(r.failure.claim, claim, 'claim');
      if (token.length >= 8) t.notOk(r.failure.reason.includes(token.slice(0, 8)), 'reason does not echo the token');
    }
  };

  await t.test('alg none rejected', async (t) => {
    await expectFailure(t, unsignedToken(claims), 'header.alg');
    // Even with a (bogus) signature segment appended.
    await expectFailure(t, unsignedToken(claims) + 'c2ln', 'header.alg');
  });

  await t.test('alg confusion: HS256 signed with the RSA public key PEM bytes', async (t) => {
    const pem = await exportSPKI(publicKey);
    const forged = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: 'k1' })
      .sign(new TextEncoder().encode(pem));
    await expectFailure(t, forged, 'header.alg');
    // Even a deployment that (unwisely) allows HS256 too must not verify it with the RSA key.
    const lax = createSignedVerifier({ jwks, algorithms: ['RS256', 'HS256'], now: () => NOW_MS });
    const r = await lax(forged);
    t.equal(r.ok, false, 'HS256 allowed: still rejected');
    t.equal(!r.ok && r.failure.claim, 'header.alg', 'a JWKS never yields an HMAC key (jose: not supported)');
    const forgedNoKid = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(new TextEncoder().encode(pem));
    t.equal((await lax(forgedNoKid)).ok, false, 'HS256 allowed, no kid: still rejected');
  });

  await t.test('wrong issuer', async (t) => {
    await expectFailure(t, await sign({ ...claims, iss: 'https://other.example/' }), 'iss');
  });

  await t.test('wrong audience', async (t) => {
    await expectFailure(t, await sign({ ...claims, aud: 'https://other.example/STU3/1' }), 'aud');
  });

  await t.test('the token\'s times are left to checkClaims (one boundary for both modes): the signature layer passes them', async (t) => {
    const expired = await verify(await sign({ ...claims, iat: NOW_S - 361, exp: NOW_S - 61 }));
    t.ok(expired.ok, 'verified here; checkClaims refuses it (test/e2e/identity.test.ts)');
    const claimsOf = expired.ok ? expired.value : {};
    t.equal(claimsOf['exp'], NOW_S - 61);
  });

  await t.test('several keys and a token without kid: the key that verifies it (a rotation)', async (t) => {
    const other = await generateKeyPair('RS256');
    const both = { keys: [{ ...(await exportJWK(other.publicKey)), alg: 'RS256', use: 'sig' }, { ...jwk, kid: undefined }] };
    const rotating = createSignedVerifier({ jwks: both, algorithms: ['RS256'], issuer: ISS, audience: AUD, now: () => NOW_MS });
    const noKid = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT' }).sign(privateKey);
    t.ok((await rotating(noKid)).ok, 'the second key verifies it');
    const stranger = await generateKeyPair('RS256');
    await expectFailure(t, await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT' }).sign(stranger.privateKey), 'signature', rotating);
  });

  await t.test('signed by another key', async (t) => {
    const other = await generateKeyPair('RS256');
    await expectFailure(t, await sign(claims, other.privateKey), 'signature');
    await expectFailure(t, await sign(claims, other.privateKey, 'unknown-kid'), 'header.kid');
  });

  await t.test('tampered payload', async (t) => {
    const [h, , s] = (await sign(claims)).split('.') as [string, string, string];
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url')}.${s}`;
    await expectFailure(t, tampered, 'signature');
  });

  await t.test('header and payload read as strictly as an unsigned token\'s (the token is forwarded as sent)', async (t) => {
    const signRaw = async (headerJson: string, payloadBytes: Buffer) => {
      const h = Buffer.from(headerJson).toString('base64url');
      const p = payloadBytes.toString('base64url');
      const sig = await (await import('node:crypto')).webcrypto.subtle.sign({ name: 'RSASSA-PKCS1-v1_5' }, privateKey as CryptoKey, Buffer.from(`${h}.${p}`));
      return `${h}.${p}.${Buffer.from(sig).toString('base64url')}`;
    };
    const good = Buffer.from(JSON.stringify(claims));
    t.ok((await verify(await signRaw('{"alg":"RS256","typ":"JWT","kid":"k1"}', good))).ok, 'the raw signer itself is sound');
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), good]);
    await expectFailure(t, await signRaw('{"alg":"RS256","typ":"JWT","kid":"k1"}', bom), 'payload');
    await expectFailure(t, await signRaw('\ufeff{"alg":"RS256","typ":"JWT","kid":"k1"}', good), 'header');
    await expectFailure(t, await signRaw('{"alg":"RS256","typ":"JWT","kid":"zzz","kid":"k1"}', good), 'header');
    await expectFailure(t, await signRaw('{"alg":"RS256","typ":"JWT","kid":"k1"}', Buffer.from(JSON.stringify(claims).replace('{', '{"__proto__":{"x":1},'))), 'payload');
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = { d: deep };
    await expectFailure(t, await signRaw('{"alg":"RS256","typ":"JWT","kid":"k1"}', Buffer.from(JSON.stringify({ ...claims, deep }))), 'payload');
    await expectFailure(t, await signRaw('{"alg":"RS256","typ":"JWT","kid":"k1","crit":["x-ext"],"x-ext":1}', good), 'header.crit');
    // Numbers as written reach the claim checks: `exp` written 1.7e9-style is not an integer as written.
    const written = await verify(await signRaw('{"alg":"RS256","typ":"JWT","kid":"k1"}', Buffer.from(JSON.stringify(claims).replace(`"exp":${NOW_S + 300}`, `"exp":${NOW_S + 300}.0`))));
    t.ok(written.ok, 'verified here');
    t.equal(written.ok && writtenNumber(written.value, 'exp'), `${NOW_S + 300}.0`, 'its written form kept for checkClaims');
  });

  await t.test('garbage', async (t) => {
    await expectFailure(t, 'not-a-jwt', 'header');
    await expectFailure(t, '', 'header');
  });

  await t.test('configuration errors throw at creation', async (t) => {
    t.throws(() => createSignedVerifier({ jwks, algorithms: [], now: () => NOW_MS }));
    t.throws(() => createSignedVerifier({ jwks, algorithms: ['RS256', 'none'], now: () => NOW_MS }));
  });
});

t.test('issue 17: the base64url and UTF-8 shortcuts agree with re-encoding and a fatal TextDecoder', async (t) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const segment = fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 12 }).map((a) => a.join(''));
  fc.assert(
    fc.property(segment, (s) => {
      const reference = s.length % 4 !== 1 && Buffer.from(s, 'base64url').toString('base64url') === s;
      const got = decodeBase64url(s);
      return (got !== undefined) === reference && (got === undefined || got.equals(Buffer.from(s, 'base64url')));
    }),
    { seed: 17, numRuns: 5000 },
  );
  t.equal(decodeBase64url('eyJ='), undefined, 'padding refused');
  t.equal(decodeBase64url('QR'), undefined, 'non-zero spare bits refused');
  t.same(decodeBase64url('QQ'), Buffer.from('A'));
  const fatal = new TextDecoder('utf-8', { fatal: true });
  const reference = (b: Uint8Array): string | undefined => {
    try {
      return fatal.decode(b);
    } catch {
      return undefined;
    }
  };
  const bytes = fc.oneof(fc.uint8Array({ maxLength: 16 }), fc.string({ unit: 'binary', maxLength: 8 }).map((s) => new TextEncoder().encode(s)));
  fc.assert(fc.property(bytes, (b) => utf8Text(Buffer.from(b)) === reference(b)), { seed: 17, numRuns: 5000 });
  t.equal(utf8Text(Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d])), '{}', 'a leading BOM is dropped, as TextDecoder does');
  t.equal(utf8Text(Buffer.from([0xed, 0xa0, 0x80])), undefined, 'a surrogate is not UTF-8');
});

t.test('a byte order mark before a segment\'s JSON is not JSON (RFC 8259 §8.1): refused, as for the body', async (t) => {
  const header = Buffer.from('\ufeff{"alg":"none","typ":"JWT"}').toString('base64url');
  const payload = Buffer.from(JSON.stringify({ iss: 'x' })).toString('base64url');
  t.match(decodeUnsigned(`${header}.${payload}.`), { ok: false, failure: { claim: 'header' } });
  const plainHeader = Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url');
  const bomPayload = Buffer.from('\ufeff' + JSON.stringify({ iss: 'x' })).toString('base64url');
  t.match(decodeUnsigned(`${plainHeader}.${bomPayload}.`), { ok: false, failure: { claim: 'payload' } });
});

t.test('the gateway\'s own read narrows the scope of a token sent after more than one space', async (t) => {
  const token = unsignedToken({ iss: 'x', requested_scope: 'patient/appointment.write' });
  const narrowed = unsignedTokenWithScope(`Bearer  ${token}`, 'patient/appointment.read');
  t.ok(narrowed, 'narrowed');
  const payload = JSON.parse(Buffer.from(String(narrowed).split('.')[1]!, 'base64url').toString());
  t.equal(payload.requested_scope, 'patient/appointment.read');
});

t.test('the narrowed token keeps every other claim as written when the scope is not a plain string (review of stop 35, ruling 26)', async (t) => {
  const header = Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url');
  const text = '{"jti":12345678901234567890,"x":1.10,"requested_scope":"patient\\/appointment.write","iss":"x"}';
  const narrowed = unsignedTokenWithScope(`Bearer ${header}.${Buffer.from(text).toString('base64url')}.`, 'patient/appointment.read');
  const written = Buffer.from(String(narrowed).split('.')[1]!, 'base64url').toString();
  t.equal(written, '{"jti":12345678901234567890,"x":1.10,"requested_scope":"patient/appointment.read","iss":"x"}');
});

t.test('a key set URL answering 503 is the key set unavailable (a 500 at the check), never a verdict on the token', async (t) => {
  const http = await import('node:http');
  const server = http.createServer((_req, res) => { res.writeHead(503); res.end('down'); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as import('node:net').AddressInfo).port;
  const { privateKey } = await generateKeyPair('RS256');
  const now = Math.floor(Date.now() / 1000);
  const verify = createSignedVerifier({ jwks: new URL(`http://127.0.0.1:${port}/jwks.json`), algorithms: ['RS256'], now: () => Date.now() });
  const token = await new SignJWT({ iss: 'x', iat: now, exp: now + 300 }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(privateKey);
  t.match(await verify(token), { ok: false, failure: { claim: 'jwks' } });
});
