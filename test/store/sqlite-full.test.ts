/**
 * The sqlite store on a full volume (review of stop 36): every keep fails (500, nothing forwarded),
 * and readiness says so — the store does not answer while its volume has no room after a failed
 * write — then answers again once room is back. Needs a small tmpfs (root and mount); skipped
 * where it cannot be had.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteVault } from '../../src/adapters/vault-sqlite.js';
import { VaultUnavailable } from '../../src/ports/vault.js';
import { ManualClock } from '../../src/ports/clock.js';
import { entry } from '../contracts/vault.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-full-'));
const mnt = join(dir, 'mnt');
mkdirSync(mnt);
let mounted = false;
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt], { stdio: 'ignore' });
  mounted = true;
} catch {
  // not root, or no mount in this sandbox
}
t.teardown(() => {
  if (mounted) execFileSync('umount', ['-l', mnt], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
});

t.test('a full volume: keeps fail, readiness fails, and both recover when room is back', { skip: mounted ? false : 'needs a tmpfs mount (root); not available here' }, async (t) => {
  const clock = new ManualClock(Date.parse('2026-12-08T00:00:00Z'));
  const vault = createSqliteVault({ path: join(mnt, 'vault.sqlite'), timeoutMs: 2000, clock });
  t.teardown(() => vault.close());
  await vault.keep(entry('a1', '1', clock.now()));
  await vault.ping();
  const filler = join(mnt, 'filler');
  try {
    writeFileSync(filler, Buffer.alloc(4 * 1024 * 1024));
  } catch {
    // ENOSPC: the volume is full, as wanted
  }
  let failed = 0;
  for (let i = 0; i < 20 && failed === 0; i++) {
    await vault.keep(entry(`b${i}`, '1', clock.now(), { body: Buffer.alloc(64 * 1024, 65 + (i % 26)) })).catch((e) => {
      t.type(e, VaultUnavailable);
      failed += 1;
    });
  }
  t.equal(failed, 1, 'a keep failed on the full volume');
  await t.rejects(vault.ping(), VaultUnavailable, 'readiness: the store does not answer');
  rmSync(filler, { force: true });
  await vault.ping();
  t.pass('answers again once room is back');
  await vault.keep(entry('c1', '1', clock.now()));
  t.pass('and keeps again');
});
