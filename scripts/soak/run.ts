#!/usr/bin/env node
/**
 * `npm run soak` (issue 8, item 6): the real gateway, in a child process so that its memory and
 * event-loop delay are its own, in front of the demo provider, under a steady mix of valid and
 * invalid requests over keep-alive mTLS connections, for a bounded time. Every few seconds one line
 * of figures; at the end PASS or FAIL (exit 1).
 *
 *   SOAK_SECONDS         run length, default 300 (5 minutes); 40..21600
 *   SOAK_RPS             target request rate, default 150; 1..5000
 *   SOAK_CONNECTIONS     keep-alive mTLS connections, default 8; 1..256
 *   SOAK_REPORT_SECONDS  seconds between progress lines, default 10; 1..3600
 *   SOAK_STANDARD        nhs-booking (default) or gp-connect
 *
 * FAIL when: the gateway's RSS grew more than 10% from the end of warm-up (the first 20% of the
 * run, at least 30 s) to the end; any request went unanswered (client error, timeout, cut-short
 * answer, or still pending after the drain); any answer had an unexpected status or Spine code for
 * its kind; the provider saw anything of a refused request or a cancel twice; a cancel answered 200
 * is not in the provider's store exactly once; the gateway logged an error, lost decision or audit
 * lines, died, or did not shut down cleanly on SIGTERM.
 *
 * Nothing here logs bodies or tokens (CONTRIBUTING): figures, statuses and codes only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { writeTestPki } from '../../demo/pki.js';
import { startDemoProvider, type DemoProvider } from '../../demo/provider/server.js';
import { seedAppointments } from '../../demo/provider/seed/index.js';
import type { Resource } from '../../demo/provider/store.js';
import { GatewayError, type ErrorCode } from '../../src/errors.js';
import { mappingFor } from '../../src/respond.js';
import { STANDARDS } from '../../src/standards/index.js';
import { badAuthorizations, validAuthorization } from './tokens.js';

// ---------------------------------------------------------------------------------------------
// Settings (all bounded)

function intSetting(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`soak: ${name} must be an integer from ${min} to ${max} (got '${raw}')\n`);
    process.exit(2);
  }
  return n;
}

const SECONDS = intSetting('SOAK_SECONDS', 300, 40, 21_600);
const RPS = intSetting('SOAK_RPS', 150, 1, 5000);
const CONNECTIONS = intSetting('SOAK_CONNECTIONS', 8, 1, 256);
const REPORT_SECONDS = intSetting('SOAK_REPORT_SECONDS', 10, 1, 3600);
function standardSetting(): 'nhs-booking' | 'gp-connect' {
  const raw = process.env['SOAK_STANDARD'] || 'nhs-booking';
  if (raw === 'nhs-booking' || raw === 'gp-connect') return raw;
  process.stderr.write(`soak: SOAK_STANDARD must be nhs-booking or gp-connect (got '${raw}')\n`);
  process.exit(2);
}
const STANDARD_NAME = standardSetting();
const standard = STANDARDS[STANDARD_NAME];
/** Warm-up: the first 20% of the run, at least 30 s. RSS is compared from its end to the end of the run. */
const WARMUP_SECONDS = Math.max(30, Math.ceil(SECONDS * 0.2));
/** RSS figures are averaged over this many seconds (1 sample/s), to smooth out GC saw-teeth. */
const RSS_WINDOW_SECONDS = 5;
const RSS_GROWTH_LIMIT = 0.10;
const MAX_IN_FLIGHT = CONNECTIONS * 8;
const CLIENT_TIMEOUT_MS = 30_000;
const DRAIN_TIMEOUT_MS = 30_000;
/** Nothing can keep the soak running past this: it reports FAIL and kills its gateway. */
const WATCHDOG_MS = (SECONDS + 180) * 1000;

const PROVIDER_ASID = '918999198738';
const CONSUMER_ASID = '200000000359';
const BASE = '/STU3/1';

// ---------------------------------------------------------------------------------------------
// The mix: a fixed cycle of 20, so counts are exact and the cancel pool can be sized up front.

type Kind = 'read' | 'cancel' | 'stale' | 'diff' | 'badToken' | 'mediaType';
const KINDS: readonly Kind[] = ['read', 'cancel', 'stale', 'diff', 'badToken', 'mediaType'];
const CYCLE: readonly Kind[] = [
  'read', 'cancel', 'badToken', 'read', 'stale', 'read', 'diff', 'cancel', 'mediaType', 'read',
  'badToken', 'read', 'cancel', 'stale', 'read', 'diff', 'badToken', 'cancel', 'mediaType', 'read',
];
const CANCELS_PER_CYCLE = CYCLE.filter((k) => k === 'cancel').length;

const interaction = (name: string) => standard.interactions.find((i) => i.name === name)!;
const READ = interaction('read');
const CANCEL = interaction('cancel');

function expectedFor(code: ErrorCode): { status: number; spine: string } {
  const m = mappingFor(new GatewayError(code, 'soak'), standard);
  return { status: m.status, spine: m.spine };
}
/** What each kind must be answered with (the catalogue, with the standard's overrides). */
const EXPECTED: Record<Kind, { status: number; spine?: string; code?: ErrorCode }> = {
  read: { status: 200 },
  cancel: { status: 200 },
  stale: { ...expectedFor('VERSION_CONFLICT'), code: 'VERSION_CONFLICT' },
  diff: { ...expectedFor('BUSINESS_RULE'), code: 'BUSINESS_RULE' },
  badToken: { ...expectedFor('JWT_INVALID'), code: 'JWT_INVALID' },
  mediaType: { ...expectedFor('UNSUPPORTED_MEDIA_TYPE'), code: 'UNSUPPORTED_MEDIA_TYPE' },
};
// (FHIR XML is accepted since ruling 21: a JSON body labelled XML is a 400, not a media-type refusal.)
const BAD_MEDIA_TYPES = ['application/xml', 'text/xml', 'text/plain', 'application/json', 'application/fhir+json; charset=iso-8859-1'];

// ---------------------------------------------------------------------------------------------
// Small helpers

const say = (line: string) => process.stdout.write(line + '\n');
const mib = (bytes: number | undefined) => (bytes === undefined ? 'n/a' : `${(bytes / 1048576).toFixed(1)} MiB`);
const ms = (seconds: number | undefined) => (seconds === undefined ? 'n/a' : `${(seconds * 1000).toFixed(1)}`);
const sleep = (msDelay: number) => new Promise<void>((r) => setTimeout(r, msDelay));

function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The gateway process's resident set, from /proc (Linux); undefined elsewhere. */
function readRss(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function scrapeMetrics(adminPort: number): Promise<Map<string, number>> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: adminPort, path: '/metrics', agent: false, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const out = new Map<string, number>();
        for (const line of text.split('\n')) {
          if (line.startsWith('#')) continue;
          const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
          if (m && !m[2]) out.set(m[1]!, Number(m[3]));
        }
        resolve(out);
      });
      res.on('error', () => resolve(new Map()));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(new Map()));
  });
}

const M_LAG_P50 = 'cancel_gateway_nodejs_eventloop_lag_p50_seconds';
const M_LAG_P99 = 'cancel_gateway_nodejs_eventloop_lag_p99_seconds';
const M_LAG_MAX = 'cancel_gateway_nodejs_eventloop_lag_max_seconds';
const M_HEAP = 'cancel_gateway_nodejs_heap_size_used_bytes';
const M_RSS = 'cancel_gateway_process_resident_memory_bytes';

// ---------------------------------------------------------------------------------------------
// State

const stats = {
  sent: 0,
  answered: 0,
  clientErrors: 0,
  skipped: 0,
  unexpected: 0,
  byStatus: new Map<number, number>(),
  byKind: Object.fromEntries(KINDS.map((k) => [k, { sent: 0, answered: 0, statuses: new Map<number, number>(), latencies: [] as number[] }])) as Record<
    Kind,
    { sent: number; answered: number; statuses: Map<number, number>; latencies: number[] }
  >,
  clientErrorSamples: [] as string[],
  unexpectedSamples: [] as string[],
};
let inFlight = 0;

/** Appointment pools, each with its own id prefix, so the provider's recording says who sent what. */
const pools = {
  read: [] as string[],
  cancel: [] as string[],
  stale: [] as string[],
  diff: [] as string[],
  guard: [] as string[],
};
type PoolName = keyof typeof pools;
const PREFIX: Record<PoolName, string> = { read: 'soak-r-', cancel: 'soak-c-', stale: 'soak-s-', diff: 'soak-d-', guard: 'soak-g-' };
const poolOf = (id: string): PoolName | undefined => (Object.keys(PREFIX) as PoolName[]).find((p) => id.startsWith(PREFIX[p]));
let nextCancel = 0;
let cancelPoolExhausted = 0;
const cancelledOk = new Set<string>();
/** Bodies that never change (stale, diff, guard pools): built once. */
const fixedBodies = new Map<string, Buffer>();

/** What the provider received, tallied (and its recording emptied) every second so memory stays flat. */
const seenByProvider = {
  byPool: Object.fromEntries((Object.keys(PREFIX) as PoolName[]).map((p) => [p, { GET: 0, PUT: 0, other: 0 }])) as Record<PoolName, { GET: number; PUT: number; other: number }>,
  unknown: 0,
  cancelPuts: new Map<string, number>(),
};

const gatewayLog = { decisions: 0, audits: 0, warn: 0, error: 0, samples: [] as string[], stderr: [] as string[] };

// ---------------------------------------------------------------------------------------------
// Setup: certificates, provider, appointments, gateway child

function cancelBody(resource: Resource, mutate?: (r: Resource) => void): Buffer {
  const r = structuredClone(resource);
  r['status'] = 'cancelled';
  if (standard.cancel.reasonRequired) {
    const ext = Array.isArray(r['extension']) ? (r['extension'] as unknown[]) : [];
    r['extension'] = [...ext, { url: standard.cancel.reasonExtensionUrl, valueString: 'Patient request' }];
  }
  mutate?.(r);
  return Buffer.from(JSON.stringify(r), 'utf8');
}

function seed(provider: DemoProvider): void {
  const templates = seedAppointments(STANDARD_NAME);
  const template = (n: number) => templates[n % templates.length]!;
  const plannedCancels = Math.ceil((RPS * SECONDS * CANCELS_PER_CYCLE) / CYCLE.length);
  const sizes: Record<PoolName, number> = { read: 50, cancel: plannedCancels + 50, stale: 50, diff: 50, guard: 50 };
  for (const pool of Object.keys(sizes) as PoolName[]) {
    for (let n = 0; n < sizes[pool]; n++) {
      const id = `${PREFIX[pool]}${n}`;
      provider.store.create(template(n), id);
      pools[pool].push(id);
    }
  }
  // Stale: the stored appointment moves to version 2 (still booked); the soak keeps sending If-Match "1".
  for (const id of pools.stale) {
    provider.store.update(id, provider.store.read(id)!.resource);
    fixedBodies.set(id, cancelBody(provider.store.read(id)!.resource));
  }
  // Diff: a cancel that also changes the description (ruling 9) -> 422, never forwarded.
  for (const id of pools.diff) {
    fixedBodies.set(id, cancelBody(provider.store.read(id)!.resource, (r) => (r['description'] = `${String(r['description'] ?? '')} (changed by the soak)`)));
  }
  // Guard: otherwise valid cancels, refused before the provider for their token or media type.
  for (const id of pools.guard) fixedBodies.set(id, cancelBody(provider.store.read(id)!.resource));
}

interface GatewayChild {
  child: ChildProcess;
  pid: number;
  port: number;
  adminPort: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitedEarly: boolean;
}

function startGateway(configFile: string): Promise<GatewayChild> {
  const mainJs = fileURLToPath(new URL('../../src/main.js', import.meta.url));
  // Our configuration file only: environment overrides of the caller's shell do not leak in.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GATEWAY_')));
  const child = spawn(process.execPath, [mainJs, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (gatewayLog.stderr.length < 20) gatewayLog.stderr.push(line.slice(0, 300));
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the gateway did not report ready within 30 s')), 30_000);
    let ready = false;
    void exited.then(({ code, signal }) => {
      if (!ready) {
        clearTimeout(timer);
        reject(new Error(`the gateway exited during start-up (code ${code}, signal ${signal}): ${gatewayLog.stderr.join(' | ')}`));
      }
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        gatewayLog.warn++;
        if (gatewayLog.samples.length < 10) gatewayLog.samples.push('non-JSON stdout line');
        return;
      }
      if (entry['audit'] === true) {
        gatewayLog.audits++;
        return;
      }
      if (entry['msg'] === 'decision') gatewayLog.decisions++;
      const level = entry['level'];
      if (level === 'error' || level === 'warn') {
        gatewayLog[level]++;
        if (gatewayLog.samples.length < 10) gatewayLog.samples.push(`${String(entry['level'])}: ${String(entry['msg'])}`);
      }
      if (!ready && entry['msg'] === 'ready') {
        ready = true;
        clearTimeout(timer);
        const g: GatewayChild = { child, pid: child.pid!, port: Number(entry['port']), adminPort: Number(entry['adminPort']), exited, exitedEarly: false };
        resolve(g);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Load

function makeAgent(material: { ca: string; cert: string; key: string }): https.Agent {
  // fifo: every connection stays busy, so none sits idle into the gateway's keep-alive timeout.
  return new https.Agent({ keepAlive: true, maxSockets: CONNECTIONS, maxFreeSockets: CONNECTIONS, scheduling: 'fifo', ca: material.ca, cert: material.cert, key: material.key, servername: 'localhost' });
}

function spineHeaders(interactionId: string, requestId: string): Record<string, string> {
  return {
    'Ssp-TraceID': randomUUID(),
    'Ssp-From': CONSUMER_ASID,
    'Ssp-To': PROVIDER_ASID,
    'Ssp-InteractionID': interactionId,
    'X-Request-ID': requestId,
  };
}

function noteUnexpected(kind: Kind, why: string): void {
  stats.unexpected++;
  if (stats.unexpectedSamples.length < 10) stats.unexpectedSamples.push(`${kind}: ${why}`);
}

function spineCodeOf(body: Buffer): string | undefined {
  try {
    const oo = JSON.parse(body.toString('utf8')) as { resourceType?: unknown; issue?: Array<{ details?: { coding?: Array<{ code?: unknown }> } }> };
    if (oo.resourceType !== 'OperationOutcome') return undefined;
    const code = oo.issue?.[0]?.details?.coding?.[0]?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** Check one answer against what its kind must get. */
function judge(kind: Kind, id: string, requestId: string, status: number, headers: http.IncomingHttpHeaders, body: Buffer): void {
  const want = EXPECTED[kind];
  if (status !== want.status) {
    noteUnexpected(kind, `status ${status} (expected ${want.status})${status >= 400 ? `, ${spineCodeOf(body) ?? 'no OperationOutcome'}` : ''}`);
    return;
  }
  if (want.spine !== undefined) {
    const code = spineCodeOf(body);
    if (code !== want.spine) noteUnexpected(kind, `Spine code ${code ?? 'none'} (expected ${want.spine})`);
    else if (headers['x-correlation-id'] !== requestId) noteUnexpected(kind, 'X-Correlation-ID does not echo X-Request-ID');
    return;
  }
  if (kind === 'read') {
    if (typeof headers.etag !== 'string') noteUnexpected(kind, 'read answered without an ETag');
    return;
  }
  // A valid cancel: the provider's new version, cancelled (rulings 12).
  let cancelled = false;
  try {
    cancelled = (JSON.parse(body.toString('utf8')) as { status?: unknown }).status === 'cancelled';
  } catch {
    /* judged below */
  }
  if (!cancelled) noteUnexpected(kind, '200 body is not a cancelled Appointment');
  else if (headers.etag !== 'W/"2"') noteUnexpected(kind, `ETag ${String(headers.etag)} (expected W/"2")`);
  else cancelledOk.add(id);
}

function send(agent: https.Agent, port: number, kind: Kind, id: string, requestId: string, method: string, headers: Record<string, string>, body?: Buffer): void {
  const started = performance.now();
  const k = stats.byKind[kind];
  stats.sent++;
  k.sent++;
  inFlight++;
  let settled = false;
  const settle = (outcome: { status: number; headers: http.IncomingHttpHeaders; body: Buffer } | { error: string }) => {
    if (settled) return;
    settled = true;
    inFlight--;
    if ('error' in outcome) {
      stats.clientErrors++;
      if (stats.clientErrorSamples.length < 10) stats.clientErrorSamples.push(`${kind}: ${outcome.error}`);
      return;
    }
    stats.answered++;
    k.answered++;
    k.latencies.push(performance.now() - started);
    stats.byStatus.set(outcome.status, (stats.byStatus.get(outcome.status) ?? 0) + 1);
    k.statuses.set(outcome.status, (k.statuses.get(outcome.status) ?? 0) + 1);
    judge(kind, id, requestId, outcome.status, outcome.headers, outcome.body);
  };
  if (body) headers['Content-Length'] = String(body.length);
  const req = https.request({ host: '127.0.0.1', port, method, path: `${BASE}/Appointment/${id}`, headers, agent }, (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      if (!res.complete) settle({ error: 'answer cut short' });
      else settle({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
    });
    res.on('aborted', () => settle({ error: 'answer aborted' }));
    res.on('error', (e: NodeJS.ErrnoException) => settle({ error: e.code ?? e.message }));
  });
  req.on('error', (e: NodeJS.ErrnoException) => settle({ error: e.code ?? e.message }));
  req.setTimeout(CLIENT_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${CLIENT_TIMEOUT_MS} ms`)));
  req.end(body);
}

function issue(agent: https.Agent, port: number, provider: DemoProvider, n: number): void {
  let kind = CYCLE[n % CYCLE.length]!;
  const requestId = `soak-${n}`;
  const pick = (pool: string[]) => pool[Math.floor(n / CYCLE.length) % pool.length]!;
  if (kind === 'cancel' && nextCancel >= pools.cancel.length) {
    cancelPoolExhausted++;
    kind = 'read';
  }
  switch (kind) {
    case 'read': {
      const headers = { ...spineHeaders(READ.id, requestId), Authorization: validAuthorization(READ.scope), Accept: 'application/fhir+json' };
      send(agent, port, kind, pick(pools.read), requestId, 'GET', headers);
      return;
    }
    case 'cancel': {
      const id = pools.cancel[nextCancel++]!;
      // The body a consumer builds from its read: the stored appointment, status cancelled.
      const body = cancelBody(provider.store.read(id)!.resource);
      const headers = { ...spineHeaders(CANCEL.id, requestId), Authorization: validAuthorization(CANCEL.scope), 'If-Match': 'W/"1"', 'Content-Type': 'application/fhir+json; charset=utf-8' };
      send(agent, port, kind, id, requestId, 'PUT', headers, body);
      return;
    }
    case 'stale':
    case 'diff': {
      const id = pick(pools[kind]);
      const headers = { ...spineHeaders(CANCEL.id, requestId), Authorization: validAuthorization(CANCEL.scope), 'If-Match': 'W/"1"', 'Content-Type': 'application/fhir+json' };
      send(agent, port, kind, id, requestId, 'PUT', headers, fixedBodies.get(id)!);
      return;
    }
    case 'badToken': {
      const id = pick(pools.guard);
      const bad = badAuthorizations(CANCEL.scope, READ.scope);
      const headers = { ...spineHeaders(CANCEL.id, requestId), Authorization: bad[Math.floor(n / CYCLE.length) % bad.length]!.value, 'If-Match': 'W/"1"', 'Content-Type': 'application/fhir+json' };
      send(agent, port, kind, id, requestId, 'PUT', headers, fixedBodies.get(id)!);
      return;
    }
    case 'mediaType': {
      const id = pick(pools.guard);
      const headers = { ...spineHeaders(CANCEL.id, requestId), Authorization: validAuthorization(CANCEL.scope), 'If-Match': 'W/"1"', 'Content-Type': BAD_MEDIA_TYPES[Math.floor(n / CYCLE.length) % BAD_MEDIA_TYPES.length]! };
      send(agent, port, kind, id, requestId, 'PUT', headers, fixedBodies.get(id)!);
      return;
    }
  }
}

/** Empty the provider's recording into the tallies (it keeps every body otherwise). */
function tallyProvider(provider: DemoProvider): void {
  const recorded = provider.requests.splice(0);
  for (const r of recorded) {
    const path = r.url.split('?')[0] ?? '';
    const m = /\/Appointment\/([^/]+)$/.exec(path);
    const id = m ? decodeURIComponent(m[1]!) : undefined;
    const pool = id === undefined ? undefined : poolOf(id);
    if (pool === undefined) {
      seenByProvider.unknown++;
      continue;
    }
    const slot = seenByProvider.byPool[pool];
    if (r.method === 'GET') slot.GET++;
    else if (r.method === 'PUT') slot.PUT++;
    else slot.other++;
    if (pool === 'cancel' && r.method === 'PUT') seenByProvider.cancelPuts.set(id!, (seenByProvider.cancelPuts.get(id!) ?? 0) + 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'cancel-gateway-soak-'));
  let provider: DemoProvider | undefined;
  let gw: GatewayChild | undefined;
  let agent: https.Agent | undefined;
  const timers: NodeJS.Timeout[] = [];
  const watchdog = setTimeout(() => {
    say(`FAIL: the soak did not finish within ${WATCHDOG_MS / 1000} s (watchdog)`);
    if (gw && gw.child.exitCode === null) gw.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    process.exit(1);
  }, WATCHDOG_MS);
  const onSignal = (signal: NodeJS.Signals) => {
    say(`soak: ${signal}, stopping`);
    if (gw && gw.child.exitCode === null) gw.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    // TLS material (demo/certs.ts), written where the gateway reads it.
    const tlsDir = join(dir, 'tls');
    mkdirSync(tlsDir);
    const { ca, client } = writeTestPki(tlsDir, { ca: 'cancel-gateway soak CA', client: 'ssp.soak.nhs.uk' });

    provider = await startDemoProvider({ seed: 'none', host: '127.0.0.1', port: 0 });
    const t = performance.now();
    seed(provider);
    const seedMs = Math.round(performance.now() - t);

    const configFile = join(dir, 'gateway.json');
    writeFileSync(
      configFile,
      JSON.stringify(
        {
          standard: STANDARD_NAME,
          listen: { host: '127.0.0.1', port: 0 },
          admin: { host: '127.0.0.1', port: 0 },
          basePath: BASE,
          publicBaseUrl: `https://localhost${BASE}`,
          tls: { cert: 'tls/server.pem', key: 'tls/server-key.pem', clientCa: 'tls/ca.pem' },
          upstream: { url: provider.url },
          spine: { providerAsids: [PROVIDER_ASID] },
          // Production defaults otherwise: decision lines at info and audit records on stdout,
          // which the soak reads and counts (and so also soaks the logging path).
          log: { level: 'info' },
          audit: { destination: 'stdout' },
        },
        null,
        2,
      ),
    );
    gw = await startGateway(configFile);
    const g = gw;
    void g.exited.then(() => {
      if (!stopRequested) g.exitedEarly = true;
    });
    agent = makeAgent({ ca: ca.cert, cert: client.cert, key: client.key });

    const firstScrape = await scrapeMetrics(g.adminPort);
    const lagMetricFound = firstScrape.has(M_LAG_P99);
    const useProcRss = readRss(g.pid) !== undefined;
    say(`cancel-gateway soak: ${standard.title}, ${SECONDS} s (warm-up ${WARMUP_SECONDS} s), target ${RPS} req/s over ${CONNECTIONS} keep-alive mTLS connections`);
    say(`  mix per ${CYCLE.length}: ${KINDS.map((k) => `${k} ${CYCLE.filter((c) => c === k).length}`).join(', ')}`);
    say(`  expected: ${KINDS.map((k) => `${k} ${EXPECTED[k].status}${EXPECTED[k].spine ? ` ${EXPECTED[k].spine}` : ''}`).join(', ')}`);
    say(`  provider ${provider.url}: ${provider.store.ids().length} appointments seeded in ${seedMs} ms (${pools.cancel.length} for valid cancels)`);
    say(`  gateway pid ${g.pid}, mTLS port ${g.port}, admin port ${g.adminPort}; RSS from ${useProcRss ? `/proc/${g.pid}/status VmRSS` : M_RSS}; event-loop delay from ${lagMetricFound ? M_LAG_P99 : `(not found: ${M_LAG_P99})`}`);
    say(`  (event-loop figures include prom-client's 10 ms sampling interval: ~10 ms means no delay)`);

    // RSS, once a second, from the start of the load.
    const rssSamples: Array<{ t: number; rss: number }> = [];
    const loadStart = performance.now();
    const elapsed = () => (performance.now() - loadStart) / 1000;
    const sampleRss = async () => {
      const rss = useProcRss ? readRss(g.pid) : (await scrapeMetrics(g.adminPort)).get(M_RSS);
      if (rss !== undefined) rssSamples.push({ t: elapsed(), rss });
    };
    await sampleRss();
    timers.push(setInterval(() => void sampleRss(), 1000));
    timers.push(setInterval(() => tallyProvider(provider!), 1000));

    // Progress lines.
    const lagP99s: number[] = [];
    let lagMaxSeen = 0;
    let lastReport = { t: 0, answered: 0 };
    const report = async (end?: number) => {
      const now = end ?? elapsed();
      // The last periodic line already covers the end of the load.
      if (end !== undefined && now - lastReport.t < 1) return;
      const m = await scrapeMetrics(g.adminPort);
      const p50 = m.get(M_LAG_P50);
      const p99 = m.get(M_LAG_P99);
      const max = m.get(M_LAG_MAX);
      if (p99 !== undefined && Number.isFinite(p99)) lagP99s.push(p99);
      if (max !== undefined && Number.isFinite(max)) lagMaxSeen = Math.max(lagMaxSeen, max);
      const rss = rssSamples[rssSamples.length - 1]?.rss;
      const rate = (stats.answered - lastReport.answered) / Math.max(0.001, now - lastReport.t);
      lastReport = { t: now, answered: stats.answered };
      const statuses = [...stats.byStatus.entries()].sort((a, b) => a[0] - b[0]).map(([s, c]) => `${s}:${c}`).join(' ');
      say(
        `[${now.toFixed(0).padStart(5)} s] requests ${String(stats.answered).padStart(7)} ${rate.toFixed(1).padStart(7)} req/s | ${statuses} | ` +
          `errors ${stats.clientErrors} unexpected ${stats.unexpected} | RSS ${mib(rss)} heap ${mib(m.get(M_HEAP))} | ` +
          `loop delay p50 ${ms(p50)} p99 ${ms(p99)} max ${ms(max)} ms | in flight ${inFlight}${now < WARMUP_SECONDS ? ' (warm-up)' : ''}`,
      );
    };
    timers.push(setInterval(() => void report(), REPORT_SECONDS * 1000));

    // Open-loop pacing at RPS; more than a second behind, the excess is dropped and counted.
    let scheduled = 0;
    await new Promise<void>((resolve) => {
      const pump = setInterval(() => {
        const now = elapsed();
        if (now >= SECONDS || g.exitedEarly) {
          clearInterval(pump);
          resolve();
          return;
        }
        let due = Math.floor(now * RPS) - scheduled - stats.skipped;
        if (due > RPS) {
          stats.skipped += due - RPS;
          due = RPS;
        }
        while (due > 0 && inFlight < MAX_IN_FLIGHT) {
          issue(agent!, g.port, provider!, scheduled++);
          due--;
        }
      }, 5);
    });
    const loadSeconds = elapsed();

    // Drain: every request sent must be answered.
    const drainStart = performance.now();
    while (inFlight > 0 && performance.now() - drainStart < DRAIN_TIMEOUT_MS) await sleep(50);
    const pending = inFlight;
    for (const tm of timers) clearInterval(tm);
    await report(loadSeconds);
    tallyProvider(provider);
    // The gateway writes its decision and audit lines just after answering: let them arrive.
    const putKinds: Kind[] = ['cancel', 'stale', 'diff', 'badToken', 'mediaType'];
    const putsAnswered = putKinds.reduce((a, k) => a + stats.byKind[k].answered, 0);
    const logWait = performance.now();
    while ((gatewayLog.decisions < stats.answered || gatewayLog.audits < putsAnswered) && performance.now() - logWait < 5000) await sleep(50);

    // Clean shutdown on SIGTERM (ruling 18).
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let shutdownMs = 0;
    const exitedEarly = g.exitedEarly;
    if (!exitedEarly) {
      stopRequested = true;
      const t0 = performance.now();
      g.child.kill('SIGTERM');
      exit = await Promise.race([g.exited, sleep(40_000).then(() => undefined)]);
      shutdownMs = Math.round(performance.now() - t0);
      if (!exit) g.child.kill('SIGKILL');
    } else {
      exit = await g.exited;
    }

    // ------------------------------------------------------------------ verdict
    const failures: string[] = [];
    const avgRss = (from: number, to: number): number | undefined => {
      const xs = rssSamples.filter((s) => s.t >= from && s.t <= to).map((s) => s.rss);
      if (xs.length === 0) {
        const nearest = [...rssSamples].sort((a, b) => Math.abs(a.t - to) - Math.abs(b.t - to))[0];
        return nearest?.rss;
      }
      return xs.reduce((a, b) => a + b, 0) / xs.length;
    };
    const rssStart = rssSamples[0]?.rss;
    const rssWarm = avgRss(WARMUP_SECONDS - RSS_WINDOW_SECONDS, WARMUP_SECONDS);
    const rssEnd = avgRss(loadSeconds - RSS_WINDOW_SECONDS, loadSeconds);
    const rssPeak = rssSamples.reduce((a, s) => Math.max(a, s.rss), 0);
    const growth = rssWarm && rssEnd ? (rssEnd - rssWarm) / rssWarm : undefined;
    if (growth === undefined) failures.push('no RSS figures for the gateway');
    else if (growth > RSS_GROWTH_LIMIT) failures.push(`gateway RSS grew ${(growth * 100).toFixed(1)}% after warm-up (limit ${RSS_GROWTH_LIMIT * 100}%)`);

    const unanswered = stats.sent - stats.answered;
    if (unanswered > 0) failures.push(`${unanswered} of ${stats.sent} requests unanswered (${stats.clientErrors} client errors, ${pending} still pending after the drain)`);
    if (stats.unexpected > 0) failures.push(`${stats.unexpected} answers with an unexpected status or code`);
    if (exitedEarly) failures.push(`the gateway exited during the run (code ${exit?.code}, signal ${exit?.signal})`);
    else if (!exit) failures.push('the gateway did not exit within 40 s of SIGTERM');
    else if (exit.code !== 0) failures.push(`the gateway exited with code ${exit.code} (signal ${exit.signal}) on SIGTERM`);

    // The provider: nothing of a refused request, each valid cancel exactly once.
    const sp = seenByProvider.byPool;
    const leaks = sp.stale.PUT + sp.diff.PUT + sp.guard.GET + sp.guard.PUT + sp.guard.other + sp.stale.other + sp.diff.other + sp.read.PUT + sp.read.other;
    if (leaks > 0) failures.push(`${leaks} requests reached the provider that the gateway should have stopped`);
    const dupPuts = [...seenByProvider.cancelPuts.values()].filter((c) => c > 1).length;
    if (dupPuts > 0) failures.push(`${dupPuts} appointments were PUT to the provider more than once`);
    const putsNotOk = [...seenByProvider.cancelPuts.keys()].filter((id) => !cancelledOk.has(id)).length;
    if (putsNotOk > 0) failures.push(`${putsNotOk} cancels reached the provider but were not answered 200 to the client`);
    let storeWrong = 0;
    for (const id of pools.cancel) {
      const history = provider.store.history(id);
      const ok = cancelledOk.has(id)
        ? history.length === 2 && history[1]!.resource['status'] === 'cancelled' && seenByProvider.cancelPuts.get(id) === 1
        : history.length === 1 && history[0]!.resource['status'] === 'booked';
      if (!ok) storeWrong++;
    }
    for (const pool of ['stale', 'diff', 'guard', 'read'] as const) {
      for (const id of pools[pool]) {
        const history = provider.store.history(id);
        if (history.length !== (pool === 'stale' ? 2 : 1) || history[history.length - 1]!.resource['status'] !== 'booked') storeWrong++;
      }
    }
    if (storeWrong > 0) failures.push(`${storeWrong} appointments in the provider's store are not as the answers say`);
    if (cancelPoolExhausted > 0) failures.push(`the cancel pool ran out ${cancelPoolExhausted} times (a soak bug)`);
    if (gatewayLog.error > 0) failures.push(`the gateway logged ${gatewayLog.error} error lines`);
    if (gatewayLog.decisions !== stats.answered) failures.push(`decision lines ${gatewayLog.decisions} != answered requests ${stats.answered}`);
    // Ruling 19: one audit record per request on the cancel route, whatever its outcome.
    if (gatewayLog.audits !== putsAnswered) failures.push(`audit records ${gatewayLog.audits} != cancel-route requests answered ${putsAnswered}`);

    // ------------------------------------------------------------------ summary
    say('');
    say(`soak summary: ${standard.title}, load ${loadSeconds.toFixed(0)} s (warm-up ${WARMUP_SECONDS} s), target ${RPS} req/s, ${CONNECTIONS} connections`);
    say(`  requests   sent ${stats.sent}, answered ${stats.answered}, unanswered ${unanswered} (client errors ${stats.clientErrors}), unexpected ${stats.unexpected}, generator skipped ${stats.skipped}; ${(stats.answered / loadSeconds).toFixed(1)} req/s average`);
    for (const k of KINDS) {
      const s = stats.byKind[k];
      const lat = [...s.latencies].sort((a, b) => a - b);
      const st = [...s.statuses.entries()].map(([code, c]) => `${code}:${c}`).join(' ');
      say(`  ${k.padEnd(10)} ${String(s.answered).padStart(7)} answered (${st || '-'}), latency p50 ${percentile(lat, 50)?.toFixed(1) ?? 'n/a'} ms p99 ${percentile(lat, 99)?.toFixed(1) ?? 'n/a'} ms max ${lat.length ? lat[lat.length - 1]!.toFixed(1) : 'n/a'} ms`);
    }
    const sortedP99 = [...lagP99s].sort((a, b) => a - b);
    say(`  RSS        start ${mib(rssStart)}, end of warm-up ${mib(rssWarm)}, end ${mib(rssEnd)} (${RSS_WINDOW_SECONDS} s averages), peak ${mib(rssPeak)}; growth after warm-up ${growth === undefined ? 'n/a' : `${(growth * 100).toFixed(1)}%`} (limit ${RSS_GROWTH_LIMIT * 100}%)`);
    say(`  loop delay p99 per ${REPORT_SECONDS} s interval: median ${ms(percentile(sortedP99, 50))} ms, worst ${ms(sortedP99[sortedP99.length - 1])} ms; max single delay ${ms(lagMaxSeen)} ms`);
    say(`  provider   PUTs ${sp.cancel.PUT} (valid cancels answered 200: ${cancelledOk.size}; none twice: ${dupPuts === 0}), GETs ${sp.cancel.GET + sp.stale.GET + sp.diff.GET + sp.read.GET}; from refused requests: ${leaks} leaked`);
    say(`  store      ${storeWrong === 0 ? 'every appointment as the answers say' : `${storeWrong} appointments wrong`} (${cancelledOk.size} cancelled exactly once, the rest unchanged)`);
    say(`  gateway    decision lines ${gatewayLog.decisions}, audit records ${gatewayLog.audits}, warn ${gatewayLog.warn}, error ${gatewayLog.error}; SIGTERM -> ${exitedEarly ? 'already exited' : exit ? `exit ${exit.code} in ${shutdownMs} ms` : 'no exit'}`);
    for (const s of stats.clientErrorSamples) say(`    client error: ${s}`);
    for (const s of stats.unexpectedSamples) say(`    unexpected: ${s}`);
    for (const s of gatewayLog.samples) say(`    gateway log: ${s}`);
    for (const s of gatewayLog.stderr) say(`    gateway stderr: ${s}`);
    say('');
    if (failures.length) {
      for (const f of failures) say(`FAIL: ${f}`);
      return 1;
    }
    say('PASS');
    return 0;
  } catch (e) {
    say(`FAIL: ${(e as Error)?.message ?? String(e)}`);
    return 1;
  } finally {
    clearTimeout(watchdog);
    for (const tm of timers) clearInterval(tm);
    agent?.destroy();
    if (gw && gw.child.exitCode === null && gw.child.signalCode === null) {
      stopRequested = true;
      gw.child.kill('SIGKILL');
    }
    await provider?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

let stopRequested = false;

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    say(`FAIL: ${(e as Error)?.message ?? String(e)}`);
    process.exit(1);
  },
);
