/**
 * Shared helpers for the reliability tests (issue 8): a keep-alive mTLS client for many requests
 * over few sockets, a raw TLS socket for writing HTTP bytes by hand, the catalogue check of an
 * answer, and an unhandled-rejection recorder. Not a test file (no `.test.ts`).
 */
import https from 'node:https';
import tls from 'node:tls';
import { CATALOGUE, type ErrorCode } from '../../src/errors.js';
import { STANDARDS } from '../../src/standards/index.js';
import type { Pem } from '../../demo/certs.js';
import { pki, send, type Reply, type RequestOptions, type StandardName } from '../helpers/harness.js';

/** Many requests over a few keep-alive sockets (a TLS handshake per request would cost ~5 ms). */
export function keepAliveClient(port: number, opts: { maxSockets?: number } = {}) {
  const p = pki();
  const agent = new https.Agent({
    keepAlive: true, maxSockets: opts.maxSockets ?? 4, ca: p.ca.cert, cert: p.client.cert, key: p.client.key, servername: 'localhost',
  });
  const request = (o: RequestOptions): Promise<Reply> => send(port, o, agent);
  return { agent, request, close: () => agent.destroy() };
}

export interface RawConnection {
  socket: tls.TLSSocket;
  /** Everything received so far. */
  received(): Buffer;
  /** Resolves when the server closed (or reset) the connection; `ms` caps the wait. */
  closed(ms?: number): Promise<boolean>;
  /** Resolves once `n` bytes (default 1) arrived, or false on close/timeout. */
  bytes(n?: number, ms?: number): Promise<boolean>;
}

/** A TLS connection with the harness client certificate (by default) for writing raw HTTP. */
export function rawTls(port: number, opts: { cert?: Pem | null; tls?: tls.ConnectionOptions } = {}): Promise<RawConnection> {
  const p = pki();
  const cert = opts.cert === undefined ? p.client : opts.cert;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let isClosed = false;
    const closeWaiters: Array<() => void> = [];
    const dataWaiters: Array<() => void> = [];
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: p.ca.cert, ...(cert ? { cert: cert.cert, key: cert.key } : {}), ...opts.tls });
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      for (const w of dataWaiters.splice(0)) w();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      isClosed = true;
      for (const w of [...closeWaiters.splice(0), ...dataWaiters.splice(0)]) w();
    });
    socket.once('secureConnect', () => {
      const conn: RawConnection = {
        socket,
        received: () => Buffer.concat(chunks),
        closed(ms = 5000) {
          if (isClosed) return Promise.resolve(true);
          return new Promise((res) => {
            const t = setTimeout(() => res(false), ms);
            closeWaiters.push(() => { clearTimeout(t); res(true); });
          });
        },
        async bytes(n = 1, ms = 5000) {
          const deadline = Date.now() + ms;
          while (Buffer.concat(chunks).length < n) {
            if (isClosed) return false;
            const left = deadline - Date.now();
            if (left <= 0) return false;
            await new Promise<void>((res) => {
              const t = setTimeout(res, left);
              dataWaiters.push(() => { clearTimeout(t); res(); });
            });
          }
          return true;
        },
      };
      resolve(conn);
    });
    socket.once('error', reject);
  });
}

/** Split raw HTTP/1.1 response bytes into responses (Content-Length framing only, as the gateway writes). */
/**
 * Writes `chunk` up to `max` times, waiting at most `drainMs` for each drain: the number of writes
 * the peer took before it stopped reading (`max` when it never did).
 */
export async function writeUntilHeld(socket: tls.TLSSocket, chunk: Buffer, max: number, drainMs: number): Promise<number> {
  let written = 0;
  for (; written < max; written++) {
    if (socket.write(chunk)) continue;
    const drained = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), drainMs);
      socket.once('drain', () => { clearTimeout(timer); resolve(true); });
    });
    if (!drained) break;
  }
  return written;
}

export function parseResponses(raw: Buffer): Array<{ status: number; headers: Record<string, string>; body: string }> {
  const out: Array<{ status: number; headers: Record<string, string>; body: string }> = [];
  let rest = raw.toString('latin1');
  while (rest.length) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let body = '';
    let next = end + 4;
    if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const lineEnd = rest.indexOf('\r\n', next);
        const size = parseInt(rest.slice(next, lineEnd), 16);
        next = lineEnd + 2;
        if (!size) { next += 2; break; }
        body += rest.slice(next, next + size);
        next += size + 2;
      }
    } else if (headers['content-length'] === undefined) {
      body = rest.slice(next); // delimited by the connection's close
      next = rest.length;
    } else {
      const len = Number(headers['content-length']);
      body = rest.slice(next, next + len);
      next += len;
    }
    out.push({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), headers, body: Buffer.from(body, 'latin1').toString('utf8') });
    rest = rest.slice(next);
  }
  return out;
}

/**
 * Which catalogue code(s) an answer can be under a standard: its status, FHIR issue code and Spine
 * code must be one code's mapping (UPSTREAM_ERROR keeps the provider's status, so any 5xx matches it).
 * Returns the matching codes; empty when the answer is not a catalogued OperationOutcome.
 */
export function catalogueCodes(standard: StandardName, status: number, oo: any): ErrorCode[] {
  if (oo?.resourceType !== 'OperationOutcome' || !Array.isArray(oo.issue) || oo.issue.length === 0) return [];
  const std = STANDARDS[standard];
  if (JSON.stringify(oo.meta?.profile) !== JSON.stringify([std.operationOutcomeProfile])) return [];
  const codes: ErrorCode[] = [];
  for (const code of Object.keys(CATALOGUE) as ErrorCode[]) {
    const base = CATALOGUE[code];
    const o = std.errorOverrides[code] ?? {};
    const spine = o.spine ?? base.spine;
    const st = o.status ?? base.status;
    const statusOk = code === 'UPSTREAM_ERROR' ? status >= 500 : st === status;
    const ok = statusOk && oo.issue.every((i: any) =>
      i?.severity === 'error' && typeof i.code === 'string' && typeof i.diagnostics === 'string' && i.diagnostics.length > 0 &&
      Array.isArray(i.details?.coding) && i.details.coding.length === 1 &&
      i.details.coding[0].system === 'https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1' &&
      i.details.coding[0].code === spine && typeof i.details.coding[0].display === 'string');
    if (ok) codes.push(code);
  }
  return codes;
}

/** Records unhandled rejections and uncaught exceptions while installed. */
export function crashRecorder() {
  const seen: string[] = [];
  const onRejection = (e: unknown) => void seen.push(`unhandledRejection: ${String((e as Error)?.stack ?? e)}`);
  const onException = (e: unknown) => void seen.push(`uncaughtException: ${String((e as Error)?.stack ?? e)}`);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtExceptionMonitor', onException);
  return {
    seen,
    stop() {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtExceptionMonitor', onException);
    },
  };
}

/** Counts of the socket handles this process holds (for leak checks). */
export function socketHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TLSSocketWrap').length;
}

/** Poll until `fn()` is true or `ms` passed. */
export async function eventually(fn: () => boolean, ms = 3000, step = 20): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, step));
  }
  return true;
}

/** A Prometheus sample value from the admin /metrics text (0 when absent). */
export async function metricValue(adminPort: number, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    const labelText = /\{(.*)\}/.exec(line)?.[1] ?? '';
    const have = labelText.split(/,(?=[a-zA-Z_]+=")/);
    if (want.every((w) => have.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** A request (as the harness builds it) as raw HTTP/1.1 bytes, Content-Length framed. */
export function rawRequest(o: RequestOptions): string {
  const body = o.body === undefined ? '' : String(o.body);
  const lines = [`${o.method} ${o.path} HTTP/1.1`, 'Host: localhost', ...Object.entries(o.headers ?? {}).map(([k, v]) => `${k}: ${v}`)];
  if (body) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}
