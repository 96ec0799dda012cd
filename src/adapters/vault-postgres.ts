import { createHash } from 'node:crypto';
import type pg from 'pg';
import { systemClock, type Clock } from '../ports/clock.js';
import type { HeldLock } from '../ports/lock.js';
import { VaultUnavailable, type HistoryRow, type KeepEntry, type LinkAfter, type VaultPort } from '../ports/vault.js';
import { noStoreMetrics, timed, type StoreMetrics } from '../store/metrics.js';
import { createPool, describePgError, migratePostgres, onLockSession, poolConfig, PostgresLockSession, withClient, type PostgresConnection } from '../store/postgres.js';
import { HISTORY_SELECT, ORPHAN_DELETE } from '../store/schema.js';
import { historyWithPreImage, toHistory, toKept, type HistoryDbRow, type VersionDbRow } from '../store/rows.js';
import { createSealer, type Sealer } from '../store/seal.js';

/**
 * The shared vault (store kind postgres). Tables are created and migrated at start-up under an
 * advisory lock (src/store/postgres.ts). `keep` is one transaction and resolves after COMMIT;
 * every operation is bounded by `timeoutMs` on the server (statement_timeout) and on our side
 * (the whole lease, connecting included), and any failure is a VaultUnavailable: the cancel
 * transaction then forwards nothing (ruling 22).
 *
 * Given the HeldLock of a PostgreSQL lock on the same database, `keep` and `link` run on the lock's
 * session (no lease from this pool), and the link releases the lock in the same statement: a
 * cancel is three round trips (lock, keep, link and unlock) instead of four (issue 18 item 7).
 */
export interface PostgresVaultOptions extends PostgresConnection {
  poolSize: number;
  sealer?: Sealer;
  clock?: Clock;
  metrics?: StoreMetrics;
}

export interface PostgresVault extends VaultPort {
  readonly pool: pg.Pool;
}

const VERSION_COLUMNS = 'appointment_id, version_id, sha256, media_type, body, key_id, nonce, read_at, last_updated';
const UPSERT_VERSION = `INSERT INTO gw_versions (${VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
  ON CONFLICT (appointment_id, version_id, sha256) DO UPDATE SET
    body = CASE WHEN excluded.key_id IS NOT NULL AND gw_versions.key_id IS DISTINCT FROM excluded.key_id THEN excluded.body ELSE gw_versions.body END,
    nonce = CASE WHEN excluded.key_id IS NOT NULL AND gw_versions.key_id IS DISTINCT FROM excluded.key_id THEN excluded.nonce ELSE gw_versions.nonce END,
    key_id = COALESCE(excluded.key_id, gw_versions.key_id)
  RETURNING id`;
// The same bytes kept again after a key rotation are sealed again with the current key, so an old
// key can go once the rows only it opens are purged (docs/store.md, "Encryption at rest"). A
// process without a key never unseals a row (one replica missing its key Secret would otherwise
// write every version it reads again in clear: review of stop 36).

/** The link (see link()): the new version's body and the decision's update in one statement. */
const LINK_WITH_BODY = `WITH v AS (${UPSERT_VERSION})
  UPDATE gw_decisions SET version_after = $2, after_ref = (SELECT id FROM v), linked_at = $10 WHERE id = $11 AND appointment_id = $1 RETURNING id`;
const LINK_WITHOUT_BODY = 'UPDATE gw_decisions SET version_after = $1, after_ref = NULL, linked_at = $2 WHERE id = $3 RETURNING id';
/**
 * The same on a lock's session, releasing the lock in the statement: `n` is the decisions linked,
 * `unlocked` whether the session held the key. A session-level advisory lock is not
 * transactional, so it is released even if the update fails; the holder then finds it released.
 */
const LINK_WITH_BODY_UNLOCK = `WITH v AS (${UPSERT_VERSION}),
  d AS (UPDATE gw_decisions SET version_after = $2, after_ref = (SELECT id FROM v), linked_at = $10 WHERE id = $11 AND appointment_id = $1 RETURNING id)
  SELECT (SELECT count(*) FROM d)::int AS n, pg_advisory_unlock($12::bigint) AS unlocked`;
const LINK_WITHOUT_BODY_UNLOCK = `WITH d AS (${LINK_WITHOUT_BODY})
  SELECT (SELECT count(*) FROM d)::int AS n, pg_advisory_unlock($4::bigint) AS unlocked`;
/** How many kept ids this process remembers the appointment of (a link follows its keep within one request). */
const REMEMBERED = 4096;

/** Connects, migrates, returns the vault. Rejects with VaultUnavailable when the database cannot be used. */
export async function createPostgresVault(opts: PostgresVaultOptions): Promise<PostgresVault> {
  const clock = opts.clock ?? systemClock;
  const metrics = opts.metrics ?? noStoreMetrics;
  const pool = createPool(poolConfig(opts, opts.poolSize, { statement_timeout: opts.timeoutMs }), () => metrics.error('connection'));
  const fail = (e: unknown): VaultUnavailable => {
    if (e instanceof VaultUnavailable) return e;
    const d = describePgError(e);
    metrics.error(d.kind);
    return new VaultUnavailable(`postgres store: ${d.text}`);
  };
  const op: Op = (name, fn, session) =>
    timed(metrics, name, async () => {
      try {
        return await (session ? onLockSession(session, clock, opts.timeoutMs, fn) : withClient(pool, clock, opts.timeoutMs, fn));
      } catch (e) {
        throw fail(e);
      }
    });
  /** The lock's session, when it is this database's and still usable. */
  const sessionOf = (held: HeldLock | undefined): PostgresLockSession | undefined => {
    const s = held?.session;
    return s instanceof PostgresLockSession && s.usableFor(opts.url) ? s : undefined;
  };
  const ctx: Ctx = { op, fail, sealer: opts.sealer ?? createSealer(), clock, metrics, rows: 0, appointmentOf: new Map(), sessionOf };
  try {
    // Migration may wait for another replica's; allow it several operation timeouts.
    await withClient(pool, clock, opts.timeoutMs * 5, async (c) => {
      await migratePostgres(c);
      await count(ctx, c);
    });
  } catch (e) {
    await pool.end().catch(() => {});
    throw fail(e);
  }
  return {
    pool,
    keep: (entry, held) => keep(ctx, entry, held),
    link: (keptId, after, held) => link(ctx, keptId, after, held),
    version: (appointmentId, versionId) =>
      op('version', async (c) => {
        // A version as it was read (a pre-image) before a provider answer that reused its id (docs/store.md).
        const r = await c.query<VersionDbRow>(`SELECT ${VERSION_COLUMNS} FROM gw_versions v WHERE appointment_id = $1 AND version_id = $2
          ORDER BY EXISTS (SELECT 1 FROM gw_decisions d WHERE d.before_ref = v.id) DESC, id DESC LIMIT 1`, [appointmentId, versionId]);
        return r.rows[0] ? toKept(r.rows[0], ctx.sealer) : undefined;
      }),
    history: (appointmentId) =>
      op('history', async (c): Promise<HistoryRow[]> => {
        const r = await c.query<HistoryDbRow>(`${HISTORY_SELECT} WHERE d.appointment_id = $1 ORDER BY d.id`, [appointmentId]);
        return r.rows.map(toHistory);
      }),
    all: () => allRows(op, ctx.sealer, fail),
    purge: (beforeMs) => purge(ctx, beforeMs),
    ping: () => op('ping', async (c) => void (await c.query('SELECT 1'))),
    close: () => pool.end(),
  };
}

interface Ctx {
  op: Op;
  fail: (e: unknown) => VaultUnavailable;
  sealer: Sealer;
  clock: Clock;
  metrics: StoreMetrics;
  /** Kept id -> appointment id, for the one-statement link (bounded: oldest forgotten first). */
  appointmentOf: Map<string, string>;
  /** The rows gauge: counted at start-up and after a purge, incremented by keeps (a count per
   * keep would scan the table). Other replicas' keeps are not seen until the next count. */
  rows: number;
  sessionOf: (held: HeldLock | undefined) => PostgresLockSession | undefined;
}

async function count(ctx: Ctx, c: pg.PoolClient): Promise<void> {
  const r = await c.query<{ n: string }>('SELECT count(*) AS n FROM gw_decisions');
  ctx.rows = Number(r.rows[0]?.n ?? 0);
  ctx.metrics.rows(ctx.rows);
}

const KEEP = `WITH v AS (${UPSERT_VERSION})
  INSERT INTO gw_decisions (appointment_id, before_ref, interaction, trace_id, ods_code, sds_user_id, device_id, at)
  SELECT $1, v.id, $10, $11, $12, $13, $14, $15 FROM v RETURNING id`;

/** One statement, so one round trip and its own transaction: the body (deduplicated) and the
 * decision commit together or not at all; resolves after the commit. */
function keep(ctx: Ctx, entry: KeepEntry, held: HeldLock | undefined): Promise<string> {
  let session: PostgresLockSession | undefined;
  try {
    session = sessionForKeep(ctx, held);
  } catch (e) {
    return Promise.reject(e);
  }
  return ctx.op('keep', async (c) => {
    const p = entry.preImage;
    const sealed = ctx.sealer.seal(p.body, p.appointmentId, p.versionId);
    const r = entry.decision.requester ?? {};
    const d = await c.query<{ id: string }>({
      name: 'gw_keep',
      text: KEEP,
      values: [p.appointmentId, p.versionId, p.sha256, p.mediaType, sealed.data, sealed.keyId, sealed.nonce, p.readAt, p.lastUpdated ?? null,
        entry.decision.interaction, entry.decision.traceId ?? null, r.odsCode ?? null, r.sdsUserId ?? null, r.deviceId ?? null, ctx.clock.now()],
    });
    ctx.metrics.rows(++ctx.rows);
    const id = String(d.rows[0]!.id);
    ctx.appointmentOf.set(id, p.appointmentId);
    if (ctx.appointmentOf.size > REMEMBERED) ctx.appointmentOf.delete(ctx.appointmentOf.keys().next().value!);
    return id;
  }, session);
}

/**
 * The lock's session for the keep. A lock of this database whose session is lost or broken means
 * the appointment is no longer locked (another replica may hold it by now): the pre-image is not
 * kept and nothing is forwarded (ruling 23), rather than keeping it on the pool and going on.
 */
function sessionForKeep(ctx: Ctx, held: HeldLock | undefined): PostgresLockSession | undefined {
  const s = held?.session;
  if (s instanceof PostgresLockSession && !s.usableFor(s.database) && !s.unlocked) {
    throw new VaultUnavailable('postgres store: the appointment lock was lost before the pre-image was kept');
  }
  return ctx.sessionOf(held);
}

/**
 * The new version's body and the decision's update in one statement (one round trip, its own
 * transaction). The appointment is the one this process remembers keeping; for a decision kept by
 * another process (or forgotten) it is looked up first. The statement matches the decision by id
 * and appointment, so a wrong pair links nothing and fails.
 */
function link(ctx: Ctx, keptId: string, after: LinkAfter, held: HeldLock | undefined): Promise<void> {
  const known = ctx.appointmentOf.get(keptId);
  ctx.appointmentOf.delete(keptId);
  const session = ctx.sessionOf(held);
  return ctx.op('link', async (c) => {
    const appointmentId = known ?? (await c.query<{ appointment_id: string }>('SELECT appointment_id FROM gw_decisions WHERE id = $1', [keptId])).rows[0]?.appointment_id;
    if (appointmentId === undefined) throw new VaultUnavailable(`postgres store: no kept entry ${keptId}`);
    let linked: number;
    if (after.body) {
      const s = ctx.sealer.seal(after.body, appointmentId, after.versionId);
      const values = [appointmentId, after.versionId, sha256(after.body), after.mediaType ?? 'application/fhir+json', s.data, s.keyId, s.nonce, after.at, after.lastUpdated ?? null, after.at, keptId];
      linked = session
        ? unlockedBy(session, await c.query({ name: 'gw_link_body_unlock', text: LINK_WITH_BODY_UNLOCK, values: [...values, session.key] }))
        : ((await c.query({ name: 'gw_link_body', text: LINK_WITH_BODY, values })).rowCount ?? 0);
    } else {
      const values = [after.versionId, after.at, keptId];
      linked = session
        ? unlockedBy(session, await c.query({ name: 'gw_link_unlock', text: LINK_WITHOUT_BODY_UNLOCK, values: [...values, session.key] }))
        : ((await c.query({ name: 'gw_link', text: LINK_WITHOUT_BODY, values })).rowCount ?? 0);
    }
    if (!linked) throw new VaultUnavailable(`postgres store: no kept entry ${keptId}`);
  }, session);
}

/** Records on the session that the statement released its lock; returns the decisions linked. */
function unlockedBy(session: PostgresLockSession, r: pg.QueryResult<{ n: number; unlocked: boolean }>): number {
  const row = r.rows[0];
  if (row?.unlocked === true) session.unlocked = true;
  return row?.n ?? 0;
}

function purge(ctx: Ctx, beforeMs: number): Promise<number> {
  return ctx.op('purge', async (c) => {
    const n = await inTransaction(c, async () => {
      const r = await c.query('DELETE FROM gw_decisions WHERE at < $1', [beforeMs]);
      await c.query(ORPHAN_DELETE);
      return r.rowCount ?? 0;
    });
    await count(ctx, c).catch(() => {});
    return n;
  });
}

async function inTransaction<T>(c: pg.PoolClient, fn: () => Promise<T>): Promise<T> {
  await c.query('BEGIN');
  try {
    const v = await fn();
    await c.query('COMMIT');
    return v;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  }
}

type Op = <T>(name: string, fn: (c: pg.PoolClient) => Promise<T>, session?: PostgresLockSession) => Promise<T>;

/** Export in pages of 100 by id: each page is its own short query. */
async function* allRows(op: Op, sealer: Sealer, fail: (e: unknown) => VaultUnavailable) {
  let last = '0';
  for (;;) {
    const rows = await op('export', async (c) => (await c.query<HistoryDbRow>(`${HISTORY_SELECT} WHERE d.id > $1 ORDER BY d.id LIMIT 100`, [last])).rows);
    if (rows.length === 0) return;
    for (const r of rows) {
      let item;
      try {
        item = historyWithPreImage(r, sealer);
      } catch (e) {
        throw fail(e);
      }
      yield item;
    }
    last = String(rows[rows.length - 1]!.kept_id);
  }
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
