import pg from 'pg';
import type { Clock } from '../ports/clock.js';
import { POSTGRES_MIGRATIONS } from './schema.js';

/**
 * What the postgres lock and vault share: pool options, one leased client with a deadline, and
 * the migration at start-up.
 */
export interface PostgresConnection {
  /** postgres://… ; never logged (it may carry a password). */
  url: string;
  /** When given, TLS is required: the CA (PEM) and whether an unverified server is refused. */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized: boolean };
  /** Connecting, and each vault operation, must finish within this. */
  timeoutMs: number;
}

/** TLS from `tls` wins over any ssl* parameter of the URL (pg lets the URL override the object). */
export function poolConfig(c: PostgresConnection, max: number, extra: pg.PoolConfig = {}): pg.PoolConfig {
  let connectionString = c.url;
  if (c.tls) {
    const u = new URL(c.url);
    for (const k of [...u.searchParams.keys()]) if (k.startsWith('ssl')) u.searchParams.delete(k);
    connectionString = u.toString();
  }
  const cfg: pg.PoolConfig = {
    connectionString,
    max,
    connectionTimeoutMillis: c.timeoutMs,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'cancel-gateway',
    ...extra,
  };
  if (c.tls) {
    cfg.ssl = {
      rejectUnauthorized: c.tls.rejectUnauthorized,
      ...(c.tls.ca ? { ca: c.tls.ca.toString() } : {}),
      ...(c.tls.cert && c.tls.key ? { cert: c.tls.cert.toString(), key: c.tls.key.toString() } : {}),
    };
  }
  return cfg;
}

/** A pool whose idle-client errors (a database restart) are counted, never thrown. */
export function createPool(cfg: pg.PoolConfig, onError: (e: Error) => void): pg.Pool {
  const pool = new pg.Pool(cfg);
  pool.on('error', onError);
  return pool;
}

const quieted = new WeakSet<pg.PoolClient>();
/**
 * Gives a client one no-op 'error' listener for life: a destroyed client may still emit once, and
 * an unheard 'error' throws. Once per client — pooled clients are leased again and again, and a
 * listener added per lease piles up (a leak the bench found).
 */
export function quietErrors(c: pg.PoolClient): void {
  if (quieted.has(c)) return;
  quieted.add(c);
  c.on('error', () => {});
}

/**
 * The database session of a held appointment lock (src/adapters/lock-postgres.ts), passed to the
 * vault of the same database through the lock port's HeldLock (issue 18 item 7): the vault keeps
 * the pre-image on it instead of leasing its own connection, and the link releases the lock in
 * its own statement, so a cancel costs three round trips instead of four.
 */
export class PostgresLockSession {
  /** Set when a statement released the lock (the link); the holder then only gives the client back. */
  unlocked = false;
  /** Set when a statement on the session was abandoned (deadline): the holder destroys the client. */
  broken: Error | undefined;
  constructor(
    readonly client: pg.PoolClient,
    /** The advisory key (decimal digits of our own making, safe to inline). */
    readonly key: string,
    /** The store's URL: a vault shares the session only with a lock on the same database. */
    readonly database: string,
    /** The client's own error, once it had one. */
    readonly lost: () => Error | undefined,
  ) {}

  /** Whether a vault of `database` may run a statement on this session now. */
  usableFor(database: string): boolean {
    return database === this.database && !this.unlocked && !this.broken && !this.lost();
  }
}

/**
 * Runs `fn` on a lock's session, bounded by `ms` on `clock`. Past it the promise rejects with
 * DeadlineExceeded and the session is marked broken (its holder destroys the connection, which
 * also releases the lock).
 */
export function onLockSession<T>(s: PostgresLockSession, clock: Clock, ms: number, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const cancel = clock.setTimer(() => {
      if (settled) return;
      settled = true;
      s.broken = new DeadlineExceeded();
      reject(s.broken);
    }, ms);
    fn(s.client).then(
      (v) => {
        if (settled) return;
        settled = true;
        cancel();
        resolve(v);
      },
      (e: Error) => {
        if (settled) return;
        settled = true;
        cancel();
        reject(e);
      },
    );
  });
}

export class DeadlineExceeded extends Error {
  constructor() {
    super('deadline exceeded');
    this.name = 'DeadlineExceeded';
  }
}

/**
 * Leases a client for `fn`, bounded as a whole by `ms` on `clock`: past it the promise rejects
 * with DeadlineExceeded and the client is destroyed (whatever it was waiting for is abandoned
 * with its connection). A client that errors while leased is destroyed, not reused.
 */
export function withClient<T>(pool: pg.Pool, clock: Clock, ms: number, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let client: pg.PoolClient | undefined;
    let settled = false;
    let broken: Error | undefined;
    const onError = (e: Error): void => {
      broken = e;
    };
    const finish = (err: Error | undefined): void => {
      if (!client) return;
      const c = client;
      client = undefined;
      c.removeListener('error', onError);
      quietErrors(c);
      c.release(err ?? broken);
    };
    const cancel = clock.setTimer(() => {
      if (settled) return;
      settled = true;
      finish(new DeadlineExceeded());
      reject(new DeadlineExceeded());
    }, ms);
    pool.connect().then(
      async (c) => {
        if (settled) {
          c.release();
          return;
        }
        client = c;
        c.on('error', onError);
        try {
          const v = await fn(c);
          if (settled) return;
          settled = true;
          cancel();
          finish(undefined);
          resolve(v);
        } catch (e) {
          if (settled) return;
          settled = true;
          cancel();
          finish(e as Error);
          reject(e);
        }
      },
      (e: Error) => {
        if (settled) return;
        settled = true;
        cancel();
        reject(e);
      },
    );
  });
}

/** Two-int advisory key: never collides with the bigint keys of appointment locks. */
const MIGRATION_LOCK = 'pg_advisory_xact_lock(1667327591, 1)';

/**
 * Creates or migrates the tables in one transaction under an advisory lock, so replicas starting
 * together apply each migration once. Refuses a database migrated by a newer gateway.
 */
export async function migratePostgres(c: pg.PoolClient): Promise<number> {
  await c.query('BEGIN');
  try {
    await c.query(`SELECT ${MIGRATION_LOCK}`);
    await c.query('CREATE TABLE IF NOT EXISTS gw_schema_version (version INTEGER NOT NULL)');
    const r = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM gw_schema_version');
    const have = r.rows[0]?.v ?? 0;
    if (have > POSTGRES_MIGRATIONS.length) throw new Error(`the store's schema version ${have} is newer than this gateway's ${POSTGRES_MIGRATIONS.length}`);
    for (let v = have; v < POSTGRES_MIGRATIONS.length; v++) {
      await c.query(POSTGRES_MIGRATIONS[v]!);
      await c.query('INSERT INTO gw_schema_version (version) VALUES ($1)', [v + 1]);
    }
    await c.query('COMMIT');
    return POSTGRES_MIGRATIONS.length;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  }
}

/** A short, data-free description of a database error for messages and metric labels. */
/** What an operator needs from the connection refusals (never the server's text, which may name data). */
const PG_STATES: Readonly<Record<string, string>> = {
  '28P01': 'password authentication failed',
  '28000': 'the server refused this client (pg_hba.conf, or its certificate)',
  '3D000': 'the database does not exist',
  '42501': 'permission denied',
  '53300': 'too many connections',
  '57P03': 'the server is starting up or shutting down',
  '08P01': 'protocol violation',
};

export function describePgError(e: unknown): { kind: string; text: string } {
  if (e instanceof DeadlineExceeded) return { kind: 'timeout', text: 'deadline exceeded' };
  const code = (e as { code?: string }).code;
  if (code === '57014') return { kind: 'timeout', text: 'statement timeout' };
  if (code === 'SealError' || (e as Error).name === 'SealError') return { kind: 'sealed', text: (e as Error).message };
  const msg = (e as Error).message ?? String(e);
  // Connection-level messages (ECONNREFUSED, "timeout exceeded when trying to connect") carry no
  // data; server errors are reduced to their SQLSTATE.
  if (code && /^[0-9A-Z]{5}$/.test(code)) return { kind: 'unavailable', text: `SQLSTATE ${code}${PG_STATES[code] ? `: ${PG_STATES[code]}` : ''}` };
  // A system error (ECONNREFUSED, ENOTFOUND, ETIMEDOUT…): its code says what went wrong.
  if (code && /^E[A-Z]+$/.test(code)) return { kind: 'unavailable', text: `cannot reach the database (${code})` };
  return { kind: 'unavailable', text: msg.split('\n')[0]!.slice(0, 200) };
}
