import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, realpathSync, statfsSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { systemClock, type Clock } from '../ports/clock.js';
import { VaultUnavailable, type HistoryRow, type KeepEntry, type KeptVersion, type LinkAfter, type VaultPort } from '../ports/vault.js';
import { noStoreMetrics, timed, type StoreMetrics } from '../store/metrics.js';
import { HISTORY_SELECT, ORPHAN_DELETE_SOME } from '../store/schema.js';
import { createSealer, type Sealer } from '../store/seal.js';
import { historyWithPreImage, toHistory, toKept, type HistoryDbRow, type VersionDbRow } from '../store/rows.js';
import { migrateSqlite } from '../store/sqlite-migrate.js';

/**
 * The embedded vault (store kind sqlite): one file, one gateway process.
 *
 * Durability: WAL with synchronous=FULL. Under WAL, NORMAL makes a commit durable against a crash
 * of the process but not of the machine (the WAL is synced only at checkpoints), and ruling 22
 * forwards a cancel only after its pre-image is durable; FULL syncs the WAL at each commit.
 *
 * Group commit: the writes asked for during one turn of the event loop (keeps and links of
 * concurrent cancels) are committed together in one transaction, each in its own savepoint, with
 * one fsync; each caller's promise settles only after that commit. One failing write rolls back
 * its savepoint only; a failed commit fails them all (nothing is forwarded). Under load the fsync
 * (a few ms, on the event loop) is paid once per batch instead of once per cancel. A batch of
 * links only commits without its own fsync (ruling 22: the link is best effort after the
 * provider's 200; it becomes durable with the next keep's commit or checkpoint).
 *
 * better-sqlite3 is synchronous: each operation is a short statement on the event loop. A writer
 * in another process (the `vault purge` command) can make us wait up to `timeoutMs` (busy
 * timeout); longer, and the operation fails with VaultUnavailable (fail closed).
 */
export interface SqliteVaultOptions {
  path: string;
  timeoutMs: number;
  /**
   * The gateway's own open: hold the file for this process alone (ruling 10 holds in one process
   * only: two gateways on one file would each forward the same version). The `vault` commands and
   * check-config open it without.
   */
  exclusive?: boolean;
  /** Open a store that exists, never create one (the `vault` commands: a mistyped path is an error, not an empty store). */
  existing?: boolean;
  sealer?: Sealer;
  clock?: Clock;
  metrics?: StoreMetrics;
}

export interface SqliteVault extends VaultPort {
  /** The open database (tests read the raw tables through it). */
  readonly db: BetterSqlite3.Database;
}

function unavailable(metrics: StoreMetrics, e: unknown): VaultUnavailable {
  if (e instanceof VaultUnavailable) return e;
  const code = (e as { code?: string }).code;
  const name = code ?? (e as Error).name;
  metrics.error(name === 'SQLITE_BUSY' ? 'timeout' : name === 'SealError' ? 'sealed' : 'unavailable');
  // A SealError's and the migration's own refusals (no code) say what is wrong and hold no data.
  const said = name === 'SealError' || code === undefined ? `: ${String((e as Error).message).split('\n')[0]}` : '';
  return new VaultUnavailable(`sqlite store: ${name}${said}`);
}

/**
 * The file a path names, links resolved: two spellings of one file (a symbolic link, `a/../b`)
 * share one owner lock.
 */
function canonicalPath(path: string): string {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  return existsSync(path) ? realpathSync(path) : join(realpathSync(dirname(path)), basename(path));
}

/** Device and inode of the file at `path` (undefined when there is none). */
function fileIdentity(path: string): string | undefined {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * An exclusive lock on `<path>.owner` (a small SQLite file in exclusive locking mode), held until
 * closed; the system releases it when the process ends, however it ends. Taken by another
 * process (or another open in this one) → refused at once.
 */
function holdForThisProcess(path: string): BetterSqlite3.Database {
  const file = `${path}.owner`;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const fresh = !existsSync(file);
  const owner = new Database(file, { timeout: 0 });
  try {
    if (fresh) chmodSync(file, 0o600);
    owner.pragma('locking_mode = EXCLUSIVE');
    owner.exec('CREATE TABLE IF NOT EXISTS owner (pid INTEGER NOT NULL)');
    owner.exec('BEGIN EXCLUSIVE');
    owner.exec('DELETE FROM owner');
    owner.prepare('INSERT INTO owner (pid) VALUES (?)').run(process.pid);
    owner.exec('COMMIT'); // exclusive locking mode: the lock stays after the commit
    return owner;
  } catch (e) {
    owner.close();
    if ((e as { code?: string }).code === 'SQLITE_BUSY') {
      throw new VaultUnavailable(`sqlite store: another gateway process has ${path} open (one file, one process: use the postgres store for several)`);
    }
    throw e;
  }
}

/** An open that failed for want of the file or its folder names them (the rest say what they are). */
function withPath(u: VaultUnavailable, e: unknown, path: string): VaultUnavailable {
  const code = (e as { code?: string }).code ?? '';
  if (!/^(?:SQLITE_CANTOPEN|SQLITE_PERM|EACCES|EPERM|ENOENT|ENOTDIR|EEXIST|EROFS)/.test(code)) return u;
  return new VaultUnavailable(`${u.message}: cannot open or create ${path} (its folder must exist or be creatable, and be writable by this process)`);
}

/**
 * Whether another process holds the file for itself (check-config's warning: start-up would be
 * refused while it runs). Takes the owner lock and lets it go at once.
 */
export function heldByAnotherProcess(path: string): boolean {
  try {
    holdForThisProcess(canonicalPath(path)).close();
    return false;
  } catch (e) {
    return e instanceof VaultUnavailable;
  }
}

/** Opens (creating and migrating when needed) the vault file. Throws VaultUnavailable. */
export function createSqliteVault(opts: SqliteVaultOptions): SqliteVault {
  const clock = opts.clock ?? systemClock;
  const metrics = opts.metrics ?? noStoreMetrics;
  const sealer = opts.sealer ?? createSealer();
  let db: BetterSqlite3.Database;
  let owner: BetterSqlite3.Database | undefined;
  try {
    if (opts.existing && !existsSync(opts.path)) throw new Error(`no store at ${opts.path} (nothing is created for a vault command; is store.path right?)`);
    if (opts.exclusive) owner = holdForThisProcess(canonicalPath(opts.path));
    db = openDatabase(opts.path, opts.timeoutMs);
  } catch (e) {
    owner?.close();
    throw withPath(unavailable(metrics, e), e, opts.path);
  }
  // The file opened: one deleted or replaced under the running gateway would take every version
  // kept after it with it (unlinked, or a file nobody reads) — each durable commit checks it first.
  const opened = fileIdentity(opts.path);
  const stillOpened = (): void => {
    if (fileIdentity(opts.path) === opened) return;
    metrics.error('unavailable');
    throw new VaultUnavailable(`sqlite store: ${opts.path} is no longer the file this process opened (deleted or replaced); restart the gateway`);
  };
  const q = prepare(db);
  const tx = transactions(db, q, sealer);
  const health = { cannotWrite: false };
  const commit = createGroupCommit(db, stillOpened, health);
  // The rows gauge: counted at open and after a purge, incremented by keeps (count(*) scans).
  const count = (): number => (q.count.get() as { n: number }).n;
  let rows = count();
  metrics.rows(rows);

  /** Runs a synchronous step as an async store operation: timed, failures → VaultUnavailable. */
  const op = <T>(name: string, fn: () => T | Promise<T>): Promise<T> =>
    timed(metrics, name, async () => {
      if (!db.open) throw new VaultUnavailable('sqlite store: closed');
      try {
        return await fn();
      } catch (e) {
        throw unavailable(metrics, e);
      }
    });
  /** A write that joins the current group commit. */
  const write = <T>(name: string, durable: boolean, fn: () => T): Promise<T> => op(name, () => commit(durable, fn));

  return {
    get db() {
      return db;
    },
    keep: (entry) => {
      const at = clock.now();
      return write('keep', true, () => tx.keep(entry, at)).then((id) => {
        metrics.rows(++rows);
        return String(id);
      });
    },
    // The link is best effort (after the provider's success; ruling 22): it needs no fsync of its
    // own; a power cut right after it can lose the link, never a pre-image.
    link: (keptId, after) => write('link', false, () => tx.link(keptId, after)),
    version: (appointmentId, versionId) =>
      op('version', (): KeptVersion | undefined => {
        const row = q.version.get(appointmentId, versionId) as VersionDbRow | undefined;
        return row ? toKept(row, sealer) : undefined;
      }),
    history: (appointmentId) => op('history', (): HistoryRow[] => (q.history.all(appointmentId) as HistoryDbRow[]).map(toHistory)),
    all: () => allRows(db, q, sealer, metrics),
    // In batches, the event loop free between them: a purge of a large backlog (the first
    // retention run, ~5 µs a row) must not hold every cancel for seconds (review of stop 36).
    purge: async (beforeMs) => {
      let gone = 0;
      for (let n = PURGE_BATCH; n === PURGE_BATCH; gone += n) {
        if (gone > 0) await new Promise((r) => setImmediate(r));
        n = await op('purge', () => tx.purgeDecisions.immediate(beforeMs, PURGE_BATCH));
      }
      for (let n = PURGE_BATCH; n === PURGE_BATCH; ) {
        n = await op('purge', () => tx.purgeOrphans.immediate(PURGE_BATCH));
        if (n === PURGE_BATCH) await new Promise((r) => setImmediate(r));
      }
      rows = count();
      metrics.rows(rows);
      return gone;
    },
    // Readable and still writable (a remount read-only, a changed mode): not ready otherwise.
    ping: () => op('ping', () => {
      q.ping.get();
      accessSync(opts.path, constants.W_OK);
      stillOpened();
      // After a write the disk refused (full: every keep fails, 500s behind a ready gateway), a
      // durable write of nothing decides: the store answers again once it succeeds.
      if (health.cannotWrite) {
        q.touch.run();
        const { bavail, bsize } = statfsSync(dirname(opts.path));
        if (bavail * bsize < MIN_FREE_BYTES) throw new VaultUnavailable(`sqlite store: the volume of ${opts.path} is full (under ${MIN_FREE_BYTES} bytes free) and the last keep failed`);
        health.cannotWrite = false;
      }
    }),
    async close() {
      if (db.open) db.close();
      if (owner?.open) owner.close();
    },
  };
}

/** Rows deleted per purge transaction (a few ms each). */
const PURGE_BATCH = 2000;

/** After a failed write, readiness wants this much room on the store's volume (a cancel keeps ~5–10 KB). */
const MIN_FREE_BYTES = 1024 * 1024;

/**
 * Group commit (see the file's comment): `durable` writes make their batch sync the WAL. Runs the
 * batch at the end of the current turn of the event loop (setImmediate), so every write asked for
 * during this turn joins it.
 */
function createGroupCommit(db: BetterSqlite3.Database, beforeDurable: () => void, health: { cannotWrite: boolean }): <T>(durable: boolean, fn: () => T) => Promise<T> {
  type Job = { durable: boolean; fn: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void };
  let queue: Job[] = [];
  // A write the file or its disk refused (full, I/O error, read-only): readiness asks again (ping).
  const noted = (error: unknown): void => {
    if (/^SQLITE_(FULL|IOERR|READONLY|CANTOPEN)/.test(String((error as { code?: unknown })?.code ?? ''))) health.cannotWrite = true;
  };
  let synchronous: 'FULL' | 'NORMAL' = 'FULL';
  const setSynchronous = (mode: 'FULL' | 'NORMAL') => {
    if (mode !== synchronous) db.pragma(`synchronous = ${mode}`);
    synchronous = mode;
  };
  const flush = (): void => {
    const jobs = queue;
    queue = [];
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      if (!db.open) throw new VaultUnavailable('sqlite store: closed');
      const durable = jobs.some((j) => j.durable);
      if (durable) beforeDurable();
      setSynchronous(durable ? 'FULL' : 'NORMAL');
      db.transaction(() => {
        for (const j of jobs) {
          try {
            outcomes.push({ ok: true, value: db.transaction(j.fn)() }); // a savepoint: fails alone
          } catch (error) {
            noted(error);
            outcomes.push({ ok: false, error });
          }
        }
      }).immediate();
    } catch (error) {
      noted(error);
      for (const j of jobs) j.reject(error); // the commit failed: none of them is written
      return;
    }
    if (outcomes.every((o) => o.ok) && jobs.some((j) => j.durable)) health.cannotWrite = false;
    jobs.forEach((j, i) => {
      const o = outcomes[i]!;
      if (o.ok) j.resolve(o.value);
      else j.reject(o.error);
    });
  };
  return <T>(durable: boolean, fn: () => T) =>
    new Promise<T>((resolve, reject) => {
      if (queue.push({ durable, fn, resolve: resolve as (v: unknown) => void, reject }) === 1) setImmediate(flush);
    });
}

/** Creates (0600: it holds patient data) or opens the file, WAL + FULL, migrated. */
function openDatabase(path: string, timeoutMs: number): BetterSqlite3.Database {
  const fresh = !existsSync(path);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new Database(path, { timeout: timeoutMs });
  try {
    if (fresh) chmodSync(path, 0o600);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    migrateSqlite(db);
    // SQLite opens a file it may not write read-only without a word, and every keep would then
    // fail (500s behind a ready gateway): a write at open finds that out (SQLITE_READONLY).
    db.prepare('UPDATE gw_schema_version SET version = version').run();
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** The write transactions (run with .immediate: the write lock is taken up front). */
function transactions(db: BetterSqlite3.Database, q: ReturnType<typeof prepare>, sealer: Sealer) {
  const keep = db.transaction((entry: KeepEntry, at: number): number => {
    const p = entry.preImage;
    const sealed = sealer.seal(p.body, p.appointmentId, p.versionId);
    const v = q.upsertVersion.get(p.appointmentId, p.versionId, p.sha256, p.mediaType, sealed.data, sealed.keyId, sealed.nonce, p.readAt, p.lastUpdated ?? null) as { id: number };
    const r = entry.decision.requester ?? {};
    const info = q.insertDecision.run(p.appointmentId, v.id, entry.decision.interaction, entry.decision.traceId ?? null, r.odsCode ?? null, r.sdsUserId ?? null, r.deviceId ?? null, at);
    return Number(info.lastInsertRowid);
  });

  const link = db.transaction((keptId: string, after: LinkAfter): void => {
    const d = q.decision.get(keptId) as { appointment_id: string } | undefined;
    if (!d) throw new VaultUnavailable(`sqlite store: no kept entry ${keptId}`);
    let afterRef: number | null = null;
    if (after.body) {
      const sha = sha256(after.body);
      const sealed = sealer.seal(after.body, d.appointment_id, after.versionId);
      afterRef = (q.upsertVersion.get(d.appointment_id, after.versionId, sha, after.mediaType ?? 'application/fhir+json', sealed.data, sealed.keyId, sealed.nonce, after.at, after.lastUpdated ?? null) as { id: number }).id;
    }
    q.link.run(after.versionId, afterRef, after.at, keptId);
  });

  const purgeDecisions = db.transaction((beforeMs: number, limit: number): number => q.purgeDecisions.run(beforeMs, limit).changes);
  const purgeOrphans = db.transaction((limit: number): number => q.purgeOrphans.run(limit).changes);
  return { keep, link, purgeDecisions, purgeOrphans };
}

function prepare(db: BetterSqlite3.Database) {
  return {
    count: db.prepare('SELECT count(*) AS n FROM gw_decisions'),
    ping: db.prepare('SELECT 1'),
    touch: db.prepare('UPDATE gw_schema_version SET version = version'),
    upsertVersion: db.prepare(`INSERT INTO gw_versions (appointment_id, version_id, sha256, media_type, body, key_id, nonce, read_at, last_updated)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (appointment_id, version_id, sha256) DO UPDATE SET
        body = CASE WHEN excluded.key_id IS NOT NULL AND key_id IS NOT excluded.key_id THEN excluded.body ELSE body END,
        nonce = CASE WHEN excluded.key_id IS NOT NULL AND key_id IS NOT excluded.key_id THEN excluded.nonce ELSE nonce END,
        key_id = COALESCE(excluded.key_id, key_id)
      RETURNING id`),
    insertDecision: db.prepare(`INSERT INTO gw_decisions (appointment_id, before_ref, interaction, trace_id, ods_code, sds_user_id, device_id, at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
    decision: db.prepare('SELECT appointment_id FROM gw_decisions WHERE id = ?'),
    link: db.prepare('UPDATE gw_decisions SET version_after = ?, after_ref = ?, linked_at = ? WHERE id = ?'),
    // A version as it was read (a pre-image) before a provider answer that reused its id (docs/store.md).
    version: db.prepare(`SELECT appointment_id, version_id, sha256, media_type, body, key_id, nonce, read_at, last_updated
      FROM gw_versions v WHERE appointment_id = ? AND version_id = ?
      ORDER BY EXISTS (SELECT 1 FROM gw_decisions d WHERE d.before_ref = v.id) DESC, id DESC LIMIT 1`),
    history: db.prepare(`${HISTORY_SELECT} WHERE d.appointment_id = ? ORDER BY d.id`),
    allAfter: db.prepare(`${HISTORY_SELECT} WHERE d.id > ? ORDER BY d.id LIMIT 100`),
    purgeDecisions: db.prepare('DELETE FROM gw_decisions WHERE id IN (SELECT id FROM gw_decisions WHERE at < ? ORDER BY id LIMIT ?)'),
    purgeOrphans: db.prepare(ORPHAN_DELETE_SOME),
  };
}

/** Export in pages by id, so a long export never holds a read transaction open. */
async function* allRows(db: BetterSqlite3.Database, q: ReturnType<typeof prepare>, sealer: Sealer, metrics: StoreMetrics) {
  let last = 0;
  for (;;) {
    let rows: HistoryDbRow[];
    try {
      if (!db.open) throw new VaultUnavailable('sqlite store: closed');
      rows = q.allAfter.all(last) as HistoryDbRow[];
    } catch (e) {
      throw unavailable(metrics, e);
    }
    if (rows.length === 0) return;
    for (const r of rows) {
      let item;
      try {
        item = historyWithPreImage(r, sealer);
      } catch (e) {
        throw unavailable(metrics, e);
      }
      yield item;
    }
    last = Number(rows[rows.length - 1]!.kept_id);
  }
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
