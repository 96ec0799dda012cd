/**
 * A client's FIN (RFC 9112 §9.6 lets a client close in stages) is taken as the client leaving, as
 * nginx takes it (its 499): a FIN cannot tell a half-close from a client that gave up. So a write
 * not yet forwarded when it comes is not forwarded at all — no one would learn its outcome (review
 * of stop 36: the cancel was forwarded and its 200 reached no one) — and it is recorded as 499.
 */
import t from 'tap';
import { cancelRequest, startHarness } from '../helpers/harness.js';
import { rawRequest, rawTls } from '../reliability/support.js';

const raw = rawRequest;

async function audited(h: Awaited<ReturnType<typeof startHarness>>, traceId: string | undefined): Promise<object | undefined> {
  const deadline = Date.now() + 3000;
  while (!h.audit.some((a) => a.traceId === traceId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return h.audit.find((a) => a.traceId === traceId);
}

t.test('a cancel followed at once by the client\'s FIN: not forwarded, recorded as a client that left (499)', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  const req = await cancelRequest(h, 'nhs-booking', id);
  const traceId = (req.headers as Record<string, string>)['Ssp-TraceID'];
  h.provider.fault('slow', { method: 'GET', path: new RegExp(`/Appointment/${id}$`), delayMs: 100 });
  const puts = h.provider.requests.filter((r) => r.method === 'PUT').length;
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  c.socket.end(raw(req));
  t.ok(await c.closed(5000), 'closed');
  t.match(await audited(h, traceId), { status: 499, outcome: 'error' });
  t.equal(h.provider.requests.filter((r) => r.method === 'PUT').length, puts, 'nothing forwarded');
});

t.test('a FIN with nothing sent closes at once', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  c.socket.end();
  t.ok(await c.closed(2000), 'closed');
  t.equal(c.received().length, 0, 'nothing written');
});

t.test('a FIN in the middle of a body: the request can never be whole — recorded as a client that left (499), nothing forwarded', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  const req = await cancelRequest(h, 'nhs-booking', id);
  const traceId = (req.headers as Record<string, string>)['Ssp-TraceID'];
  const whole = raw(req);
  const before = h.provider.requests.length;
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  c.socket.end(whole.slice(0, whole.length - 100));
  t.ok(await c.closed(5000), 'closed');
  t.match(await audited(h, traceId), { status: 499, outcome: 'error' });
  t.equal(h.provider.requests.length, before, 'nothing reached the provider');
});

t.test('two cancels pipelined, then FIN: each recorded as a client that left, neither forwarded (review of stop 36)', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const [a, b] = h.provider.store.ids();
  const first = await cancelRequest(h, 'nhs-booking', a!);
  const second = await cancelRequest(h, 'nhs-booking', b!);
  h.provider.fault('slow', { method: 'GET', delayMs: 300 });
  const puts = h.provider.requests.filter((r) => r.method === 'PUT').length;
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  c.socket.end(raw(first) + raw(second));
  t.ok(await c.closed(5000), 'closed');
  for (const req of [first, second]) {
    t.match(await audited(h, (req.headers as Record<string, string>)['Ssp-TraceID']), { status: 499, outcome: 'error', appointmentId: req.path.split('/').pop() });
  }
  t.equal(h.provider.requests.filter((r) => r.method === 'PUT').length, puts, 'nothing forwarded');
  const decisions = h.logs.filter((l) => l.includes('"msg":"decision"') && l.includes('"status":499'));
  t.equal(decisions.length, 2, 'one decision line each');
});

t.test('a FIN in the middle of a head: no answer and no record — no request was made (review of stop 36)', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  const whole = raw(await cancelRequest(h, 'nhs-booking', id));
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  const before = h.audit.length;
  c.socket.end(whole.slice(0, 200));
  t.ok(await c.closed(5000), 'closed');
  t.equal(c.received().length, 0, 'nothing written back');
  // A request on another connection, recorded after it: the barrier for anything the FIN recorded.
  const next = await cancelRequest(h, 'nhs-booking', h.provider.store.ids()[1]!);
  t.equal((await h.request(next)).status, 200);
  t.same(h.audit.slice(before).map((a) => a.status), [200], 'only the other request was recorded');
});

t.test('a request queued behind one in flight, its body still arriving when the gateway cuts the connection (request timeout): its refusal, 400 (review of stop 36)', async (t) => {
  const h = await startHarness({ config: { limits: { requestTimeoutMs: 1000, headersTimeoutMs: 1000 } } });
  t.teardown(() => h.close());
  const [a, b] = h.provider.store.ids();
  const first = await cancelRequest(h, 'nhs-booking', a!);
  const second = await cancelRequest(h, 'nhs-booking', b!);
  h.provider.fault('slow', { method: 'GET', delayMs: 2500 });
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  const tail = raw(second);
  c.socket.write(raw(first) + tail.slice(0, tail.length - 50));
  t.ok(await c.closed(10_000), 'cut');
  t.match(await audited(h, (second.headers as Record<string, string>)['Ssp-TraceID']), { status: 400, outcome: 'rejected', code: 'REQUEST_MALFORMED' });
  t.match(await audited(h, (first.headers as Record<string, string>)['Ssp-TraceID']), { status: 499, outcome: 'error' });
});

t.test('a framing refusal queued behind a request in flight, the client gone before its turn: 499, not counted as a refusal made (review of stop 36)', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  const first = await cancelRequest(h, 'nhs-booking', id);
  h.provider.fault('slow', { method: 'GET', delayMs: 500 });
  const smuggled = 'PUT /STU3/1/Appointment/x HTTP/1.1\r\nHost: localhost\r\nX-Request-ID: framing-b\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n';
  const reads = h.provider.requests.filter((r) => r.method === 'GET' && r.url.endsWith(id)).length;
  const c = await rawTls(h.gateway.port);
  c.socket.write(raw(first) + smuggled);
  // Its own read at the provider (cancelRequest made one already): both requests are in the gateway's hands.
  while (h.provider.requests.filter((r) => r.method === 'GET' && r.url.endsWith(id)).length === reads) await new Promise((r) => setImmediate(r));
  c.socket.destroy();
  const deadline = Date.now() + 3000;
  while (!h.audit.some((a) => a.requestId === 'framing-b') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.match(h.audit.find((a) => a.requestId === 'framing-b'), { status: 499, outcome: 'error', code: 'REQUEST_MALFORMED' });
  const { adminGet, sample } = await import('../helpers/admin.js');
  const metrics = (await adminGet(h, '/metrics')).body;
  t.notOk(sample(metrics, 'cancel_gateway_rejections_total', { code: 'REQUEST_MALFORMED' }), 'no refusal was made: not counted');
});
