/**
 * The sqlite purge runs in batches with the event loop free between them (review of stop 36: a
 * backlog of 400k expired rows held every request for 1.8 s): every expired decision and every
 * version nothing points at any more goes, nothing newer does, and timers run during the purge.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteVault } from '../../src/adapters/vault-sqlite.js';
import { ManualClock } from '../../src/ports/clock.js';
import { entry } from '../contracts/vault.contract.js';

t.test('a purge of a backlog larger than one batch', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-purge-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
  const vault = createSqliteVault({ path: join(dir, 'vault.sqlite'), timeoutMs: 5000, clock });
  t.teardown(() => vault.close());
  const old = 4500; // over two batches
  for (let i = 0; i < old; i += 500) await Promise.all(Array.from({ length: 500 }, (_, k) => vault.keep(entry(`old-${i + k}`, '1', clock.now()))));
  clock.advance(10 * 86_400_000);
  await vault.keep(entry('new-1', '1', clock.now()));
  let ticks = 0;
  const timer = setInterval(() => (ticks += 1), 0);
  const gone = await vault.purge(clock.now() - 86_400_000);
  clearInterval(timer);
  t.equal(gone, old, 'every expired decision');
  t.ok(ticks > 0, 'timers ran while it purged (the loop was not held)');
  const rows = [];
  for await (const r of vault.all()) rows.push(r);
  t.same(rows.map((r) => r.appointmentId), ['new-1'], 'only the newer decision and its version are left');
  t.equal((await vault.history('old-1')).length, 0);
  t.equal(await vault.version('old-1', '1'), undefined, 'its version went with it');
});
