/**
 * Ruling 16 and RFC 9112: what a request line and its framing headers may be. Sent raw over mTLS;
 * each refusal is an OperationOutcome and nothing reaches the provider.
 */
import t from 'tap';
import { cancelRequest, identityHeaders, startHarness } from '../helpers/harness.js';
import { parseResponses, rawTls } from '../reliability/support.js';

const h = await startHarness();
t.teardown(() => h.close());

/** Raw request bytes: a request line with `version`, then the headers, then the body as given. */
function raw(method: string, path: string, version: string, headers: Record<string, string>, body = ''): string {
  return [`${method} ${path} HTTP/${version}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', body].join('\r\n');
}

async function send(bytes: string): Promise<{ status: number; body: string; closed: boolean; headers: Record<string, string> }> {
  const c = await rawTls(h.gateway.port);
  c.socket.write(bytes);
  await c.bytes(12, 5000);
  const closed = await c.closed(2000);
  const [first] = parseResponses(c.received());
  c.socket.destroy();
  return { status: first?.status ?? 0, body: first?.body ?? '', closed, headers: (first?.headers ?? {}) as Record<string, string> };
}

t.test('HTTP/1.0 with Transfer-Encoding is faulty framing (RFC 9112 §6.1): 400, closed, not forwarded', async (t) => {
  const cancel = await cancelRequest(h, 'nhs-booking', 'appt-1');
  const body = String(cancel.body);
  const chunked = `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  const before = h.provider.requests.length;
  const r = await send(raw('PUT', cancel.path, '1.0', { Host: 'localhost', ...(cancel.headers as Record<string, string>), 'Transfer-Encoding': 'chunked' }, chunked));
  t.equal(r.status, 400);
  t.match(r.body, /"resourceType":\s*"OperationOutcome"/);
  t.ok(r.closed, 'the connection is closed');
  t.equal(h.provider.requests.length, before, 'nothing reached the provider');
});

t.test('a request line naming another HTTP version, or a Host naming two hosts: 400, not forwarded', async (t) => {
  const headers = { Host: 'localhost', ...identityHeaders('nhs-booking', 'read') };
  const before = h.provider.requests.length;
  for (const [name, bytes] of [
    ['HTTP/2.0 on an HTTP/1.1 connection', raw('GET', '/STU3/1/Appointment/appt-2', '2.0', headers)],
    ['Host: a, b', raw('GET', '/STU3/1/Appointment/appt-2', '1.1', { ...headers, Host: 'localhost, evil.example' })],
  ] as const) {
    const r = await send(bytes);
    t.equal(r.status, 400, name);
    t.match(r.body, /"resourceType":\s*"OperationOutcome"/, `${name}: an OperationOutcome`);
  }
  t.equal(h.provider.requests.length, before, 'nothing reached the provider');
  const ok = await send(raw('GET', '/STU3/1/Appointment/appt-2', '1.1', { ...headers, Connection: 'close' }));
  t.equal(ok.status, 200, 'the same read as HTTP/1.1 with one Host is served');
});

t.test('CONNECT (a tunnel) is no interaction: 404 as an OperationOutcome, logged, the connection closed', async (t) => {
  const before = h.provider.requests.length;
  const trace = '8e4b1c9a-6f39-4c41-9d44-0c7b5d2a1f10';
  const r = await send(raw('CONNECT', '127.0.0.1:22', '1.1', { Host: '127.0.0.1:22', 'Ssp-TraceID': trace, 'X-Request-ID': 'tunnel-1' }));
  t.equal(r.status, 404);
  t.match(r.body, /"resourceType":\s*"OperationOutcome"/);
  t.notMatch(r.body, /127\.0\.0\.1:22/, 'the target is not echoed');
  t.ok(Number.isFinite(Date.parse(r.headers.date ?? '')), 'a Date header, as on every answer (RFC 9110 §6.6.1)');
  t.equal(r.headers['x-correlation-id'], 'tunnel-1');
  t.ok(r.closed, 'the connection is closed');
  t.equal(h.provider.requests.length, before, 'nothing reached the provider');
  t.ok(h.logs.some((l) => l.includes('"decision"') && l.includes(trace) && l.includes('"status":404')), 'one decision line, with its trace id');
});
