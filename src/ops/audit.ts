import { createWriteStream, statfsSync, statSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { jsonLine, linesTo } from './line-batch.js';

/** One audit record per request on the cancel route (ruling 19). No patient data, no token. */
export interface AuditRecord {
  time: string;
  traceId?: string;
  requestId?: string;
  appointmentId?: string;
  /** The interaction's Ssp-InteractionID; absent when the request named none of the standard's (ruling 19). */
  interaction?: string;
  outcome: 'forwarded' | 'rejected' | 'error';
  status: number;
  code?: string;
  requester?: { odsCode?: string; sdsUserId?: string; practitionerId?: string; deviceId?: string };
  versionBefore?: string;
  versionAfter?: string;
  differingPaths?: string[];
  /** The provider's answer broke the cancel contract (rulings 12, 26): the reasons, e.g. `other-resource`. */
  breaches?: string[];
  /** The write reached (or may have reached) the provider, whose answer never came whole: it may have been applied. */
  inDoubt?: true;
  wouldReject?: Array<{ family: string; code: string }>;
}

export interface AuditSink {
  write(record: AuditRecord): void;
  /**
   * False while records cannot be written (a file sink after a failed write, until a write
   * succeeds again): guarded writes are then refused (fail closed, ruling 19). Absent: always.
   */
  healthy?(): boolean;
  /** Resolves once every record written so far has reached its destination (absent: nothing is buffered). */
  flushed?(): Promise<void>;
  close(): Promise<void>;
}

/** Issue 13 item 6: no audit record exceeds this many bytes of JSON, whatever the request held. */
export const MAX_AUDIT_RECORD_BYTES = 4096;
const MAX_PATHS = 20;
const EMPTY = Buffer.alloc(0);
const MAX_FIELD = 128;

/** A client-supplied string cut to MAX_FIELD characters (audit fields, and the decision line's `ods`). */
export function clip(v: string | undefined): string | undefined {
  if (v === undefined || v.length <= MAX_FIELD) return v;
  // Never half a surrogate pair: a lone surrogate is valid in JSON text but refused by strict readers.
  const cut = isHighSurrogate(v.charCodeAt(MAX_FIELD - 2)) ? MAX_FIELD - 2 : MAX_FIELD - 1;
  return v.slice(0, cut) + '…';
}

const isHighSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;

/**
 * A record cut to a small fixed size: strings clipped, at most 20 differing paths plus an
 * "and N more" entry, and, should it still be too long, the paths replaced by their count.
 */
export function boundAuditRecord(r: AuditRecord): AuditRecord {
  if (withinBounds(r)) return r; // the usual record: written as it is, no copy (issue 17)
  const out: AuditRecord = { ...r, traceId: clip(r.traceId), requestId: clip(r.requestId), appointmentId: clip(r.appointmentId), interaction: clip(r.interaction), code: clip(r.code), versionBefore: clip(r.versionBefore), versionAfter: clip(r.versionAfter) };
  if (r.requester) out.requester = { odsCode: clip(r.requester.odsCode), sdsUserId: clip(r.requester.sdsUserId), practitionerId: clip(r.requester.practitionerId), deviceId: clip(r.requester.deviceId) };
  if (r.differingPaths) {
    const paths = r.differingPaths.slice(0, MAX_PATHS).map((p) => clip(p)!);
    if (r.differingPaths.length > MAX_PATHS) paths.push(`and ${r.differingPaths.length - MAX_PATHS} more`);
    out.differingPaths = paths;
  }
  if (r.wouldReject && r.wouldReject.length > MAX_PATHS) out.wouldReject = r.wouldReject.slice(0, MAX_PATHS);
  for (const k of Object.keys(out) as Array<keyof AuditRecord>) if (out[k] === undefined) delete out[k];
  if (Buffer.byteLength(JSON.stringify(out)) > MAX_AUDIT_RECORD_BYTES && out.differingPaths) {
    out.differingPaths = [`${r.differingPaths!.length} paths (too long to record)`];
  }
  return out;
}

const long = (v: string | undefined): boolean => v !== undefined && v.length > MAX_FIELD;

/** True when `boundAuditRecord` would change nothing that is written. */
function withinBounds(r: AuditRecord): boolean {
  if (long(r.traceId) || long(r.requestId) || long(r.appointmentId) || long(r.interaction) || long(r.code) || long(r.versionBefore) || long(r.versionAfter)) return false;
  const q = r.requester;
  if (q && (long(q.odsCode) || long(q.sdsUserId) || long(q.practitionerId) || long(q.deviceId))) return false;
  if (r.wouldReject && r.wouldReject.length > MAX_PATHS) return false;
  if (!r.differingPaths) return true;
  if (r.differingPaths.length > MAX_PATHS || r.differingPaths.some(long)) return false;
  // A refusal's record is serialised once, when written: the exact size is needed only when a
  // safe upper bound does not already fit (issue 17).
  return upperBoundBytes(r) <= MAX_AUDIT_RECORD_BYTES || Buffer.byteLength(JSON.stringify(r)) <= MAX_AUDIT_RECORD_BYTES;
}

/** Names, punctuation and the status of a record, generously: every member present. */
const RECORD_FRAME_BYTES = 400;
/** A string's JSON costs at most 6 bytes per UTF-16 unit (`\uXXXX`) plus its quotes and comma. */
const sized = (v: string | undefined): number => (v === undefined ? 0 : 6 * v.length + 3);

/** At least the byte length of `JSON.stringify(r)`, without building it. */
export function upperBoundBytes(r: AuditRecord): number {
  let n = RECORD_FRAME_BYTES + sized(r.time) + sized(r.traceId) + sized(r.requestId) + sized(r.appointmentId) + sized(r.interaction) + sized(r.outcome) + sized(r.code) + sized(r.versionBefore) + sized(r.versionAfter);
  const q = r.requester;
  if (q) n += sized(q.odsCode) + sized(q.sdsUserId) + sized(q.practitionerId) + sized(q.deviceId);
  for (const p of r.differingPaths ?? []) n += sized(p);
  for (const w of r.wouldReject ?? []) n += 30 + sized(w.family) + sized(w.code);
  for (const b of r.breaches ?? []) n += sized(b);
  return n;
}

/** Every record through `boundAuditRecord` before it reaches `sink`. */
export function boundedAuditSink(sink: AuditSink): AuditSink {
  return { write: (r) => sink.write(boundAuditRecord(r)), healthy: () => sink.healthy?.() ?? true, flushed: () => sink.flushed?.() ?? Promise.resolve(), close: () => sink.close() };
}

export interface AuditFileOptions {
  /** Each failed write (a metric counts them). */
  onFailure?: (error: Error) => void;
  /** The sink became writable again, or stopped being (a gauge shows it). */
  onWritable?: (writable: boolean) => void;
  /** Milliseconds between attempts to reopen a failed file (default 1000). */
  reopenMs?: number;
  now?: () => number;
  /** Free bytes on the file's volume (default: statfs); tests inject a full volume. */
  freeBytes?: (dir: string) => number;
}

/**
 * Room for the next records: below this, a regular audit file counts as not writable before a
 * guarded write is forwarded, rather than after its record failed (ruling 19: every forwarded
 * cancel has its record). Records are bounded far below it (boundAuditRecord).
 */
export const AUDIT_MIN_FREE_BYTES = 64 * 1024;
const ROOM_CHECK_MS = 100;

function statfsFree(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/** stdout, stderr, none, or an append-only JSON-lines file. */
export function createAuditSink(destination: string, opts: AuditFileOptions = {}): AuditSink {
  // Only a file can stop taking records: any other destination is writable from the start.
  if (destination === 'none' || destination === 'stdout' || destination === 'stderr') opts.onWritable?.(true);
  if (destination === 'none') return { write() {}, close: async () => {} };
  if (destination === 'stdout' || destination === 'stderr') {
    const out = linesTo(destination === 'stdout' ? process.stdout : process.stderr);
    // `"audit":true` and the record's own members: one serialisation, no merged copy (issue 17).
    return { write: (r) => void out.write(jsonLine('"audit":true', r)), close: async () => {} };
  }
  return createAuditFile(destination, opts);
}

/**
 * The append-only file. A failed write (a full disk, a removed folder) must not crash the gateway:
 * it is reported on stderr once per failure, counted, and the sink is unhealthy — guarded writes
 * are refused — until a write succeeds again; the file is reopened at most once per `reopenMs`
 * (the refusals' own records are the attempts).
 */
function createAuditFile(destination: string, opts: AuditFileOptions): AuditSink {
  const now = opts.now ?? Date.now;
  const reopenMs = opts.reopenMs ?? 1000;
  let failed = false;
  let openedAt = now();
  const setFailed = (v: boolean): void => {
    if (failed === v) return;
    failed = v;
    opts.onWritable?.(!v && room);
  };
  const open = (): WriteStream => {
    const s = createWriteStream(destination, { flags: 'a', mode: 0o640 });
    s.on('error', (e) => {
      opts.onFailure?.(e);
      if (!failed) process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'audit write failed: guarded writes are refused until the audit file can be written', error: e.message }) + '\n');
      setFailed(true);
    });
    return s;
  };
  let stream = open();
  let closed = false;
  opts.onWritable?.(true);
  // Only a regular file's volume can fill up under it (not /dev/null, a pipe or a terminal).
  const regular = (() => {
    try {
      return statSync(destination).isFile();
    } catch {
      return true; // not there yet: created by the first write, on its folder's volume
    }
  })();
  const freeBytes = opts.freeBytes ?? statfsFree;
  let room = true;
  let roomCheckedAt = -Infinity;
  /** Whether the volume has room for the next records, checked at most every ROOM_CHECK_MS. */
  const hasRoom = (): boolean => {
    if (!regular || now() - roomCheckedAt < ROOM_CHECK_MS) return room;
    roomCheckedAt = now();
    let free: number;
    try {
      free = freeBytes(dirname(destination));
    } catch {
      return room; // statfs itself failing says nothing about the volume: the writes will tell
    }
    const had = room;
    room = free >= AUDIT_MIN_FREE_BYTES;
    if (had && !room) process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'the audit volume is full: guarded writes are refused until it has room', freeBytes: free }) + '\n');
    if (had !== room && !failed) opts.onWritable?.(room);
    return room;
  };
  return {
    write: (r) => {
      if (closed) return;
      if (failed && (stream.destroyed || stream.writableEnded) && now() - openedAt >= reopenMs) {
        stream = open();
        openedAt = now();
      }
      if (stream.destroyed || stream.writableEnded) return;
      stream.write(JSON.stringify(r) + '\n', (err) => {
        if (!err) setFailed(false);
      });
    },
    healthy: () => !failed && hasRoom(),
    // Writes reach the file in order: an empty write's callback runs after every earlier one.
    flushed: () => new Promise((resolve) => {
      if (stream.destroyed || stream.writableEnded || failed) resolve();
      else stream.write(EMPTY, () => resolve());
    }),
    close: () => new Promise((resolve) => {
      closed = true;
      if (stream.destroyed) resolve();
      else stream.end(resolve);
    }),
  };
}
