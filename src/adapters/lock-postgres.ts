import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { systemClock, type Clock } from '../ports/clock.js';
import { createMemoryLock } from './lock-memory.js';
import { LockUnavailable, type HeldLock, type LockPort } from '../ports/lock.js';
import { noStoreMetrics, type StoreMetrics } from '../store/metrics.js';
import { createPool, DeadlineExceeded, PostgresLockSession, poolConfig, quietErrors, withClient, type PostgresConnection } from '../store/postgres.js';

/**
 * The lock shared by every replica (ruling 23): a PostgreSQL session-level advisory lock keyed by
 * a 64-bit hash of the appointment id, taken on a connection leased for the whole hold and
 * released on that same connection when `fn` settles. The lock lives with the session: a gateway
 * that dies (or loses its connection) releases it with its connection; no lease outlives its
 * holder. Waiting is bounded by the server (`lock_timeout`), so no polling.
 *
 * Not exactly once: if the connection is lost while `fn` runs (a forward in flight), the database
 * has already released the lock and another replica may start; this adapter counts it
 * (error kind lock-lost) — docs/store.md.
 *
 * Locks get their own pool (`lockPoolSize`): holders keep a connection through the provider
 * exchange, and must never starve the vault's pool they need inside the hold.
 *
 * The holding session is handed to `fn` (a PostgresLockSession in the HeldLock): the vault of the
 * same database keeps the pre-image on it and releases the lock with the link, in one statement
 * each (issue 18 item 7). The session has the vault's statement_timeout, lifted only while the lock
 * is waited for. When the link released the lock, the release here only gives the client back.
 */
export interface PostgresLockOptions extends PostgresConnection {
  lockPoolSize: number;
  clock?: Clock;
  metrics?: StoreMetrics;
}

export interface PostgresLock extends LockPort {
  readonly pool: pg.Pool;
  /** Holders of this process queued for a key, ahead of the database (tests: a real condition). */
  localWaiters(appointmentId: string): number;
}

/** The advisory key: a signed 64-bit integer, as a decimal string (our own digits, safe to inline). */
export function advisoryKey(appointmentId: string): string {
  return createHash('sha256').update('cancel-gateway appointment\0').update(appointmentId, 'utf8').digest().readBigInt64BE(0).toString();
}

export function createPostgresLock(opts: PostgresLockOptions): PostgresLock {
  const clock = opts.clock ?? systemClock;
  const metrics = opts.metrics ?? noStoreMetrics;
  // Opening a connection for a lock is part of waiting for it: under a burst PostgreSQL forks one
  // backend per connection, which takes longer than a single vault operation may.
  const pool = createPool(poolConfig(opts, opts.lockPoolSize, { connectionTimeoutMillis: Math.max(opts.timeoutMs * 3, 5000), statement_timeout: opts.timeoutMs }), () => metrics.error('connection'));

  /**
   * Leases a connection within the caller's wait budget (a full pool means others hold locks: that
   * is waiting for a lock, not a store failure); a full pool past it is a busy lock (timeout),
   * anything else the store.
   */
  async function lease(waitMs: number): Promise<pg.PoolClient> {
    try {
      return await connectWithin(pool, clock, Math.max(opts.timeoutMs, waitMs));
    } catch (e) {
      // Judged when the wait ends: every connection busy holding locks = a busy lock.
      const busy = e instanceof DeadlineExceeded && pool.totalCount >= opts.lockPoolSize;
      // Counted once, by whoever handles the LockUnavailable (the cancel transaction).
      throw new LockUnavailable(busy ? 'timeout' : 'store', busy ? 'no lock connection free in time' : `postgres lock: ${(e as Error).message.split('\n')[0]}`);
    }
  }

  /** Takes the advisory lock on `c` within `ms` (server-enforced). False: someone else holds it. */
  async function acquire(c: pg.PoolClient, key: string, ms: number): Promise<boolean> {
    if (ms < 1) {
      const r = await guarded(c, `SELECT pg_try_advisory_lock(${key}) AS ok`, opts.timeoutMs);
      return r.rows[0]?.ok === true;
    }
    try {
      // One round trip; the statements run in one implicit transaction, so a lock not granted in
      // time rolls the SETs back to the session's defaults as well.
      const wait = Math.ceil(ms);
      await guarded(c, `SET statement_timeout = ${wait + opts.timeoutMs}; SET lock_timeout = ${wait}; SELECT pg_advisory_lock(${key}); SET statement_timeout = ${opts.timeoutMs}; SET lock_timeout = 0`, ms + opts.timeoutMs);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === '55P03') return false; // lock_not_available
      throw e;
    }
  }

  // Waiters of one process queue here first, so only the head of each key's queue holds a
  // database connection (a burst on one appointment costs one connection, not one per request).
  // Its wait runs on real time, as the database's lock_timeout does.
  const local = createMemoryLock({ clock: systemClock });
  const queued = new Map<string, number>();

  function hold<T>(appointmentId: string, o: { waitMs: number }, fn: (held: HeldLock) => Promise<T>): Promise<T> {
    const startedAt = Date.now();
    const started = performance.now(); // the lock wait includes the in-process queue
    queued.set(appointmentId, (queued.get(appointmentId) ?? 0) + 1);
    let counted = true;
    const uncount = () => {
      if (!counted) return;
      counted = false;
      const n = (queued.get(appointmentId) ?? 1) - 1;
      if (n) queued.set(appointmentId, n);
      else queued.delete(appointmentId);
    };
    return local
      .hold(appointmentId, o, () => {
        uncount();
        return holdShared(appointmentId, { waitMs: Math.max(0, o.waitMs - (Date.now() - startedAt)) }, fn, started);
      })
      .catch((e: unknown) => {
        // A wait that timed out is a wait too, wherever it ended: this process's queue, the pool,
        // the database's lock_timeout (a granted one is recorded by holdShared).
        if (e instanceof LockUnavailable && e.reason === 'timeout') metrics.lockWait((performance.now() - started) / 1000);
        throw e;
      })
      .finally(uncount);
  }

  async function holdShared<T>(appointmentId: string, o: { waitMs: number }, fn: (held: HeldLock) => Promise<T>, started: number): Promise<T> {
    const startedAt = clock.now();
    const key = advisoryKey(appointmentId);
    const c = await lease(o.waitMs);
    let lost: Error | undefined;
    const onError = (e: Error): void => {
      if (!lost) metrics.error('lock-lost');
      lost = e;
    };
    c.on('error', onError);
    const giveBack = (destroy: Error | undefined): void => {
      c.removeListener('error', onError);
      quietErrors(c);
      c.release(destroy);
    };
    try {
      const got = await acquire(c, key, o.waitMs - (clock.now() - startedAt));
      if (!got) {
        giveBack(undefined);
        throw new LockUnavailable('timeout', `waited ${o.waitMs} ms for the appointment lock`);
      }
    } catch (e) {
      if (e instanceof LockUnavailable) throw e;
      giveBack(e as Error);
      throw new LockUnavailable('store', `postgres lock: ${(e as { code?: string }).code ?? (e as Error).message.split('\n')[0]}`);
    }
    metrics.lockWait((performance.now() - started) / 1000);
    const session = new PostgresLockSession(c, key, opts.url, () => lost);
    try {
      return await fn({ session });
    } finally {
      await release(session).then(giveBack);
    }
  }

  /**
   * Unlocks on the holding session unless the link already did; when that fails (or a statement
   * on the session was abandoned) the session is ended, which unlocks too.
   */
  async function release(s: PostgresLockSession): Promise<Error | undefined> {
    const { client: c, key } = s;
    if (s.lost() || s.broken) return s.lost() ?? s.broken;
    if (s.unlocked) return undefined;
    try {
      const r = await guarded(c, `SELECT pg_advisory_unlock(${key}) AS ok`, opts.timeoutMs);
      return r.rows[0]?.ok === true ? undefined : new Error('advisory lock was not held');
    } catch (e) {
      return e as Error;
    }
  }

  /** One query bounded on our side too (a database that stopped answering). */
  function guarded(c: pg.PoolClient, sql: string, ms: number): Promise<pg.QueryResult<{ ok: boolean }>> {
    return new Promise((resolve, reject) => {
      const cancel = clock.setTimer(() => reject(new DeadlineExceeded()), ms);
      c.query<{ ok: boolean }>(sql).then(
        (r) => (cancel(), resolve(r)),
        (e: Error) => (cancel(), reject(e)),
      );
    });
  }

  return {
    pool,
    hold,
    async ping() {
      // Every connection leased to a holder is busy, not down (a session that dies fails its holder
      // and leaves the pool): readiness must not drop a replica for carrying its load. The vault's
      // own ping still checks that the database answers.
      if (pool.totalCount >= opts.lockPoolSize && pool.idleCount === 0) return;
      try {
        await withClient(pool, clock, opts.timeoutMs, (c) => c.query('SELECT 1'));
      } catch (e) {
        // Not counted here: lock-store counts cancels refused for it (transaction.ts); readiness
        // says the store is down, once per probe, in /readyz.
        throw new LockUnavailable('store', `postgres lock: ${(e as Error).message.split('\n')[0]}`);
      }
    },
    /** Holders of this process waiting for a key (the in-process queue ahead of the database). */
    localWaiters: (appointmentId: string) => queued.get(appointmentId) ?? 0,
    close: () => pool.end(),
  };
}

/** pool.connect() bounded by `ms` on `clock`; a connection that arrives too late goes back. */
function connectWithin(pool: pg.Pool, clock: Clock, ms: number): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) => {
    let late = false;
    const cancel = clock.setTimer(() => {
      late = true;
      reject(new DeadlineExceeded());
    }, ms);
    pool.connect().then(
      (c) => {
        if (late) return c.release();
        cancel();
        resolve(c);
      },
      (e: Error) => {
        cancel();
        reject(e);
      },
    );
  });
}
