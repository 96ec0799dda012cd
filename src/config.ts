import { Ajv } from 'ajv';
import { accessSync, closeSync, constants, openSync, readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { isAbsolute, join, dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { configDir } from './paths.js';

/**
 * Configuration: one YAML or JSON file, environment overrides for what a Kubernetes deployment
 * sets, validated once against config/config.schema.json with every problem reported at once,
 * then frozen. Nothing reads process.env after this (style habit 6).
 */

export type CheckMode = 'enforce' | 'report';
export type ReportFamily = 'spineHeaders' | 'ifMatch' | 'mediaType' | 'body' | 'profile' | 'version' | 'businessRules';

export interface Config {
  standard: 'nhs-booking' | 'gp-connect';
  listen: { host: string; port: number };
  admin: { host: string; port: number };
  basePath: string;
  publicBaseUrl: string;
  tls: {
    cert: string; key: string; clientCa: string; crl?: string;
    minVersion: 'TLSv1.2' | 'TLSv1.3'; ciphers: string;
    allowedClients?: { subjects: string[]; sans: string[] };
    handshakeTimeoutMs: number; watch: boolean;
    expiryWarningDays: number; crlWarningHours: number;
  };
  upstream: { url: string; ca?: string; cert?: string; key?: string; timeoutMs: number; bodyTimeoutMs: number; inDoubtHoldMs?: number; maxSockets: number; writeConnections: number; maxAnswerBytes: number };
  spine: { providerAsids: string[] };
  jwt: {
    mode: 'unsigned' | 'signed'; audience?: string; clockSkewSeconds: number; maxFutureIatSeconds: number;
    maxTokenBytes: number; jwksFile?: string; jwksUrl?: string; jwksCa?: string; algorithms: string[]; issuer?: string;
  };
  limits: {
    maxBodyBytes: number; maxJsonDepth: number; maxHeaderBytes: number; headersTimeoutMs: number;
    requestTimeoutMs: number; keepAliveTimeoutMs: number; maxConnections: number;
    maxJsonNodes: number; largeBodyBytes: number; maxPendingHandshakes: number; maxPendingHandshakesPerAddress: number;
    maxConnectionAgeMs: number; maxRequestsPerConnection: number;
  };
  interactions: { amend: boolean };
  report: Record<ReportFamily, CheckMode>;
  log: { level: 'debug' | 'info' | 'warn' | 'error' | 'silent' };
  audit: { destination: string };
  shutdown: { drainTimeoutMs: number };
  readiness: { requireProvider: boolean; intervalMs: number };
  store: StoreConfig;
  tracing: { enabled: boolean; otlpEndpoint?: string; serviceName: string; sampleRatio: number };
}

/** The state store (issue 18, rulings 22 and 23); docs/store.md. */
export interface StoreConfig {
  kind: 'memory' | 'sqlite' | 'postgres';
  path?: string;
  url?: string;
  poolSize: number;
  lockPoolSize: number;
  tls?: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean };
  timeoutMs: number;
  lockWaitMs: number;
  retentionDays?: number;
  encryptionKeyFile?: string;
  decryptionKeyFiles: string[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Environment variable -> config path. Values are strings; numbers are converted by path. */
export const ENV_OVERRIDES: ReadonlyArray<readonly [string, string]> = [
  ['GATEWAY_STANDARD', 'standard'],
  ['GATEWAY_LISTEN_HOST', 'listen.host'],
  ['GATEWAY_PORT', 'listen.port'],
  ['GATEWAY_ADMIN_HOST', 'admin.host'],
  ['GATEWAY_ADMIN_PORT', 'admin.port'],
  ['GATEWAY_PUBLIC_BASE_URL', 'publicBaseUrl'],
  ['GATEWAY_TLS_CERT', 'tls.cert'],
  ['GATEWAY_TLS_KEY', 'tls.key'],
  ['GATEWAY_TLS_CLIENT_CA', 'tls.clientCa'],
  ['GATEWAY_TLS_CRL', 'tls.crl'],
  ['GATEWAY_UPSTREAM_URL', 'upstream.url'],
  ['GATEWAY_UPSTREAM_TIMEOUT_MS', 'upstream.timeoutMs'],
  ['GATEWAY_PROVIDER_ASID', 'spine.providerAsids'],
  ['GATEWAY_JWT_AUDIENCE', 'jwt.audience'],
  ['GATEWAY_AUDIT_DESTINATION', 'audit.destination'],
  ['GATEWAY_LOG_LEVEL', 'log.level'],
  ['GATEWAY_STORE_URL', 'store.url'],
  ['GATEWAY_OTLP_ENDPOINT', 'tracing.otlpEndpoint'],
];

const NUMERIC = new Set(['listen.port', 'admin.port', 'upstream.timeoutMs']);

const schema = JSON.parse(readFileSync(join(configDir, 'config.schema.json'), 'utf8')) as object;
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const validateSchema = ajv.compile(schema);

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof node[p] !== 'object' || node[p] === null) node[p] = {};
    node = node[p] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

/**
 * A FHIR base URL is an origin and a path: a query or fragment would end up in the middle of every
 * URL built on it (`…?x=1/Appointment/…`), and credentials would be sent to no one (upstream) or to
 * every consumer in Location (public).
 */
function baseUrlProblems(name: string, url: string): string[] {
  let u: URL;
  try { u = new URL(url); } catch { return [`${name}: not a valid URL`]; }
  const problems: string[] = [];
  // The written form too: an empty one (`https://:@host`, `https://@host`) parses to none but is still written into every URL built on it.
  if (u.username || u.password || /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(url)) problems.push(`${name}: must not carry a user name or password`);
  if (url.includes('?') || url.includes('#')) problems.push(`${name}: must not carry a query or a fragment`);
  // The URL parser resolves them away (and reads `\` as `/`), so the written form is looked at.
  if (url.includes('\\')) problems.push(`${name}: must not contain a backslash`);
  else if (/\/(\.|%2e){1,2}(\/|$)/i.test(url)) problems.push(`${name}: must not have . or .. path segments`);
  return problems;
}

/** A problem with a key an environment variable set names that variable too (`spine.providerAsids: … (from GATEWAY_PROVIDER_ASID)`). */
export function namingEnv(problem: string, env: Record<string, string | undefined>): string {
  // The keys a problem is about come before its first ': ' (`listen.host, listen.port: …` names two).
  const colon = problem.indexOf(': ');
  const keys = colon === -1 ? [] : problem.slice(0, colon).split(', ');
  const names: string[] = [];
  for (const [name, path] of ENV_OVERRIDES) {
    if (env[name] === undefined || env[name] === '') continue;
    if (keys.some((k) => k === path || k.startsWith(`${path}.`) || k.startsWith(`${path}[`))) names.push(name);
  }
  return names.length ? `${problem} (from ${names.join(', ')})` : problem;
}

export function applyEnv(raw: Record<string, unknown>, env: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  for (const [name, path] of ENV_OVERRIDES) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    if (NUMERIC.has(path)) {
      const n = Number(v);
      if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) problems.push(`${name}: must be an integer`); // a negative one is the schema's to refuse, by its key
      else setPath(raw, path, n);
    } else if (path === 'spine.providerAsids') {
      setPath(raw, path, v.split(',').map((s) => s.trim()).filter(Boolean));
    } else {
      setPath(raw, path, v);
    }
  }
  return problems;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Parse a config file's text by its extension (YAML is a superset of JSON). */
export function parseConfigText(text: string, file: string): Record<string, unknown> {
  const data: unknown = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new ConfigError([`${file}: the top level must be a mapping`]);
  return data as Record<string, unknown>;
}

/**
 * Validate a raw configuration (already merged with env). Relative file paths are resolved
 * against `baseDir` (the config file's folder). Returns the frozen Config or throws ConfigError
 * listing every problem.
 */
/**
 * Defaults that depend on another limit follow it when the operator set only that one: a
 * `maxConnections` of 100 brings the pending handshakes under it, a `requestTimeoutMs` of 600 the
 * headers' deadline within it — rather than a refusal naming a key nobody set.
 */
function deriveLimitDefaults(limits: Config['limits'], rawLimits: unknown): void {
  const set = (k: string): boolean => typeof rawLimits === 'object' && rawLimits !== null && (rawLimits as Record<string, unknown>)[k] !== undefined;
  if (!set('maxPendingHandshakes')) limits.maxPendingHandshakes = Math.max(1, Math.min(limits.maxPendingHandshakes, limits.maxConnections - 1));
  if (!set('maxPendingHandshakesPerAddress')) limits.maxPendingHandshakesPerAddress = Math.min(limits.maxPendingHandshakesPerAddress, limits.maxPendingHandshakes);
  if (!set('headersTimeoutMs')) limits.headersTimeoutMs = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
}

export function buildConfig(raw: Record<string, unknown>, opts: { baseDir?: string; checkFiles?: boolean } = {}): Readonly<Config> {
  const data = structuredClone(raw);
  const problems: string[] = [];
  if (!validateSchema(data)) {
    for (const e of validateSchema.errors ?? []) {
      const at = e.instancePath ? e.instancePath.slice(1).replaceAll('/', '.') : '(root)';
      const extra = e.keyword === 'additionalProperties' ? ` '${String((e.params as { additionalProperty?: string }).additionalProperty)}'` : '';
      const allowed = e.keyword === 'enum' ? ` (${((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).join(', ')})` : '';
      problems.push(`${at}: ${e.message ?? 'invalid'}${extra}${allowed}`);
    }
    throw new ConfigError(problems);
  }
  const c = data as unknown as Config;
  const base = opts.baseDir ?? process.cwd();
  const abs = (p: string | undefined) => (p === undefined || isAbsolute(p) ? p : resolve(base, p));
  c.tls.cert = abs(c.tls.cert)!;
  c.tls.key = abs(c.tls.key)!;
  c.tls.clientCa = abs(c.tls.clientCa)!;
  if (c.tls.crl) c.tls.crl = abs(c.tls.crl);
  if (c.upstream.ca) c.upstream.ca = abs(c.upstream.ca);
  if (c.upstream.cert) c.upstream.cert = abs(c.upstream.cert);
  if (c.upstream.key) c.upstream.key = abs(c.upstream.key);
  if (c.jwt.jwksFile) c.jwt.jwksFile = abs(c.jwt.jwksFile);
  if (c.jwt.jwksCa) c.jwt.jwksCa = abs(c.jwt.jwksCa);
  if (c.store.path) c.store.path = abs(c.store.path);
  if (c.store.tls?.ca) c.store.tls.ca = abs(c.store.tls.ca);
  if (c.store.tls?.cert) c.store.tls.cert = abs(c.store.tls.cert);
  if (c.store.tls?.key) c.store.tls.key = abs(c.store.tls.key);
  if (c.store.encryptionKeyFile) c.store.encryptionKeyFile = abs(c.store.encryptionKeyFile);
  c.store.decryptionKeyFiles = c.store.decryptionKeyFiles.map((f) => abs(f)!);
  c.publicBaseUrl = c.publicBaseUrl.replace(/\/+$/, '');
  c.upstream.url = c.upstream.url.replace(/\/+$/, '');

  // Rules the schema cannot say.
  if (c.jwt.mode === 'signed' && !c.jwt.jwksFile && !c.jwt.jwksUrl) problems.push('jwt: signed mode needs jwksFile or jwksUrl');
  // Issue 13 item 12: a signature proves who signed, not for whom: iss and aud must be pinned.
  if (c.jwt.mode === 'signed' && !c.jwt.issuer) problems.push('jwt.issuer: required in signed mode');
  if (c.jwt.mode === 'signed' && !c.jwt.audience) problems.push('jwt.audience: required in signed mode');
  if (c.jwt.mode === 'unsigned' && (c.jwt.jwksFile || c.jwt.jwksUrl)) problems.push('jwt: jwksFile/jwksUrl given but mode is unsigned');
  if (c.jwt.jwksFile && c.jwt.jwksUrl) problems.push('jwt: give jwksFile or jwksUrl, not both');
  if (c.jwt.jwksCa && !c.jwt.jwksUrl) problems.push('jwt.jwksCa: only with jwksUrl (the CA of the key set\'s HTTPS server)');
  if (c.jwt.mode === 'signed' && c.jwt.algorithms.length === 0) problems.push('jwt.algorithms: at least one algorithm in signed mode');
  if (Boolean(c.upstream.cert) !== Boolean(c.upstream.key)) problems.push('upstream: cert and key must be given together');
  if (c.upstream.url.startsWith('http:') && (c.upstream.ca || c.upstream.cert)) problems.push('upstream: ca/cert/key need an https url');
  if (c.interactions.amend && c.standard !== 'gp-connect') problems.push('interactions.amend: only the gp-connect standard has an amend interaction');
  deriveLimitDefaults(c.limits, raw['limits']);
  if (c.limits.maxPendingHandshakes >= c.limits.maxConnections && c.limits.maxConnections > 1) problems.push('limits.maxPendingHandshakes: must be below limits.maxConnections (authenticated clients need room)');
  if (c.limits.headersTimeoutMs > c.limits.requestTimeoutMs) problems.push('limits.headersTimeoutMs: must not exceed limits.requestTimeoutMs');
  // What the schema's patterns let through but would stop the gateway at start-up.
  for (const [name, url] of [['upstream.url', c.upstream.url], ['publicBaseUrl', c.publicBaseUrl]] as const) problems.push(...baseUrlProblems(name, url));
  if (c.tracing.otlpEndpoint) {
    try { new URL(c.tracing.otlpEndpoint); } catch { problems.push('tracing.otlpEndpoint: not a valid URL'); }
  }
  try { createSecureContext({ ciphers: c.tls.ciphers, minVersion: c.tls.minVersion }); } catch (e) { problems.push(`tls.ciphers: ${(e as Error).message}`); }
  problems.push(...storeRules(c.store));
  if (c.listen.port !== 0 && c.listen.port === c.admin.port) problems.push('admin.port: must differ from listen.port');
  if (opts.checkFiles !== false) {
    const files: Array<[string, string | undefined]> = [
      ['tls.cert', c.tls.cert], ['tls.key', c.tls.key], ['tls.clientCa', c.tls.clientCa], ['tls.crl', c.tls.crl],
      ['upstream.ca', c.upstream.ca], ['upstream.cert', c.upstream.cert], ['upstream.key', c.upstream.key], ['jwt.jwksFile', c.jwt.jwksFile], ['jwt.jwksCa', c.jwt.jwksCa],
      ['store.tls.ca', c.store.tls?.ca], ['store.tls.cert', c.store.tls?.cert], ['store.tls.key', c.store.tls?.key], ['store.encryptionKeyFile', c.store.encryptionKeyFile],
      ...c.store.decryptionKeyFiles.map((f, i): [string, string] => [`store.decryptionKeyFiles.${i}`, f]),
    ];
    for (const [name, file] of files) {
      if (!file) continue;
      try { accessSync(file, constants.R_OK); } catch { problems.push(`${name}: cannot read ${file}`); }
    }
    if (c.jwt.mode === 'signed' && c.jwt.jwksFile) problems.push(...jwksFileProblems(c.jwt.jwksFile));
    if (c.audit.destination !== 'stdout' && c.audit.destination !== 'stderr' && c.audit.destination !== 'none') {
      c.audit.destination = abs(c.audit.destination)!;
      // Open it for append as the gateway will (this creates it): a folder or a read-only file
      // is refused now rather than at the first cancel.
      try { closeSync(openSync(c.audit.destination, 'a', 0o640)); } catch (e) { problems.push(`audit.destination: cannot append to ${c.audit.destination} (${(e as NodeJS.ErrnoException).code ?? 'error'})`); }
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return deepFreeze(c);
}

/** What the store schema cannot say. Never echoes store.url: it may carry a password. */
function storeRules(s: StoreConfig): string[] {
  const problems: string[] = [];
  if (s.kind === 'sqlite' && !s.path) problems.push('store.path: the sqlite store needs a file path');
  // Kernel file systems hold no database (creating folders in /proc never ends on some kernels).
  if (s.kind === 'sqlite' && s.path && /^\/(proc|sys)(\/|$)/.test(s.path)) problems.push('store.path: not under /proc or /sys');
  if (s.kind !== 'sqlite' && s.path) problems.push('store.path: only the sqlite store uses a file path');
  if (s.kind !== 'postgres' && s.url) problems.push('store.url: only the postgres store uses a URL');
  if (s.kind === 'postgres' && !s.url) problems.push('store.url: the postgres store needs a URL (or GATEWAY_STORE_URL)');
  if (s.kind !== 'postgres' && s.tls) problems.push('store.tls: only the postgres store uses TLS');
  if (s.tls && !s.tls.cert !== !s.tls.key) problems.push('store.tls.cert and store.tls.key go together');
  if (s.kind === 'postgres' && s.url) {
    try { new URL(s.url); } catch { problems.push('store.url: not a valid URL'); }
  }
  if (s.kind === 'memory' && (s.encryptionKeyFile || s.retentionDays !== undefined)) problems.push('store: the memory store keeps no versions; encryptionKeyFile and retentionDays need sqlite or postgres');
  if (s.decryptionKeyFiles.length && !s.encryptionKeyFile) problems.push('store.decryptionKeyFiles: needs store.encryptionKeyFile (the current key)');
  return problems;
}

/** Read a file, apply env overrides, validate. */
export function loadConfig(file: string, env: Record<string, string | undefined> = process.env): Readonly<Config> {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) { throw new ConfigError([`${file}: ${(e as Error).message}`]); }
  let raw: Record<string, unknown>;
  try { raw = parseConfigText(text, file); } catch (e) {
    if (e instanceof ConfigError) throw e;
    // The parser's own words only, never its quote of the text (newer V8 quotes the JSON around the
    // error: a store.url password could be in it): the first line, cut before a quoted snippet.
    const said = (e as Error).message.split('\n')[0]!.replace(/, (?:\.\.\.)?"[\s\S]*$/, '');
    throw new ConfigError([`${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${said}`]);
  }
  const envProblems = applyEnv(raw, env);
  let built: Readonly<Config>;
  try {
    built = buildConfig(raw, { baseDir: dirname(resolve(file)) });
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError([...envProblems, ...e.problems.map((p) => namingEnv(p, env))]);
    throw e;
  }
  if (envProblems.length) throw new ConfigError(envProblems);
  return built;
}

/** A URL as it may be printed: any user name and password replaced (a CI log is no place for them). */
export function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '***';
    u.password = '';
    return u.href;
  } catch {
    return '(unparsable URL)';
  }
}

/** Private (and symmetric) key members a public key set must not hold (RFC 7517/7518). */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/**
 * Whether a JWK imports as a public key jose will verify with (an unusable one would make every
 * request a 500): RSA keys of at least 2048 bits, as jose requires for RS and PS algorithms.
 */
function importablePublicKey(k: Record<string, unknown>): boolean {
  try {
    const key = createPublicKey({ key: k as import('node:crypto').JsonWebKey, format: 'jwk' });
    return key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048;
  } catch {
    return false;
  }
}

/**
 * What a JWKS file must be for signed mode: JSON, a non-empty `keys` array of public keys only.
 * The file's content is never quoted (a parse error's message could hold key material).
 */
export function jwksFileProblems(file: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ? [] : ['jwt.jwksFile: not JSON'];
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) return ['jwt.jwksFile: needs a non-empty "keys" array'];
  const problems: string[] = [];
  keys.forEach((k, i) => {
    if (typeof k !== 'object' || k === null || Array.isArray(k)) problems.push(`jwt.jwksFile: keys[${i}] is not a JSON object`);
    else if (PRIVATE_JWK_MEMBERS.some((m) => m in k)) problems.push(`jwt.jwksFile: keys[${i}] holds private or symmetric key material; give public keys only`);
    else if (!importablePublicKey(k as Record<string, unknown>)) problems.push(`jwt.jwksFile: keys[${i}] is not a usable public key (kty and its parameters)`);
  });
  return problems;
}
