/**
 * `node dist/scripts/store-cost.js [sqlite|postgres] [concurrency] [seconds]`: the store's own CPU
 * per cancel, in process — lock hold, keep of a 2 KB pre-image, link of the new version, unlock —
 * with no HTTP around it, so a store regression shows apart from the gateway's (issue 18).
 * PostgreSQL runs on a throwaway cluster (root and PostgreSQL 15 needed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { openStore } from '../src/compose.js';
import { pgMissing, startPostgres } from './postgres-cluster.js';

const kind = (process.argv[2] ?? 'sqlite') as 'sqlite' | 'postgres';
const concurrency = Number(process.argv[3] ?? 16);
const seconds = Number(process.argv[4] ?? 4);
const dir = mkdtempSync(join(tmpdir(), 'gw-store-cost-'));
const cluster = kind === 'postgres' ? (pgMissing() ? undefined : await startPostgres()) : undefined;
if (kind === 'postgres' && !cluster) throw new Error(`PostgreSQL unavailable: ${pgMissing()}`);
const store = await openStore({
  kind, path: join(dir, 'store.db'), url: cluster?.url, poolSize: 10, lockPoolSize: 20, timeoutMs: 2000, lockWaitMs: 2000, decryptionKeyFiles: [],
});
const body = Buffer.from(JSON.stringify({ resourceType: 'Appointment', padding: 'x'.repeat(2000) }));
const sha256 = createHash('sha256').update(body).digest('hex');
let n = 0;
async function oneCancel(id: string): Promise<void> {
  await store.lock.hold(id, { waitMs: 2000 }, async () => {
    const kept = await store.vault.keep({
      preImage: { appointmentId: id, versionId: '1', body, mediaType: 'application/fhir+json', sha256, readAt: Date.now(), lastUpdated: '2026-01-01T09:00:00Z' },
      decision: { traceId: 'trace', interaction: 'cancel', requester: { odsCode: 'A1', sdsUserId: 'U1', deviceId: 'D1' } },
    });
    await store.vault.link(kept, { versionId: '2', at: Date.now(), body, mediaType: 'application/fhir+json' });
  });
  n++;
}
async function run(ms: number): Promise<{ n: number; cpuUs: number }> {
  const until = performance.now() + ms;
  const start = n;
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, async (_, w) => {
    for (let i = 0; performance.now() < until; i++) await oneCancel(`w${w}-${i}-${Math.random()}`);
  }));
  const cpu = process.cpuUsage(cpu0);
  return { n: n - start, cpuUs: cpu.user + cpu.system };
}
await run(1000);
const r = await run(seconds * 1000);
console.log(`${kind} c=${concurrency}: ${r.n} cancels in ${seconds} s, ${(r.cpuUs / r.n).toFixed(0)} us CPU per cancel (store work only)`);
await store.close();
cluster?.destroy();
rmSync(dir, { recursive: true, force: true });
