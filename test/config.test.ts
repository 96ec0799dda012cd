import t from 'tap';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, loadConfig, ConfigError, ENV_OVERRIDES, namingEnv } from '../src/config.js';
import { packageRoot } from '../src/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-config-'));
for (const f of ['cert.pem', 'key.pem', 'ca.pem']) writeFileSync(join(dir, f), 'x');

const minimal = () => ({
  publicBaseUrl: 'https://gw.example/STU3/1',
  tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem'), clientCa: join(dir, 'ca.pem') },
  upstream: { url: 'http://127.0.0.1:8080' },
  spine: { providerAsids: ['918999198738'] },
});

t.test('defaults are applied and the result is frozen', async (t) => {
  const c = buildConfig(minimal());
  t.equal(c.standard, 'nhs-booking');
  t.same(c.listen, { host: '0.0.0.0', port: 8443 });
  t.equal(c.tls.minVersion, 'TLSv1.2');
  t.equal(c.tls.ciphers, 'AESGCM+EECDH:AESGCM+EDH:AES256+EECDH:AES256+EDH');
  t.equal(c.tls.expiryWarningDays, 30, 'check-config warns 30 days ahead of a certificate expiry');
  t.equal(c.tls.crlWarningHours, 48, 'and 48 hours ahead of a CRL nextUpdate');
  t.equal(c.jwt.mode, 'unsigned');
  t.equal(c.jwt.clockSkewSeconds, 60);
  t.equal(c.jwt.maxTokenBytes, 8192);
  t.equal(c.limits.maxBodyBytes, 1048576);
  t.equal(c.limits.maxJsonDepth, 64);
  t.equal(c.limits.maxHeaderBytes, 16384);
  t.equal(c.limits.headersTimeoutMs, 10000);
  t.equal(c.limits.requestTimeoutMs, 30000);
  t.equal(c.upstream.timeoutMs, 10000);
  t.equal(c.shutdown.drainTimeoutMs, 30000);
  t.equal(c.report.profile, 'enforce');
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.tls), 'frozen');
});

t.test('a bad configuration lists every problem at once, with paths', async (t) => {
  const bad = {
    ...minimal(),
    standard: 'hl7',
    listen: { port: 70000 },
    upstream: { url: 'ftp://x' },
    spine: { providerAsids: [] },
    surprise: true,
    jwt: { mode: 'maybe' },
  };
  const e = t.throws(() => buildConfig(bad)) as unknown as ConfigError;
  t.ok(e instanceof ConfigError);
  const text = e.problems.join('\n');
  for (const p of ['standard', 'listen.port', 'upstream.url', 'spine.providerAsids', "'surprise'", 'jwt.mode']) t.match(text, p, `names ${p}`);
  t.ok(e.problems.length >= 6, `${e.problems.length} problems`);
});

t.test('missing required keys and unreadable files are reported', async (t) => {
  const e1 = t.throws(() => buildConfig({})) as unknown as ConfigError;
  t.match(e1.problems.join('\n'), /tls/);
  t.match(e1.problems.join('\n'), /upstream/);
  const c = minimal();
  c.tls.cert = join(dir, 'nope.pem');
  const e2 = t.throws(() => buildConfig(c)) as unknown as ConfigError;
  t.match(e2.problems.join('\n'), /tls\.cert: cannot read/);
});

t.test('rules the schema cannot say', async (t) => {
  const signed = { ...minimal(), jwt: { mode: 'signed' } };
  t.match((t.throws(() => buildConfig(signed)) as unknown as ConfigError).problems.join(), /jwksFile or jwksUrl/);
  const amend = { ...minimal(), interactions: { amend: true } };
  t.match((t.throws(() => buildConfig(amend)) as unknown as ConfigError).problems.join(), /interactions.amend/);
  t.doesNotThrow(() => buildConfig({ ...minimal(), standard: 'gp-connect', interactions: { amend: true } }));
});

t.test('signed mode: the JWKS file is public keys in JSON, one source, an algorithm (check-config refuses the rest)', async (t) => {
  const jwt = (extra: Record<string, unknown>) => ({ ...minimal(), jwt: { mode: 'signed', issuer: 'https://iss.example/', audience: 'https://gw.example/STU3/1', algorithms: ['RS256'], ...extra } });
  const file = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  const problems = (c: Record<string, unknown>): string => (t.throws(() => buildConfig(c)) as unknown as ConfigError).problems.join('\n');
  const publicJwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
  const good = file('jwks-good.json', JSON.stringify({ keys: [{ ...publicJwk, kid: 'k1' }] }));
  t.doesNotThrow(() => buildConfig(jwt({ jwksFile: good })));
  t.match(problems(jwt({ jwksFile: file('jwks-private.json', JSON.stringify({ keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB', d: 'secret-material' }] })) })), /keys\[0\] holds private or symmetric key material/);
  t.match(problems(jwt({ jwksFile: file('jwks-empty.json', '{"keys":[]}') })), /non-empty "keys" array/);
  // A key that does not import (an RSA modulus that is no modulus) would make every request a 500.
  t.match(problems(jwt({ jwksFile: file('jwks-unusable.json', JSON.stringify({ keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB' }] })) })), /keys\[0\] is not a usable public key/);
  t.match(problems(jwt({ jwksFile: file('jwks-kty.json', JSON.stringify({ keys: [{ kty: 'XYZ' }] })) })), /keys\[0\] is not a usable public key/);
  const broken = problems(jwt({ jwksFile: file('jwks-broken.json', '-----BEGIN PRIVATE KEY-----') }));
  t.match(broken, /jwt.jwksFile: not JSON/);
  t.notMatch(broken, /BEGIN/, 'the file is never quoted');
  t.match(problems(jwt({ jwksFile: good, jwksUrl: 'https://iss.example/jwks' })), /jwksFile or jwksUrl, not both/);
  t.match(problems(jwt({ jwksFile: good, algorithms: [] })), /jwt.algorithms/);
  t.match(problems(jwt({ jwksFile: good, jwksCa: good })), /jwt\.jwksCa: only with jwksUrl/, 'a CA for no key set server');
  t.match(problems(jwt({ jwksUrl: 'https://iss.example/jwks', jwksCa: join(dir, 'no-such-ca.pem') })), /jwt\.jwksCa: cannot read/, 'a CA file that is not there');
});

t.test('file + environment overrides', async (t) => {
  const file = join(dir, 'gw.yaml');
  writeFileSync(file, `publicBaseUrl: https://gw.example\ntls: { cert: cert.pem, key: key.pem, clientCa: ca.pem }\nupstream: { url: "http://127.0.0.1:1" }\nspine: { providerAsids: ["1"] }\n`);
  const c = loadConfig(file, { GATEWAY_PORT: '9443', GATEWAY_UPSTREAM_URL: 'http://provider:8080/fhir', GATEWAY_PROVIDER_ASID: '111,222', GATEWAY_STANDARD: 'gp-connect' });
  t.equal(c.listen.port, 9443);
  t.equal(c.upstream.url, 'http://provider:8080/fhir');
  t.same(c.spine.providerAsids, ['111', '222']);
  t.equal(c.standard, 'gp-connect');
  t.equal(c.tls.cert, join(dir, 'cert.pem'), 'relative paths resolve against the file');
  const e = t.throws(() => loadConfig(file, { GATEWAY_PORT: 'abc' })) as unknown as ConfigError;
  t.match(e.problems.join(), /GATEWAY_PORT/);
  // A value the schema refuses names the variable that set it, not only the key.
  const asid = t.throws(() => loadConfig(file, { GATEWAY_PROVIDER_ASID: ' , ' })) as unknown as ConfigError;
  t.match(asid.problems.join('\n'), /^spine\.providerAsids: .* \(from GATEWAY_PROVIDER_ASID\)$/m);
  const url = t.throws(() => loadConfig(file, { GATEWAY_UPSTREAM_URL: 'http://u:p@provider/fhir' })) as unknown as ConfigError;
  t.match(url.problems.join('\n'), /^upstream\.url: must not carry a user name or password \(from GATEWAY_UPSTREAM_URL\)$/m);
  const fromFile = t.throws(() => loadConfig(file, { GATEWAY_PORT: '9443', GATEWAY_LOG_LEVEL: '' , GATEWAY_JWT_AUDIENCE: undefined, GATEWAY_STANDARD: 'nope' })) as unknown as ConfigError;
  t.notMatch(fromFile.problems.join('\n'), /GATEWAY_PORT/, 'a variable is named only for the keys it set');
  // check-config's address problems name two keys, and every variable that set one of them.
  const listen = 'listen.host, listen.port: cannot listen on \'x\' port 1 on this machine (ENOTFOUND: the name does not resolve)';
  t.equal(namingEnv(listen, { GATEWAY_LISTEN_HOST: 'x' }), `${listen} (from GATEWAY_LISTEN_HOST)`);
  t.equal(namingEnv(listen, { GATEWAY_LISTEN_HOST: 'x', GATEWAY_PORT: '1' }), `${listen} (from GATEWAY_LISTEN_HOST, GATEWAY_PORT)`);
  t.equal(namingEnv(listen, { GATEWAY_ADMIN_PORT: '1' }), listen, 'not a variable for another key');
  writeFileSync(join(dir, 'broken.yaml'), 'a: [1,\n');
  t.throws(() => loadConfig(join(dir, 'broken.yaml')), ConfigError);
});

t.test('README documents every key and every environment override', async (t) => {
  const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');
  const schema = JSON.parse(readFileSync(join(packageRoot, 'config/config.schema.json'), 'utf8'));
  const keys: string[] = [];
  const walk = (o: any, prefix: string) => {
    for (const [k, v] of Object.entries<any>(o.properties ?? {})) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (v.type === 'object' && v.properties) walk(v, key);
      else keys.push(key);
    }
  };
  walk(schema, '');
  for (const k of keys) t.ok(readme.includes(`\`${k}\``), `README documents ${k}`);
  for (const [name] of ENV_OVERRIDES) t.ok(readme.includes(name), `README documents ${name}`);
});

t.test('the example configuration is valid apart from its file paths', async (t) => {
  const e = t.throws(() => loadConfig(join(packageRoot, 'config/example.yaml'), {})) as unknown as ConfigError;
  t.ok(e.problems.every((p) => /cannot read/.test(p)), e.problems.join('; '));
});

t.test('a URL printed by check-config carries no credentials', async (t) => {
  const { withoutCredentials } = await import('../src/config.js');
  t.equal(withoutCredentials('https://svc:SECRET-PW@provider.example/STU3/1'), 'https://***@provider.example/STU3/1');
  t.equal(withoutCredentials('https://provider.example/STU3/1'), 'https://provider.example/STU3/1');
  t.notMatch(withoutCredentials('http://only-user@provider.example/'), /only-user/);
});

t.test('base URLs are an origin and a path; basePath has no dot segments; numeric variables are decimal digits', async (t) => {
  const problems = (o: Record<string, unknown>): string => {
    try {
      buildConfig({ ...minimal(), ...o }, { checkFiles: false });
      return '';
    } catch (e) {
      return (e as ConfigError).problems.join(' | ');
    }
  };
  // A query in the upstream URL made the cancel's own read go to `/fhirAppointment/…`; in
  // publicBaseUrl it made every Location `…?x=1/Appointment/…`.
  t.match(problems({ upstream: { url: 'http://provider:8080/fhir?tenant=a' } }), /upstream\.url: must not carry a query or a fragment/);
  t.match(problems({ upstream: { url: 'http://provider:8080/fhir#x' } }), /upstream\.url: must not carry a query or a fragment/);
  t.match(problems({ upstream: { url: 'http://svc:pw@provider:8080/fhir' } }), /upstream\.url: must not carry a user name or password/);
  t.match(problems({ publicBaseUrl: 'https://gw.example/STU3/1?x=1' }), /publicBaseUrl: must not carry a query or a fragment/);
  t.match(problems({ publicBaseUrl: 'https://user:pw@gw.example/STU3/1' }), /publicBaseUrl: must not carry a user name or password/);
  for (const empty of ['https://:@gw.example/STU3/1', 'https://@gw.example/STU3/1']) t.match(problems({ publicBaseUrl: empty }), /publicBaseUrl: must not carry a user name or password/, `an empty userinfo is written into every Location: ${empty}`);
  t.equal(problems({ publicBaseUrl: 'https://gw.example/STU3/@1' }), '', 'an @ in the path is no userinfo');
  t.match(problems({ publicBaseUrl: 'https://gw.example/STU3/../1' }), /publicBaseUrl: must not have \. or \.\. path segments/);
  t.match(problems({ publicBaseUrl: 'https://gw.example/STU3\\..\\1' }), /publicBaseUrl: must not contain a backslash/, 'the URL parser reads \\ as /');
  t.equal(problems({ publicBaseUrl: 'https://gw.example:443/STU3/1/', upstream: { url: 'https://provider.example/fhir/' } }), '', 'a port and trailing slashes are fine');
  for (const basePath of ['/.', '/..', '/a/../b', '/a/./b']) t.match(problems({ basePath }), /basePath/, `basePath ${basePath}`);
  for (const basePath of ['/STU3/1', '/.well', '/a..b', '']) t.equal(problems({ basePath }), '', `basePath ${basePath || '(empty)'}`);
  const file = join(dir, 'gw-env.yaml');
  writeFileSync(file, `publicBaseUrl: https://gw.example\ntls: { cert: cert.pem, key: key.pem, clientCa: ca.pem }\nupstream: { url: "http://127.0.0.1:1" }\nspine: { providerAsids: ["1"] }\n`);
  for (const v of ['0x50', '1e3', '80.0', ' 80x', '--1']) {
    const e = t.throws(() => loadConfig(file, { GATEWAY_PORT: v })) as unknown as ConfigError;
    t.match(e.problems?.join(), /GATEWAY_PORT: must be an integer/, `GATEWAY_PORT=${v}`);
  }
  // An integer out of range is the key's problem, with the variable that set it (review of stop 35).
  const negative = t.throws(() => loadConfig(file, { GATEWAY_PORT: '-1' })) as unknown as ConfigError;
  t.match(negative.problems?.join(), /listen\.port: must be >= \d+ \(from GATEWAY_PORT\)/, 'GATEWAY_PORT=-1');
  t.equal(loadConfig(file, { GATEWAY_PORT: '8443' }).listen.port, 8443);
});

t.test('store keys belong to their kind; a sqlite file is not under /proc or /sys', async (t) => {
  const problems = (store: Record<string, unknown>): string => {
    try {
      buildConfig({ ...minimal(), store }, { checkFiles: false });
      return '';
    } catch (e) {
      return (e as ConfigError).problems.join(' | ');
    }
  };
  t.match(problems({ kind: 'sqlite', path: '/proc/x/x.db' }), /store\.path: not under \/proc or \/sys/);
  t.equal(problems({ kind: 'sqlite', path: '/dev/shm/gw/v.db' }), '', 'a tmpfs file is a store that lasts as long as the machine');
  t.match(problems({ kind: 'memory', path: '/var/lib/gw/v.db' }), /store\.path: only the sqlite store uses a file path/);
  t.match(problems({ kind: 'memory', url: 'postgres://h/db' }), /store\.url: only the postgres store uses a URL/);
  t.match(problems({ kind: 'sqlite', path: '/var/lib/gw/v.db', url: 'postgres://h/db' }), /store\.url: only the postgres store uses a URL/);
  t.equal(problems({ kind: 'sqlite', path: '/var/lib/gw/v.db' }), '');
});

t.test('a configuration file that does not parse is named with the parser\'s words, never a quote of its text (a store.url password)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-cfg-parse-'));
  for (const [name, text] of [['c.json', '{"store": {"kind": "postgres", "url": "postgres://gw:S3CRET-PW@db/gw"}}}'], ['d.json', '{"store":{"kind":"postgres","url": S3CRET-PW@d/x}}'], ['c.yaml', 'store:\n  url: postgres://gw:S3CRET-PW@db/gw\n   bad: [indent']] as const) {
    writeFileSync(join(dir, name), text);
    try {
      loadConfig(join(dir, name), {});
      t.fail(`${name}: refused`);
    } catch (e) {
      const said = (e as { problems?: string[] }).problems?.join(' ') ?? String(e);
      t.match(said, /not valid (JSON|YAML)/, `${name}: says it does not parse`);
      t.notMatch(said, /S3CRET/, `${name}: and quotes none of it`);
    }
  }
});

t.test('a YAML parse error keeps its location (its own words may hold a quote character)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-cfg-yaml-'));
  writeFileSync(join(dir, 'c.yaml'), 'store:\n  kind: postgres\n  url: "postgres://u:s3cret@h/db\n');
  try {
    loadConfig(join(dir, 'c.yaml'), {});
    t.fail('refused');
  } catch (e) {
    const said = (e as ConfigError).problems.join(' ');
    t.match(said, /not valid YAML: .*line \d+, column \d+/, said);
    t.notMatch(said, /s3cret/);
  }
});

t.test('a limit set alone brings the defaults that depend on it along (review of stop 35)', async (t) => {
  const small = buildConfig({ ...minimal(), limits: { maxConnections: 100 } });
  t.equal(small.limits.maxPendingHandshakes, 99, 'pending handshakes below the connections');
  t.ok(small.limits.maxPendingHandshakesPerAddress <= 99);
  t.equal(buildConfig({ ...minimal(), limits: { maxConnections: 1 } }).limits.maxPendingHandshakes, 1, 'one connection: one pending handshake');
  t.equal(buildConfig({ ...minimal(), limits: { requestTimeoutMs: 600 } }).limits.headersTimeoutMs, 600, 'the headers\' deadline within the request\'s');
  t.throws(() => buildConfig({ ...minimal(), limits: { maxConnections: 100, maxPendingHandshakes: 100 } }), /limits\.maxPendingHandshakes: must be below limits\.maxConnections/, 'both set and contradicting: refused');
  t.throws(() => buildConfig({ ...minimal(), limits: { requestTimeoutMs: 600, headersTimeoutMs: 700 } }), /limits\.headersTimeoutMs: must not exceed/);
});

t.test('a reload that only reorders keys or spells out empty lists changes nothing restart-only (review of stop 35)', async (t) => {
  const { restartOnlyChanges } = await import('../src/edge/reload.js');
  const base = minimal() as Record<string, any>;
  const a = buildConfig({ ...base, tls: { ...base.tls, allowedClients: { subjects: ['ssp.test.nhs.uk'], sans: [] } } });
  const b = buildConfig({ ...base, tls: { ...base.tls, allowedClients: { sans: [], subjects: ['ssp.test.nhs.uk'] } } });
  t.same(restartOnlyChanges(a, b), [], 'keys reordered');
  const none = buildConfig(base);
  const empty = buildConfig({ ...base, tls: { ...base.tls, allowedClients: { subjects: [], sans: [] } } });
  t.same(restartOnlyChanges(none, empty), [], 'absent and empty lists alike');
  const other = buildConfig({ ...base, tls: { ...base.tls, allowedClients: { subjects: ['other'], sans: [] } } });
  t.same(restartOnlyChanges(a, other), ['tls.allowedClients'], 'a real change is still one');
});
