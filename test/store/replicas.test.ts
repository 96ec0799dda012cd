/**
 * Issue 18 item 6, end to end with real engines: gateway processes (node dist/src/main.js) on one
 * throwaway PostgreSQL 15 in front of one recording demo provider.
 * - 200 concurrent cancels over 50 appointments spread over two gateways, current and stale
 *   If-Match -> exactly one PUT per appointment and version, every pre-image kept, none unanswered;
 * - kill -9 of a gateway while it holds a lock -> the other proceeds, nothing forwarded twice;
 * - PostgreSQL stopped mid-run -> 500s and nothing forwarded without its pre-image; recovery;
 * - a vread the provider cannot answer is answered from the vault; a restore round trip.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/open.js';
import { startDemoProvider, type DemoProvider } from '../../demo/provider/server.js';
import type { Resource } from '../../demo/provider/store.js';
import { identityHeaders, PROVIDER_ASID, pki, send, type RequestOptions } from '../helpers/harness.js';
import { pgMissing, startPostgres, type PgCluster } from '../helpers/postgres.js';
import { startGateway, type Gw } from '../helpers/gateway-process.js';

const missing = pgMissing();
if (missing) {
  t.skip(`PostgreSQL store end to end: ${missing}`, async () => {});
} else {
  await run();
}

function appointment(template: Resource, id: string): Resource {
  const r = structuredClone(template) as Record<string, any>;
  r.id = id;
  r.status = 'booked';
  return r as Resource;
}

function cancelOf(provider: DemoProvider, id: string, ifMatch: string): RequestOptions {
  const r = structuredClone(provider.store.read(id)!.resource) as Record<string, any>;
  r.status = 'cancelled';
  return {
    method: 'PUT', path: `/STU3/1/Appointment/${id}`, body: JSON.stringify(r),
    headers: { ...identityHeaders('nhs-booking', 'cancel'), 'If-Match': ifMatch, 'Content-Type': 'application/fhir+json' },
  };
}

function puts(p: DemoProvider, id: string): number {
  return p.requests.filter((r) => r.method === 'PUT' && r.url.endsWith(`/Appointment/${id}`)).length;
}

async function run(): Promise<void> {
  const pg: PgCluster = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'gw-replicas-'));
  const provider = await startDemoProvider({ seed: 'nhs-booking' });
  const template = provider.store.read(provider.store.ids()[0]!)!.resource;
  const url = await pg.createDatabase('replicas');
  const p = pki();
  const gateways: Gw[] = [];
  t.teardown(async () => {
    for (const g of gateways) g.proc.kill('SIGKILL');
    await provider.close();
    pg.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const configFile = join(dir, 'gateway.json');
  writeFileSync(configFile, JSON.stringify({
    standard: 'nhs-booking', listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 },
    basePath: '/STU3/1', publicBaseUrl: 'https://gateway.test/STU3/1',
    tls: { cert: p.files.serverCert, key: p.files.serverKey, clientCa: p.files.ca, watch: false },
    upstream: { url: provider.url, timeoutMs: 3000 }, spine: { providerAsids: [PROVIDER_ASID] },
    log: { level: 'info' }, audit: { destination: 'none' },
    // 200 new TLS connections at once from one address: above the default pending-handshake caps.
    limits: { maxPendingHandshakes: 512, maxPendingHandshakesPerAddress: 512 },
    store: { kind: 'postgres', url, timeoutMs: 1000, lockWaitMs: 5000 },
  }));
  gateways.push(await startGateway(configFile), await startGateway(configFile));
  const [a, b] = gateways as [Gw, Gw];
  const vault = (await openStore({ kind: 'postgres', url, poolSize: 2, lockPoolSize: 1, timeoutMs: 2000, lockWaitMs: 1000, decryptionKeyFiles: [] }, { lock: false })).vault;
  t.teardown(() => vault.close());

  await t.test('200 concurrent cancels over 50 appointments on two replicas: one PUT per appointment and version', async (t) => {
    const ids = Array.from({ length: 50 }, (_, i) => `rep-${i}`);
    for (const id of ids) provider.store.create(appointment(template, id), id);
    const requests: Array<Promise<{ id: string; status: number }>> = [];
    const diag = new Set<string>();
    for (const id of ids) {
      for (let k = 0; k < 4; k++) {
        const gw = k % 2 ? b : a;
        const req = cancelOf(provider, id, k === 3 ? 'W/"0"' : 'W/"1"'); // three current, one stale
        requests.push(send(gw.port, req).then((r) => { if (r.status === 500) diag.add(String(r.json?.issue?.[0]?.diagnostics)); return { id, status: r.status }; }, () => ({ id, status: 0 })));
      }
    }
    const results = await Promise.all(requests);
    t.equal(results.filter((r) => r.status === 0).length, 0, 'every request answered');
    const byId = new Map<string, number[]>();
    for (const r of results) byId.set(r.id, [...(byId.get(r.id) ?? []), r.status]);
    let onePut = 0;
    let kept = 0;
    for (const id of ids) {
      const statuses = byId.get(id)!.sort();
      if (puts(provider, id) === 1 && statuses.filter((s) => s === 200).length === 1 && statuses.filter((s) => s === 409).length === 3) onePut++;
      const history = await vault.history(id);
      if (history.length === 1 && history[0]!.versionBefore === '1' && history[0]!.versionAfter === '2') kept++;
    }
    const tally: Record<string, number> = {};
    for (const r of results) tally[r.status] = (tally[r.status] ?? 0) + 1;
    const putTally: Record<number, number> = {};
    for (const id of ids) putTally[puts(provider, id)] = (putTally[puts(provider, id)] ?? 0) + 1;
    t.equal(onePut, 50, `each appointment: exactly one PUT, one 200 and three 409s (statuses ${JSON.stringify(tally)}, PUTs per appointment ${JSON.stringify(putTally)}; 500s: ${[...diag].join(" | ")})`);
    t.equal(kept, 50, 'each forward has its pre-image (version 1) linked to the new version (2)');
  });

  await t.test('a vread the provider cannot answer is answered from the vault', async (t) => {
    const stop = provider.fault('not-found', { method: 'GET', path: /_history/ });
    t.teardown(stop);
    const r = await send(b.port, { method: 'GET', path: '/STU3/1/Appointment/rep-0/_history/1', headers: identityHeaders('nhs-booking', 'read') });
    t.equal(r.status, 200);
    t.equal(r.headers.etag, 'W/"1"');
    t.equal(r.json.status, 'booked', 'the kept pre-image');
  });

  await t.test('kill -9 of a gateway holding a lock: the other proceeds, nothing forwarded twice', async (t) => {
    const id = 'rep-kill';
    provider.store.create(appointment(template, id), id);
    const stop = provider.fault('hang', { method: 'PUT', path: new RegExp(`/Appointment/${id}$`) });
    const doomed = send(a.port, cancelOf(provider, id, 'W/"1"')).catch(() => undefined);
    // A holds the lock once its PUT reached the provider.
    while (puts(provider, id) === 0) await new Promise((r) => setImmediate(r));
    a.proc.kill('SIGKILL');
    await doomed;
    stop();
    const r = await send(b.port, cancelOf(provider, id, 'W/"1"'));
    t.equal(r.status, 200, 'the other replica took the lock and decided');
    t.equal(puts(provider, id), 2, "A's hung PUT (never applied) and B's");
    t.equal(provider.store.read(id)!.resource.status, 'cancelled');
    const again = await send(b.port, cancelOf(provider, id, 'W/"1"'));
    t.equal(again.status, 409, 'and the same version is not forwarded again');
    t.equal(puts(provider, id), 2);
  });

  await t.test('PostgreSQL stopped mid-run: 500 and nothing forwarded; recovery when it is back', async (t) => {
    const id = 'rep-db';
    provider.store.create(appointment(template, id), id);
    pg.stop();
    const r = await send(b.port, cancelOf(provider, id, 'W/"1"'));
    t.equal(r.status, 500);
    t.equal(r.json.issue[0].details.coding[0].code, 'INTERNAL_SERVER_ERROR');
    t.equal(puts(provider, id), 0, 'nothing forwarded without its pre-image');
    await pg.start();
    let ok = 0;
    for (let i = 0; i < 20 && ok === 0; i++) {
      const again = await send(b.port, cancelOf(provider, id, 'W/"1"'));
      if (again.status === 200) ok++;
      else t.equal(again.status, 500, 'until the pool reconnects, 500');
    }
    t.equal(ok, 1, 'served again once PostgreSQL is back');
    t.equal(puts(provider, id), 1);
    t.equal((await vault.history(id)).length, 1);
  });
}
