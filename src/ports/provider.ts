import type { IncomingHttpHeaders } from 'node:http';

/**
 * The provider as the cancel transaction sees it: a buffered read and a buffered write, each a
 * whole exchange under one deadline (ruling 24).
 *
 * Contract (test/contracts/provider.contract.ts):
 * - `read`/`write` resolve with the provider's complete answer (status, headers, body of at most
 *   `maxBytes`), or reject with `ProviderFailure`. They settle only when the provider side of the
 *   exchange is over — its answer complete or its connection destroyed — so a caller holding the
 *   appointment's lock around them keeps it exactly as long as ruling 23 asks.
 * - `deadlineMs` bounds waiting for a connection, connecting, writing and the status line; then
 *   the exchange is aborted wherever it is and the promise rejects with kind `timeout`. After a
 *   status line, the body has `bodyDeadlineMs` of its own (`slow-body`, `statusSeen` set).
 * - Redirects are never followed; `write` is never retried.
 * - `headers` are sent as given (the caller builds them from an allow-list); `body` is sent once,
 *   byte for byte.
 * - `ping()` resolves when the provider accepts a connection (a metric, not readiness by default).
 */
export interface ProviderAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Milliseconds from the call to the complete answer. */
  ms: number;
}

export interface ExchangeOptions {
  deadlineMs: number;
  bodyDeadlineMs: number;
  maxBytes: number;
}

export type ProviderFailureKind = 'refused' | 'timeout' | 'slow-body' | 'reset' | 'too-large' | 'protocol' | 'other';

export class ProviderFailure extends Error {
  constructor(
    readonly kind: ProviderFailureKind,
    message: string,
    /** The status line already received when the body failed, if any. */
    readonly statusSeen?: number,
    /** True when the request may have reached the provider (the outcome is unknown). */
    readonly mayHaveApplied = false,
    /** The headers that came with `statusSeen` (a refusal's `Retry-After` is passed on). */
    readonly headersSeen?: IncomingHttpHeaders,
  ) {
    super(message);
    this.name = 'ProviderFailure';
  }
}

export interface ProviderPort {
  /** GET `path` (relative to the provider's base, e.g. `Appointment/abc`). */
  read(path: string, headers: Record<string, string>, opts: ExchangeOptions): Promise<ProviderAnswer>;
  /** PUT `body` to `path`. */
  write(path: string, body: Buffer, headers: Record<string, string>, opts: ExchangeOptions): Promise<ProviderAnswer>;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Abort every exchange in flight (shutdown past its drain deadline); they fail as cut short. */
  abort?(): Promise<void>;
}
