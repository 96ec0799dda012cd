import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { Config } from '../config.js';

export type UpstreamFailureKind = 'refused' | 'timeout' | 'reset' | 'too-large' | 'protocol' | 'other';

export class UpstreamFailure extends Error {
  constructor(readonly kind: UpstreamFailureKind, message: string) {
    super(message);
    this.name = 'UpstreamFailure';
  }
}

/** The provider as the passthrough forwarder sees it: a keep-alive agent and its base URL (the cancel transaction uses the provider port). */
export interface Upstream {
  readonly base: URL;
  readonly agent: http.Agent;
  readonly timeoutMs: number;
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
  const timeoutMs = config.upstream.timeoutMs;

  return {
    base,
    agent,
    timeoutMs,
    close: () => agent.destroy(),
  };
}
