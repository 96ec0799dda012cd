/**
 * Bench child: the CPU of each check of a valid cancel, measured in-process on the gateway's own
 * check plan (src/checks/index.ts), with an in-memory provider read and no sockets. Each call is
 * bracketed by process.cpuUsage() (getrusage: CPU time of every thread, so GC helpers count and
 * time spent preempted does not), which is what the "validation CPU <= 150 us" target asks;
 * the gateway's histogram under load measures wall time instead, inflated by whatever else the
 * two cores run in between.
 */
import { randomUUID } from 'node:crypto';
import { createCheckPlan } from '../../src/checks/index.js';
import { buildConfig } from '../../src/config.js';
import { createContext } from '../../src/context.js';
import { createRouter } from '../../src/route.js';
import { jsonCodec } from '../../src/adapters/codec-json.js';
import { createMemoryLock } from '../../src/adapters/lock-memory.js';
import { createNoVault } from '../../src/adapters/vault-none.js';
import { createWriteTransaction } from '../../src/cancel/transaction.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { systemClock } from '../../src/ports/clock.js';
import type { ProviderPort } from '../../src/ports/provider.js';
import { STANDARDS } from '../../src/standards/index.js';
import { CANCEL_INTERACTION, CONSUMER_ASID, PROVIDER_ASID, cancelBody, storedBody, tokens } from './fixtures.js';

export interface StageCpu {
  iterations: number;
  /** Mean CPU microseconds per call, by stage. */
  cpuUs: Record<string, number>;
  /** Median wall microseconds per call, by stage. */
  medianWallUs: Record<string, number>;
}

export async function measureStages(iterations: number, warmup: number): Promise<StageCpu> {
  const config = buildConfig(
    {
      standard: 'nhs-booking', basePath: '/STU3/1', publicBaseUrl: 'https://gateway.bench.nhs.uk/STU3/1',
      tls: { cert: 'unused', key: 'unused', clientCa: 'unused' }, upstream: { url: 'http://127.0.0.1:9' },
      spine: { providerAsids: [PROVIDER_ASID] },
    },
    { checkFiles: false },
  );
  const standard = STANDARDS['nhs-booking'];
  const stored = new Map<string, Buffer>();
  // The provider half runs as one stage ("transaction") on in-memory adapters: what is left of
  // a cancel's CPU once sockets are taken away.
  const provider: ProviderPort = {
    read: async (path) => ({ status: 200, headers: { etag: 'W/"1"', 'content-type': 'application/fhir+json' }, body: stored.get(path)!, ms: 0 }),
    write: async (_path, body) => ({ status: 200, headers: { etag: 'W/"2"', 'content-type': 'application/fhir+json' }, body, ms: 0 }),
    ping: async () => {},
    close: async () => {},
  };
  const logger = createLogger('silent');
  const metrics = createMetrics();
  const transaction = createWriteTransaction({
    provider, lock: createMemoryLock({ clock: systemClock }), vault: createNoVault(), clock: systemClock, codecs: [jsonCodec],
    changeSets: standard.changeSets, logger, metrics, publicBaseUrl: config.publicBaseUrl, report: config.report,
    timeouts: { upstreamMs: 1000, bodyMs: 1000, lockWaitMs: 1000, maxAnswerBytes: 1 << 20 },
  });
  const plan = createCheckPlan(config, standard, { clock: systemClock, codecs: [jsonCodec] });
  const router = createRouter(standard, { amend: false });
  const checks = [...plan.identity, ...plan.beforeProvider];
  const pool = tokens('valid', 256);
  const stages = [...checks.map((c) => c.name), 'transaction'];
  const cpu: Record<string, number> = Object.fromEntries(stages.map((n) => [n, 0]));
  const wall: Record<string, number[]> = Object.fromEntries(stages.map((n) => [n, []]));
  for (let k = 0; k < warmup + iterations; k++) {
    const id = `stage-${k}`;
    stored.set(`Appointment/${id}`, Buffer.from(storedBody(id)));
    const body = Buffer.from(cancelBody('valid', id));
    const headers = {
      host: 'gateway.bench.nhs.uk', 'ssp-traceid': randomUUID(), 'ssp-from': CONSUMER_ASID, 'ssp-to': PROVIDER_ASID, 'ssp-interactionid': CANCEL_INTERACTION.id,
      authorization: `Bearer ${pool[k % pool.length]}`, 'if-match': 'W/"1"', 'content-type': 'application/fhir+json; charset=utf-8',
    };
    const route = router('PUT', `/Appointment/${id}`);
    if (!route.ok) throw new Error('bench route did not match');
    const ctx = createContext({ method: 'PUT', path: `/Appointment/${id}`, headers }, route.candidates, route.id);
    const io = { readBody: async () => body };
    for (const check of checks) {
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      const pending = check.run(ctx, io);
      if (pending) await pending;
      const w = performance.now() - w0;
      const c = process.cpuUsage(c0);
      if (k >= warmup) {
        cpu[check.name]! += c.user + c.system;
        wall[check.name]!.push(w * 1000);
      }
    }
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    await transaction.run({
      id, kind: 'cancel', ifMatch: ctx.ifMatchVersion, submitted: ctx.resource, body, readHeaders: {}, writeHeaders: {}, preferMinimal: false,
      decision: { interaction: 'cancel' },
    }, { wouldReject: [] });
    const w = performance.now() - w0;
    const c = process.cpuUsage(c0);
    if (k >= warmup) {
      cpu.transaction! += c.user + c.system;
      wall.transaction!.push(w * 1000);
    }
    stored.delete(`Appointment/${id}`);
  }
  const medianWallUs: Record<string, number> = {};
  for (const [name, xs] of Object.entries(wall)) {
    xs.sort((a, b) => a - b);
    medianWallUs[name] = xs[Math.floor(xs.length / 2)] ?? NaN;
  }
  const cpuUs = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / iterations]));
  return { iterations, cpuUs, medianWallUs };
}

if (process.send) {
  measureStages(Number(process.env.BENCH_STAGE_ITERATIONS ?? 20000), Number(process.env.BENCH_STAGE_WARMUP ?? 5000)).then(
    (r) => process.send!({ type: 'stages', ...r }, () => process.exit(0)),
    (e: unknown) => process.send!({ type: 'error', message: String((e as Error)?.stack ?? e) }, () => process.exit(1)),
  );
}
