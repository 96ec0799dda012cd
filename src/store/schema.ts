/**
 * The vault's tables, one migration list per engine. A migration runs once, in order, inside
 * one transaction with the version row it bumps; opening a store applies what is missing.
 *
 * Layout (ruling 22): `gw_versions` holds each body once per (appointment, version, bytes) —
 * two cancels that read the same version share it; `gw_decisions` holds one row per decision
 * (who, which interaction, when) pointing at its pre-image, and after the provider's 200 at the
 * new version (`version_after`, and `after_ref` when the provider returned the new body).
 * Bodies are sealed when a key is configured (`key_id`, `nonce`; src/store/seal.ts).
 */

export const SCHEMA_VERSION = 1;

export const SQLITE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE gw_versions (
     id INTEGER PRIMARY KEY,
     appointment_id TEXT NOT NULL,
     version_id TEXT NOT NULL,
     sha256 TEXT NOT NULL,
     media_type TEXT NOT NULL,
     body BLOB NOT NULL,
     key_id TEXT,
     nonce BLOB,
     read_at INTEGER NOT NULL,
     last_updated TEXT,
     UNIQUE (appointment_id, version_id, sha256)
   );
   CREATE TABLE gw_decisions (
     id INTEGER PRIMARY KEY,
     appointment_id TEXT NOT NULL,
     before_ref INTEGER NOT NULL REFERENCES gw_versions(id),
     interaction TEXT NOT NULL,
     trace_id TEXT,
     ods_code TEXT,
     sds_user_id TEXT,
     device_id TEXT,
     at INTEGER NOT NULL,
     version_after TEXT,
     after_ref INTEGER REFERENCES gw_versions(id),
     linked_at INTEGER
   );
   CREATE INDEX gw_decisions_appointment ON gw_decisions (appointment_id, id);
   CREATE INDEX gw_decisions_at ON gw_decisions (at);
   CREATE INDEX gw_decisions_before ON gw_decisions (before_ref);
   CREATE INDEX gw_decisions_after ON gw_decisions (after_ref);`,
];

export const POSTGRES_MIGRATIONS: readonly string[] = [
  `CREATE TABLE gw_versions (
     id BIGSERIAL PRIMARY KEY,
     appointment_id TEXT NOT NULL,
     version_id TEXT NOT NULL,
     sha256 TEXT NOT NULL,
     media_type TEXT NOT NULL,
     body BYTEA NOT NULL,
     key_id TEXT,
     nonce BYTEA,
     read_at BIGINT NOT NULL,
     last_updated TEXT,
     UNIQUE (appointment_id, version_id, sha256)
   );
   CREATE TABLE gw_decisions (
     id BIGSERIAL PRIMARY KEY,
     appointment_id TEXT NOT NULL,
     before_ref BIGINT NOT NULL REFERENCES gw_versions(id),
     interaction TEXT NOT NULL,
     trace_id TEXT,
     ods_code TEXT,
     sds_user_id TEXT,
     device_id TEXT,
     at BIGINT NOT NULL,
     version_after TEXT,
     after_ref BIGINT REFERENCES gw_versions(id),
     linked_at BIGINT
   );
   CREATE INDEX gw_decisions_appointment ON gw_decisions (appointment_id, id);
   CREATE INDEX gw_decisions_at ON gw_decisions (at);
   CREATE INDEX gw_decisions_before ON gw_decisions (before_ref);
   CREATE INDEX gw_decisions_after ON gw_decisions (after_ref);`,
];

/** Columns read back for a history row joined with its pre-image (both engines). */
export const HISTORY_SELECT = `
  SELECT d.id AS kept_id, d.appointment_id, v.version_id AS version_before, d.version_after,
         d.interaction, d.trace_id, d.ods_code, d.sds_user_id, d.device_id, d.at, v.sha256, v.media_type, v.body, v.key_id, v.nonce,
         v.read_at, v.last_updated
    FROM gw_decisions d JOIN gw_versions v ON v.id = d.before_ref`;

/** At most `?` of the versions no decision points at any more (sqlite's purge, in batches). */
export const ORPHAN_DELETE_SOME = `
  DELETE FROM gw_versions WHERE id IN (SELECT id FROM gw_versions WHERE NOT EXISTS (
    SELECT 1 FROM gw_decisions d WHERE d.before_ref = gw_versions.id OR d.after_ref = gw_versions.id) LIMIT ?)`;

/** Versions no decision points at any more (after a purge of decisions). */
export const ORPHAN_DELETE = `
  DELETE FROM gw_versions WHERE NOT EXISTS (
    SELECT 1 FROM gw_decisions d WHERE d.before_ref = gw_versions.id OR d.after_ref = gw_versions.id)`;
