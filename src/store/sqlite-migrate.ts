import type BetterSqlite3 from 'better-sqlite3';
import { SQLITE_MIGRATIONS } from './schema.js';

/**
 * Applies the missing migrations in one IMMEDIATE transaction (a second process opening the same
 * file waits on the write lock rather than racing). Returns the schema version now in force.
 * A file migrated by a newer gateway is refused rather than written with an older layout.
 */
export function migrateSqlite(db: BetterSqlite3.Database): number {
  return db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS gw_schema_version (version INTEGER NOT NULL)');
    const row = db.prepare('SELECT max(version) AS v FROM gw_schema_version').get() as { v: number | null };
    const have = row.v ?? 0;
    if (have > SQLITE_MIGRATIONS.length) {
      throw new Error(`the store's schema version ${have} is newer than this gateway's ${SQLITE_MIGRATIONS.length}`);
    }
    for (let v = have; v < SQLITE_MIGRATIONS.length; v++) {
      db.exec(SQLITE_MIGRATIONS[v]!);
      db.prepare('INSERT INTO gw_schema_version (version) VALUES (?)').run(v + 1);
    }
    return SQLITE_MIGRATIONS.length;
  }).immediate();
}
