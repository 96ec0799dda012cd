import { createWriteStream, type WriteStream } from 'node:fs';

/** One audit record per request on the cancel route (ruling 19). No patient data, no token. */
export interface AuditRecord {
  time: string;
  traceId?: string;
  requestId?: string;
  appointmentId?: string;
  interaction: string;
  outcome: 'forwarded' | 'rejected' | 'error';
  status: number;
  code?: string;
  requester?: { odsCode?: string; sdsUserId?: string; practitionerId?: string; deviceId?: string };
  versionBefore?: string;
  versionAfter?: string;
  differingPaths?: string[];
  wouldReject?: Array<{ family: string; code: string }>;
}

export interface AuditSink {
  write(record: AuditRecord): void;
  close(): Promise<void>;
}

/** stdout, stderr, none, or an append-only JSON-lines file. */
export function createAuditSink(destination: string): AuditSink {
  if (destination === 'none') return { write() {}, close: async () => {} };
  if (destination === 'stdout' || destination === 'stderr') {
    const out = destination === 'stdout' ? process.stdout : process.stderr;
    return { write: (r) => void out.write(JSON.stringify({ audit: true, ...r }) + '\n'), close: async () => {} };
  }
  const stream: WriteStream = createWriteStream(destination, { flags: 'a', mode: 0o640 });
  // A full disk or a removed folder must not crash the gateway: report it on stderr, keep serving.
  let failed = false;
  stream.on('error', (e) => {
    if (!failed) process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'audit write failed', error: e.message }) + '\n');
    failed = true;
  });
  return {
    write: (r) => {
      if (!stream.destroyed && !stream.writableEnded) stream.write(JSON.stringify(r) + '\n');
    },
    close: () => new Promise((resolve) => stream.end(resolve)),
  };
}
