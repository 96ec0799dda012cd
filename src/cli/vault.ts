import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { Readable } from 'node:stream';
import type { Config } from '../config.js';
import { diffResources } from '../fhir/diff.js';
import { codecFor } from '../edge/negotiate.js';
import { CODECS } from '../compose.js';
import { createAuditSink, type AuditSink } from '../ops/audit.js';
import { systemClock, type Clock } from '../ports/clock.js';
import type { KeptVersion, VaultPort } from '../ports/vault.js';
import type { HeldLock, LockPort } from '../ports/lock.js';
import { openStore } from '../store/open.js';
import { createRestoreProvider, type ProviderReply, type RestoreProvider } from './restore-provider.js';
import { providerEtagVersion } from '../http/entity-tag.js';

/**
 * The operator's `vault` commands (issue 18 item 4), on the gateway's configuration file:
 *   vault history <id>                      what is kept for an appointment, oldest first
 *   vault show <id> <vid>                   the kept bytes of one version, on stdout
 *   vault export                            every kept entry as JSON lines (body in base64)
 *   vault purge --older-than <days>         delete entries kept before then
 *   vault restore <id> --to <vid> [--yes] [--from-asid A] [--token-file F]
 * Exit 0 on success, 1 on a failure or refusal, 2 on a usage error.
 */
export interface VaultIo {
  stdout: { write(s: string | Uint8Array): unknown };
  stderr: { write(s: string): unknown };
  stdin: Readable;
  provider?: RestoreProvider;
  clock?: Clock;
  audit?: AuditSink;
}

export const VAULT_USAGE = `usage:
  cancel-gateway vault history <id> --config FILE
  cancel-gateway vault show <id> <vid> --config FILE
  cancel-gateway vault export --config FILE
  cancel-gateway vault purge --older-than <days> --config FILE
  cancel-gateway vault restore <id> --to <vid> [--yes] [--from-asid ASID] [--token-file FILE] --config FILE`;

const DAY = 86_400_000;

class Refused extends Error {}

export async function runVaultCommand(argv: string[], config: Readonly<Config>, io: VaultIo): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (e) {
    io.stderr.write(`${(e as Error).message}\n${VAULT_USAGE}\n`);
    return 2;
  }
  if (config.store.kind === 'memory') {
    io.stderr.write('store.kind is memory: no versions are kept (configure sqlite or postgres)\n');
    return 1;
  }
  let store;
  try {
    // Only a restore writes to the provider: it takes the appointment's lock like a cancel (shared
    // with the replicas under postgres), so it never races a cancel in flight.
    store = await openStore(config.store, { lock: args.command === 'restore', existing: true });
  } catch (e) {
    io.stderr.write(`cannot open the store: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    return await dispatch(args, store.vault, store.lock, config, io);
  } catch (e) {
    io.stderr.write(`${e instanceof Refused ? '' : 'failed: '}${(e as Error).message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      to: { type: 'string' },
      yes: { type: 'boolean', short: 'y' },
      'older-than': { type: 'string' },
      'from-asid': { type: 'string' },
      'token-file': { type: 'string' },
      config: { type: 'string', short: 'c' },
    },
    allowPositionals: true,
  });
  const [command, ...rest] = positionals;
  const need = (n: number) => {
    if (rest.length !== n) throw new Error(`vault ${command ?? ''}: expected ${n} argument(s)`);
  };
  switch (command) {
    case 'history': need(1); break;
    case 'show': need(2); break;
    case 'export': need(0); break;
    case 'purge':
      need(0);
      // At least a day, as store.retentionDays: 0 would delete the pre-images of cancels in flight.
      if (!values['older-than'] || !/^[1-9]\d*$/.test(values['older-than'])) throw new Error('vault purge: --older-than <days> (a whole number, at least 1) is required');
      break;
    case 'restore':
      need(1);
      if (!values.to) throw new Error('vault restore: --to <vid> is required');
      break;
    default:
      throw new Error(`unknown vault command ${JSON.stringify(command ?? '')}`);
  }
  return { command: command!, rest, values };
}

async function dispatch(a: ReturnType<typeof parse>, vault: VaultPort, lock: LockPort, config: Readonly<Config>, io: VaultIo): Promise<number> {
  const clock = io.clock ?? systemClock;
  switch (a.command) {
    case 'history': {
      const rows = await vault.history(a.rest[0]!);
      if (rows.length === 0) io.stderr.write('nothing kept for this appointment\n');
      for (const r of rows) {
        io.stdout.write(`${r.keptId}\t${new Date(r.at).toISOString()}\t${r.interaction}\t${r.versionBefore} -> ${r.versionAfter ?? '?'}\t${r.traceId ?? '-'}\tsha256:${r.sha256.slice(0, 12)}\n`);
      }
      return 0;
    }
    case 'show': {
      const v = await vault.version(a.rest[0]!, a.rest[1]!);
      if (!v) throw new Refused('no such version kept');
      io.stdout.write(v.body);
      return 0;
    }
    case 'export': {
      // A logical copy: each decision with its pre-image and, once linked and kept, the new version.
      for await (const r of vault.all()) {
        const { preImage, ...row } = r;
        const next = row.versionAfter === undefined ? undefined : await vault.version(row.appointmentId, row.versionAfter);
        const after = next && { versionId: next.versionId, mediaType: next.mediaType, lastUpdated: next.lastUpdated, sha256: next.sha256, bodyBase64: next.body.toString('base64') };
        io.stdout.write(JSON.stringify({ ...row, mediaType: preImage.mediaType, readAt: preImage.readAt, lastUpdated: preImage.lastUpdated, bodyBase64: preImage.body.toString('base64'), after }) + '\n');
      }
      return 0;
    }
    case 'purge': {
      const days = Number(a.values['older-than']);
      const n = await vault.purge(clock.now() - days * DAY);
      io.stdout.write(`purged ${n} kept entr${n === 1 ? 'y' : 'ies'} older than ${days} day(s)\n`);
      return 0;
    }
    default:
      return restore(a.rest[0]!, a.values.to!, a.values, { vault, lock }, config, io);
  }
}

/** The version a provider answer carries: ETag (W/"v" or "v"), else meta.versionId. */
/**
 * The version a provider answer names, read as the gateway reads it (ruling 8): the `ETag` first —
 * `W/"5"`, `"5"` or a bare `5` — else `meta.versionId`. `null` when the `ETag` names no version
 * (`*`, `W/""`): the gateway refuses to be overruled by the body then, and so does the restore.
 */
export function versionOf(r: ProviderReply): string | null | undefined {
  const tagged = providerEtagVersion(r.headers.etag as string | string[] | undefined);
  if (tagged !== undefined) return tagged;
  const v = (resourceOf(r.body, r.headers['content-type']) as { meta?: { versionId?: unknown } } | undefined)?.meta?.versionId;
  return typeof v === 'string' ? v : undefined;
}

/** Whether a provider answer's body is the Appointment `id`, read by its Content-Type (JSON or XML). */
function namesThisAppointment(r: ProviderReply, id: string): boolean {
  const res = resourceOf(r.body, r.headers['content-type']);
  return res !== undefined && res['resourceType'] === 'Appointment' && res['id'] === id;
}

/** Whether a provider answer's body is readable as a resource that is not the Appointment `id` (an empty or unreadable body is not). */
function namesAnotherResource(r: ProviderReply, id: string): boolean {
  const res = resourceOf(r.body, r.headers['content-type']);
  return res !== undefined && (res['resourceType'] !== 'Appointment' || res['id'] !== id);
}

/** A body as a resource, read by its media type (FHIR JSON or XML), or undefined when it is neither. */
function resourceOf(b: Buffer, mediaType: unknown): Record<string, unknown> | undefined {
  if (b.length === 0) return undefined;
  const d = codecFor(typeof mediaType === 'string' ? mediaType : undefined, CODECS).decode(b, { maxDepth: 64, maxNodes: 200_000 });
  return d.ok ? d.resource : undefined;
}

/** `{ lastUpdated }` when the body carries meta.lastUpdated, else nothing (the body decoded once). */
function optionalLastUpdated(b: Buffer, mediaType: unknown): { lastUpdated?: string } {
  const v = lastUpdatedOf(b, mediaType);
  return v === undefined ? {} : { lastUpdated: v };
}

function lastUpdatedOf(b: Buffer, mediaType: unknown): string | undefined {
  const v = (resourceOf(b, mediaType) as { meta?: { lastUpdated?: unknown } } | undefined)?.meta?.lastUpdated;
  return typeof v === 'string' ? v : undefined;
}

async function confirm(io: VaultIo, question: string): Promise<boolean> {
  io.stderr.write(question);
  const rl = createInterface({ input: io.stdin, terminal: false });
  try {
    for await (const line of rl) return /^(y|yes)$/i.test(line.trim());
    return false;
  } finally {
    rl.close();
  }
}

/**
 * An operator's undo (issue 18 item 4): the kept version is written back over the provider's
 * current one, with the current version as If-Match (a change in between gets the provider's
 * 409, nothing overwritten). This bypasses the cancel-only rule on purpose, so it shows what will
 * change (element paths only, never values), asks, and is recorded like a cancel: the current
 * version is kept as a pre-image (interaction `restore`) before the write, linked after it, and
 * audited. The write happens under the appointment's lock (rulings 10 and 23), after reading the
 * current version again: if it moved since the operator confirmed, nothing is written.
 */
async function restore(id: string, vid: string, values: Record<string, string | boolean | undefined>, store: { vault: VaultPort; lock: LockPort }, config: Readonly<Config>, io: VaultIo): Promise<number> {
  const stored = await store.vault.version(id, vid);
  if (!stored) throw new Refused('no such version kept');
  const tokenFile = values['token-file'];
  const provider = io.provider ?? createRestoreProvider(config, {
    ...(typeof values['from-asid'] === 'string' ? { fromAsid: values['from-asid'] } : {}),
    ...(typeof tokenFile === 'string' ? { token: readFileSync(tokenFile, 'utf8').trim() } : {}),
  });
  const current = await currentOf(provider, id);
  if (current.version === vid) {
    io.stdout.write(`version ${vid} is already the current one; nothing to do\n`);
    return 0;
  }
  showDiff(io, id, current.version, stored, current.reply);
  if (values.yes !== true && !(await confirm(io, `write version ${vid} back over version ${current.version}? [y/N] `))) {
    io.stderr.write('not confirmed; nothing restored\n');
    return 1;
  }
  const waitMs = config.store.lockWaitMs ?? 30_000;
  return store.lock.hold(id, { waitMs }, async (held) => {
    const now = await currentOf(provider, id);
    if (now.version !== current.version) throw new Refused(`the appointment changed meanwhile (version ${now.version}, not ${current.version}); nothing restored: run it again`);
    return writeBack(id, vid, stored, now, provider, store.vault, held, config, io);
  });
}

/** The provider's current appointment and its version, or Refused. */
async function currentOf(provider: RestoreProvider, id: string): Promise<{ reply: ProviderReply; version: string }> {
  const reply = await provider.read(id);
  if (reply.status !== 200) throw new Refused(`the provider answered ${reply.status} to the read of the current appointment; nothing restored`);
  if (!namesThisAppointment(reply, id)) throw new Refused('the provider\'s read is not this Appointment (another resource, or unreadable); nothing restored');
  const version = versionOf(reply);
  if (version === null) throw new Refused('the provider\'s ETag for the current appointment names no version; nothing restored');
  if (!version) throw new Refused('the provider gave no version (ETag or meta.versionId) for the current appointment; nothing restored');
  return { reply, version };
}

/** Under the lock: keep the current version, write the kept one back, record and link. */
async function writeBack(id: string, vid: string, stored: KeptVersion, current: { reply: ProviderReply; version: string }, provider: RestoreProvider, vault: VaultPort, held: HeldLock, config: Readonly<Config>, io: VaultIo): Promise<number> {
  const clock = io.clock ?? systemClock;
  const currentVersion = current.version;
  const body0 = current.reply.body;
  const traceId = randomUUID();
  const keptId = await vault.keep({
    preImage: {
      appointmentId: id, versionId: currentVersion, body: body0,
      mediaType: String(current.reply.headers['content-type'] ?? 'application/fhir+json'),
      sha256: createHash('sha256').update(body0).digest('hex'), readAt: clock.now(),
      ...optionalLastUpdated(body0, current.reply.headers['content-type']),
    },
    decision: { traceId, interaction: 'restore', requester: { deviceId: 'cancel-gateway-vault-cli' } },
  }, held);
  let answer;
  try {
    answer = await provider.write(id, stored.body, { contentType: stored.mediaType, ifMatch: `W/"${currentVersion}"` });
  } catch (e) {
    // Never sent (refused, unresolvable): nothing changed — audited as an error, not in doubt.
    if ((e as { mayHaveApplied?: boolean }).mayHaveApplied === false) {
      await record(io, config, { traceId, id, status: 0, before: currentVersion, after: undefined, ok: false });
      throw new Refused(`the provider could not be reached (${(e as Error).message.split('\n')[0]}); nothing was written`);
    }
    // The write may or may not have reached the provider: audited as an error (status 0), and said so.
    await record(io, config, { traceId, id, status: 0, before: currentVersion, after: undefined, ok: false, inDoubt: true });
    await holdThroughDoubt(config, io);
    throw new Refused(`the provider exchange failed (${(e as Error).message.split('\n')[0]}); the restore may or may not have been applied: read the appointment before running it again`);
  }
  // Any 2xx is the provider's acceptance (a 201 or a 204 too): it is reported as done — unless its
  // body is another resource. That, and a redirect, is what the gateway calls "may have been
  // applied" on its own PUT (README): said so, and held through like a lost exchange.
  const accepted = answer.status >= 200 && answer.status < 300;
  if ((accepted && namesAnotherResource(answer, id)) || (answer.status >= 300 && answer.status < 400)) {
    await record(io, config, { traceId, id, status: answer.status, before: currentVersion, after: undefined, ok: false, inDoubt: true });
    await holdThroughDoubt(config, io);
    throw new Refused(`the provider answered ${answer.status} ${accepted ? 'with another resource' : '(a redirect)'}; the restore may or may not have been applied: read the appointment before running it again`);
  }
  const newVersion = accepted ? versionOf(answer) ?? undefined : undefined;
  await record(io, config, { traceId, id, status: answer.status, before: currentVersion, after: newVersion, ok: accepted });
  if (!accepted) {
    io.stderr.write(`the provider answered ${answer.status}; nothing restored${answer.status === 409 ? ' (the appointment changed meanwhile: run it again)' : ''}\n`);
    return 1;
  }
  if (newVersion) {
    // After the provider's success: a failure to link is reported, never turned into a failure.
    // The answer's bytes are kept only when they are this Appointment (not an empty 204, not a page).
    const body = namesThisAppointment(answer, id) ? answer.body : undefined;
    await vault.link(keptId, { versionId: newVersion, body, mediaType: String(answer.headers['content-type'] ?? stored.mediaType), at: clock.now(), ...optionalLastUpdated(answer.body, answer.headers['content-type']) }, held)
      .catch((e: Error) => io.stderr.write(`warning: restored, but the vault could not link the new version: ${e.message}\n`));
  }
  io.stdout.write(`restored: appointment ${id} now holds the content of version ${vid} as version ${newVersion ?? '(not given by the provider)'}\n`);
  return 0;
}

/**
 * Rulings 10 and 23, as the gateway's cancels keep them: a write in doubt keeps the appointment
 * locked for upstream.inDoubtHoldMs, so that no replica's cancel overtakes a provider still applying
 * the restore. Only the postgres lock is shared with the gateway (under sqlite the command's lock
 * is its own: restores are run with the gateway stopped, docs/store.md).
 */
async function holdThroughDoubt(config: Readonly<Config>, io: VaultIo): Promise<void> {
  if (config.store.kind !== 'postgres') return;
  const holdMs = config.upstream.inDoubtHoldMs ?? config.upstream.timeoutMs;
  io.stderr.write(`the write is in doubt: holding the appointment's lock for ${holdMs} ms (upstream.inDoubtHoldMs) so that no cancel overtakes it\n`);
  await new Promise<void>((done) => (io.clock ?? systemClock).setTimer(done, holdMs));
}

function showDiff(io: VaultIo, id: string, currentVersion: string, stored: KeptVersion, current: ProviderReply): void {
  io.stdout.write(`Appointment/${id}: current version ${currentVersion}; kept version ${stored.versionId} read ${new Date(stored.readAt).toISOString()}\n`);
  // Either may be JSON or XML (the provider's format when each was read): compared as resources.
  const before = resourceOf(current.body, current.headers['content-type']);
  const after = resourceOf(stored.body, stored.mediaType);
  if (before === undefined || after === undefined) {
    io.stdout.write(stored.body.equals(current.body) ? 'the bytes are identical\n' : 'not a FHIR JSON or XML resource: the bytes differ (no element diff)\n');
    return;
  }
  const diffs = diffResources(before, after, { maxDifferences: 50 }).filter((d) => !/^[A-Za-z]+\.meta\.(versionId|lastUpdated)$/.test(d.path));
  io.stdout.write(diffs.length ? `writing it back changes ${diffs.length} element(s):\n` : 'no element differs apart from meta\n');
  for (const d of diffs) io.stdout.write(`  ${d.kind.padEnd(7)} ${d.path}\n`);
}

async function record(io: VaultIo, config: Readonly<Config>, r: { traceId: string; id: string; status: number; before: string; after: string | undefined; ok: boolean; inDoubt?: true }): Promise<void> {
  const sink = io.audit ?? createAuditSink(config.audit.destination);
  sink.write({
    time: new Date((io.clock ?? systemClock).now()).toISOString(),
    traceId: r.traceId,
    appointmentId: r.id,
    interaction: 'restore',
    outcome: r.ok ? 'forwarded' : 'error',
    status: r.status,
    requester: { deviceId: 'cancel-gateway-vault-cli' },
    versionBefore: r.before,
    ...(r.after ? { versionAfter: r.after } : {}),
    // As the gateway's own records say it (README, Audit trail): the write may have been applied.
    ...(r.inDoubt ? { inDoubt: true as const } : {}),
  });
  if (!io.audit) await sink.close();
}
