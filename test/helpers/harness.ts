import https from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { buildConfig, type Config } from '../../src/config.js';
import { createGateway, type Gateway } from '../../src/server.js';
import { createLogger } from '../../src/log.js';
import { systemClock } from '../../src/ports/clock.js';
import type { Tracer } from '../../src/ports/tracer.js';
import type { AuditRecord, AuditSink } from '../../src/ops/audit.js';
import { STANDARDS } from '../../src/standards/index.js';
import type { CertAuthority, Pem } from '../../demo/certs.js';
import { writeTestPki } from '../../demo/pki.js';
import { startDemoProvider, type DemoProvider } from '../../demo/provider/server.js';
import { unsignedToken, validClaims } from './tokens.js';

export const PROVIDER_ASID = '918999198738';
export const CONSUMER_ASID = '200000000359';

export interface Pki { dir: string; ca: CertAuthority; server: Pem; client: Pem; files: { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string } }

let cachedPki: Pki | undefined;
/** One CA, server and client certificate per test process (RSA keygen is the slow part). */
export function pki(): Pki {
  if (cachedPki) return cachedPki;
  const dir = mkdtempSync(join(tmpdir(), 'gw-pki-'));
  const { ca, server, client, files } = writeTestPki(dir, { ca: 'Test Spine CA', client: 'ssp.test.nhs.uk' });
  cachedPki = { dir, ca, server, client, files };
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return cachedPki;
}

export interface Harness {
  gateway: Gateway;
  provider: DemoProvider;
  config: Readonly<Config>;
  logs: string[];
  audit: AuditRecord[];
  /** Clock the gateway sees (ms); tests may move it. */
  clock: { now(): number; setTimer(fn: () => void, ms: number): () => void };
  request(opts: RequestOptions): Promise<Reply>;
  close(): Promise<void>;
}

export interface RequestOptions {
  method: string;
  path: string;
  headers?: Record<string, string | string[] | undefined>;
  body?: string | Buffer;
  /** Client certificate; default the harness client; null = none. */
  cert?: Pem | null;
}

export interface Reply { status: number; headers: IncomingHttpHeaders; body: Buffer; json: any }

export type StandardName = 'nhs-booking' | 'gp-connect';

export async function startHarness(opts: { standard?: StandardName; config?: Record<string, unknown>; provider?: Parameters<typeof startDemoProvider>[0]; basePath?: string; upstreamProbeIntervalMs?: number; tracer?: Tracer; auditHealthy?: () => boolean } = {}): Promise<Harness> {
  const standard = opts.standard ?? 'nhs-booking';
  const p = pki();
  const provider = await startDemoProvider({ seed: standard, ...opts.provider });
  const logs: string[] = [];
  const audit: AuditRecord[] = [];
  const raw: Record<string, unknown> = {
    standard,
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    basePath: opts.basePath ?? '/STU3/1',
    publicBaseUrl: 'https://gateway.example.nhs.uk/STU3/1',
    tls: { cert: p.files.serverCert, key: p.files.serverKey, clientCa: p.files.ca, watch: false },
    upstream: { url: provider.url, timeoutMs: 2000 },
    spine: { providerAsids: [PROVIDER_ASID] },
    log: { level: 'debug' },
  };
  // One level deep: { upstream: { timeoutMs } } keeps the provider URL.
  for (const [k, v] of Object.entries(opts.config ?? {})) {
    const base = raw[k];
    raw[k] = v && typeof v === 'object' && !Array.isArray(v) && base && typeof base === 'object' ? { ...(base as object), ...(v as object) } : v;
  }
  const config = buildConfig(raw);
  const clock = { now: () => Date.now(), setTimer: systemClock.setTimer };
  const logger = createLogger('debug', { write: (s: string) => logs.push(s) });
  const sink: AuditSink = { write: (r) => void audit.push(r), ...(opts.auditHealthy ? { healthy: opts.auditHealthy } : {}), close: async () => {} };
  const gateway = createGateway(config, { logger, audit: sink, clock, upstreamProbeIntervalMs: opts.upstreamProbeIntervalMs, tracer: opts.tracer });
  await gateway.listen();
  const request = (o: RequestOptions) => send(gateway.port, o);
  return {
    gateway, provider, config, logs, audit, clock, request,
    async close() {
      await gateway.close();
      await provider.close();
    },
  };
}

/** One request over mTLS; a fresh connection unless a keep-alive `agent` (with its own TLS options) is given. */
export function send(port: number, o: RequestOptions, agent?: https.Agent): Promise<Reply> {
  const p = pki();
  const cert = o.cert === undefined ? p.client : o.cert;
  const tls = agent ? { agent } : { ca: p.ca.cert, ...(cert ? { cert: cert.cert, key: cert.key } : {}), agent: false as const };
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, method: o.method, path: o.path, servername: 'localhost',
      ...tls, headers: o.headers as Record<string, string>,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        let json: unknown;
        try { json = body.length ? JSON.parse(body.toString('utf8')) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.end(o.body);
  });
}

/** Spine headers and a valid token for an interaction of a standard. */
export function identityHeaders(standard: StandardName, interactionName: string, overrides: { claims?: Record<string, unknown>; nowSeconds?: number } = {}): Record<string, string> {
  const interaction = STANDARDS[standard].interactions.find((i) => i.name === interactionName)!;
  const nowSeconds = overrides.nowSeconds ?? Math.floor(Date.now() / 1000);
  const claims = { ...validClaims({ standard, scope: interaction.scope, nowSeconds }), ...overrides.claims };
  return {
    'Ssp-TraceID': randomUUID(),
    'Ssp-From': CONSUMER_ASID,
    'Ssp-To': PROVIDER_ASID,
    'Ssp-InteractionID': interaction.id,
    Authorization: `Bearer ${unsignedToken(claims)}`,
  };
}

/** Read an appointment through the gateway and return the body and its ETag. */
export async function readThrough(h: Harness, standard: StandardName, id: string): Promise<{ resource: any; etag: string }> {
  const r = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders(standard, 'read') });
  if (r.status !== 200) throw new Error(`read ${id}: ${r.status} ${r.body.toString()}`);
  return { resource: r.json, etag: String(r.headers.etag) };
}

/** A valid cancel request (headers + body) for the stored appointment. */
export async function cancelRequest(h: Harness, standard: StandardName, id: string, mutate?: (r: any) => void): Promise<RequestOptions> {
  const { resource, etag } = await readThrough(h, standard, id);
  resource.status = 'cancelled';
  if (standard === 'gp-connect') {
    resource.extension = [...(resource.extension ?? []), { url: STANDARDS['gp-connect'].cancel.reasonExtensionUrl, valueString: 'Patient request' }];
  }
  mutate?.(resource);
  return {
    method: 'PUT',
    path: `/STU3/1/Appointment/${id}`,
    headers: { ...identityHeaders(standard, 'cancel'), 'If-Match': etag, 'Content-Type': 'application/fhir+json; charset=utf-8' },
    body: JSON.stringify(resource),
  };
}

/** An amend (GP Connect, ruling 27) of the stored appointment: status kept, then `mutate`. */
export async function amendRequest(h: Harness, id: string, mutate?: (r: any) => void): Promise<RequestOptions> {
  const { resource, etag } = await readThrough(h, 'gp-connect', id);
  mutate?.(resource);
  const amend = STANDARDS['gp-connect'].interactions.find((i) => i.name === 'amend')!;
  return {
    method: 'PUT',
    path: `/STU3/1/Appointment/${id}`,
    headers: { ...identityHeaders('gp-connect', 'cancel'), 'Ssp-InteractionID': amend.id, 'If-Match': etag, 'Content-Type': 'application/fhir+json; charset=utf-8' },
    body: JSON.stringify(resource),
  };
}

/** Requests the provider received for a method/path (the recording upstream). */
export function seen(provider: DemoProvider, method: string, pathPart: string): number {
  return provider.requests.filter((r) => r.method === method && r.url.includes(pathPart)).length;
}
