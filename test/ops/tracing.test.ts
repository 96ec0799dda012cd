import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { createOtelTracer, type OtelTracer } from '../../src/adapters/tracer-otel.js';
import { createTracer } from '../../src/compose.js';
import { applyEnv, buildConfig, ConfigError } from '../../src/config.js';
import { packageRoot } from '../../src/paths.js';
import { noTracer } from '../../src/ports/tracer.js';
import { startDemoProvider } from '../../demo/provider/server.js';
import type { RecordedRequest } from '../../demo/provider/server.js';
import { cancelRequest, identityHeaders, pki, PROVIDER_ASID, send, startHarness, type Harness } from '../helpers/harness.js';

/**
 * Tracing (issue 19 item 8) end to end: a real gateway over mTLS, the OpenTelemetry adapter
 * exporting OTLP/HTTP JSON to a collector stand-in on port 0, and the demo provider recording the
 * traceparent it was sent. Export happens on forceFlush, never by waiting.
 */

interface OtlpAttribute { key: string; value: { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number } }
interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes: OtlpAttribute[]; status: { code: number } }
interface Collector { url: string; spans: OtlpSpan[]; resources: OtlpAttribute[][]; contentTypes: string[]; close(): Promise<void> }

// OTLP's SpanKind numbering (the protobuf enum, which the JSON encoding keeps).
const KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;
const CHECKS = ['spine-headers', 'jwt', 'if-match', 'media-type', 'body', 'profile'];

/** The collector stand-in: accepts the exporter's POSTs to /v1/traces and keeps every span. */
async function startCollector(): Promise<Collector> {
  const spans: OtlpSpan[] = [];
  const resources: OtlpAttribute[][] = [];
  const contentTypes: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      contentTypes.push(String(req.headers['content-type']));
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const rs of body.resourceSpans ?? []) {
        resources.push(rs.resource?.attributes ?? []);
        for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`, spans, resources, contentTypes,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function attr(span: OtlpSpan, key: string): unknown {
  const v = span.attributes.find((a) => a.key === key)?.value;
  return v && (v.stringValue ?? v.intValue ?? v.boolValue ?? v.doubleValue);
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const parseTp = (tp: unknown) => /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(String(tp));

/** A fresh booked appointment, copied from a seeded one (each test cancels its own). */
function fresh(h: Harness, id: string): string {
  const r = structuredClone(h.provider.store.read('appt-1')!.resource);
  r.id = id;
  h.provider.store.create(r, id);
  return id;
}

/** What the provider received for a request of this method/id since `from`. */
function received(h: Harness, from: number, method: string, id: string): RecordedRequest[] {
  return h.provider.requests.slice(from).filter((r) => r.method === method && r.url.includes(`Appointment/${id}`));
}

t.test('tracing on: the request, each check and each provider call are spans in the caller\'s trace', async (t) => {
  const collector = await startCollector();
  t.teardown(() => collector.close());
  const tracer: OtelTracer = createOtelTracer({ serviceName: 'gw-under-test', otlpEndpoint: collector.url, sampleRatio: 1 });
  const h = await startHarness({ tracer });
  t.teardown(async () => { await h.close(); await tracer.shutdown(); });

  const id = fresh(h, 'trace-cancel');
  const req = await cancelRequest(h, 'nhs-booking', id);
  const sspTraceId = String(req.headers!['Ssp-TraceID']);
  const token = String(req.headers!.Authorization).replace(/^Bearer /, '');
  const from = h.provider.requests.length;
  const r = await h.request({ ...req, headers: { ...req.headers, traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` } });
  t.equal(r.status, 200, 'the cancel succeeded');
  await tracer.forceFlush();

  t.ok(collector.contentTypes.every((c) => c.startsWith('application/json')), 'OTLP/HTTP JSON');
  t.ok(collector.resources.some((res) => res.some((a) => a.key === 'service.name' && a.value.stringValue === 'gw-under-test')), 'service.name from the options');
  const root = collector.spans.find((s) => s.traceId === TRACE_ID && s.parentSpanId === CALLER_SPAN);
  if (!root) throw new Error('no request span continues the caller\'s trace');
  t.equal(root.kind, KIND.SERVER, 'the request span is a SERVER span');
  t.equal(attr(root, 'ssp.trace_id'), sspTraceId, 'tagged with the Spine trace id');
  t.equal(attr(root, 'http.method'), 'PUT');
  t.equal(attr(root, 'appointment.id'), id);
  t.equal(Number(attr(root, 'http.status_code')), 200);
  t.equal(root.status.code, 0, 'not marked failed');

  const children = collector.spans.filter((s) => s.parentSpanId === root.spanId);
  t.ok(children.every((s) => s.traceId === TRACE_ID), 'children in the same trace');
  const names = children.map((s) => s.name);
  for (const check of CHECKS) {
    const span = children.find((s) => s.name === check);
    t.ok(span, `a span for the ${check} check`);
    t.equal(span?.kind, KIND.INTERNAL, `${check}: INTERNAL`);
  }
  t.ok(names.includes('provider read') && names.includes('provider write'), `provider calls among ${names.join(', ')}`);

  for (const [name, method] of [['provider read', 'GET'], ['provider write', 'PUT']] as const) {
    const span = children.find((s) => s.name === name)!;
    t.equal(span.kind, KIND.CLIENT, `${name}: CLIENT`);
    t.equal(Number(attr(span, 'http.status_code')), 200, `${name}: the provider's status`);
    const sent = received(h, from, method, id);
    t.equal(sent.length, 1, `the provider got one ${method}`);
    const tp = parseTp(sent[0]?.headers.traceparent);
    t.ok(tp, `${method}: a valid traceparent reached the provider`);
    t.equal(tp?.[1], TRACE_ID, `${method}: in the caller's trace`);
    t.equal(tp?.[2], span.spanId, `${method}: its parent is the ${name} span`);
  }

  const everything = JSON.stringify(collector.spans);
  const body = String(req.body);
  t.notOk(everything.includes(token), 'the token is in no span');
  t.notOk(everything.includes(token.split('.')[1]!), 'nor its claims');
  t.notOk(everything.includes(body.slice(0, 60)), 'the body is in no span');
  for (const s of collector.spans) {
    for (const a of s.attributes) t.notOk(String(a.value.stringValue ?? '').length > 200, `${s.name}.${a.key}: short values only`);
  }
});

t.test('tracing on: no or an invalid traceparent starts a new trace, and passthrough carries it', async (t) => {
  const collector = await startCollector();
  t.teardown(() => collector.close());
  const tracer = createOtelTracer({ serviceName: 'gw', otlpEndpoint: collector.url, sampleRatio: 1 });
  const h = await startHarness({ tracer });
  t.teardown(async () => { await h.close(); await tracer.shutdown(); });

  for (const incoming of [undefined, 'garbage', `00-${'0'.repeat(32)}-${CALLER_SPAN}-01`, `ff-${TRACE_ID}-${CALLER_SPAN}-01`]) {
    const from = h.provider.requests.length;
    const headers: Record<string, string> = { ...identityHeaders('nhs-booking', 'read'), ...(incoming ? { traceparent: incoming } : {}) };
    const r = await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers });
    t.equal(r.status, 200, `${incoming}: read answered`);
    await tracer.forceFlush();
    const tp = parseTp(received(h, from, 'GET', 'appt-1')[0]?.headers.traceparent);
    t.ok(tp, `${incoming}: the provider got a valid traceparent`);
    t.not(tp?.[1], TRACE_ID, `${incoming}: not the caller's (invalid) trace`);
    const span = collector.spans.find((s) => s.spanId === tp?.[2]);
    t.ok(span, `${incoming}: the provider's parent is an exported span`);
    t.equal(span?.kind, KIND.SERVER, `${incoming}: the passthrough's parent is the request span`);
    t.equal(span?.traceId, tp?.[1]);
    t.notOk(span?.parentSpanId, `${incoming}: a new trace (no parent)`);
  }
});

t.test('tracing on: an unrouted request\'s span carries the Spine trace id too (review of stop 35)', async (t) => {
  const collector = await startCollector();
  t.teardown(() => collector.close());
  const tracer = createOtelTracer({ serviceName: 'gw', otlpEndpoint: collector.url, sampleRatio: 1 });
  const h = await startHarness({ tracer });
  t.teardown(async () => { await h.close(); await tracer.shutdown(); });
  const headers = identityHeaders('nhs-booking', 'read');
  const r = await h.request({ method: 'GET', path: '/STU3/1/Nope/x', headers: { ...headers, traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` } });
  t.equal(r.status, 404);
  await tracer.forceFlush();
  const span = collector.spans.find((s) => s.traceId === TRACE_ID && s.kind === KIND.SERVER);
  t.ok(span, 'the request span');
  t.equal(span && attr(span, 'ssp.trace_id'), headers['Ssp-TraceID'], 'tagged with the Spine trace id');
});

t.test('tracing on: sampleRatio 0 records nothing new, yet the trace id still reaches the provider', async (t) => {
  const collector = await startCollector();
  t.teardown(() => collector.close());
  const tracer = createOtelTracer({ serviceName: 'gw', otlpEndpoint: collector.url, sampleRatio: 0 });
  const h = await startHarness({ tracer });
  t.teardown(async () => { await h.close(); await tracer.shutdown(); });

  const from = h.provider.requests.length;
  const r = await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: identityHeaders('nhs-booking', 'read') });
  t.equal(r.status, 200);
  await tracer.forceFlush();
  t.equal(collector.spans.length, 0, 'nothing exported');
  const tp = /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/.test(String(received(h, from, 'GET', 'appt-1')[0]?.headers.traceparent));
  t.ok(tp, 'an unsampled traceparent (flags 00) was propagated');

  // A caller that sampled its trace is followed (parent-based sampling).
  await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: { ...identityHeaders('nhs-booking', 'read'), traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` } });
  await tracer.forceFlush();
  t.ok(collector.spans.some((s) => s.traceId === TRACE_ID && s.parentSpanId === CALLER_SPAN), 'the sampled caller\'s trace is recorded');
});

t.test('tracing off (the default): the gateway adds no traceparent; a client\'s own is forwarded unchanged', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const own = `00-${TRACE_ID}-${CALLER_SPAN}-01`;

  let from = h.provider.requests.length;
  await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: identityHeaders('nhs-booking', 'read') });
  t.equal(received(h, from, 'GET', 'appt-1')[0]?.headers.traceparent, undefined, 'passthrough: none added');

  from = h.provider.requests.length;
  await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: { ...identityHeaders('nhs-booking', 'read'), traceparent: own, tracestate: 'vendor=1' } });
  const got = received(h, from, 'GET', 'appt-1')[0]?.headers;
  t.equal(got?.traceparent, own, 'passthrough: the client\'s traceparent as sent');
  t.equal(got?.tracestate, 'vendor=1', 'and its tracestate');

  const id = fresh(h, 'trace-off-cancel');
  const req = await cancelRequest(h, 'nhs-booking', id);
  from = h.provider.requests.length;
  const r = await h.request({ ...req, headers: { ...req.headers, traceparent: own } });
  t.equal(r.status, 200);
  t.equal(received(h, from, 'GET', id)[0]?.headers.traceparent, own, 'cancel: the current read carries the client\'s traceparent');
  t.equal(received(h, from, 'PUT', id)[0]?.headers.traceparent, own, 'cancel: the write carries the client\'s traceparent');

  const plain = await cancelRequest(h, 'nhs-booking', fresh(h, 'trace-off-plain'));
  from = h.provider.requests.length;
  await h.request(plain);
  t.ok(h.provider.requests.slice(from).every((x) => x.headers.traceparent === undefined), 'cancel without one: none added');
});

t.test('configuration: off by default, an endpoint required when on, the env override, the composition', async (t) => {
  const p = pki();
  const raw = (extra: Record<string, unknown> = {}) => ({
    tls: { cert: p.files.serverCert, key: p.files.serverKey, clientCa: p.files.ca },
    upstream: { url: 'http://127.0.0.1:1' }, spine: { providerAsids: [PROVIDER_ASID] }, publicBaseUrl: 'https://gw.example', ...extra,
  });
  const off = buildConfig(raw());
  t.same(off.tracing, { enabled: false, serviceName: 'cancel-gateway', sampleRatio: 1 }, 'defaults');
  t.equal(await createTracer(off), noTracer, 'off: the no-op tracer');

  const e = t.throws(() => buildConfig(raw({ tracing: { enabled: true } }))) as unknown as ConfigError;
  t.match(e.problems.join('\n'), /tracing: must have required property 'otlpEndpoint'/, 'enabled needs an endpoint');
  for (const bad of [{ sampleRatio: 1.5 }, { sampleRatio: -0.1 }, { otlpEndpoint: 'otel-collector:4318' }, { serviceName: '' }, { exporter: 'grpc' }]) {
    t.throws(() => buildConfig(raw({ tracing: bad })), ConfigError, `refused: ${JSON.stringify(bad)}`);
  }

  const r = raw({ tracing: { enabled: true } }) as Record<string, unknown>;
  t.same(applyEnv(r, { GATEWAY_OTLP_ENDPOINT: 'http://otel-collector:4318/v1/traces' }), []);
  const on = buildConfig(r);
  t.equal(on.tracing.otlpEndpoint, 'http://otel-collector:4318/v1/traces', 'GATEWAY_OTLP_ENDPOINT sets tracing.otlpEndpoint');
  const tracer = await createTracer(on);
  t.not(tracer, noTracer, 'on: the OpenTelemetry tracer');
  await tracer.shutdown(); // nothing recorded: nothing sent to the (absent) collector
});

t.test('the real process: tracing from the file and GATEWAY_OTLP_ENDPOINT, spans exported on SIGTERM', async (t) => {
  const collector = await startCollector();
  t.teardown(() => collector.close());
  const provider = await startDemoProvider({ seed: 'nhs-booking' });
  t.teardown(() => provider.close());
  const p = pki();
  const dir = mkdtempSync(join(tmpdir(), 'gw-tracing-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(configFile, [
    'listen: { host: 127.0.0.1, port: 0 }',
    'admin: { host: 127.0.0.1, port: 0 }',
    'basePath: /STU3/1',
    'publicBaseUrl: https://gateway.example.nhs.uk/STU3/1',
    `tls: { cert: ${p.files.serverCert}, key: ${p.files.serverKey}, clientCa: ${p.files.ca} }`,
    `upstream: { url: "${provider.url}" }`,
    `spine: { providerAsids: ["${PROVIDER_ASID}"] }`,
    'audit: { destination: none }',
    'tracing: { enabled: true, serviceName: gw-process }',
  ].join('\n'));
  const child = spawn(process.execPath, [join(packageRoot, 'dist/src/main.js'), '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GATEWAY_OTLP_ENDPOINT: collector.url },
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => void child.kill('SIGKILL'));
  const ready = await new Promise<{ port: number }>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (l) => {
      try {
        const j = JSON.parse(l);
        if (j.msg === 'ready') resolve(j);
      } catch { /* not a log line */ }
    });
    child.on('exit', () => reject(new Error('gateway exited before ready')));
  });
  const headers: Record<string, string> = { ...identityHeaders('nhs-booking', 'read'), traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` };
  t.equal((await send(ready.port, { method: 'GET', path: '/STU3/1/Appointment/appt-1', headers })).status, 200);
  t.equal(collector.spans.length, 0, 'nothing exported yet (batched)');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exits 0');
  const root = collector.spans.find((s) => s.traceId === TRACE_ID && s.parentSpanId === CALLER_SPAN);
  t.ok(root, 'the request span was exported before exit');
  t.equal(attr(root!, 'ssp.trace_id'), headers['Ssp-TraceID']);
  t.ok(collector.resources.some((res) => res.some((a) => a.key === 'service.name' && a.value.stringValue === 'gw-process')), 'service.name from the file');
});
