import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { Config } from '../config.js';

export interface UpstreamResponse { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

export type UpstreamFailureKind = 'refused' | 'timeout' | 'reset' | 'too-large' | 'protocol' | 'other';

export class UpstreamFailure extends Error {
  constructor(readonly kind: UpstreamFailureKind, message: string) {
    super(message);
    this.name = 'UpstreamFailure';
  }
}

/** The provider as the gateway sees it: a keep-alive agent, its base URL, and a buffered GET. */
export interface Upstream {
  readonly base: URL;
  readonly agent: http.Agent;
  readonly timeoutMs: number;
  get(path: string, headers: http.OutgoingHttpHeaders, maxBytes?: number): Promise<UpstreamResponse>;
  close(): void;
}

export function classify(err: unknown): UpstreamFailureKind {
  if (err instanceof UpstreamFailure) return err.kind;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH') return 'refused';
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') return 'timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') return 'reset';
  if (typeof code === 'string' && code.startsWith('HPE_')) return 'protocol';
  return 'other';
}

export function createUpstream(config: Readonly<Config>): Upstream {
  const base = new URL(config.upstream.url + '/');
  const isHttps = base.protocol === 'https:';
  const opts = { keepAlive: true, maxSockets: config.upstream.maxSockets, maxFreeSockets: config.upstream.maxSockets, scheduling: 'lifo' as const };
  const agent = isHttps
    ? new https.Agent({
        ...opts,
        ca: config.upstream.ca ? readFileSync(config.upstream.ca) : undefined,
        cert: config.upstream.cert ? readFileSync(config.upstream.cert) : undefined,
        key: config.upstream.key ? readFileSync(config.upstream.key) : undefined,
      })
    : new http.Agent(opts);
  const request = isHttps ? https.request : http.request;
  const timeoutMs = config.upstream.timeoutMs;

  return {
    base,
    agent,
    timeoutMs,
    close: () => agent.destroy(),
    get(path, headers, maxBytes = 8 * 1024 * 1024) {
      return new Promise<UpstreamResponse>((resolve, reject) => {
        const url = new URL(path.replace(/^\//, ''), base);
        let settled = false;
        const done = (e: Error | null, v?: UpstreamResponse) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (e) reject(e);
          else resolve(v!);
        };
        const req = request(url, { method: 'GET', agent, headers });
        // One deadline for the whole exchange, headers and body (ruling 8: default 10 s).
        const timer = setTimeout(() => {
          done(new UpstreamFailure('timeout', `provider did not answer within ${timeoutMs} ms`));
          req.destroy();
        }, timeoutMs);
        req.on('error', (e) => done(e));
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > maxBytes) {
              done(new UpstreamFailure('too-large', 'provider answer too large'));
              res.destroy();
              return;
            }
            chunks.push(c);
          });
          res.on('error', (e) => done(e));
          res.on('aborted', () => done(new UpstreamFailure('reset', 'provider answer cut short')));
          res.on('end', () => {
            if (!res.complete) done(new UpstreamFailure('reset', 'provider answer cut short'));
            else done(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
          });
        });
        req.end();
      });
    },
  };
}
