/**
 * Bench child: the load generator. `concurrency` closed-loop workers over one keep-alive
 * https.Agent (maxSockets = concurrency) presenting the client certificate; each request is a
 * cancel PUT of a fresh appointment id with a valid Spine header set and a pre-generated unsigned
 * JWT. After the warm-up it measures a window: completions, latencies, its own CPU
 * (process.cpuUsage), the CPU and resident set of the processes under test (/proc), and how busy
 * the whole machine was, so the reader can tell whether the generator was the bottleneck.
 */
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BASE_PATH, CANCEL_INTERACTION, CONSUMER_ASID, CONTENT_TYPE, EXPECTED_STATUS, PROVIDER_ASID, cancelBody, tokens, type RequestKind } from './fixtures.js';
import { clockTicks, machineTicks, processCpu, processCpuMs, rssKiB } from './procstat.js';

export interface RunRequest {
  type: 'run';
  port: number;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  kind: RequestKind;
  idPrefix: string;
  /** Processes whose CPU and RSS are charged to the scenario (the proxy under test). */
  pids: number[];
  /** Other processes to report (the upstream). */
  otherPids: number[];
}

export interface RunResult {
  type: 'result';
  windowMs: number;
  completed: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Answers other than the expected status (by status; -1 = transport error). */
  unexpected: Record<string, number>;
  targetCpuMs: number;
  /** The kernel's share of targetCpuMs (system time: sockets, TLS record I/O, loopback TCP). */
  targetSysMs: number;
  otherCpuMs: number;
  generatorCpuMs: number;
  /** Busy share of the whole machine during the window, 0..1 (all cores). */
  machineBusy: number;
  /** CPU the machine spent outside the bench's own processes (target, upstream, generator), in cores. */
  foreignCores: number;
  /** Highest sampled resident set of the processes under test (sum), KiB. */
  peakRssKiB: number;
}

const tlsFiles = JSON.parse(process.env.BENCH_TLS ?? '{}') as { ca: string; clientCert: string; clientKey: string };
const ca = readFileSync(tlsFiles.ca);
const cert = readFileSync(tlsFiles.clientCert);
const key = readFileSync(tlsFiles.clientKey);

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

const sumCpu = (pids: number[]) => pids.reduce((a, p) => a + (processCpuMs(p) ?? 0), 0);
const sumSys = (pids: number[]) => pids.reduce((a, p) => a + (processCpu(p)?.system ?? 0), 0);

async function run(r: RunRequest): Promise<RunResult> {
  const pool = tokens(r.kind, 2048);
  const agent = new https.Agent({ keepAlive: true, maxSockets: r.concurrency, maxFreeSockets: r.concurrency, ca, cert, key, servername: 'localhost' });
  const expected = EXPECTED_STATUS[r.kind];
  let seq = 0;
  const once = () =>
    new Promise<number>((resolve) => {
      const id = `${r.idPrefix}-${seq}`;
      const token = pool[seq++ % pool.length]!;
      const body = cancelBody(r.kind, id);
      const req = https.request(
        {
          agent, host: '127.0.0.1', port: r.port, method: 'PUT', path: `${BASE_PATH}/Appointment/${id}`, servername: 'localhost',
          headers: {
            'Ssp-TraceID': randomUUID(), 'Ssp-From': CONSUMER_ASID, 'Ssp-To': PROVIDER_ASID, 'Ssp-InteractionID': CANCEL_INTERACTION.id,
            Authorization: `Bearer ${token}`, 'If-Match': 'W/"1"', 'Content-Type': CONTENT_TYPE[r.kind],
            'Content-Length': Buffer.byteLength(body),
          },
        },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', () => resolve(-1));
        },
      );
      req.on('error', () => resolve(-1));
      req.end(body);
    });

  const latencies: number[] = [];
  const unexpected: Record<string, number> = {};
  let measuring = false;
  let stop = false;
  let peakRss = 0;
  const sampleRss = () => {
    const v = r.pids.reduce((a, p) => a + (rssKiB(p) ?? 0), 0);
    if (v > peakRss) peakRss = v;
  };
  const sampler = setInterval(sampleRss, 100);

  const worker = async () => {
    while (!stop) {
      const s = performance.now();
      const status = await once();
      if (!measuring) continue;
      latencies.push(performance.now() - s);
      if (status !== expected) unexpected[status] = (unexpected[status] ?? 0) + 1;
    }
  };
  const workers = Array.from({ length: r.concurrency }, worker);

  await new Promise((res) => setTimeout(res, r.warmupMs));
  latencies.length = 0;
  const start = { t: performance.now(), sys: sumSys(r.pids), target: sumCpu(r.pids), other: sumCpu(r.otherPids), gen: process.cpuUsage(), machine: machineTicks() };
  measuring = true;
  await new Promise((res) => setTimeout(res, r.durationMs));
  measuring = false;
  const end = { t: performance.now(), sys: sumSys(r.pids), target: sumCpu(r.pids), other: sumCpu(r.otherPids), gen: process.cpuUsage(start.gen), machine: machineTicks() };
  stop = true;
  sampleRss();
  clearInterval(sampler);
  await Promise.all(workers);
  agent.destroy();

  const windowMs = end.t - start.t;
  const generatorCpuMs = (end.gen.user + end.gen.system) / 1000;
  const machineBusyMs = ((end.machine.busy - start.machine.busy) * 1000) / clockTicks();
  const targetCpuMs = end.target - start.target;
  const otherCpuMs = end.other - start.other;
  const sorted = Float64Array.from(latencies).sort();
  return {
    type: 'result',
    windowMs,
    completed: latencies.length,
    rps: (latencies.length * 1000) / windowMs,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    meanMs: latencies.reduce((a, b) => a + b, 0) / (latencies.length || 1),
    unexpected,
    targetCpuMs,
    targetSysMs: end.sys - start.sys,
    otherCpuMs,
    generatorCpuMs,
    machineBusy: (end.machine.busy - start.machine.busy) / Math.max(1, end.machine.total - start.machine.total),
    foreignCores: Math.max(0, machineBusyMs - targetCpuMs - otherCpuMs - generatorCpuMs) / windowMs,
    peakRssKiB: peakRss,
  };
}

process.on('message', (m: RunRequest) => {
  if (m?.type !== 'run') return;
  run(m).then(
    (result) => process.send!(result),
    (e: unknown) => process.send!({ type: 'error', message: String((e as Error)?.stack ?? e) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready' });
