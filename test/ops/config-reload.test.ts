import t from 'tap';
import { buildConfig } from '../../src/config.js';
import { adminGet, sample } from '../helpers/admin.js';
import { cancelRequest, seen, startHarness } from '../helpers/harness.js';

/** Issue 7: configuration reloads (SIGHUP in main.ts) apply to new requests, refused when unsafe. */
t.test('a configuration reload switches report mode for new requests; restart-only changes are refused', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const changed = async (id: string) => cancelRequest(h, 'nhs-booking', id, (r) => (r.description = 'changed'));

  t.equal((await h.request(await changed('appt-1'))).status, 422, 'enforced before the reload');
  const next = buildConfig({ ...structuredClone(h.config as object), report: { ...h.config.report, businessRules: 'report' } } as Record<string, unknown>);
  t.equal(h.gateway.reloadConfig(next), true);
  t.equal(h.gateway.config.report.businessRules, 'report');
  const puts = seen(h.provider, 'PUT', 'appt-2');
  t.equal((await h.request(await changed('appt-2'))).status, 200, 'reported only after the reload');
  t.equal(seen(h.provider, 'PUT', 'appt-2'), puts + 1);

  const moved = buildConfig({ ...structuredClone(h.config as object), listen: { host: '127.0.0.1', port: 12345 } } as Record<string, unknown>);
  t.equal(h.gateway.reloadConfig(moved), false, 'a listener change needs a restart');
  t.equal(h.gateway.config.report.businessRules, 'report', 'the current configuration is kept');
  t.ok(h.logs.some((l) => l.includes('configuration reload refused') && l.includes('"changed":["listen.port"]')), 'the refusal names the key');
  const probe = buildConfig({ ...structuredClone(h.config as object), readiness: { ...h.config.readiness, requireProvider: !h.config.readiness.requireProvider } } as Record<string, unknown>);
  t.equal(h.gateway.reloadConfig(probe), false, 'readiness is built once at start: its change needs a restart, not a silent no-op');

  const text = (await adminGet(h, '/metrics')).body;
  t.equal(sample(text, 'cancel_gateway_reloads_total', { kind: 'config', result: 'success' }), 1);
  t.equal(sample(text, 'cancel_gateway_reloads_total', { kind: 'config', result: 'failure' }), 2);
});

t.test('SIGHUP re-reads the configuration file of the real process', async (t) => {
  const { spawn } = await import('node:child_process');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { createInterface } = await import('node:readline');
  const { packageRoot } = await import('../../src/paths.js');
  const { pki, PROVIDER_ASID } = await import('../helpers/harness.js');
  const p = pki();
  const file = join(mkdtempSync(join(tmpdir(), 'gw-hup-')), 'gateway.yaml');
  const write = (extra: string) => writeFileSync(file, [
    'listen: { host: 127.0.0.1, port: 0 }', 'admin: { host: 127.0.0.1, port: 0 }', 'publicBaseUrl: https://gw.example/STU3/1',
    `tls: { cert: ${p.files.serverCert}, key: ${p.files.serverKey}, clientCa: ${p.files.ca} }`,
    'upstream: { url: "http://127.0.0.1:9" }', `spine: { providerAsids: ["${PROVIDER_ASID}"] }`, 'audit: { destination: none }', extra,
  ].join('\n'));
  write('');
  const child = spawn(process.execPath, [join(packageRoot, 'dist/src/main.js'), '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void child.kill('SIGKILL'));
  const lines: string[] = [];
  const waitFor = (text: string) => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no line with ${text}`)), 8000);
    const check = () => {
      if (lines.some((l) => l.includes(text))) {
        clearTimeout(timer);
        resolve();
        return true;
      }
      return false;
    };
    if (!check()) createInterface({ input: child.stdout }).on('line', (l) => { lines.push(l); check(); });
  });
  await waitFor('"ready"');
  write('report: { businessRules: maybe }');
  child.kill('SIGHUP');
  await waitFor('configuration reload failed');
  write('report: { businessRules: report }');
  child.kill('SIGHUP');
  await waitFor('configuration reloaded');
  t.pass('a bad file is refused and a good one applied, without a restart');
});

t.test('a reload never cuts the provider connections of a request that started before it, however long it waits', async (t) => {
  // A's write times out at 300 ms and holds the appointment for 2 s (in doubt); B, same appointment,
  // waits behind it and reads the current version after that, on the configuration it started with.
  const h = await startHarness({ config: { upstream: { timeoutMs: 300, inDoubtHoldMs: 2000 } } });
  t.teardown(() => h.close());
  const a = await cancelRequest(h, 'nhs-booking', 'appt-1');
  const b = await cancelRequest(h, 'nhs-booking', 'appt-1');
  h.provider.fault('slow', { method: 'PUT', delayMs: 1000 });
  const first = h.request(a);
  while (!h.provider.requests.some((r) => r.method === 'PUT')) await new Promise((r) => setImmediate(r));
  const second = h.request(b);
  // B is in the gateway (waiting for the lock) before the reload.
  while ((sample((await adminGet(h, '/metrics')).body, 'cancel_gateway_in_flight_requests') ?? 0) < 2) await new Promise((r) => setImmediate(r));
  const next = buildConfig({ ...structuredClone(h.config as object), jwt: { ...h.config.jwt, clockSkewSeconds: 30 } } as Record<string, unknown>);
  t.equal(h.gateway.reloadConfig(next), true, 'reloaded while A and B are in flight');
  t.equal((await first).status, 500, 'A: in doubt');
  const answer = await second;
  t.not(answer.status, 500, `B is decided on its own configuration's provider connections, not cut off by the reload (${answer.status}: ${String(answer.json?.issue?.[0]?.diagnostics)})`);
  t.ok([200, 409].includes(answer.status));
});

t.test('a shutdown after a reload still ends the requests begun before it: aborted past the deadline, answered and recorded', async (t) => {
  const h = await startHarness({ config: { upstream: { timeoutMs: 5000 } } });
  let closed = false;
  t.teardown(() => (closed ? undefined : h.close()));
  const a = await cancelRequest(h, 'nhs-booking', 'appt-1');
  h.provider.fault('slow', { method: 'PUT', delayMs: 4000 });
  const first = h.request(a).then((r) => r, (e: NodeJS.ErrnoException) => e.code ?? 'error');
  while (!h.provider.requests.some((r) => r.method === 'PUT')) await new Promise((r) => setImmediate(r));
  const next = buildConfig({ ...structuredClone(h.config as object), jwt: { ...h.config.jwt, clockSkewSeconds: 30 } } as Record<string, unknown>);
  t.equal(h.gateway.reloadConfig(next), true);
  await h.gateway.shutdown(300);
  closed = true;
  const answer = await first;
  t.equal(typeof answer === 'string' ? answer : answer.status, 500, 'the client gets the 500 its records say, not a reset connection');
  const rec = h.audit.find((r) => r.status === 500);
  t.ok(rec, 'and the request has its audit record');
  t.equal(rec?.inDoubt, true, 'in doubt: the write may have been applied');
  await h.provider.close();
});
