/**
 * Issue 13 item 3: does a flood of the worst in-limit cancel bodies starve normal work?
 *
 *   node dist/scripts/bench/starvation.js            (after `npm run build`)
 *
 * The gateway runs in a process of its own (node dist/src/main.js, defaults: limits.maxJsonNodes
 * 5,000), as deployed; this process holds a fast upstream (fixtures of ./fixtures.ts) and the clients. Phase 1 (idle): sequential valid cancels on one
 * keep-alive connection. Phase 2 (attack): 8 keep-alive connections send, back to back, a body just
 * under the node limit (a contained resource with maxJsonNodes/2 small objects) while the same sequential
 * cancels run and /healthz is polled every 25 ms. Printed: p50/p95 of the cancels in each phase,
 * their ratio, the attack's throughput and /healthz's maximum latency. Gateway, clients and upstream
 * share the machine's cores, so the figures are pessimistic.
 *
 * Knobs: STARVATION_CANCELS (100 per phase), STARVATION_ATTACKERS (8), STARVATION_NODES (the
 * gateway's limits.maxJsonNodes; the attack body follows it), STARVATION_BODY (valid: a body the
 * profile accepts, refused by the diff), STARVATION_GATEWAY_NODE_ARGS (e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof": the gateway is stopped with SIGTERM, so it is written).
 */
import http from 'node:http';
import https from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createCa, issueCertificate } from '../../demo/certs.js';
import { buildConfig } from '../../src/config.js';
import { fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { packageRoot } from '../../src/paths.js';
import { BASE_PATH, CANCEL_INTERACTION, CONSUMER_ASID, PROVIDER_ASID, cancelBody, tokens } from './fixtures.js';

const CANCELS = Number(process.env['STARVATION_CANCELS'] ?? 100);
const ATTACKERS = Number(process.env['STARVATION_ATTACKERS'] ?? 8);
/** limits.maxJsonNodes for the run (default: the gateway's default). */
const NODES = process.env['STARVATION_NODES'] ? Number(process.env['STARVATION_NODES']) : undefined;

/** The bench's fast upstream (./upstream.ts) in a process of its own: the attack clients here must not slow the provider. */
function upstream(tlsFiles: { cert: string; key: string; ca: string }): Promise<{ port: number; close(): void }> {
  const child = fork(fileURLToPath(new URL('./upstream.js', import.meta.url)), [], { env: { ...process.env, BENCH_TLS: JSON.stringify(tlsFiles) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ port: (m as { port: number }).port, close: () => child.kill() }));
    child.once('exit', (code) => reject(new Error(`upstream exited (${code})`)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Polls until the port accepts TCP connections (the gateway is listening). */
async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
      s.once('error', () => { s.destroy(); resolve(false); });
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`port ${port} did not open`);
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'starvation-'));
  const ca = createCa({ commonName: 'Bench CA' });
  const server = issueCertificate(ca, { commonName: 'localhost', kind: 'server' });
  const client = issueCertificate(ca, { commonName: 'bench.client', kind: 'client' });
  for (const [f, v] of [['ca.pem', ca.cert], ['s.pem', server.cert], ['s.key', server.key]] as const) writeFileSync(join(dir, f), v);
  const up = await upstream({ cert: join(dir, 's.pem'), key: join(dir, 's.key'), ca: join(dir, 'ca.pem') });
  const raw = {
    standard: 'nhs-booking', basePath: BASE_PATH, publicBaseUrl: 'https://gateway.bench.nhs.uk/STU3/1',
    listen: { host: '127.0.0.1', port: await freePort() }, admin: { host: '127.0.0.1', port: await freePort() },
    tls: { cert: join(dir, 's.pem'), key: join(dir, 's.key'), clientCa: join(dir, 'ca.pem'), watch: false },
    upstream: { url: `http://127.0.0.1:${up.port}` }, spine: { providerAsids: [PROVIDER_ASID] },
    log: { level: 'warn' }, audit: { destination: 'none' }, ...(NODES ? { limits: { maxJsonNodes: NODES } } : {}),
  };
  const config = buildConfig(raw); // the same checks as the gateway's, and its defaults for the figures
  writeFileSync(join(dir, 'gateway.json'), JSON.stringify(raw));
  const nodeArgs = (process.env['STARVATION_GATEWAY_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, ['--max-semi-space-size=4', '--heap-growing-percent=50', ...nodeArgs, join(packageRoot, 'dist', 'src', 'main.js'), '--config', join(dir, 'gateway.json')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const gw = { port: config.listen.port, adminPort: config.admin.port, close: () => new Promise<void>((r) => { child.once('exit', () => r()); child.kill('SIGTERM'); }) };
  await waitForPort(gw.port);
  await waitForPort(gw.adminPort);
  const pool = tokens('valid', 64);
  let n = 0;
  const agent = (sockets: number) => new https.Agent({ keepAlive: true, maxSockets: sockets, ca: ca.cert, cert: client.cert, key: client.key, servername: 'localhost' });
  const put = (a: https.Agent, id: string, body: string): Promise<number> => new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: gw.port, method: 'PUT', path: `${BASE_PATH}/Appointment/${id}`, agent: a,
      headers: {
        'Ssp-TraceID': randomUUID(), 'Ssp-From': CONSUMER_ASID, 'Ssp-To': PROVIDER_ASID, 'Ssp-InteractionID': CANCEL_INTERACTION.id,
        Authorization: `Bearer ${pool[n++ % pool.length]}`, 'If-Match': 'W/"1"', 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(body),
      },
    }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
    req.on('error', reject);
    req.end(body);
  });
  const normal = agent(1);
  const cancels = async (label: string): Promise<number[]> => {
    const ms: number[] = [];
    for (let i = 0; i < CANCELS; i++) {
      const id = `${label}-${i}`;
      const t0 = performance.now();
      const status = await put(normal, id, cancelBody('valid', id));
      ms.push(performance.now() - t0);
      if (status !== 200) throw new Error(`a normal cancel got ${status}`);
    }
    return ms;
  };
  await cancels('warmup');
  const idle = await cancels('idle');

  // The worst in-limit body: just under limits.maxJsonNodes values, each a small object.
  const worst = (id: string) => {
    const r = JSON.parse(cancelBody('valid', id));
    // STARVATION_BODY=valid: extensions the profile accepts (walked to the end, then refused by the
    // diff after the provider's read) instead of ones it refuses (the walk stops at its issue cap).
    r.contained = process.env['STARVATION_BODY'] === 'valid'
      ? [{ resourceType: 'Basic', id: 'flood', code: { text: 'x' }, extension: Array.from({ length: Math.floor(config.limits.maxJsonNodes / 3) - 100 }, () => ({ url: 'http://example.org/x', valueString: 'x' })) }]
      : [{ resourceType: 'Basic', id: 'flood', extension: Array.from({ length: Math.floor(config.limits.maxJsonNodes / 2) - 100 }, () => ({ url: 'x' })) }];
    return JSON.stringify(r);
  };
  const attackBody = worst('attack');
  let stop = false;
  let attacks = 0;
  const statuses = new Map<number, number>();
  const attackAgent = agent(ATTACKERS);
  const attackers = Array.from({ length: ATTACKERS }, async () => {
    while (!stop) {
      const s = await put(attackAgent, 'attack', attackBody).catch(() => 0);
      statuses.set(s, (statuses.get(s) ?? 0) + 1);
      attacks++;
    }
  });
  let healthMax = 0;
  let healthFails = 0;
  const health = (async () => {
    while (!stop) {
      const t0 = performance.now();
      const ok = await new Promise<boolean>((resolve) => {
        http.get({ host: '127.0.0.1', port: gw.adminPort, path: '/healthz', agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode === 200)); }).on('error', () => resolve(false));
      });
      healthMax = Math.max(healthMax, performance.now() - t0);
      if (!ok) healthFails++;
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  const started = performance.now();
  const loaded = await cancels('loaded');
  const seconds = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all([...attackers, health]);
  const figures = {
    attackBodyBytes: attackBody.length, attackers: ATTACKERS, attackStatuses: Object.fromEntries(statuses),
    attacksPerSecond: Math.round((attacks / seconds) * 10) / 10,
    idleP50Ms: +pct(idle, 50).toFixed(2), idleP95Ms: +pct(idle, 95).toFixed(2),
    loadedP50Ms: +pct(loaded, 50).toFixed(2), loadedP95Ms: +pct(loaded, 95).toFixed(2),
    maxJsonNodes: config.limits.maxJsonNodes,
    p95Ratio: +(pct(loaded, 95) / pct(idle, 95)).toFixed(2),
    healthzMaxMs: +healthMax.toFixed(1), healthzFailures: healthFails,
  };
  console.log(JSON.stringify(figures, null, 2));
  normal.destroy();
  attackAgent.destroy();
  await gw.close();
  up.close();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
