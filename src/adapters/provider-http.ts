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
  // undici's parser error for an answer that is no HTTP at all carries no code, only its name.
  if ((err as Error)?.name === 'HTTPParserError') return 'protocol';
  return 'other';
}

/** undici's raw header list (name, value, …) as Node's lower-cased record; repeated names become arrays. */
function headersOf(raw: Buffer[]): ProviderAnswer['headers'] {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    const value = raw[i + 1]!.toString('latin1');
    const seen = out[name];
    if (seen === undefined) out[name] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else out[name] = [seen, value];
  }
  return out as ProviderAnswer['headers'];
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

  /**
   * One exchange through `pool.dispatch` with a plain handler (issue 17): no body stream, no async
   * iterator, no AbortSignal, one promise. The handler gets undici's `abort` when the request
   * reaches a socket; a deadline that passes before that settles at once, and the request is
   * aborted the moment it would be written, so it never leaves.
   */
  function exchange(method: 'GET' | 'PUT', path: string, body: Buffer | undefined, headers: Record<string, string>, o: ExchangeOptions): Promise<ProviderAnswer> {
    const started = performance.now();
    return new Promise<ProviderAnswer>((resolve, reject) => {
      let abort: ((err: Error) => void) | undefined;
      let phase: 'head' | 'body' = 'head';
      let statusSeen: number | undefined;
      let answerHeaders: ProviderAnswer['headers'] = {};
      let settled = false;
      let expired = false;
      const chunks: Buffer[] = [];
      let size = 0;
      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        cancelTimer();
        if (e instanceof ProviderFailure) return reject(e);
        const kind: ProviderFailureKind = expired ? (phase === 'body' ? 'slow-body' : 'timeout') : failureKind(e);
        // A write refused at connect, or still queued for a connection or connecting (undici had not
        // begun to write it: no onConnect yet), never left; anything later may have reached the provider.
        const mayHaveApplied = method === 'PUT' && kind !== 'refused' && abort !== undefined;
        reject(new ProviderFailure(kind, expired ? `the provider did not answer within the deadline (${phase})` : `provider exchange failed (${kind})`, statusSeen, mayHaveApplied, statusSeen === undefined ? undefined : answerHeaders));
      };
      const expire = () => {
        expired = true;
        if (abort) abort(new Error('deadline'));
        else fail(undefined); // still queued for a connection: it will be aborted before it is written
      };
      let cancelTimer = clock.setTimer(expire, o.deadlineMs);
      try {
        pool.dispatch({ method, path: base.pathname + path.replace(/^\//, ''), headers, body }, {
          onConnect(a: (err?: Error) => void) {
            abort = a;
            if (expired || settled) a(new Error('deadline'));
          },
          onHeaders(status: number, raw: Buffer[]) {
            if (status < 200) return true; // 1xx (103 Early Hints...): informational, the exchange goes on
            statusSeen = status;
            phase = 'body';
            answerHeaders = headersOf(raw);
            cancelTimer();
            cancelTimer = clock.setTimer(expire, o.bodyDeadlineMs);
            return true;
          },
          onData(chunk: Buffer) {
            size += chunk.length;
            if (size > o.maxBytes) {
              fail(new ProviderFailure('too-large', `the provider's answer is over ${o.maxBytes} bytes`, statusSeen, method === 'PUT', answerHeaders));
              abort?.(new Error('too large'));
              return false;
            }
            chunks.push(chunk);
            return true;
          },
          onComplete() {
            if (settled) return;
            settled = true;
            cancelTimer();
            resolve({ status: statusSeen!, headers: answerHeaders, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), ms: performance.now() - started });
          },
          onError: fail,
        } as unknown as Parameters<Pool['dispatch']>[1]);
      } catch (e) {
        fail(e);
      }
    });
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
    abort: () => pool.destroy(),
  };
}
