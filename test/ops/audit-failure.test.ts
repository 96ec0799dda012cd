/**
 * Ruling 19, fail closed: while the audit file cannot be written (a full disk, a removed folder),
 * guarded writes are refused (500, nothing forwarded); the failure is logged once, counted, and
 * the file is reopened until a write succeeds again.
 */
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuditSink, type AuditRecord } from '../../src/ops/audit.js';
import { assertOutcome } from '../helpers/assert.js';
import { cancelRequest, seen, startHarness } from '../helpers/harness.js';
import { eventually } from '../reliability/support.js';

const record = (appointmentId: string): AuditRecord => ({ time: '2026-12-07T00:00:00.000Z', appointmentId, outcome: 'rejected', status: 409 });

t.test('a file that cannot be written makes the sink unhealthy; it is reopened, and healthy again once a write succeeds', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'gw-audit-fail-')), 'missing');
  const file = join(dir, 'audit.jsonl');
  let now = 0;
  const failures: string[] = [];
  const writable: boolean[] = [];
  const sink = createAuditSink(file, { now: () => now, reopenMs: 1000, onFailure: (e) => failures.push((e as NodeJS.ErrnoException).code ?? 'error'), onWritable: (w) => writable.push(w) });
  t.teardown(() => sink.close());
  sink.write(record('a-1'));
  t.ok(await eventually(() => sink.healthy?.() === false), 'unhealthy after the failed open');
  t.same(failures, ['ENOENT'], 'the failure reported once');
  mkdirSync(dir);
  sink.write(record('a-2'));
  t.equal(sink.healthy?.(), false, 'not reopened before reopenMs has passed: still unhealthy');
  now += 1000;
  sink.write(record('a-3'));
  t.ok(await eventually(() => sink.healthy?.() === true), 'healthy again once a write succeeded');
  t.ok(existsSync(file));
  t.same(readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as AuditRecord).appointmentId), ['a-3'], 'the record written after the reopen is in the file');
  t.same(writable, [true, false, true], 'the writable gauge followed');
});

t.test('a volume without room for the next records counts as not writable before a write fails (review of stop 35, ruling 19)', async (t) => {
  const { AUDIT_MIN_FREE_BYTES } = await import('../../src/ops/audit.js');
  const file = join(mkdtempSync(join(tmpdir(), 'gw-audit-room-')), 'audit.jsonl');
  let now = 0;
  let free = 10 * AUDIT_MIN_FREE_BYTES;
  const writable: boolean[] = [];
  const sink = createAuditSink(file, { now: () => now, freeBytes: () => free, onWritable: (w) => writable.push(w) });
  t.teardown(() => sink.close());
  t.equal(sink.healthy?.(), true, 'room: healthy');
  free = AUDIT_MIN_FREE_BYTES - 1;
  t.equal(sink.healthy?.(), true, 'checked at most every 100 ms');
  now += 100;
  t.equal(sink.healthy?.(), false, 'the volume filled: guarded writes are refused before anything is forwarded');
  free = AUDIT_MIN_FREE_BYTES;
  now += 100;
  t.equal(sink.healthy?.(), true, 'room again');
  t.same(writable, [true, false, true], 'the writable gauge followed');
  const dev = createAuditSink('/dev/null', { freeBytes: () => 0 });
  t.equal(dev.healthy?.(), true, 'not a regular file: no volume to fill');
  await dev.close();
});

t.test('a destination that is not a file is writable from the start (the gauge is 1: no alert on a default install)', async (t) => {
  for (const d of ['stdout', 'stderr', 'none']) {
    const seen: boolean[] = [];
    const sink = createAuditSink(d, { onWritable: (w) => seen.push(w) });
    t.same(seen, [true], d);
    await sink.close();
  }
  const { adminGet, sample } = await import('../helpers/admin.js');
  let healthy = true;
  const h = await startHarness({ auditHealthy: () => healthy });
  t.teardown(() => h.close());
  t.equal(sample((await adminGet(h, '/metrics')).body, 'cancel_gateway_audit_writable'), 1, 'an injected healthy sink: 1');
  healthy = false;
  t.equal(sample((await adminGet(h, '/metrics')).body, 'cancel_gateway_audit_writable'), 0, 'unhealthy: 0');
});

t.test('/dev/full: the failure is counted and a cancel after it is refused (500), nothing forwarded', { skip: existsSync('/dev/full') ? false : 'no /dev/full on this machine' }, async (t) => {
  const sink = createAuditSink('/dev/full', {});
  t.teardown(() => sink.close());
  sink.write(record('b-1'));
  t.ok(await eventually(() => sink.healthy?.() === false), 'a write to a full device fails: unhealthy');
});

t.test('while the audit cannot be written, a valid cancel is refused with 500 INTERNAL_SERVER_ERROR and never reaches the provider', async (t) => {
  let healthy = false;
  const h = await startHarness({ auditHealthy: () => healthy });
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  const req = await cancelRequest(h, 'nhs-booking', id);
  const before = seen(h.provider, 'PUT', `/Appointment/${id}`);
  const reads = seen(h.provider, 'GET', `/Appointment/${id}`);
  const refused = await h.request(req);
  assertOutcome(t, refused, 500, 'INTERNAL_SERVER_ERROR', { issue: 'exception' });
  t.match(String(refused.json?.issue?.[0]?.diagnostics), /audit trail cannot be written/);
  t.equal(seen(h.provider, 'PUT', `/Appointment/${id}`), before, 'nothing forwarded');
  t.equal(seen(h.provider, 'GET', `/Appointment/${id}`), reads, 'the provider was not even read');
  t.match(h.audit.at(-1), { appointmentId: id, status: 500, code: 'INTERNAL_ERROR' }, 'its record is still attempted');
  healthy = true;
  t.equal((await h.request(req)).status, 200, 'writable again: the cancel goes through');
});
