/**
 * Issue 13 item 3: does a flood of the worst in-limit cancel bodies starve normal work?
 *
 *   node dist/scripts/bench/starvation.js            (after `npm run build`)
 *
 * One process: a fast upstream (fixtures of ./fixtures.ts), the gateway (createGateway, defaults:
 * limits.maxJsonNodes 5,000), and the clients. Phase 1 (idle): sequential valid cancels on one
 * keep-alive connection. Phase 2 (attack): 8 keep-alive connections send, back to back, a body just
 * under the node limit (a contained resource with maxJsonNodes/2 small objects) while the same sequential
 * cancels run and /healthz is polled every 25 ms. Printed: p50/p95 of the cancels in each phase,
 * their ratio, the attack's throughput and /healthz's maximum latency. Clients share the gateway's
 * event loop here, so the figures are pessimistic.
 *
 * Knobs: STARVATION_CANCELS (100 per phase), STARVATION_ATTACKERS (8), STARVATION_NODES (the
 * gateway's limits.maxJsonNodes; the attack body follows it).
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
import { createGateway } from '../../src/server.js';
import { createLogger } from '../../src/log.js';
import { BASE_PATH, CANCEL_INTERACTION, CONSUMER_ASID, PROVIDER_ASID, cancelBody, storedBody, tokens, updatedBody } from './fixtures.js';

const CANCELS = Number(process.env['STARVATION_CANCELS'] ?? 100);
const ATTACKERS = Number(process.env['STARVATION_ATTACKERS'] ?? 8);
/** limits.maxJsonNodes for the run (default: the gateway's default). */
const NODES = process.env['STARVATION_NODES'] ? Number(process.env['STARVATION_NODES']) : undefined;

function upstream(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const id = (req.url ?? '').split('/').pop() ?? '';
    req.resume();
    req.on('end', () => {
      const put = req.method === 'PUT';
      res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: put ? 'W/"2"' : 'W/"1"' });
      res.end(put ? updatedBody(id) : storedBody(id));
    });
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
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
  const up = await upstream();
  const config = buildConfig({
    standard: 'nhs-booking', basePath: BASE_PATH, publicBaseUrl: 'https://gateway.bench.nhs.uk/STU3/1',
    listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 },
    tls: { cert: join(dir, 's.pem'), key: join(dir, 's.key'), clientCa: join(dir, 'ca.pem'), watch: false },
    upstream: { url: `http://127.0.0.1:${(up.address() as AddressInfo).port}` }, spine: { providerAsids: [PROVIDER_ASID] },
    log: { level: 'silent' }, audit: { destination: 'none' }, ...(NODES ? { limits: { maxJsonNodes: NODES } } : {}),
  });
  const gw = createGateway(config, { logger: createLogger('silent') });
  await gw.listen();
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
    r.contained = [{ resourceType: 'Basic', id: 'flood', extension: Array.from({ length: Math.floor(config.limits.maxJsonNodes / 2) - 100 }, () => ({ url: 'x' })) }];
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
