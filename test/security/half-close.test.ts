/**
 * A client that half-closes (sends its FIN) after its last request is still reading: a FIN ends
 * what the client sends, not what it receives (RFC 9112 §9.6 closes a connection in stages). Its
 * answers are written before the gateway closes — above all a cancel's, which the provider has
 * applied by then (review of stop 36: the cancel was forwarded, the client got nothing, 499).
 */
import t from 'tap';
import { cancelRequest, identityHeaders, startHarness, type RequestOptions } from '../helpers/harness.js';
import { parseResponses, rawTls } from '../reliability/support.js';

function raw(o: RequestOptions): string {
  const body = o.body === undefined ? '' : String(o.body);
  const lines = [`${o.method} ${o.path} HTTP/1.1`, 'Host: localhost', ...Object.entries(o.headers ?? {}).map(([k, v]) => `${k}: ${v}`)];
  if (body) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

t.test('a cancel followed by the client\'s FIN: answered 200, then closed', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  const req = await cancelRequest(h, 'nhs-booking', id);
  const puts = h.provider.requests.filter((r) => r.method === 'PUT').length;
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  c.socket.end(raw(req));
  t.ok(await c.closed(5000), 'the gateway closes the connection once it has answered');
  const answers = parseResponses(c.received());
  t.same(answers.map((a) => a.status), [200], 'the cancel\'s answer reached the client');
  t.equal(h.provider.requests.filter((r) => r.method === 'PUT').length, puts + 1, 'forwarded once');
});

t.test('pipelined reads and a cancel, then FIN: every one answered, in order', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const [a, b] = h.provider.store.ids();
  const req = await cancelRequest(h, 'nhs-booking', b!);
  const read = raw({ method: 'GET', path: `/STU3/1/Appointment/${a}`, headers: identityHeaders('nhs-booking', 'read') });
  const n = 30;
  h.provider.fault('slow', { method: 'GET', path: new RegExp(`/Appointment/${a}$`), delayMs: 20 });
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  c.socket.end(read.repeat(n) + raw(req));
  t.ok(await c.closed(10_000), 'closed after the last answer');
  const answers = parseResponses(c.received());
  t.same(answers.map((x) => x.status), [...Array(n).fill(200), 200], 'all answered');
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
  const deadline = Date.now() + 3000;
  while (!h.audit.some((a) => a.traceId === traceId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.match(h.audit.find((a) => a.traceId === traceId), { status: 499, outcome: 'error' });
  t.equal(h.provider.requests.length, before, 'nothing reached the provider');
});
