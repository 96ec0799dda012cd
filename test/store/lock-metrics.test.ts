/**
 * Issue 18 item 5: a cancel refused because the appointment lock was not free in time is counted
 * once in cancel_gateway_store_errors_total{kind="lock-timeout"} (the lock adapters and the
 * transaction both counted it), and its wait — the in-process queue included — is in
 * cancel_gateway_lock_wait_seconds.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cancelRequest, seen, startHarness } from '../helpers/harness.js';
import { adminGet, sample } from '../helpers/admin.js';
import { eventually } from '../reliability/support.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-lock-metrics-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

for (const kind of ['memory', 'sqlite'] as const) {
  t.test(`${kind}: one lock timeout, counted once`, async (t) => {
    const store = kind === 'sqlite' ? { kind, path: join(dir, 'lock.db'), lockWaitMs: 200 } : { kind, lockWaitMs: 200 };
    const h = await startHarness({ config: { upstream: { timeoutMs: 5000 }, store } });
    t.teardown(() => h.close());
    const id = h.provider.store.ids()[0]!;
    const req = await cancelRequest(h, 'nhs-booking', id);
    const release = h.provider.fault('slow', { method: 'PUT', delayMs: 1500 });
    const first = h.request(req);
    t.ok(await eventually(() => seen(h.provider, 'PUT', `/Appointment/${id}`) === 1), 'the first cancel is at the provider, holding the lock');
    const second = await h.request(req);
    t.equal(second.status, 500, 'the second could not take the lock in time');
    release();
    t.equal((await first).status, 200, 'the first went through');
    t.equal(seen(h.provider, 'PUT', `/Appointment/${id}`), 1, 'one PUT');
    const m = (await adminGet(h, '/metrics')).body;
    t.equal(sample(m, 'cancel_gateway_store_errors_total', { kind: 'lock-timeout' }), 1, 'counted once');
    t.equal(sample(m, 'cancel_gateway_lock_wait_seconds_count'), 2, 'both waits are measured, the one that timed out too');
    t.ok((sample(m, 'cancel_gateway_lock_wait_seconds_sum') ?? 0) >= 0.19, 'with its 200 ms');
  });
}
