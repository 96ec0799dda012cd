import type { HeldLock } from './lock.js';

/**
 * The kept versions (ruling 22): before a write is forwarded, the provider's current version as
 * read (the pre-image) and the decision are durably kept; after the provider's 200 the new version
 * is linked to it. Providers that keep no history can then always be restored.
 *
 * Contract (test/contracts/vault.contract.ts runs it against every adapter):
 * - `keep(entry)` resolves only once the entry is durable (committed); it returns the entry's id.
 *   A failure or a store slower than its timeout rejects with `VaultUnavailable`; the caller then
 *   forwards nothing (fail closed). Keeping the same (appointmentId, version) twice keeps both
 *   decisions but one copy of the version.
 * - `link(keptId, after)` records the provider's new version for a kept entry. It may fail (it is
 *   after the provider accepted the write); callers log and count, never fail the client.
 * - Both take, optionally, the `HeldLock` of the appointment's lock (src/ports/lock.ts). A vault
 *   of the same store may write on the lock's session instead of its own connection; `link` may
 *   then also release the lock in the same round trip (the provider's side of the write is over
 *   when it is called). Other vaults ignore it; the result is the same either way.
 * - `version(id, vid)` returns the stored bytes of that version (a pre-image, or a linked new
 *   version when its bytes were given), or undefined.
 * - `history(id)` lists what is known of an appointment, oldest first.
 * - `ping()` resolves when the store answers; `close()` ends connections.
 * - Bodies are sealed at rest when the adapter was given an encryption key (AES-256-GCM, key id
 *   per row); reading needs the key of that id.
 */
export interface KeptVersion {
  appointmentId: string;
  versionId: string;
  /** The bytes as the provider served them. */
  body: Buffer;
  mediaType: string;
  /** sha256 of body, hex. */
  sha256: string;
  /** When the gateway read it (ms since epoch). */
  readAt: number;
  /** The provider's meta.lastUpdated, when known. */
  lastUpdated?: string;
}

export interface Decision {
  traceId?: string;
  requester?: { odsCode?: string; sdsUserId?: string; deviceId?: string };
  /** The interaction name: cancel, amend, restore. */
  interaction: string;
}

export interface KeepEntry {
  preImage: KeptVersion;
  decision: Decision;
}

export interface LinkAfter {
  versionId: string;
  lastUpdated?: string;
  /** The provider's answer body, when it returned the new version. */
  body?: Buffer;
  mediaType?: string;
  at: number;
}

export interface HistoryRow {
  keptId: string;
  appointmentId: string;
  /** The version that was current before the write (the pre-image). */
  versionBefore: string;
  /** The version the provider assigned, once linked. */
  versionAfter?: string;
  interaction: string;
  traceId?: string;
  /** Who asked for the change, as kept with the decision. */
  requester?: { odsCode?: string; sdsUserId?: string; deviceId?: string };
  at: number;
  sha256: string;
}

export interface VaultPort {
  keep(entry: KeepEntry, held?: HeldLock): Promise<string>;
  link(keptId: string, after: LinkAfter, held?: HeldLock): Promise<void>;
  version(appointmentId: string, versionId: string): Promise<KeptVersion | undefined>;
  history(appointmentId: string): Promise<HistoryRow[]>;
  /** Every row, oldest first (export). */
  all(): AsyncIterable<HistoryRow & { preImage: KeptVersion }>;
  /** Delete entries kept before `beforeMs`; returns how many went. */
  purge(beforeMs: number): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class VaultUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VaultUnavailable';
  }
}
