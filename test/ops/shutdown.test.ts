import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../src/paths.js';
import { startDemoProvider } from '../../demo/provider/server.js';
import { adminGet } from '../helpers/admin.js';
import { identityHeaders, pki, PROVIDER_ASID, send } from '../helpers/harness.js';

/**
 * Issue 7 item 6: SIGTERM to the real process during a slow provider answer. Readiness turns
 * false at once, new connections are refused, the in-flight cancel completes, then the process
 * exits 0. Runs the built gateway (`npm test` builds it first, in `pretest`).
 */
const main = join(packageRoot, 'dist/src/main.js');
t.ok(existsSync(main), 'dist is built (npm test runs tsc in pretest)');

const p = pki();
/** The gateway's configuration in front of `providerUrl`, with `extra` lines. */
function gatewayYaml(providerUrl: string, extra: string[]): string {
  return [
    'listen: { host: 127.0.0.1, port: 0 }',
    'admin: { host: 127.0.0.1, port: 0 }',
    'basePath: /STU3/1',
    'publicBaseUrl: https://gateway.example.nhs.uk/STU3/1',
    `tls: { cert: ${p.files.serverCert}, key: ${p.files.serverKey}, clientCa: ${p.files.ca} }`,
    `upstream: { url: "${providerUrl}", timeoutMs: 5000 }`,
    `spine: { providerAsids: ["${PROVIDER_ASID}"] }`,
    ...extra,
  ].join('\n');
}

t.test('SIGTERM during a slow upstream request lets it complete', async (t) => {
  const provider = await startDemoProvider({ seed: 'nhs-booking' });
  t.teardown(() => provider.close());
  const dir = mkdtempSync(join(tmpdir(), 'gw-shutdown-'));
  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(configFile, gatewayYaml(provider.url, ['audit: { destination: none }', 'shutdown: { drainTimeoutMs: 5000 }']));
  const child = spawn(process.execPath, [main, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => void child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout });
  let onShutdownLine: () => void = () => {};
  // Logged by the signal handler that starts the drain: from then on readiness is false.
  const shutdownLogged = new Promise<void>((resolve) => (onShutdownLine = resolve));
  const ready = await new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    lines.on('line', (l) => {
      try {
        const j = JSON.parse(l);
        if (j.msg === 'ready') resolve(j);
        if (j.msg === 'shutdown requested') onShutdownLine();
      } catch { /* not a log line */ }
    });
    child.on('exit', () => reject(new Error('gateway exited before ready')));
  });
  const admin = { gateway: { adminPort: ready.adminPort } } as const;
  t.equal((await adminGet(admin as never, '/healthz')).status, 200);

  // Read, then a cancel whose forward the provider answers slowly.
  const read = await send(ready.port, { method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: identityHeaders('nhs-booking', 'read') });
  t.equal(read.status, 200);
  const body = { ...read.json, status: 'cancelled' };
  // Long enough for the checks below on a loaded machine, under upstream.timeoutMs (5 s).
  provider.fault('slow', { method: 'PUT', delayMs: 3000 });
  const cancel = send(ready.port, {
    method: 'PUT', path: '/STU3/1/Appointment/appt-1', body: JSON.stringify(body),
    headers: { ...identityHeaders('nhs-booking', 'cancel'), 'If-Match': String(read.headers.etag), 'Content-Type': 'application/fhir+json' },
  });
  // Wait until the PUT is at the provider, then signal.
  for (let i = 0; i < 100 && !provider.requests.some((r) => r.method === 'PUT'); i++) await new Promise((r) => setTimeout(r, 20));
  t.ok(provider.requests.some((r) => r.method === 'PUT'), 'the cancel is in flight at the provider');
  child.kill('SIGTERM');
  // Not a sleep: a request sent in the same turn as the signal may be served before the
  // signal's handler runs (libuv runs signal watchers after the other I/O of a turn).
  await shutdownLogged;
  const readyz = await adminGet(admin as never, '/readyz');
  t.equal(readyz.status, 503, 'readiness fails at once');
  t.equal(JSON.parse(readyz.body).draining, true);
  const refused = await send(ready.port, { method: 'GET', path: '/STU3/1/Appointment/appt-2', headers: identityHeaders('nhs-booking', 'read') }).then(
    (r) => `answered ${r.status}`,
    (e: NodeJS.ErrnoException) => e.code ?? 'error',
  );
  t.equal(refused, 'ECONNREFUSED', 'new connections are refused');
  const done = await cancel;
  t.equal(done.status, 200, 'the in-flight cancel completed');
  t.equal(done.json?.status, 'cancelled');
  t.equal(await exited, 0, 'then the process exits 0');
});

t.test('SIGTERM past the drain deadline: the in-flight cancel is still audited and logged before the exit', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { startGateway } = await import('../helpers/gateway-process.js');
  const provider = await startDemoProvider({ seed: 'nhs-booking' });
  t.teardown(() => provider.close());
  const dir = mkdtempSync(join(tmpdir(), 'gw-shutdown-'));
  const configFile = join(dir, 'gateway.yaml');
  const auditFile = join(dir, 'audit.jsonl');
  writeFileSync(configFile, gatewayYaml(provider.url, [`audit: { destination: "${auditFile}" }`, 'shutdown: { drainTimeoutMs: 300 }']));
  const gw = await startGateway(configFile);
  t.teardown(() => void gw.proc.kill('SIGKILL'));
  // 'close', not 'exit': the child's stdout is read to its end before the assertions on it.
  const order: string[] = [];
  const at: Record<string, number> = {};
  const exited = new Promise<number | null>((resolve) => gw.proc.on('close', (code) => (order.push('exit'), (at.exit = performance.now()), resolve(code))));
  let stdout = '';
  gw.proc.stdout!.on('data', (c) => (stdout += String(c)));
  const read = await send(gw.port, { method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: identityHeaders('nhs-booking', 'read') });
  provider.fault('slow', { method: 'PUT', delayMs: 3000 });
  const headers: Record<string, string> = { ...(identityHeaders('nhs-booking', 'cancel') as Record<string, string>), 'If-Match': String(read.headers.etag), 'Content-Type': 'application/fhir+json' };
  const trace = String(headers['Ssp-TraceID']);
  const cancel = send(gw.port, { method: 'PUT', path: '/STU3/1/Appointment/appt-1', body: JSON.stringify({ ...read.json, status: 'cancelled' }), headers }).then((r) => (order.push('answer'), (at.answer = performance.now()), r), () => undefined);
  for (let i = 0; i < 100 && !provider.requests.some((r) => r.method === 'PUT'); i++) await new Promise((r) => setTimeout(r, 20));
  t.ok(provider.requests.some((r) => r.method === 'PUT'), 'the cancel is in flight at the provider');
  gw.proc.kill('SIGTERM');
  t.equal(await exited, 0, 'the process exits 0 after the drain deadline');
  const answer = await cancel;
  t.equal(answer?.status, 500, 'the client gets the 500 its records say, not an empty reply');
  t.match(String(answer?.json?.issue?.[0]?.diagnostics), /may have been applied/, 'saying the write may have been applied');
  const audit = readFileSync(auditFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { traceId?: string; outcome?: string; status?: number });
  const rec = audit.find((a) => a.traceId === trace);
  t.ok(rec, 'the in-flight cancel has its audit record');
  t.not(rec?.outcome, 'forwarded', 'recorded as not completed');
  t.equal(rec?.status, 500, 'the status the client got');
  t.ok(stdout.split('\n').some((l) => l.includes('"decision"') && l.includes(trace)), 'and its decision line');
  // Ruling 23 at exit: the in-process lock would vanish with the process, so it stays until the hold ends.
  t.same(order, ['answer', 'exit'], 'the client was answered before the process exited');
  // The hold is upstream.timeoutMs (5 s) here; a process that did not wait would exit at once.
  t.ok((at.exit ?? 0) - (at.answer ?? 0) >= 3000, `the process stayed while the hold lasted (${Math.round((at.exit ?? 0) - (at.answer ?? 0))} ms after the answer)`);
  t.ok(stdout.split('\n').some((l) => l.includes('waiting for writes in doubt before exit') && l.includes('"holds":1')), 'the process waited out the hold of the write in doubt');
});

t.test('past the drain deadline a passthrough read still waiting for the provider is aborted: its client gets a 500 and its decision line is written before shutdown ends', async (t) => {
  const { startHarness } = await import('../helpers/harness.js');
  const h = await startHarness({ config: { upstream: { timeoutMs: 8000 } } });
  t.teardown(() => h.close());
  const undo = h.provider.fault('slow', { method: 'GET', delayMs: 6000 });
  t.teardown(undo);
  const headers = identityHeaders('nhs-booking', 'read');
  const trace = String(headers['Ssp-TraceID']);
  const read = h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-2', headers });
  while (!h.provider.requests.some((r) => r.method === 'GET' && r.url.includes('appt-2'))) await new Promise((r) => setImmediate(r));
  const t0 = performance.now();
  await h.gateway.shutdown(300);
  t.ok(performance.now() - t0 < 2500, `shutdown did not wait out the provider (${Math.round(performance.now() - t0)} ms)`);
  t.ok(h.logs.some((l) => l.includes('"msg":"decision"') && l.includes(trace)), 'its decision line is written before shutdown ends');
  const answer = await read.catch((e: Error) => e);
  t.equal((answer as { status?: number }).status, 500, 'the client got a 500, not an empty reply');
});

t.test('past the drain deadline a cancel whose body is still arriving is cut as the gateway\'s refusal, and recorded before shutdown ends', async (t) => {
  const tls = await import('node:tls');
  const { startHarness } = await import('../helpers/harness.js');
  const h = await startHarness();
  t.teardown(() => h.close());
  const headers = identityHeaders('nhs-booking', 'cancel');
  const trace = String(headers['Ssp-TraceID']);
  const head = [
    'PUT /STU3/1/Appointment/appt-1 HTTP/1.1', 'Host: localhost', 'Content-Type: application/fhir+json', 'If-Match: W/"1"', 'Content-Length: 100',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ].join('\r\n');
  const socket = tls.connect({ host: '127.0.0.1', port: h.gateway.port, servername: 'localhost', ca: p.ca.cert, cert: p.client.cert, key: p.client.key });
  t.teardown(() => socket.destroy());
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.on('close', () => r()));
  await new Promise<void>((r) => socket.once('secureConnect', () => r()));
  socket.write(`${head}\r\n\r\n{"resourceType":`);
  const before = h.audit.length;
  // The gateway is waiting for the rest of the body.
  for (let i = 0; i < 200 && !h.logs.some((l) => l.includes('appt-1')) && h.gateway.metrics && i < 20; i++) await new Promise((r) => setTimeout(r, 10));
  await h.gateway.shutdown(200);
  await closed;
  const line = h.logs.find((l) => l.includes('"msg":"decision"') && l.includes(trace));
  t.ok(line, 'its decision line is written before shutdown ends');
  t.match(String(line), /"status":400/, 'as the gateway\'s refusal of a body it stopped waiting for, not a client that left');
  t.match(String(line), /REQUEST_MALFORMED/);
  t.ok(h.audit.slice(before).some((a) => (a as { traceId?: string }).traceId === trace), 'and its audit record');
  t.equal(h.provider.requests.filter((r) => r.method === 'PUT').length, 0, 'nothing forwarded');
});

t.test('past the drain deadline a cancel still waiting for its appointment\'s lock (behind a write in doubt) gets its 500 and its records, not a reset (review of stop 34)', async (t) => {
  const { startHarness, cancelRequest } = await import('../helpers/harness.js');
  const h = await startHarness({ config: { upstream: { timeoutMs: 300, inDoubtHoldMs: 4000 } } });
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[3]!;
  const undo = h.provider.fault('slow', { method: 'PUT', delayMs: 5000, path: new RegExp(`/Appointment/${id}$`) });
  t.teardown(undo);
  const cancel = await cancelRequest(h, 'nhs-booking', id);
  const first = await h.request(cancel);
  t.equal(first.status, 500, 'the first write is in doubt: 500, the appointment stays locked');
  const second = { ...cancel, headers: { ...cancel.headers, 'Ssp-TraceID': '3c1d2e4a-0b3d-4c5e-9f6a-00000000cafe' } };
  const waiting = h.request(second).catch((e: Error) => e);
  // Queued for the lock behind the hold (its read has not started: the lock comes first).
  await new Promise((r) => setTimeout(r, 100));
  await h.gateway.shutdown(100);
  const answer = await waiting;
  t.equal((answer as { status?: number }).status, 500, 'its client got a 500, not a reset');
  const line = h.logs.find((l) => l.includes('"msg":"decision"') && l.includes('00000000cafe'));
  t.match(String(line), /"status":500/, 'recorded as the gateway\'s 500, not a client that left (499)');
  t.ok(h.audit.some((a) => (a as { traceId?: string }).traceId === '3c1d2e4a-0b3d-4c5e-9f6a-00000000cafe'), 'and audited');
  t.equal(h.provider.requests.filter((r) => r.method === 'PUT' && r.url.endsWith(`/Appointment/${id}`)).length, 1, 'only the first write reached the provider');
});

t.test('a connection that never sends a request does not hold the drain past its headers timeout (review of stop 34)', async (t) => {
  const { startHarness } = await import('../helpers/harness.js');
  const { rawTls } = await import('../reliability/support.js');
  const h = await startHarness({ config: { limits: { headersTimeoutMs: 400 } } });
  t.teardown(() => h.close());
  const silent = await rawTls(h.gateway.port);
  t.teardown(() => silent.socket.destroy());
  const t0 = performance.now();
  await h.gateway.shutdown(20_000);
  const ms = performance.now() - t0;
  t.ok(ms < 5000, `shutdown ended at the silent connection's headers timeout, not the 20 s drain (${Math.round(ms)} ms)`);
  t.ok(await silent.closed(3000), 'the silent connection was closed');
});

t.test('a connection that sends its first request soon after the drain began is served, on every Node version (review of stop 36)', async (t) => {
  const { startHarness, identityHeaders: ids } = await import('../helpers/harness.js');
  const { rawTls, parseResponses } = await import('../reliability/support.js');
  const h = await startHarness({ config: { limits: { headersTimeoutMs: 3000 } } });
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  await new Promise((r) => setTimeout(r, 300)); // a connection opened a moment before the drain
  const done = h.gateway.shutdown(10_000);
  await new Promise((r) => setTimeout(r, 100)); // the drain has begun: Node 26 counted this connection as idle
  t.notOk(c.socket.destroyed, 'not cut when the drain began');
  c.socket.write([`GET /STU3/1/Appointment/${id} HTTP/1.1`, 'Host: localhost', ...Object.entries(ids('nhs-booking', 'read')).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n'));
  t.ok(await c.closed(5000), 'closed after its answer');
  const answers = parseResponses(c.received());
  t.same(answers.map((a) => a.status), [200], 'its request was answered');
  t.match(answers[0]?.headers.connection, /close/, 'with Connection: close');
  await done;
});

t.test('a drain gives a head begun just before it its whole headers timeout, from its first byte (review of stop 36)', async (t) => {
  const { startHarness, identityHeaders: ids } = await import('../helpers/harness.js');
  const { rawTls, parseResponses } = await import('../reliability/support.js');
  const h = await startHarness({ config: { limits: { headersTimeoutMs: 1000 } } });
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  const head = [`GET /STU3/1/Appointment/${id} HTTP/1.1`, 'Host: localhost', ...Object.entries(ids('nhs-booking', 'read')).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  await new Promise((r) => setTimeout(r, 700));
  c.socket.write(head.slice(0, 40)); // begun 700 ms after the handshake
  const done = h.gateway.shutdown(10_000);
  await new Promise((r) => setTimeout(r, 500)); // past the handshake + 1 s, within first byte + 1 s
  t.notOk(c.socket.destroyed, 'not cut at the handshake\'s headers timeout');
  c.socket.write(head.slice(40));
  t.ok(await c.closed(5000), 'closed after its answer');
  t.same(parseResponses(c.received()).map((a) => a.status), [200], 'answered');
  await done;
});

t.test('requests pipelined behind the one in flight when the drain begins are recorded (499), never handled (review of stop 36)', async (t) => {
  const { startHarness, cancelRequest } = await import('../helpers/harness.js');
  const { rawTls, parseResponses, rawRequest } = await import('../reliability/support.js');
  const h = await startHarness();
  t.teardown(() => h.close());
  const ids = h.provider.store.ids().slice(0, 3);
  const reqs = await Promise.all(ids.map((id) => cancelRequest(h, 'nhs-booking', id)));
  h.provider.fault('slow', { method: 'GET', delayMs: 300 });
  const puts = h.provider.requests.filter((r) => r.method === 'PUT').length;
  const raw = reqs.map(rawRequest).join('');
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  c.socket.write(raw);
  while (!h.provider.requests.some((r) => r.method === 'GET' && r.url.endsWith(ids[0]!))) await new Promise((r) => setImmediate(r));
  await h.gateway.shutdown(5000);
  const answers = parseResponses(c.received());
  t.same(answers.map((a) => a.status), [200], 'the one in flight finished');
  t.equal(h.provider.requests.filter((r) => r.method === 'PUT').length, puts + 1, 'only it was forwarded');
  for (const o of reqs.slice(1)) {
    const traceId = (o.headers as Record<string, string>)['Ssp-TraceID'];
    t.match(h.audit.find((a) => a.traceId === traceId), { status: 499, outcome: 'error' }, 'the queued one is recorded');
  }
});

t.test('a request queued behind one in flight at the drain deadline, its body still arriving: the gateway cut it, 400 (review of stop 36)', async (t) => {
  const { startHarness, cancelRequest } = await import('../helpers/harness.js');
  const { rawTls, rawRequest } = await import('../reliability/support.js');
  const h = await startHarness({ config: { limits: { headersTimeoutMs: 1500, requestTimeoutMs: 5000 } } });
  t.teardown(() => h.close());
  const [a, b] = h.provider.store.ids();
  const first = await cancelRequest(h, 'nhs-booking', a!);
  const second = await cancelRequest(h, 'nhs-booking', b!);
  h.provider.fault('slow', { method: 'GET', delayMs: 3000 });
  const toRaw = rawRequest;
  const tail = toRaw(second);
  const reads = h.provider.requests.filter((r) => r.method === 'GET').length;
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  c.socket.write(toRaw(first) + tail.slice(0, tail.length - 30));
  while (h.provider.requests.filter((r) => r.method === 'GET').length === reads) await new Promise((r) => setImmediate(r));
  await h.gateway.shutdown(800);
  const traceId = (second.headers as Record<string, string>)['Ssp-TraceID'];
  t.match(h.audit.find((x) => x.traceId === traceId), { status: 400, outcome: 'rejected', code: 'REQUEST_MALFORMED' });
});
