/**
 * Rulings 1 and 16: requests pipelined on one connection are handled one at a time, in order —
 * and a client pipelining faster than it is answered is read no further (backpressure), so that
 * one authenticated connection cannot fill the gateway's memory with parsed requests while an
 * answer is pending (a review sent 80,000 `GET /x` in 2.2 MB behind one slow read: +136 MB heap).
 */
import t from 'tap';
import v8 from 'node:v8';
import vm from 'node:vm';
import { identityHeaders, startHarness } from '../helpers/harness.js';
import { rawTls, writeUntilHeld } from '../reliability/support.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const head = (path: string, headers: Record<string, string>): string =>
  [`GET ${path} HTTP/1.1`, 'Host: localhost', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');

t.test('a pipelining flood behind a pending answer is not read into memory', async (t) => {
  const h = await startHarness({ config: { upstream: { timeoutMs: 10_000 } } });
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  h.provider.fault('slow', { method: 'GET', path: new RegExp(`/Appointment/${id}$`), delayMs: 6000 });
  gc();
  const before = process.memoryUsage().heapUsed;
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  c.socket.write(head(`/STU3/1/Appointment/${id}`, identityHeaders('nhs-booking', 'read')));
  while (!h.provider.requests.some((r) => r.url.endsWith(id))) await new Promise((r) => setImmediate(r));
  // 2,000 tiny requests per write, 40 writes (80,000 requests, 2.2 MB), until the gateway stops
  // reading: then the client's own buffer fills and a write waits for a drain that does not come.
  const chunk = Buffer.from('GET /x HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(2000));
  const written = await writeUntilHeld(c.socket, chunk, 40, 500);
  gc();
  const grown = (process.memoryUsage().heapUsed - before) / 1e6;
  t.ok(h.provider.requests.filter((r) => r.url.endsWith(id)).length === 1, 'the slow read is still the one in flight');
  t.ok(grown < 40, `heap grew ${grown.toFixed(1)} MB for ${written} writes of 2,000 requests (unbounded: ~1.7 KB per request)`);
});

t.test('once the pending answer is out, the paused connection is read again: every pipelined request answered, in order', async (t) => {
  const { parseResponses } = await import('../reliability/support.js');
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  h.provider.fault('slow', { method: 'GET', path: new RegExp(`/Appointment/${id}$`), delayMs: 300 });
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  const n = 60; // well past the pause threshold
  c.socket.write(head(`/STU3/1/Appointment/${id}`, identityHeaders('nhs-booking', 'read')) + 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(n));
  let answers: ReturnType<typeof parseResponses> = [];
  while (answers.length < n + 1) {
    if (!(await c.bytes(c.received().length + 1, 5000))) break;
    answers = parseResponses(c.received());
  }
  t.equal(answers.length, n + 1, 'every request answered');
  t.equal(answers[0]?.status, 200, 'the slow read first');
  t.ok(answers.slice(1).every((a) => a.status === 404), 'then each pipelined request, in order');
});

t.test('pipelined requests spanning many TLS records: every one answered, in order, none spliced into another (review of stop 35)', async (t) => {
  const { parseResponses } = await import('../reliability/support.js');
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  const n = 40; // ~4.7 KB each: the pause threshold is passed in the middle of a TLS record
  const pad = (i: number) => String(i).padStart(3, '0').repeat(1000);
  const from = h.provider.requests.length;
  c.socket.write(Array.from({ length: n }, (_, i) => head(`/STU3/1/Appointment/${id}?i=${i}`, { ...identityHeaders('nhs-booking', 'read'), 'X-Request-ID': `r${i}`, 'X-Pad': pad(i) })).join(''));
  let answers: ReturnType<typeof parseResponses> = [];
  while (answers.length < n) {
    if (!(await c.bytes(c.received().length + 1, 5000))) break;
    answers = parseResponses(c.received());
  }
  t.equal(answers.length, n, `every request answered (${answers.map((a) => `${a.status}:${a.headers['x-correlation-id']}`).join(' ')})`);
  t.same(answers.map((a) => a.status), Array(n).fill(200), 'each one 200');
  t.same(answers.map((a) => a.headers['x-correlation-id']), Array.from({ length: n }, (_, i) => `r${i}`), 'in order');
  const seenByProvider = h.provider.requests.slice(from);
  t.same(seenByProvider.map((r) => r.url), Array.from({ length: n }, (_, i) => `/Appointment/${id}?i=${i}`), 'the provider saw each one once, in order');
  t.ok(seenByProvider.every((r, i) => r.headers['x-pad'] === pad(i)), 'each with its own headers, nothing of another request in them');
});
