import net from 'node:net';
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { ProviderFailure, type ExchangeOptions, type ProviderAnswer, type ProviderFailureKind, type ProviderPort } from '../ports/provider.js';
import { systemClock, type Clock } from '../ports/clock.js';

export interface HttpProviderOptions {
  /** The provider's FHIR base URL, e.g. http://10.0.0.5:8080/fhir */
  url: string;
  ca?: string;
  cert?: string;
  key?: string;
  /** Connections of this pool. The passthrough forwarder has its own, so reads cannot starve cancels. */
  connections: number;
  clock?: Clock;
}

/** undici error codes and socket errors -> the port's small set of failure kinds. */
export function failureKind(err: unknown): ProviderFailureKind {
  if (err instanceof ProviderFailure) return err.kind;
  const code = String((err as { code?: unknown })?.code ?? '');
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'refused';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT') return 'timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED' || code === 'ECONNABORTED') return 'reset';
  if (code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_INFO') return 'protocol';
  return 'other';
}

/**
 * The provider port over one undici keep-alive pool (issue 17: the read and the cancel write share
 * it; measured cheaper than http.request + http-proxy-3). Every exchange has one deadline that can
 * abort it wherever it is — queued for a connection, connecting, writing, waiting for the status
 * line (ruling 24) — and, once the status line arrived, its body gets a bound of its own.
 */
export function createHttpProvider(opts: HttpProviderOptions): ProviderPort {
  const clock = opts.clock ?? systemClock;
  const base = new URL(opts.url.replace(/\/?$/, '/'));
  const isHttps = base.protocol === 'https:';
  const pool = new Pool(base.origin, {
    connections: opts.connections,
    pipelining: 1,
    // Our own deadline governs; undici's timers are only a backstop.
    headersTimeout: 0,
    bodyTimeout: 0,
    connect: isHttps
      ? {
          ca: opts.ca ? readFileSync(opts.ca) : undefined,
          cert: opts.cert ? readFileSync(opts.cert) : undefined,
          key: opts.key ? readFileSync(opts.key) : undefined,
        }
      : undefined,
  });

  async function exchange(method: 'GET' | 'PUT', path: string, body: Buffer | undefined, headers: Record<string, string>, o: ExchangeOptions): Promise<ProviderAnswer> {
    const started = performance.now();
    const abort = new AbortController();
    let phase: 'head' | 'body' = 'head';
    let statusSeen: number | undefined;
    let cancelTimer = clock.setTimer(() => abort.abort(), o.deadlineMs);
    try {
      const res = await pool.request({ method, path: base.pathname + path.replace(/^\//, ''), headers, body, signal: abort.signal });
      statusSeen = res.statusCode;
      phase = 'body';
      cancelTimer();
      cancelTimer = clock.setTimer(() => abort.abort(), o.bodyDeadlineMs);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of res.body) {
        size += (c as Buffer).length;
        if (size > o.maxBytes) {
          res.body.destroy();
          throw new ProviderFailure('too-large', `the provider's answer is over ${o.maxBytes} bytes`, statusSeen, method === 'PUT');
        }
        chunks.push(c as Buffer);
      }
      return { status: res.statusCode, headers: res.headers as ProviderAnswer['headers'], body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), ms: performance.now() - started };
    } catch (e) {
      if (e instanceof ProviderFailure) throw e;
      const aborted = abort.signal.aborted;
      const kind: ProviderFailureKind = aborted ? (phase === 'body' ? 'slow-body' : 'timeout') : failureKind(e);
      // A write refused at connect never left; anything later may have reached the provider.
      const mayHaveApplied = method === 'PUT' && kind !== 'refused';
      throw new ProviderFailure(kind, aborted ? `the provider did not answer within the deadline (${phase})` : `provider exchange failed (${kind})`, statusSeen, mayHaveApplied);
    } finally {
      cancelTimer();
    }
  }

  return {
    read: (path, headers, o) => exchange('GET', path, undefined, headers, o),
    write: (path, body, headers, o) => exchange('PUT', path, body, headers, o),
    ping() {
      const port = Number(base.port) || (isHttps ? 443 : 80);
      return new Promise<void>((resolve, reject) => {
        const s = net.connect({ host: base.hostname.replace(/^\[|\]$/g, ''), port });
        const stop = clock.setTimer(() => {
          s.destroy();
          reject(new ProviderFailure('timeout', 'provider ping timed out'));
        }, 2000);
        s.once('connect', () => {
          stop();
          s.destroy();
          resolve();
        });
        s.once('error', (e) => {
          stop();
          s.destroy();
          reject(e);
        });
      });
    },
    close: () => pool.close(),
  };
}
