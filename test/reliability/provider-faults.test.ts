/**
 * Issue 8 item 4: provider faults, on the read of the current appointment (ruling 8, 17) and on the
 * forwarded PUT (ruling 11): refused, slower than upstream.timeoutMs (300 ms here), reset
 * mid-response, garbage, 5xx, a 200 with no body, a redirect. Each answered per the rulings: a read
 * fault -> 500 INTERNAL_SERVER_ERROR and no PUT; a PUT 5xx keeps its status; a PUT that is reset or
 * times out -> 500; never more than one PUT per cancel (no retry); no crash; and no socket leaked
 * (handle counts back to the baseline once the harnesses are closed).
 */
import t from 'tap';
import type { Fault } from '../../demo/provider/server.js';
import { seedAppointments } from '../../demo/provider/seed/index.js';
import { assertOutcome } from '../helpers/assert.js';
import { cancelRequest, identityHeaders, seen, startHarness, type Harness } from '../helpers/harness.js';
import { crashRecorder, eventually, metricValue, socketHandles } from './support.js';

const TIMEOUT = 300;
const crashes = crashRecorder();
const baseline = socketHandles();
const template = seedAppointments('nhs-booking')[0]!;

const h = await startHarness({ config: { upstream: { timeoutMs: TIMEOUT } } });
let closed = false;
t.teardown(async () => {
  crashes.stop();
  if (!closed) await h.close();
});

let n = 0;
/** A fresh booked appointment (some faults still let the provider apply the PUT). */
function fresh(): string {
  const id = `pf-${++n}`;
  h.provider.store.create(structuredClone(template), id);
  return id;
}
const puts = (id: string) => seen(h.provider, 'PUT', `/Appointment/${id}`);
const gets = (id: string) => seen(h.provider, 'GET', `/Appointment/${id}`);

interface FaultCase { name: string; fault: Fault; delayMs?: number }
const FAULTS: FaultCase[] = [
  { name: 'refused (connection closed without an answer)', fault: 'refuse' },
  { name: `slower than the timeout (1000 ms > ${TIMEOUT} ms)`, fault: 'slow', delayMs: 1000 },
  { name: 'never answering', fault: 'hang' },
  { name: 'reset mid-response', fault: 'reset-mid-response' },
  { name: 'a garbage (non-HTTP) answer', fault: 'garbage' },
  { name: '500 with an OperationOutcome', fault: 'status-500' },
  { name: '503 with an HTML body', fault: 'status-503-html' },
  { name: '504 with a text body', fault: 'status-504' },
  { name: '200 with no body', fault: 'empty-200' },
  { name: 'a redirect (307)', fault: 'redirect' },
];

t.test('faults on the read of the current appointment: 500 INTERNAL_SERVER_ERROR, one read, no PUT', async (t) => {
  for (const f of FAULTS) {
    const id = fresh();
    const req = await cancelRequest(h, 'nhs-booking', id); // reads through the gateway before the fault
    const readsBefore = gets(id);
    const remove = h.provider.fault(f.fault, { method: 'GET', path: new RegExp(`/Appointment/${id}$`), ...(f.delayMs ? { delayMs: f.delayMs } : {}) });
    const started = Date.now();
    const r = await h.request({ ...req, headers: { ...req.headers, 'X-Request-ID': `read-${f.fault}` } });
    const ms = Date.now() - started;
    remove();
    assertOutcome(t, r, 500, 'INTERNAL_SERVER_ERROR', { issue: 'exception' });
    t.equal(r.headers['x-correlation-id'], `read-${f.fault}`, `${f.name}: X-Correlation-ID`);
    t.equal(gets(id) - readsBefore, 1, `${f.name}: the provider got exactly one read (no retry)`);
    t.equal(puts(id), 0, `${f.name}: no PUT was forwarded`);
    t.ok(ms < TIMEOUT + 1500, `${f.name}: answered in ${ms} ms (bounded by the timeout)`);
    t.notOk(r.body.toString().includes('/moved'), `${f.name}: no provider URL leaks`);
  }
});

t.test('faults on the forwarded PUT: per ruling 11, exactly one PUT (never retried)', async (t) => {
  const expectations: Record<string, { status: number; spine?: string; gatewayOutcome: boolean }> = {
    'refuse': { status: 500, spine: 'INTERNAL_SERVER_ERROR', gatewayOutcome: true },
    'slow': { status: 500, spine: 'INTERNAL_SERVER_ERROR', gatewayOutcome: true },
    'hang': { status: 500, spine: 'INTERNAL_SERVER_ERROR', gatewayOutcome: true },
    'reset-mid-response': { status: 500, spine: 'INTERNAL_SERVER_ERROR', gatewayOutcome: true },
    'garbage': { status: 500, spine: 'INTERNAL_SERVER_ERROR', gatewayOutcome: true },
    // The provider's own OperationOutcome is passed on with its status (ruling 11).
    'status-500': { status: 500, spine: 'INTERNAL_SERVER_ERROR', gatewayOutcome: false },
    // Not an OperationOutcome: the status is kept, the gateway's OperationOutcome replaces the body.
    'status-503-html': { status: 503, spine: 'INTERNAL_SERVER_ERROR', gatewayOutcome: true },
    'status-504': { status: 504, spine: 'INTERNAL_SERVER_ERROR', gatewayOutcome: true },
    // A write the provider accepted reaches the client, counted as a contract breach (ruling 12).
    'empty-200': { status: 200, gatewayOutcome: false },
    // Out of contract for a cancel: never followed, never passed on (the Location is internal).
    'redirect': { status: 500, spine: 'INTERNAL_SERVER_ERROR', gatewayOutcome: true },
  };
  for (const f of FAULTS) {
    const want = expectations[f.fault]!;
    const id = fresh();
    const req = await cancelRequest(h, 'nhs-booking', id);
    const breaches = await metricValue(h.gateway.adminPort, 'cancel_gateway_provider_contract_breaches_total', { reason: 'body-not-json' });
    const remove = h.provider.fault(f.fault, { method: 'PUT', path: new RegExp(`/Appointment/${id}$`), ...(f.delayMs ? { delayMs: f.delayMs } : {}) });
    const r = await h.request({ ...req, headers: { ...req.headers, 'X-Request-ID': `put-${f.fault}` } });
    remove();
    if (want.gatewayOutcome) {
      assertOutcome(t, r, want.status, want.spine!, { issue: 'exception' });
      t.equal(r.headers['x-correlation-id'], `put-${f.fault}`, `${f.name}: X-Correlation-ID`);
    } else if (want.spine) {
      t.equal(r.status, want.status, `${f.name}: status ${want.status}`);
      t.equal(r.json?.issue?.[0]?.details?.coding?.[0]?.code, want.spine, `${f.name}: ${want.spine}`);
    } else {
      t.equal(r.status, 200, `${f.name}: 200 passed on`);
      t.equal(r.body.length, 0, `${f.name}: with the provider's empty body`);
      t.equal(r.headers.location, `https://gateway.example.nhs.uk/STU3/1/Appointment/${id}`, `${f.name}: Location on the public base`);
      t.equal(await metricValue(h.gateway.adminPort, 'cancel_gateway_provider_contract_breaches_total', { reason: 'body-not-json' }), breaches + 1, `${f.name}: counted as a contract breach`);
    }
    t.notOk(String(r.headers.location ?? '').includes('/moved') || r.body.toString().includes('/moved'), `${f.name}: no provider URL leaks`);
    t.equal(puts(id), 1, `${f.name}: the provider got exactly one PUT`);
    // Let any late provider work (the slow fault answers after its delay) finish, then re-check.
    if (f.fault === 'slow') await new Promise((res) => setTimeout(res, (f.delayMs ?? 0) + 100));
    t.equal(puts(id), 1, `${f.name}: still one PUT afterwards (no retry)`);
  }
});

t.test('provider unreachable (connection refused): 500, and the gateway recovers when it is back', async (t) => {
  // Port 1: privileged, nothing listens on it (a port freed by the test could be taken by another).
  const port = 1;
  const down = await startHarness({ config: { upstream: { url: `http://127.0.0.1:${port}`, timeoutMs: TIMEOUT } } });
  try {
    const id = down.provider.store.ids()[0]!;
    const read = await down.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders('nhs-booking', 'read') });
    assertOutcome(t, read, 500, 'INTERNAL_SERVER_ERROR');
    // A cancel built from the demo provider directly (the gateway cannot read it).
    const body = structuredClone(down.provider.store.read(id)!.resource) as Record<string, unknown>;
    body['status'] = 'cancelled';
    const r = await down.request({
      method: 'PUT', path: `/STU3/1/Appointment/${id}`,
      headers: { ...identityHeaders('nhs-booking', 'cancel'), 'If-Match': 'W/"1"', 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify(body),
    });
    assertOutcome(t, r, 500, 'INTERNAL_SERVER_ERROR', { issue: 'exception' });
    t.equal(down.provider.requests.length, 0, 'the (other) provider saw nothing');
    t.ok(await metricValue(down.gateway.adminPort, 'cancel_gateway_upstream_errors_total', { kind: 'refused' }) >= 2, 'counted as refused');
  } finally {
    await down.close();
  }
});

t.test('after all faults: no crash, normal service, and no leaked sockets', async (t) => {
  const id = fresh();
  const ok = await h.request(await cancelRequest(h, 'nhs-booking', id));
  t.equal(ok.status, 200, 'a normal cancel succeeds');
  t.equal(puts(id), 1);
  t.same(crashes.seen, [], 'no unhandled rejection or uncaught exception');
  await h.close();
  closed = true;
  t.ok(await eventually(() => socketHandles() <= baseline, 3000), `socket handles back to the baseline (${socketHandles()} now, ${baseline} before)`);
});
