/**
 * Per-appointment serialization (rulings 10 and 23): of two writes to one appointment, the second
 * starts only after the first one's provider exchange is over.
 *
 * Contract (test/contracts/lock.contract.ts runs it against every adapter):
 * - `hold(key, opts, fn)` runs `fn` while no other holder of `key` — in this process or, for a
 *   shared adapter, in any process using the same store — is running; holders of different keys
 *   do not wait for each other. It resolves or rejects as `fn` does, and releases the key when
 *   `fn` settles, whatever happens.
 * - Waiting longer than `opts.waitMs` for the key rejects with `LockUnavailable('timeout')` and
 *   `fn` is never called; a store that cannot be reached rejects with `LockUnavailable('store')`.
 *   Either way the caller must not forward anything (fail closed).
 * - A shared adapter ties the key to its own database session: a process that dies releases its
 *   keys with its connection, so no lease outlives its holder.
 * - `fn` receives a `HeldLock`. A shared adapter puts the database session that holds the key in
 *   it, so a vault of the same store can write on that session (issue 18 item 7: fewer round trips
 *   per cancel); the in-process adapter gives an empty one. Callers pass it on, never look inside.
 * - `ping()` resolves when the lock can be taken now (readiness); `close()` releases resources.
 */
export interface LockPort {
  hold<T>(key: string, opts: { waitMs: number }, fn: (held: HeldLock) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** What a holder passes on to the vault (opaque to it); see the contract above. */
export interface HeldLock {
  /** The adapter's session holding the key, when it has one a vault may share. */
  readonly session?: unknown;
}

export const NO_SESSION: HeldLock = Object.freeze({});

export class LockUnavailable extends Error {
  constructor(readonly reason: 'timeout' | 'store', message: string) {
    super(message);
    this.name = 'LockUnavailable';
  }
}
