import type { HistoryRow, KeptVersion } from '../ports/vault.js';
import type { Sealer } from './seal.js';

/** A history row as both engines return it (sqlite: numbers, postgres: bigints as strings). */
export interface HistoryDbRow {
  kept_id: number | string;
  appointment_id: string;
  version_before: string;
  version_after: string | null;
  interaction: string;
  trace_id: string | null;
  ods_code?: string | null;
  sds_user_id?: string | null;
  device_id?: string | null;
  at: number | string;
  sha256: string;
  media_type: string;
  body: Buffer;
  key_id: string | null;
  nonce: Buffer | null;
  read_at: number | string;
  last_updated: string | null;
}

export interface VersionDbRow {
  appointment_id: string;
  version_id: string;
  sha256: string;
  media_type: string;
  body: Buffer;
  key_id: string | null;
  nonce: Buffer | null;
  read_at: number | string;
  last_updated: string | null;
}

export function toHistory(r: HistoryDbRow): HistoryRow {
  const row: HistoryRow = {
    keptId: String(r.kept_id),
    appointmentId: r.appointment_id,
    versionBefore: r.version_before,
    interaction: r.interaction,
    at: Number(r.at),
    sha256: r.sha256,
  };
  if (r.version_after !== null) row.versionAfter = r.version_after;
  if (r.trace_id !== null) row.traceId = r.trace_id;
  if (r.ods_code || r.sds_user_id || r.device_id) {
    row.requester = {};
    if (r.ods_code) row.requester.odsCode = r.ods_code;
    if (r.sds_user_id) row.requester.sdsUserId = r.sds_user_id;
    if (r.device_id) row.requester.deviceId = r.device_id;
  }
  return row;
}

export function toKept(r: VersionDbRow, sealer: Sealer): KeptVersion {
  const body = sealer.open({ data: r.body, keyId: r.key_id, nonce: r.nonce }, r.appointment_id, r.version_id);
  const v: KeptVersion = {
    appointmentId: r.appointment_id,
    versionId: r.version_id,
    body,
    mediaType: r.media_type,
    sha256: r.sha256,
    readAt: Number(r.read_at),
  };
  if (r.last_updated !== null) v.lastUpdated = r.last_updated;
  return v;
}

export function historyWithPreImage(r: HistoryDbRow, sealer: Sealer): HistoryRow & { preImage: KeptVersion } {
  return {
    ...toHistory(r),
    preImage: toKept({ ...r, version_id: r.version_before }, sealer),
  };
}
