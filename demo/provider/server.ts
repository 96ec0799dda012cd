/**
 * The bundled demo provider: a stand-in for the legacy FHIR STU3 appointment provider that sits
 * BEHIND the gateway. Plain HTTP, not part of the gateway's request path. End-to-end tests use it as
 * a real upstream: it records every request (exact body bytes) and can inject faults, so the
 * gateway's handling of provider failures (rulings 8, 11, 12, 17 of ../../../shared/spec/README.md)
 * can be exercised against real sockets.
 *
 * It behaves like a plain version-aware FHIR server and deliberately validates NO business rules
 * (that is the gateway's job): it stores whatever Appointment it is given as the next version.
 * It reads and writes FHIR JSON and FHIR XML (issue 15): an XML body is decoded by the gateway's own
 * XML codec and stored as the same model; answers are written in the negotiated format (format.ts).
 */
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { answerFormat, bodyFormat, CONTENT_TYPE, decodeBody, encodeBody, type WireFormat } from './format.js';
import { seedStore, type SeedSet } from './seed/index.js';
import { AppointmentStore, type Resource, type StoredVersion } from './store.js';

export { AppointmentStore } from './store.js';
export { SEED_IDS } from './seed/index.js';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: import('node:http').IncomingHttpHeaders;
  body: Buffer;
}

export type Fault =
  | 'none' /* answer normally (overrides an earlier, broader fault) */
  | 'refuse' /* close the socket without answering */
  | 'hang' /* never answer */
  | 'reset-mid-response' /* status line, headers and half the body, then a TCP reset */
  | 'garbage' /* non-HTTP bytes, then close */
  | 'status-500' /* 500 with an OperationOutcome body */
  | 'status-503-html' /* 503 with an HTML body (not an OperationOutcome) */
  | 'status-504' /* 504 with a plain-text body (not an OperationOutcome) */
  | 'not-found' /* 404 with an OperationOutcome: e.g. a provider that keeps no history answering a vread */
  | 'empty-200' /* 200, Content-Length: 0 */
  | 'redirect' /* 307 to an absolute URL on this provider under /moved */
  | 'slow'; /* answer normally after delayMs (default 1500 ms) */

export interface FaultMatch {
  /** HTTP method, case-insensitive; any when omitted. */
  method?: string;
  /** Tested against the request path (without the query string); any when omitted. */
  path?: RegExp;
  /** For 'slow': the delay before answering (default 1500). For any other fault: a delay before it acts. */
  delayMs?: number;
}

export interface DemoProvider {
  /** Base URL, e.g. http://127.0.0.1:PORT; FHIR paths are below it plus basePath. */
  readonly url: string;
  /** Every request received, in order, with the exact body bytes (recorded before answering). */
  readonly requests: RecordedRequest[];
  store: AppointmentStore;
  /** Apply a fault to matching requests (method and/or path regexp); returns a function that removes it. */
  fault(f: Fault, match?: FaultMatch): () => void;
  close(): Promise<void>;
}

export interface DemoProviderOptions {
  /** Default 0 (an ephemeral port). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** FHIR base path below the origin, e.g. '/fhir'; default '' (none). */
  basePath?: string;
  /** Default 'both'. */
  seed?: SeedSet;
  /** Omit ETag on every answer (the gateway then derives it from meta.versionId, rulings 12 and 13). */
  omitEtag?: boolean;
  /** The ETag written for a version, when not W/"<versionId>" (tests: a legacy bare or broken ETag). */
  etagOf?: (versionId: string) => string;
  /** Gzip every answer body (Content-Encoding: gzip) though nobody asked for it (RFC 9110 §12.5.3 allows it). */
  gzip?: boolean;
  /** Headers added to every answer (tests: a provider's own X-Correlation-ID, a debug header). */
  extraHeaders?: Record<string, string>;
  /** Omit Last-Modified on every answer (the gateway then derives it from meta.lastUpdated, ruling 12). */
  omitLastModified?: boolean;
  /** Location of a write as a relative path (default true); false: absolute on this provider's own origin. */
  relativeLocation?: boolean;
}

const FHIR_JSON = 'application/fhir+json;charset=utf-8';
const SPINE_OO_PROFILE = 'https://fhir.nhs.uk/STU3/StructureDefinition/Spine-OperationOutcome-1';
const SPINE_CODES = 'https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1';
const SPINE_DISPLAY: Record<string, string> = {
  NO_RECORD_FOUND: 'No record found',
  CONFLICTING_VALUES: 'Conflicting values',
  BAD_REQUEST: 'Bad request',
  INVALID_RESOURCE: 'Invalid resource',
  INTERNAL_SERVER_ERROR: 'Internal server error',
  NOT_IMPLEMENTED: 'Not implemented',
};

interface ActiveFault {
  fault: Fault;
  method?: string;
  path?: RegExp;
  delayMs?: number;
}

function normalizeBasePath(p: string | undefined): string {
  if (!p || p === '/') return '';
  const withSlash = p.startsWith('/') ? p : `/${p}`;
  return withSlash.replace(/\/+$/, '');
}

function operationOutcome(spineCode: string, fhirCode: string, diagnostics: string): Record<string, unknown> {
  return {
    resourceType: 'OperationOutcome',
    id: randomUUID(),
    meta: { profile: [SPINE_OO_PROFILE] },
    issue: [
      {
        severity: 'error',
        code: fhirCode,
        details: { coding: [{ system: SPINE_CODES, code: spineCode, display: SPINE_DISPLAY[spineCode] ?? spineCode }] },
        diagnostics,
      },
    ],
  };
}

function isAppointmentObject(v: unknown): v is Resource {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (v as { resourceType?: unknown }).resourceType === 'Appointment';
}

/** `W/"3"`, `"3"` or `3` -> `3`; `*` stays `*`. */
function parseEtag(value: string): string {
  return value.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

export async function startDemoProvider(opts: DemoProviderOptions = {}): Promise<DemoProvider> {
  const host = opts.host ?? '127.0.0.1';
  const basePath = normalizeBasePath(opts.basePath);
  const relativeLocation = opts.relativeLocation ?? true;
  const store = new AppointmentStore();
  seedStore(store, opts.seed ?? 'both');

  const requests: RecordedRequest[] = [];
  const faults: ActiveFault[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let origin = '';

  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  // The negotiated answer format of each request (JSON unless it asked for XML).
  const formats = new WeakMap<http.ServerResponse, WireFormat>();
  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    const format = formats.get(res) ?? 'json';
    let bytes: Buffer;
    try {
      bytes = encodeBody(body, format);
    } catch {
      // A stored resource FHIR XML cannot express (e.g. a narrative that is not XHTML).
      bytes = encodeBody(operationOutcome('INTERNAL_SERVER_ERROR', 'exception', 'The resource cannot be written in this format'), format);
      status = 500;
      headers = {};
    }
    if (opts.gzip) {
      bytes = gzipSync(bytes);
      headers = { ...headers, 'Content-Encoding': 'gzip' };
    }
    if (opts.extraHeaders) headers = { ...opts.extraHeaders, ...headers };
    res.writeHead(status, { 'Content-Type': CONTENT_TYPE[format], 'Content-Length': String(bytes.length), ...headers });
    res.end(bytes);
  };
  const sendOO = (res: http.ServerResponse, status: number, spine: string, code: string, diagnostics: string, headers: Record<string, string> = {}): void =>
    send(res, status, operationOutcome(spine, code, diagnostics), headers);

  const versionHeaders = (v: StoredVersion): Record<string, string> => {
    const h: Record<string, string> = {};
    if (!opts.omitEtag) h['ETag'] = opts.etagOf ? opts.etagOf(v.versionId) : `W/"${v.versionId}"`;
    const t = Date.parse(v.lastUpdated);
    if (!opts.omitLastModified && Number.isFinite(t)) h['Last-Modified'] = new Date(t).toUTCString();
    return h;
  };
  const location = (id: string, versionId: string): string =>
    `${relativeLocation ? '' : origin}${basePath}/Appointment/${encodeURIComponent(id)}/_history/${encodeURIComponent(versionId)}`;

  const searchset = (versions: StoredVersion[]): Record<string, unknown> => ({
    resourceType: 'Bundle',
    id: randomUUID(),
    meta: { lastUpdated: new Date().toISOString() },
    type: 'searchset',
    total: versions.length,
    entry: versions.map((v) => ({
      fullUrl: `${origin}${basePath}/Appointment/${encodeURIComponent(v.id)}`,
      resource: v.resource,
      search: { mode: 'match' },
    })),
  });

  const capabilityStatement = (): Record<string, unknown> => ({
    resourceType: 'CapabilityStatement',
    id: 'demo-provider',
    version: '0.1.0',
    name: 'DemoLegacyAppointmentProvider',
    status: 'active',
    date: new Date().toISOString(),
    publisher: 'cancel-gateway demo',
    description: 'In-memory stand-in for a legacy FHIR STU3 appointment provider (demo and tests only).',
    kind: 'instance',
    software: { name: 'cancel-gateway demo provider' },
    fhirVersion: '3.0.1',
    acceptUnknown: 'no',
    format: ['application/fhir+json', 'application/fhir+xml'],
    rest: [
      {
        mode: 'server',
        resource: [
          {
            type: 'Appointment',
            interaction: [{ code: 'read' }, { code: 'vread' }, { code: 'update' }, { code: 'create' }, { code: 'search-type' }],
            versioning: 'versioned-update',
            readHistory: true,
            updateCreate: false,
          },
          { type: 'Slot', interaction: [{ code: 'search-type' }] },
        ],
      },
    ],
  });

  /** The FHIR behaviour proper (no faults). */
  const handle = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, path: string): void => {
    const method = req.method ?? 'GET';
    if (basePath && path !== basePath && !path.startsWith(`${basePath}/`)) {
      sendOO(res, 404, 'NO_RECORD_FOUND', 'not-found', 'Unknown path');
      return;
    }
    const segments = path.slice(basePath.length).split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
    const [type, id, op, vid, ...rest] = segments;
    const notAllowed = (): void => sendOO(res, 405, 'BAD_REQUEST', 'not-supported', `Method ${method} not supported here`);

    if (type === 'metadata' && segments.length === 1) {
      if (method !== 'GET') return notAllowed();
      send(res, 200, capabilityStatement());
      return;
    }
    if (type === 'Slot' && segments.length === 1) {
      if (method !== 'GET') return notAllowed();
      send(res, 200, searchset([]));
      return;
    }
    if (type === 'Patient' && id !== undefined && op === 'Appointment' && segments.length === 3) {
      if (method !== 'GET') return notAllowed();
      send(res, 200, searchset(store.list()));
      return;
    }
    if (type !== 'Appointment' || rest.length > 0) {
      sendOO(res, 404, 'NO_RECORD_FOUND', 'not-found', 'Unknown path');
      return;
    }

    if (id === undefined) {
      if (method === 'GET') {
        send(res, 200, searchset(store.list()));
        return;
      }
      if (method === 'POST') {
        const parsed = parseBody(body, bodyFormat(req.headers['content-type']));
        if (!parsed.ok) return sendOO(res, 400, 'BAD_REQUEST', 'invalid', parsed.reason);
        const created = store.create(parsed.resource);
        send(res, 201, created.resource, { ...versionHeaders(created), Location: location(created.id, created.versionId) });
        return;
      }
      return notAllowed();
    }

    if (op === '_history' && vid !== undefined) {
      if (method !== 'GET') return notAllowed();
      const v = store.vread(id, vid);
      if (!v) return sendOO(res, 404, 'NO_RECORD_FOUND', 'not-found', 'No such appointment version');
      send(res, 200, v.resource, versionHeaders(v));
      return;
    }
    if (op !== undefined) {
      sendOO(res, 404, 'NO_RECORD_FOUND', 'not-found', 'Unknown path');
      return;
    }

    if (method === 'GET') {
      const v = store.read(id);
      if (!v) return sendOO(res, 404, 'NO_RECORD_FOUND', 'not-found', 'No such appointment');
      send(res, 200, v.resource, versionHeaders(v));
      return;
    }
    if (method === 'PUT') {
      const current = store.read(id);
      if (!current) return sendOO(res, 404, 'NO_RECORD_FOUND', 'not-found', 'No such appointment');
      const ifMatch = req.headers['if-match'];
      if (ifMatch !== undefined) {
        const wanted = parseEtag(ifMatch);
        if (wanted !== '*' && wanted !== current.versionId) {
          return sendOO(res, 409, 'CONFLICTING_VALUES', 'conflict', 'If-Match does not match the current version');
        }
      }
      const parsed = parseBody(body, bodyFormat(req.headers['content-type']));
      if (!parsed.ok) return sendOO(res, 400, 'BAD_REQUEST', 'invalid', parsed.reason);
      if (parsed.resource.id !== undefined && parsed.resource.id !== id) {
        return sendOO(res, 400, 'BAD_REQUEST', 'invalid', 'Resource id does not match the URL');
      }
      const updated = store.update(id, parsed.resource)!;
      send(res, 200, updated.resource, { ...versionHeaders(updated), Location: location(id, updated.versionId) });
      return;
    }
    notAllowed();
  };

  const applyFault = (f: ActiveFault, req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, path: string): void => {
    const socket = req.socket;
    switch (f.fault) {
      case 'none':
      case 'slow':
        handle(req, res, body, path);
        return;
      case 'refuse':
        socket.destroy();
        return;
      case 'hang':
        return; // the socket stays open until the client gives up or close() is called
      case 'reset-mid-response': {
        const payload = Buffer.from(JSON.stringify(operationOutcome('INTERNAL_SERVER_ERROR', 'exception', 'x'.repeat(512))), 'utf8');
        res.writeHead(200, { 'Content-Type': FHIR_JSON, 'Content-Length': String(payload.length) });
        res.write(payload.subarray(0, Math.floor(payload.length / 2)), () => {
          if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
          else socket.destroy();
        });
        return;
      }
      case 'garbage':
        // Raw bytes straight on the socket, bypassing the HTTP response: not a status line.
        socket.end(Buffer.from('\u0000\u0001\u0002 this is not HTTP \u00ff\r\n\r\n', 'latin1'));
        return;
      case 'status-500':
        sendOO(res, 500, 'INTERNAL_SERVER_ERROR', 'exception', 'Injected provider failure');
        return;
      case 'status-503-html': {
        const html = Buffer.from('<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1></body></html>', 'utf8');
        res.writeHead(503, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': String(html.length), 'Retry-After': '30' });
        res.end(html);
        return;
      }
      case 'status-504': {
        const text = Buffer.from('Gateway Timeout\n', 'utf8');
        res.writeHead(504, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(text.length) });
        res.end(text);
        return;
      }
      case 'not-found': {
        const body = Buffer.from(JSON.stringify(operationOutcome('NO_RECORD_FOUND', 'not-found', 'No such version')), 'utf8');
        res.writeHead(404, { 'Content-Type': FHIR_JSON, 'Content-Length': String(body.length) });
        res.end(body);
        return;
      }
      case 'empty-200':
        res.writeHead(200, { 'Content-Type': FHIR_JSON, 'Content-Length': '0' });
        res.end();
        return;
      case 'redirect':
        res.writeHead(307, { Location: `${origin}/moved${req.url ?? '/'}`, 'Content-Length': '0' });
        res.end();
        return;
    }
  };

  const findFault = (method: string, path: string): ActiveFault | undefined => {
    // The most recently added matching fault wins.
    for (let i = faults.length - 1; i >= 0; i--) {
      const f = faults[i]!;
      if (f.method !== undefined && f.method.toUpperCase() !== method.toUpperCase()) continue;
      if (f.path !== undefined) {
        f.path.lastIndex = 0; // a /g or /y regexp must not carry state between requests
        if (!f.path.test(path)) continue;
      }
      return f;
    }
    return undefined;
  };

  const server = http.createServer({ requestTimeout: 0 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {
      /* client went away mid-body: nothing to answer */
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const method = req.method ?? 'GET';
      const url = req.url ?? '/';
      // Recorded before answering, faulted requests included.
      requests.push({ method, url, headers: { ...req.headers }, body });
      const path = url.split('?')[0] ?? '/';
      formats.set(res, answerFormat(url, { accept: req.headers.accept, 'content-type': req.headers['content-type'] }));
      const f = findFault(method, path);
      const run = (): void => {
        try {
          if (f) applyFault(f, req, res, body, path);
          else handle(req, res, body, path);
        } catch {
          if (!res.headersSent) sendOO(res, 500, 'INTERNAL_SERVER_ERROR', 'exception', 'Demo provider error');
          else res.destroy();
        }
      };
      const delay = f?.fault === 'slow' ? (f.delayMs ?? 1500) : (f?.delayMs ?? 0);
      if (delay > 0) later(delay, run);
      else run();
    });
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  origin = `http://${urlHost}:${addr.port}`;

  let closing: Promise<void> | undefined;
  return {
    url: origin,
    requests,
    store,
    fault(fault: Fault, match: FaultMatch = {}): () => void {
      const entry: ActiveFault = { fault, ...match };
      faults.push(entry);
      return () => {
        const i = faults.indexOf(entry);
        if (i >= 0) faults.splice(i, 1);
      };
    },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        // Hanging and keep-alive connections would otherwise hold close() open forever.
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}

function parseBody(body: Buffer, format: WireFormat): { ok: true; resource: Resource } | { ok: false; reason: string } {
  const decoded = decodeBody(body, format);
  if (!decoded.ok) return decoded;
  const parsed = decoded.value;
  if (!isAppointmentObject(parsed)) return { ok: false, reason: 'Body is not an Appointment resource' };
  return { ok: true, resource: parsed };
}

/**
 * Run the demo provider as a process: `PORT` (default 8081), `HOST` (127.0.0.1), `BASE_PATH` (''),
 * `SEED` (both), `RELATIVE_LOCATION` ('false' for absolute). Stops on SIGINT/SIGTERM. Logs only its
 * address (never bodies: CONTRIBUTING).
 */
export async function startDemoProviderCli(env: NodeJS.ProcessEnv = process.env): Promise<DemoProvider> {
  const seed = env['SEED'];
  const provider = await startDemoProvider({
    port: env['PORT'] ? Number(env['PORT']) : 8081,
    host: env['HOST'] ?? '127.0.0.1',
    basePath: env['BASE_PATH'] ?? '',
    seed: seed === 'nhs-booking' || seed === 'gp-connect' || seed === 'none' ? seed : 'both',
    relativeLocation: env['RELATIVE_LOCATION'] !== 'false',
  });
  process.stdout.write(`${JSON.stringify({ msg: 'demo provider listening', url: `${provider.url}${normalizeBasePath(env['BASE_PATH'])}`, appointments: provider.store.ids() })}\n`);
  const stop = (): void => {
    void provider.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return provider;
}
