/**
 * `npm run bench` (issue 6): the gateway measured against the least any validating proxy must do.
 *
 * One run, loopback only, every party in its own process so each one's CPU is its own:
 *   upstream   a fast upstream answering any appointment id (./upstream.ts)
 *   A          clients straight to the upstream (its mTLS port)
 *   B          a minimal mTLS pass-through proxy (http-proxy-3, the gateway's TLS settings)
 *   C          B + one upstream GET + two JSON parses per request (the least any validating proxy does)
 *   D          the gateway (node dist/src/main.js --config), valid cancels of distinct appointments
 *              (store.kind memory: no vault)
 *   DX         D with the cancel body in FHIR XML (issue 15: CPU per request <= 1.5 x D's)
 *   DS / DP    D on a second / third gateway whose store is SQLite (a file in the bench folder) /
 *              PostgreSQL (a throwaway cluster, when PostgreSQL 15 is installed and we are root):
 *              the pre-image kept before each forward (issue 18: <= +15 % / +30 % CPU per cancel)
 *   E1 / E2    the gateway refusing: a token with the read scope (403) / a changed description (422)
 *   N          nginx as an mTLS pass-through with upstream keep-alive, when `nginx` is installed
 * at concurrency 16 and 64, interleaved over several rounds, medians reported. Then the per-stage
 * profile from the gateway's own histogram, start-up to ready, and the issue's targets. With DS
 * or DP, the store's own CPU per cancel measured in-process (./store-cost.ts), beside the ratios.
 *
 * Knobs (environment), for longer runs or diagnosis:
 *   BENCH_ROUNDS (3), BENCH_SECONDS (5, measured per run), BENCH_WARMUP_SECONDS (1.5),
 *   BENCH_CONCURRENCY ("16,64"), BENCH_SCENARIOS ("A,B,C,D,DX,DS,DP,E1,E2,N"), BENCH_SKIP_NGINX=1,
 *   BENCH_SKIP_STARTUP=1, BENCH_PG_SOCKET=1 (DP over PostgreSQL's Unix socket, not loopback TCP), BENCH_QUIET_WAIT_SECONDS (45: the most the whole bench waits for other
 *   workloads to finish), BENCH_GATEWAY_NODE_ARGS (node flags for the gateway under load, e.g.
 *   "--cpu-prof --cpu-prof-dir=/tmp/prof"; it is stopped with SIGTERM at the end, so the profile is
 *   written), BENCH_PROXY_NODE_ARGS (the same for the B and C proxies), BENCH_GATEWAY_NICE (e.g. -15,
 *   root only: a cleaner profile on a busy machine), BENCH_GATEWAY_STDOUT (a file instead of
 *   /dev/null for the gateway's log lines, e.g. with --trace-gc).
 */
import { fork, spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { cpus, loadavg, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTestPki } from '../../demo/pki.js';
import { packageRoot } from '../../src/paths.js';
import { PROVIDER_ASID, type RequestKind } from './fixtures.js';
import { pgMissing, startPostgres, type PgCluster } from '../postgres-cluster.js';
import type { RunRequest, RunResult } from './loadgen.js';
import { childPids, clockTicks, machineTicks, processCpuMs } from './procstat.js';
import type { StageCpu } from './stages.js';
import type { StoreCost } from './store-cost.js';
import { CATEGORIES, cpuSplit } from './cpu-split.js';

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const num = (name: string, dflt: number) => (process.env[name] !== undefined && process.env[name] !== '' ? Number(process.env[name]) : dflt);
const ROUNDS = num('BENCH_ROUNDS', 3);
const MEASURE_MS = num('BENCH_SECONDS', 5) * 1000;
const WARMUP_MS = num('BENCH_WARMUP_SECONDS', 1.5) * 1000;
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '16,64').split(',').map(Number);
const SPINE_CIPHERS = 'AESGCM+EECDH:AESGCM+EDH:AES256+EECDH:AES256+EDH';
const DEADLINE_MS = 20 * 60_000;
const ONLY = process.env.BENCH_SCENARIOS ? new Set(process.env.BENCH_SCENARIOS.split(',')) : undefined;
// The gateway runs with the flags of the image's ENTRYPOINT and `npm start` (Dockerfile).
const GATEWAY_NODE_ARGS = ['--max-semi-space-size=4', '--heap-growing-percent=50', ...(process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean)];

type Scenario = 'A' | 'B' | 'C' | 'D' | 'DX' | 'DS' | 'DP' | 'E1' | 'E2' | 'N';
const DESCRIPTION: Record<Scenario, string> = {
  A: 'direct to the upstream (mTLS)',
  B: 'minimal mTLS pass-through (http-proxy-3)',
  C: 'B + upstream GET + 2 JSON parses',
  D: 'gateway, valid cancels (200)',
  DX: 'gateway, valid cancels in FHIR XML (200)',
  DS: 'gateway + SQLite store, valid cancels (200)',
  DP: 'gateway + PostgreSQL store, valid cancels (200)',
  E1: 'gateway, bad-scope token (403)',
  E2: 'gateway, changed description (422)',
  N: 'nginx mTLS pass-through, upstream keep-alive',
};
const KIND: Record<Scenario, RequestKind> = { A: 'valid', B: 'valid', C: 'valid', D: 'valid', DX: 'valid-xml', DS: 'valid', DP: 'valid', E1: 'bad-scope', E2: 'bad-diff', N: 'valid' };

const started = performance.now();
const loadavgAtStart = loadavg();
const children: ChildProcess[] = [];
/** Processes we started but did not spawn directly (nginx workers): killed by pid on the way out. */
const grandchildren: number[] = [];
const cleanup = () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const pid of grandchildren) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));
setTimeout(() => {
  process.stderr.write(`bench: over ${DEADLINE_MS / 60_000} minutes, giving up\n`);
  process.exit(1);
}, DEADLINE_MS).unref();

const log = (s: string) => process.stderr.write(s + '\n');

function forkChild(script: string, env: Record<string, string>, execArgv: string[] = []): Promise<{ child: ChildProcess; msg: Record<string, unknown> }> {
  const child = fork(here(script), [], { env: { ...process.env, ...env }, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('message', (msg) => resolve({ child, msg: msg as Record<string, unknown> }));
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}) before it was ready`)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves when a TCP connection to the port succeeds (polling every `everyMs`). */
function waitForPort(port: number, timeoutMs = 10_000, everyMs = 5): Promise<void> {
  const until = performance.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (performance.now() > until) reject(new Error(`port ${port} did not open`));
        else setTimeout(attempt, everyMs);
      });
    };
    attempt();
  });
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(text));
      res.on('error', reject);
    }).on('error', reject);
  });
}

const median = (xs: number[]) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

// ---------------------------------------------------------------- set-up
const dir = mkdtempSync(join(tmpdir(), 'gw-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
log(`bench: material in ${dir}`);
const written = writeTestPki(dir, { ca: 'Bench Spine CA', client: 'ssp.bench.nhs.uk' }).files;
const files = { ca: written.ca, cert: written.serverCert, key: written.serverKey, clientCert: written.clientCert, clientKey: written.clientKey };
const tlsEnv = JSON.stringify({ cert: files.cert, key: files.key, ca: files.ca, ciphers: SPINE_CIPHERS, clientCert: files.clientCert, clientKey: files.clientKey });

const up = await forkChild('./upstream.js', { BENCH_TLS: tlsEnv });
const upstreamPort = up.msg.port as number;
const upstreamTlsPort = up.msg.tlsPort as number;
const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
const PROXY_NODE_ARGS = (process.env.BENCH_PROXY_NODE_ARGS ?? '').split(' ').filter(Boolean);
const procB = await forkChild('./proxies.js', { BENCH_TLS: tlsEnv, BENCH_KIND: 'B', BENCH_UPSTREAM: upstreamUrl }, PROXY_NODE_ARGS);
const procC = await forkChild('./proxies.js', { BENCH_TLS: tlsEnv, BENCH_KIND: 'C', BENCH_UPSTREAM: upstreamUrl }, PROXY_NODE_ARGS);

const mainJs = join(packageRoot, 'dist', 'src', 'main.js');
function gatewayConfig(port: number, adminPort: number, store: Record<string, unknown> = { kind: 'memory' }): string {
  const file = join(dir, `gateway-${port}.json`);
  writeFileSync(file, JSON.stringify({
    standard: 'nhs-booking',
    listen: { host: '127.0.0.1', port },
    admin: { host: '127.0.0.1', port: adminPort },
    basePath: '/STU3/1',
    publicBaseUrl: 'https://gateway.bench.nhs.uk/STU3/1',
    tls: { cert: files.cert, key: files.key, clientCa: files.ca },
    upstream: { url: upstreamUrl },
    spine: { providerAsids: [PROVIDER_ASID] },
    log: { level: (process.env.BENCH_GATEWAY_LOG_LEVEL ?? 'info') as 'info' },
    audit: { destination: process.env.BENCH_GATEWAY_AUDIT ?? 'stdout' },
    store,
  }, null, 2));
  return file;
}

// ---------------------------------------------------------------- start-up to ready
async function startupOnce(): Promise<{ readyLineMs: number; acceptMs: number; inProcessMs: number }> {
  const port = await freePort();
  const adminPort = await freePort();
  const cfg = gatewayConfig(port, adminPort);
  const t0 = performance.now();
  const child = spawn(process.execPath, [mainJs, '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const ready = new Promise<{ at: number; inProcessMs: number }>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      for (const line of buf.split('\n')) {
        if (line.includes('"msg":"ready"')) {
          resolve({ at: performance.now(), inProcessMs: Number((JSON.parse(line) as { startupMs?: number }).startupMs) });
          return;
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`gateway exited (${code}) before ready: ${stderr.slice(0, 500)}`)));
  });
  const accept = waitForPort(port, 10_000, 2).then(() => performance.now());
  const [r, a] = await Promise.all([ready, accept]);
  const exited = new Promise((res) => child.once('exit', res));
  child.kill('SIGTERM');
  await exited;
  return { readyLineMs: r.at - t0, acceptMs: a - t0, inProcessMs: r.inProcessMs };
}
log('bench: start-up to ready (5 cold starts of node dist/src/main.js --config)');
const startups: Array<Awaited<ReturnType<typeof startupOnce>>> = [];
if (process.env.BENCH_SKIP_STARTUP !== '1') for (let i = 0; i < 5; i++) startups.push(await startupOnce());

// ---------------------------------------------------------------- the gateways under load
const devNull = openSync(process.env.BENCH_GATEWAY_STDOUT || '/dev/null', 'w');
const wanted = (s: Scenario) => !ONLY || ONLY.has(s);
async function startGateway(store?: Record<string, unknown>, extraNodeArgs: string[] = []): Promise<{ port: number; adminPort: number; proc: ChildProcess }> {
  const port = await freePort();
  const adminPort = await freePort();
  // Decision log (info) and audit (stdout) stay on, as deployed; they go to /dev/null here.
  const proc = spawn(process.execPath, [...GATEWAY_NODE_ARGS, ...extraNodeArgs, mainJs, '--config', gatewayConfig(port, adminPort, store)], { stdio: ['ignore', devNull, 'inherit'] });
  children.push(proc);
  // Profiling aid only: a higher priority keeps a busy machine from preempting the gateway mid-sample.
  if (process.env.BENCH_GATEWAY_NICE) setPriority(proc.pid!, Number(process.env.BENCH_GATEWAY_NICE));
  await waitForPort(port);
  await waitForPort(adminPort);
  return { port, adminPort, proc };
}
const gw = await startGateway();
const gwAdminPort = gw.adminPort;
const gateway = gw.proc;
const gwSqlite = wanted('DS') ? await startGateway({ kind: 'sqlite', path: join(dir, 'store.db') }) : undefined;
// The PostgreSQL store: a throwaway cluster (fsync off, as in the tests: the bench measures CPU).
let pgCluster: PgCluster | undefined;
const pgWhyNot = wanted('DP') ? pgMissing() : 'not asked for';
if (!pgWhyNot) {
  pgCluster = await startPostgres();
  process.on('exit', () => pgCluster?.destroy());
} else if (wanted('DP')) log(`bench: scenario DP skipped: ${pgWhyNot}`);
// BENCH_PG_SOCKET=1: the gateway reaches PostgreSQL over its Unix socket instead of loopback TCP.
const gwPostgres = pgCluster ? await startGateway({ kind: 'postgres', url: process.env.BENCH_PG_SOCKET === '1' ? pgCluster.socketUrl : pgCluster.url }) : undefined;
/** The cluster's processes (postmaster and backends), charged to DP beside the upstream. */
const postgresPids = (): number[] => {
  try {
    return execFileSync('pgrep', ['-u', 'postgres'], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

// ---------------------------------------------------------------- nginx, when installed
let nginx: { port: number; pids: number[]; version: string; master: ChildProcess } | undefined;
function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}
const nginxBin = process.env.BENCH_SKIP_NGINX === '1' ? undefined : which('nginx');
if (nginxBin) {
  const port = await freePort();
  const nd = join(dir, 'nginx');
  mkdirSync(join(nd, 'logs'), { recursive: true });
  const conf = join(nd, 'nginx.conf');
  writeFileSync(conf, `
worker_processes 1;
daemon off;
pid ${nd}/nginx.pid;
error_log ${nd}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${nd}/body; proxy_temp_path ${nd}/proxy; fastcgi_temp_path ${nd}/fastcgi;
  uwsgi_temp_path ${nd}/uwsgi; scgi_temp_path ${nd}/scgi;
  upstream provider { server 127.0.0.1:${upstreamPort}; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${files.cert};
    ssl_certificate_key ${files.key};
    ssl_client_certificate ${files.ca};
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ${SPINE_CIPHERS};
    ssl_prefer_server_ciphers on;
    keepalive_timeout 5s;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://provider;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`);
  let version = '';
  try {
    version = execFileSync('sh', ['-c', `"${nginxBin}" -v 2>&1`], { encoding: 'utf8' }).trim();
  } catch {
    version = 'nginx (version unknown)';
  }
  const master = spawn(nginxBin, ['-c', conf, '-p', nd], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(master);
  try {
    await waitForPort(port);
    await new Promise((r) => setTimeout(r, 200));
    const workers = childPids(master.pid!);
    grandchildren.push(...workers);
    nginx = { port, pids: [master.pid!, ...workers], version, master };
  } catch (e) {
    log(`bench: nginx did not start (${(e as Error).message}); scenario N skipped. See ${nd}/logs/error.log`);
  }
} else {
  log('bench: nginx not installed; scenario N skipped (apt-get install -y nginx to add it)');
}

// ---------------------------------------------------------------- load generator
const gen = await forkChild('./loadgen.js', { BENCH_TLS: tlsEnv });
function measure(req: Omit<RunRequest, 'type'>): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('load generator did not answer in time')), req.warmupMs + req.durationMs + 60_000);
    gen.child.once('message', (m: RunResult | { type: 'error'; message: string }) => {
      clearTimeout(timer);
      if (m.type === 'result') resolve(m);
      else reject(new Error(m.message));
    });
    gen.child.send({ type: 'run', ...req });
  });
}

/**
 * On a shared machine another workload (a test suite...) can take a core for minutes. Before each
 * run, wait until the CPU not used by the bench's own processes is under 0.15 cores: at most 20 s
 * per run and BENCH_QUIET_WAIT_SECONDS over the whole bench, so the bench stays bounded. What remains is
 * reported per run ("other load").
 */
let quietBudgetMs = num('BENCH_QUIET_WAIT_SECONDS', 45) * 1000;
async function waitForQuiet(): Promise<number> {
  const own = () => [process.pid, ...children.map((c) => c.pid!).filter(Boolean), ...grandchildren].reduce((a, p) => a + (processCpuMs(p) ?? 0), 0);
  const started = performance.now();
  let announced = false;
  for (;;) {
    const m0 = machineTicks();
    const o0 = own();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 200));
    const ms = performance.now() - t0;
    const foreign = Math.max(0, ((machineTicks().busy - m0.busy) * 1000) / clockTicks() - (own() - o0)) / ms;
    const waited = performance.now() - started;
    if (foreign < 0.15 || quietBudgetMs <= 0 || waited > 20_000) {
      if (announced) log(`  (waited ${(waited / 1000).toFixed(1)} s for another workload; now ${foreign.toFixed(2)} cores)`);
      return waited;
    }
    if (!announced) log(`  another workload is using ${foreign.toFixed(2)} cores; waiting (budget left ${(quietBudgetMs / 1000).toFixed(0)} s)`);
    announced = true;
    quietBudgetMs -= ms;
  }
}

const targets: Record<Scenario, { port: number; pids: number[] } | undefined> = {
  A: { port: upstreamTlsPort, pids: [up.child.pid!] },
  B: { port: procB.msg.port as number, pids: [procB.child.pid!] },
  C: { port: procC.msg.port as number, pids: [procC.child.pid!] },
  D: { port: gw.port, pids: [gateway.pid!] },
  DX: { port: gw.port, pids: [gateway.pid!] },
  DS: gwSqlite && { port: gwSqlite.port, pids: [gwSqlite.proc.pid!] },
  DP: gwPostgres && { port: gwPostgres.port, pids: [gwPostgres.proc.pid!] },
  E1: { port: gw.port, pids: [gateway.pid!] },
  E2: { port: gw.port, pids: [gateway.pid!] },
  N: nginx ? { port: nginx.port, pids: nginx.pids } : undefined,
};
const scenarios = (Object.keys(targets) as Scenario[]).filter((s) => targets[s] && (!ONLY || ONLY.has(s)));

interface Stages { [stage: string]: { sum: number; count: number } }
function parseHistogram(text: string, metric: string, label: string): Stages {
  const out: Stages = {};
  const re = new RegExp(`^${metric}_(sum|count)\\{${label}="([^"]+)"\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const e = (out[m[2]!] ??= { sum: 0, count: 0 });
    e[m[1] as 'sum' | 'count'] = Number(m[3]);
  }
  return out;
}
const scrape = async () => {
  const text = await httpGet(`http://127.0.0.1:${gwAdminPort}/metrics`);
  return {
    stages: parseHistogram(text, 'cancel_gateway_stage_duration_seconds', 'stage'),
    upstream: parseHistogram(text, 'cancel_gateway_upstream_duration_seconds', 'call'),
    gateway: parseHistogram(text, 'cancel_gateway_gateway_duration_seconds', 'route'),
  };
};
const stageTotals = new Map<number, { stages: Stages; upstream: Stages; gateway: Stages }>();
const addDiff = (into: Stages, after: Stages, before: Stages) => {
  for (const [k, v] of Object.entries(after)) {
    const b = before[k] ?? { sum: 0, count: 0 };
    const e = (into[k] ??= { sum: 0, count: 0 });
    e.sum += v.sum - b.sum;
    e.count += v.count - b.count;
  }
};

interface Run extends RunResult { scenario: Scenario; concurrency: number; round: number }
const runs: Run[] = [];
const perRun = (WARMUP_MS + MEASURE_MS) / 1000;
log(`bench: ${ROUNDS} rounds x ${scenarios.length} scenarios x c=${CONCURRENCY.join(',')}, ${WARMUP_MS / 1000} s warm-up + ${MEASURE_MS / 1000} s measured each (~${Math.round((ROUNDS * scenarios.length * CONCURRENCY.length * perRun) / 60 * 10) / 10} min)`);
for (let round = 1; round <= ROUNDS; round++) {
  // Interleaved: every round runs every scenario, starting one further along each time.
  const order = scenarios.map((_, i) => scenarios[(i + round - 1) % scenarios.length]!);
  for (const scenario of order) {
    for (const concurrency of CONCURRENCY) {
      const t = targets[scenario]!;
      await waitForQuiet();
      const before = scenario === 'D' ? await scrape() : undefined;
      const r = await measure({
        port: t.port, concurrency, warmupMs: WARMUP_MS, durationMs: MEASURE_MS, kind: KIND[scenario],
        idPrefix: `r${round}${scenario}${concurrency}`, pids: t.pids, otherPids: scenario === 'A' ? [] : scenario === 'DP' ? [up.child.pid!, ...postgresPids()] : [up.child.pid!],
      });
      if (before) {
        const after = await scrape();
        const tot = stageTotals.get(concurrency) ?? { stages: {}, upstream: {}, gateway: {} };
        addDiff(tot.stages, after.stages, before.stages);
        addDiff(tot.upstream, after.upstream, before.upstream);
        addDiff(tot.gateway, after.gateway, before.gateway);
        stageTotals.set(concurrency, tot);
      }
      runs.push({ ...r, scenario, concurrency, round });
      const bad = Object.entries(r.unexpected).map(([s, n]) => `${n}x${s}`).join(' ');
      log(`  round ${round} ${scenario.padEnd(2)} c=${String(concurrency).padEnd(2)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  cpu ${((r.targetCpuMs * 1000) / Math.max(1, r.completed)).toFixed(0)} us/req (sys ${((r.targetSysMs * 1000) / Math.max(1, r.completed)).toFixed(0)})  gen ${((r.generatorCpuMs * 1000) / Math.max(1, r.completed)).toFixed(0)} us/req  machine ${(r.machineBusy * 100).toFixed(0)}% (other load ${r.foreignCores.toFixed(2)} cores)${bad ? '  UNEXPECTED ' + bad : ''}`);
    }
  }
}

// ---------------------------------------------------------------- where the CPU goes
// Issue 17 item 3: per gateway scenario, one more run (c=16) against a fresh gateway of the same
// kind started with --cpu-prof; its profile's busy time split by category. A profiled process is
// slower, so these runs are not among the measured ones; the shares are applied to the measured
// CPU per request. BENCH_CPU_SPLIT=0 skips them.
const split: Partial<Record<Scenario, ReturnType<typeof cpuSplit>>> = {};
if (process.env.BENCH_CPU_SPLIT !== '0') {
  const stores: Partial<Record<Scenario, Record<string, unknown> | undefined | false>> = {
    D: undefined, DX: undefined, DS: { kind: 'sqlite', path: join(dir, 'split.db') },
    DP: pgCluster ? { kind: 'postgres', url: process.env.BENCH_PG_SOCKET === '1' ? pgCluster.socketUrl : pgCluster.url } : false,
  };
  for (const scenario of ['D', 'DX', 'DS', 'DP'] as const) {
    if (!scenarios.includes(scenario) || stores[scenario] === false) continue;
    const profDir = join(dir, 'cpu-prof', scenario);
    mkdirSync(profDir, { recursive: true });
    log(`bench: CPU profile of ${scenario} (one more run, c=16, profiled gateway)`);
    const g = await startGateway(stores[scenario] || undefined, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
    await measure({ port: g.port, concurrency: 16, warmupMs: WARMUP_MS, durationMs: MEASURE_MS, kind: KIND[scenario], idPrefix: `prof${scenario}`, pids: [g.proc.pid!], otherPids: [] });
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 15_000);
      g.proc.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      g.proc.kill('SIGTERM');
    });
    const file = readdirSync(profDir).find((n) => n.endsWith('.cpuprofile'));
    if (file) split[scenario] = cpuSplit(join(profDir, file));
    else log(`bench: no CPU profile written for ${scenario}`);
  }
}

// ---------------------------------------------------------------- summary
interface Row {
  scenario: Scenario; description: string; concurrency: number; rounds: number;
  rps: number; p50Ms: number; p99Ms: number; cpuUsPerReq: number; sysUsPerReq: number; peakRssMiB: number; maxPeakRssMiB: number;
  generatorCpuUsPerReq: number; generatorCores: number; upstreamCpuUsPerReq: number; machineBusy: number; foreignCores: number; unexpected: number;
}
const rows: Row[] = [];
for (const scenario of scenarios) {
  for (const concurrency of CONCURRENCY) {
    const rs = runs.filter((r) => r.scenario === scenario && r.concurrency === concurrency);
    const per = (f: (r: Run) => number) => median(rs.map((r) => (f(r) * 1000) / Math.max(1, r.completed)));
    rows.push({
      scenario, description: DESCRIPTION[scenario], concurrency, rounds: rs.length,
      rps: median(rs.map((r) => r.rps)),
      p50Ms: median(rs.map((r) => r.p50Ms)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
      cpuUsPerReq: per((r) => r.targetCpuMs),
      sysUsPerReq: per((r) => r.targetSysMs),
      peakRssMiB: median(rs.map((r) => r.peakRssKiB / 1024)),
      maxPeakRssMiB: Math.max(...rs.map((r) => r.peakRssKiB / 1024)),
      generatorCpuUsPerReq: per((r) => r.generatorCpuMs),
      generatorCores: median(rs.map((r) => r.generatorCpuMs / r.windowMs)),
      upstreamCpuUsPerReq: per((r) => r.otherCpuMs),
      machineBusy: median(rs.map((r) => r.machineBusy)),
      foreignCores: median(rs.map((r) => r.foreignCores)),
      unexpected: rs.reduce((a, r) => a + Object.values(r.unexpected).reduce((x, y) => x + y, 0), 0),
    });
  }
}
const row = (s: Scenario, c: number) => rows.find((r) => r.scenario === s && r.concurrency === c);
const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');

const out: string[] = [];
out.push('');
out.push(`cancel-gateway bench — ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), node ${process.version}${nginx ? `, ${nginx.version}` : ''}`);
out.push(`${ROUNDS} rounds, ${WARMUP_MS / 1000} s warm-up + ${MEASURE_MS / 1000} s measured per run, medians; CPU and RSS are the proxy process's (nginx: master + worker)`);
out.push('');
out.push('| scen | what | c | req/s | p50 ms | p99 ms | CPU us/req | peak RSS MiB | gen CPU us/req | gen cores | upstream us/req | machine busy | other load (cores) |');
out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  out.push(`| ${r.scenario} | ${r.description} | ${r.concurrency} | ${f(r.rps)} | ${f(r.p50Ms, 2)} | ${f(r.p99Ms, 2)} | ${f(r.cpuUsPerReq)} | ${f(r.peakRssMiB, 1)} | ${f(r.generatorCpuUsPerReq)} | ${f(r.generatorCores, 2)} | ${r.scenario === 'A' ? '(=CPU)' : f(r.upstreamCpuUsPerReq)} | ${f(r.machineBusy * 100)}% | ${f(r.foreignCores, 2)} |${r.unexpected ? ` ${r.unexpected} unexpected answers` : ''}`);
}
const ratios: Record<string, number> = {};
out.push('');
for (const c of CONCURRENCY) {
  const d = row('D', c);
  if (!d) continue;
  const parts: string[] = [];
  for (const other of ['C', 'B', 'N', 'A'] as const) {
    const o = row(other, c);
    if (!o) continue;
    ratios[`D/${other} req/s c=${c}`] = d.rps / o.rps;
    ratios[`D/${other} p99 c=${c}`] = d.p99Ms / o.p99Ms;
    ratios[`D/${other} cpu c=${c}`] = d.cpuUsPerReq / o.cpuUsPerReq;
    parts.push(`D/${other} ${f(d.rps / o.rps, 2)} (p99 ${f(d.p99Ms / o.p99Ms, 2)}, CPU/req ${f(d.cpuUsPerReq / o.cpuUsPerReq, 2)})`);
  }
  out.push(`ratios c=${c}: ${parts.join('  ')}`);
}

// Per-stage profile of a cancel: the gateway's own histogram over the D runs (wall time, under
// load), next to the CPU of the same checks measured in-process (./stages.ts) on a quiet loop.
log('bench: per-stage CPU of a cancel, in-process (scripts/bench/stages.ts)');
const stageCpu = await new Promise<StageCpu | undefined>((resolve) => {
  const child = fork(here('./stages.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  const timer = setTimeout(() => {
    child.kill('SIGKILL');
    resolve(undefined);
  }, 120_000);
  child.once('message', (m: (StageCpu & { type: 'stages' }) | { type: 'error'; message: string }) => {
    clearTimeout(timer);
    if (m.type === 'stages') resolve(m);
    else {
      log(`bench: stage measurement failed: ${m.message}`);
      resolve(undefined);
    }
  });
  child.once('exit', () => resolve(undefined));
});
// The store's own CPU per cancel, in-process (./store-cost.ts): the DS and DP ratios above carry
// the noise of five processes on two cores; this figure does not (issue 18 item 7).
let storeCost: StoreCost | undefined;
if (scenarios.includes('DS') || scenarios.includes('DP')) {
  log('bench: the store\'s CPU per cancel, in-process (scripts/bench/store-cost.ts)');
  storeCost = await new Promise<StoreCost | undefined>((resolve) => {
    const child = fork(here('./store-cost.js'), pgCluster ? [pgCluster.url] : [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(undefined);
    }, 240_000);
    child.once('message', (m: StoreCost | { type: 'error'; message: string }) => {
      clearTimeout(timer);
      if (m.type === 'store-cost') resolve(m);
      else {
        log(`bench: store cost measurement failed: ${m.message}`);
        resolve(undefined);
      }
    });
    child.once('exit', () => resolve(undefined));
  });
}
const STAGES = ['spine-headers', 'jwt', 'if-match', 'media-type', 'body', 'profile', 'cancel-request', 'current', 'version', 'diff'];
const VALIDATION = ['jwt', 'body', 'profile', 'cancel-request', 'diff'];
const VALIDATION_KEY = 'validation (jwt+body+profile+cancel-request+diff)';
const profiles: Record<string, Record<string, number>> = {};
out.push('');
out.push('per-stage profile of a valid cancel, mean us: wall time under load from the gateway histogram cancel_gateway_stage_duration_seconds (D runs),');
out.push('and CPU time of the same checks in-process (getrusage around each call, no sockets; "current" reads an in-memory provider)');
out.push(`| stage | ${CONCURRENCY.map((c) => `wall c=${c}`).join(' | ')} | CPU in-process |`);
out.push(`|---|${CONCURRENCY.map(() => '---').join('|')}|---|`);
const meanUs = (s: { sum: number; count: number } | undefined) => (s && s.count ? (s.sum / s.count) * 1e6 : NaN);
for (const c of CONCURRENCY) {
  const t = stageTotals.get(c);
  const p: Record<string, number> = {};
  for (const st of STAGES) p[st] = meanUs(t?.stages[st]);
  p[VALIDATION_KEY] = VALIDATION.reduce((a, st) => a + (p[st] ?? 0), 0);
  p['upstream read (upstream_duration{call=read})'] = meanUs(t?.upstream['read']);
  p['forward (upstream_duration{call=forward})'] = meanUs(t?.upstream['forward']);
  p['gateway self time (gateway_duration{route=cancel})'] = meanUs(t?.gateway['cancel']);
  profiles[`c=${c}`] = p;
}
const inProcess: Record<string, number> = {};
// In process, the provider half (current parse, version, diff, keep, answer) runs as one stage,
// "transaction" (./stages.ts); the diff has no figure of its own there.
const TRANSACTION_KEY = 'transaction in-process (current parse, version, diff, answer parse; no sockets)';
if (stageCpu) {
  for (const st of STAGES) inProcess[st] = stageCpu.cpuUs[st] ?? NaN;
  inProcess[TRANSACTION_KEY] = stageCpu.cpuUs['transaction'] ?? NaN;
  inProcess[VALIDATION_KEY] = VALIDATION.filter((st) => st !== 'diff').reduce((a, st) => a + (stageCpu.cpuUs[st] ?? NaN), 0) + (stageCpu.cpuUs['transaction'] ?? NaN);
  profiles['cpu in-process'] = inProcess;
}
for (const k of [...Object.keys(profiles[`c=${CONCURRENCY[0]}`] ?? {}), ...(TRANSACTION_KEY in inProcess ? [TRANSACTION_KEY] : [])]) {
  out.push(`| ${k} | ${CONCURRENCY.map((c) => f(profiles[`c=${c}`]![k] ?? NaN, 1)).join(' | ')} | ${k in inProcess ? f(inProcess[k]!, 1) : ''} |`);
}

if (Object.keys(split).length) {
  const shown = (Object.keys(split) as Scenario[]);
  out.push('');
  out.push(`where a request's CPU goes (c=16): self time of a --cpu-prof run of each gateway scenario, idle and start-up left out, as us per request`);
  out.push('(the share of the profile times the measured CPU per request of the same scenario; GC threads off the main thread are in "other runtime")');
  out.push(`| category | ${shown.map((s) => s).join(' | ')} |`);
  out.push(`|---|${shown.map(() => '---').join('|')}|`);
  for (const cat of CATEGORIES) {
    out.push(`| ${cat} | ${shown.map((s) => `${f((split[s]!.shares[cat] ?? 0) * (row(s, 16)?.cpuUsPerReq ?? NaN))} (${f((split[s]!.shares[cat] ?? 0) * 100)}%)`).join(' | ')} |`);
  }
}

// Start-up.
const startup = {
  runs: startups,
  readyLineMs: median(startups.map((s) => s.readyLineMs)),
  acceptMs: median(startups.map((s) => s.acceptMs)),
  inProcessMs: median(startups.map((s) => s.inProcessMs)),
};
out.push('');
out.push(`start-up to ready (spawn -> 'ready' log line / TLS port accepting; median of ${startups.length}): ${f(startup.readyLineMs)} ms / ${f(startup.acceptMs)} ms (createGateway+listen in-process: ${f(startup.inProcessMs)} ms)`);

// Targets (issue 6 item 4).
const c16 = CONCURRENCY.includes(16) ? 16 : CONCURRENCY[0]!;
const c64 = CONCURRENCY.includes(64) ? 64 : CONCURRENCY[CONCURRENCY.length - 1]!;
const ratio = (a: Row | undefined, b: Row | undefined, k: 'rps' | 'p99Ms') => (a && b ? a[k] / b[k] : NaN);
const gatewayPeak = Math.max(-Infinity, ...rows.filter((r) => ['D', 'E1', 'E2'].includes(r.scenario) && r.concurrency === c64).map((r) => r.maxPeakRssMiB));
const validationCpuUs = inProcess[VALIDATION_KEY] ?? NaN;
const validationWallUs = profiles[`c=${c16}`]?.[VALIDATION_KEY] ?? NaN;
const verdict = (target: string, value: number, limit: number, atLeast: boolean) => ({
  target, value, limit,
  pass: Number.isFinite(value) ? (atLeast ? value >= limit : value <= limit) : undefined,
});
const cpuOf = (x: Row | undefined, y: Row | undefined) => (x && y ? x.cpuUsPerReq / y.cpuUsPerReq : NaN);
// Issue 17's targets, at every concurrency; then the XML (issue 15) and store (issue 18) ratios.
const verdicts = [
  ...CONCURRENCY.flatMap((c) => [
    verdict(`D CPU per request <= 1.5 x C's (c=${c})`, cpuOf(row('D', c), row('C', c)), 1.5, false),
    verdict(`D >= 0.65 x C req/s (c=${c})`, ratio(row('D', c), row('C', c), 'rps'), 0.65, true),
    verdict(`D p99 <= 1.5 x C p99 (c=${c})`, ratio(row('D', c), row('C', c), 'p99Ms'), 1.5, false),
    verdict(`E1 (403) >= 3 x D req/s (c=${c})`, ratio(row('E1', c), row('D', c), 'rps'), 3, true),
    verdict(`E2 (422) >= 1.3 x D req/s (c=${c})`, ratio(row('E2', c), row('D', c), 'rps'), 1.3, true),
    verdict(`DX (XML cancel) CPU per request <= 1.5 x D's (c=${c})`, cpuOf(row('DX', c), row('D', c)), 1.5, false),
    verdict(`DS (SQLite store) CPU per cancel <= 1.15 x D's (c=${c})`, cpuOf(row('DS', c), row('D', c)), 1.15, false),
    verdict(`DP (PostgreSQL store) CPU per cancel <= 1.30 x D's (c=${c}; gateway process)`, cpuOf(row('DP', c), row('D', c)), 1.3, false),
  ]),
  verdict('validation CPU (jwt+body+profile+cancel-request, plus the in-process transaction with its two parses and the diff) <= 150 us per cancel (in-process CPU)', validationCpuUs, 150, false),
  verdict(`gateway peak RSS <= 150 MiB (c=${c64}, max over D/E runs)`, Number.isFinite(gatewayPeak) ? gatewayPeak : NaN, 150, false),
  verdict('start-up to ready <= 1000 ms (spawn -> ready log line)', startup.readyLineMs, 1000, false),
];
out.push('');
out.push('targets (issue 17 item 1, issue 15 item 6, issue 18):');
const mark = (v: { pass: boolean | undefined }) => (v.pass === undefined ? 'n/a ' : v.pass ? 'PASS' : 'MISS');
for (const v of verdicts) out.push(`  ${mark(v)}  ${v.target}: ${f(v.value, v.limit < 10 ? 2 : 0)}`);
out.push(`  info  the same stages as wall time under load (histogram, c=${c16}): ${f(validationWallUs)} us`);
for (const c of CONCURRENCY) {
  const dp = row('DP', c);
  const d = row('D', c);
  // The database server's CPU is reported, not charged: like the provider's, it is another process.
  if (dp && d) out.push(`  info  DP with the PostgreSQL server's CPU added (c=${c}): ${f(dp.cpuUsPerReq + dp.upstreamCpuUsPerReq - d.upstreamCpuUsPerReq)} us per cancel, ${f((dp.cpuUsPerReq + dp.upstreamCpuUsPerReq - d.upstreamCpuUsPerReq) / d.cpuUsPerReq, 2)} x D's`);
}
for (const [kind, us, limit] of [['sqlite', storeCost?.sqliteUs, 1.15], ['postgres', storeCost?.postgresUs, 1.3]] as const) {
  const d = row('D', c16);
  if (us !== undefined && d) out.push(`  info  ${kind} store in-process: ${f(us)} us of CPU per cancel (lock, keep, link; 16 at a time), so D + store = ${f(1 + us / d.cpuUsPerReq, 2)} x D's (c=${c16}; target ${limit})`);
}
const cpuRatio = (a: Row | undefined, b: Row | undefined) => (a && b ? b.cpuUsPerReq / a.cpuUsPerReq : NaN);
out.push(`  info  CPU per request, C/D (c=${c16}): ${f(cpuRatio(row('D', c16), row('C', c16)), 2)}: the share of C's req/s D could reach with every process on its own core`);
const noisy = rows.filter((r) => r.foreignCores > 0.2);
if (noisy.length) out.push(`  WARNING: another workload used the CPU during ${noisy.map((r) => `${r.scenario}/c=${r.concurrency}`).join(', ')} (median "other load" > 0.2 cores): those figures are low; rerun on a quiet machine`);
const unexpectedTotal = rows.reduce((a, r) => a + r.unexpected, 0);
if (unexpectedTotal) out.push(`  WARNING: ${unexpectedTotal} answers had an unexpected status (see JSON runs[].unexpected)`);
const totalS = (performance.now() - started) / 1000;
out.push(`(bench wall time ${f(totalS)} s)`);

const machine = {
  nproc: cpus().length,
  cpuModel: (/^model name\s*:\s*(.*)$/m.exec(existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '')?.[1] ?? cpus()[0]?.model ?? '?').trim(),
  node: process.version,
  nginx: nginx?.version,
  loadavgAtStart,
  loadavgAtEnd: loadavg(),
};
const results = {
  date: new Date().toISOString(),
  machine,
  settings: { rounds: ROUNDS, warmupMs: WARMUP_MS, measureMs: MEASURE_MS, concurrency: CONCURRENCY, gatewayLog: 'info + audit stdout, to /dev/null', nginxWorkers: 1 },
  medians: rows,
  ratios,
  stageProfileUs: profiles,
  cpuSplit: split,
  stageCpu,
  storeCost,
  startup,
  targets: verdicts,
  runs,
  wallSeconds: totalS,
};
// SIGTERM, so each gateway drains and exits itself (and --cpu-prof, when asked for, writes its file).
await Promise.all(
  [gateway, gwSqlite?.proc, gwPostgres?.proc].filter((g): g is ChildProcess => g !== undefined).map(
    (g) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 10_000);
        g.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        g.kill('SIGTERM');
      }),
  ),
);
// nginx: SIGTERM to the master is its fast shutdown; the workers go with it.
if (nginx) {
  const { master } = nginx;
  await new Promise<void>((resolve) => {
    if (master.exitCode !== null || master.signalCode !== null) return resolve();
    const t = setTimeout(resolve, 10_000);
    master.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    master.kill('SIGTERM');
  });
}
// The forked children exit when their IPC channel closes (so --cpu-prof files get written too).
await Promise.all(
  [up.child, procB.child, procC.child, gen.child].map(
    (c) =>
      new Promise<void>((resolve) => {
        if (c.exitCode !== null || c.signalCode !== null) return resolve();
        const t = setTimeout(resolve, 10_000);
        c.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        c.disconnect();
      }),
  ),
);
const resultsDir = join(packageRoot, 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
writeFileSync(join(resultsDir, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
out.push(`results: ${join(resultsDir, 'latest.json')}`);
process.stdout.write(out.join('\n') + '\n');
process.stdout.write(JSON.stringify({ medians: rows.map((r) => ({ scenario: r.scenario, c: r.concurrency, rps: Math.round(r.rps), p50Ms: +r.p50Ms.toFixed(2), p99Ms: +r.p99Ms.toFixed(2), cpuUsPerReq: Math.round(r.cpuUsPerReq), peakRssMiB: +r.peakRssMiB.toFixed(1) })), targets: verdicts.map((v) => `${mark(v)} ${v.target}`) }) + '\n');
process.exit(0);
