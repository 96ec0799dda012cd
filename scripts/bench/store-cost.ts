/**
 * Bench child (issue 18 item 7): the gateway-side CPU of the state store per cancel, in-process,
 * without sockets to a provider or the machine's noise between processes. 16 cancels at a time,
 * each: hold the appointment's lock -> (a simulated provider read, 1-5 ms) -> keep the pre-image
 * -> (a simulated provider write, 1-5 ms) -> link the new version. The same loop with the memory
 * lock and no vault is the baseline, subtracted. Measured by getrusage (user + system) of this
 * process; the PostgreSQL server's own CPU is not in it.
 *
 * argv[2]: a PostgreSQL URL (optional). Sends { type: 'store-cost', sqliteUs, postgresUs }.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryLock } from '../../src/adapters/lock-memory.js';
import { createPostgresLock } from '../../src/adapters/lock-postgres.js';
import { createNoVault } from '../../src/adapters/vault-none.js';
import { createPostgresVault } from '../../src/adapters/vault-postgres.js';
import { createSqliteVault } from '../../src/adapters/vault-sqlite.js';
import type { LockPort } from '../../src/ports/lock.js';
import type { VaultPort } from '../../src/ports/vault.js';

export interface StoreCost {
  type: 'store-cost';
  /** Microseconds of CPU per cancel over the baseline; undefined when not measured. */
  sqliteUs?: number;
  postgresUs?: number;
}

const CONCURRENT = 16;
const CANCELS = 3000;
const body = Buffer.from(JSON.stringify({ resourceType: 'Appointment', id: 'x', filler: randomBytes(1200).toString('hex') }));
const sha256 = createHash('sha256').update(body).digest('hex');
const provider = (): Promise<void> => new Promise((r) => setTimeout(r, 1 + Math.random() * 4));

async function cpuPerCancel(lock: LockPort, vault: VaultPort, prefix: string, n: number): Promise<number> {
  let next = 0;
  const one = async (): Promise<void> => {
    const id = `${prefix}-${next++}`;
    await lock.hold(id, { waitMs: 5000 }, async (held) => {
      await provider();
      const kept = await vault.keep({ preImage: { appointmentId: id, versionId: '1', body, mediaType: 'application/fhir+json', sha256, readAt: Date.now() }, decision: { traceId: id, interaction: 'cancel' } }, held);
      await provider();
      await vault.link(kept, { versionId: '2', body, mediaType: 'application/fhir+json', at: Date.now() }, held);
    });
  };
  const before = process.resourceUsage();
  let left = n;
  await Promise.all(Array.from({ length: CONCURRENT }, async () => {
    while (left-- > 0) await one();
  }));
  const after = process.resourceUsage();
  return (after.userCPUTime - before.userCPUTime + after.systemCPUTime - before.systemCPUTime) / n;
}

/** Median over three rounds, after a warm-up, minus the same loop with no store. */
async function measure(lock: LockPort, vault: VaultPort, name: string): Promise<number> {
  const base = { lock: createMemoryLock(), vault: createNoVault() };
  await cpuPerCancel(lock, vault, `${name}-warm`, 500);
  await cpuPerCancel(base.lock, base.vault, 'base-warm', 500);
  const diffs: number[] = [];
  for (let round = 0; round < 3; round++) {
    const withStore = await cpuPerCancel(lock, vault, `${name}-${round}`, CANCELS);
    const without = await cpuPerCancel(base.lock, base.vault, `base-${round}`, CANCELS);
    diffs.push(withStore - without);
  }
  return diffs.sort((a, b) => a - b)[1]!;
}

async function main(): Promise<StoreCost> {
  const out: StoreCost = { type: 'store-cost' };
  const dir = mkdtempSync(join(tmpdir(), 'gw-store-cost-'));
  try {
    const sqlite = createSqliteVault({ path: join(dir, 'vault.db'), timeoutMs: 5000 });
    out.sqliteUs = await measure(createMemoryLock(), sqlite, 'sqlite');
    await sqlite.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const url = process.argv[2];
  if (url) {
    const lock = createPostgresLock({ url, lockPoolSize: 32, timeoutMs: 5000 });
    const vault = await createPostgresVault({ url, poolSize: 32, timeoutMs: 5000 });
    try {
      out.postgresUs = await measure(lock, vault, `pg-${Date.now()}`);
    } finally {
      await lock.close();
      await vault.close();
    }
  }
  return out;
}

main().then(
  (m) => process.send?.(m) ?? console.log(JSON.stringify(m)),
  (e: Error) => process.send?.({ type: 'error', message: e.message }) ?? console.error(e),
).finally(() => process.disconnect?.());
