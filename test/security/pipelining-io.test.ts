/**
 * The read path under pipelining (review of stop 35): a connection paused behind its queue stays
 * paused while answers are written (a slow reader's flood is not read into memory), a head it left
 * unread is not "late", a framing refusal is recorded once, and bytes after an answer that closed
 * the connection are no request at all.
 */
import t from 'tap';
import v8 from 'node:v8';
import vm from 'node:vm';
import { cancelRequest, identityHeaders, startHarness } from '../helpers/harness.js';
import { parseResponses, rawTls, writeUntilHeld } from '../reliability/support.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const head = (path: string, headers: Record<string, string>): string =>
  [`GET ${path} HTTP/1.1`, 'Host: localhost', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a client that never reads its answers cannot make the gateway read its flood while answers go out', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  c.socket.pause(); // never reads an answer: the gateway's writes back up, Node resumes on each answer
  gc();
  const before = process.memoryUsage().heapUsed;
  const chunk = Buffer.from('GET /x HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(2000));
  const written = await writeUntilHeld(c.socket, chunk, 100, 500);
  gc();
  const grown = (process.memoryUsage().heapUsed - before) / 1e6;
  t.ok(written < 100, `the gateway stopped reading (${written} writes of 2,000 requests taken)`);
  t.ok(grown < 40, `heap grew ${grown.toFixed(1)} MB`);
});

t.test('a head the gateway left unread behind its queue is not cut by the headers timeout', async (t) => {
  const h = await startHarness({ config: { upstream: { timeoutMs: 10_000 }, limits: { headersTimeoutMs: 1000, requestTimeoutMs: 2000 } } });
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  h.provider.fault('slow', { method: 'GET', path: new RegExp(`/Appointment/${id}$`), delayMs: 2500 });
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  const n = 20;
  c.socket.write(head(`/STU3/1/Appointment/${id}`, identityHeaders('nhs-booking', 'read')) + 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(n) + 'GET /x HTTP/1.1\r\nHo');
  await sleep(100);
  c.socket.write('st: a\r\n\r\n');
  let answers: ReturnType<typeof parseResponses> = [];
  while (answers.length < n + 2) {
    if (!(await c.bytes(c.received().length + 1, 6000))) break;
    answers = parseResponses(c.received());
  }
  t.equal(answers.length, n + 2, 'every request answered');
  t.equal(answers[0]?.status, 200, 'the slow read first');
});

t.test('a framing refusal behind a paused queue is answered and recorded once; nothing after it is read', async (t) => {
  const h = await startHarness({ config: { upstream: { timeoutMs: 10_000 } } });
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  h.provider.fault('slow', { method: 'GET', path: new RegExp(`/Appointment/${id}$`), delayMs: 500 });
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  const n = 20;
  const bad = 'POST /x HTTP/1.1\r\nHost: a\r\nX-Request-ID: bad-one\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n';
  c.socket.write(head(`/STU3/1/Appointment/${id}`, identityHeaders('nhs-booking', 'read')) + 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(n) + bad);
  await sleep(100);
  for (let i = 0; i < 5; i++) { c.socket.write('GET /y HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(10)); await sleep(20); }
  await c.closed(5000);
  await sleep(300);
  const answers = parseResponses(c.received());
  t.equal(answers.length, n + 2, 'the read, the 20, and the refusal');
  t.equal(answers.at(-1)?.status, 400);
  t.equal(h.logs.filter((l) => l.includes('"decision"') && l.includes('REQUEST_MALFORMED')).length, 1, 'one decision line for the refusal');
  t.equal(h.audit.filter((r) => JSON.stringify(r).includes('REQUEST_MALFORMED')).length, 1, 'one audit record');
});

for (const first of ['GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 'GET /x HTTP/1.0\r\n\r\n']) {
  t.test(`bytes after ${first.includes('1.0') ? 'an HTTP/1.0 request' : 'Connection: close'} are no request: not answered, not recorded`, async (t) => {
    const h = await startHarness();
    t.teardown(() => h.close());
    const c = await rawTls(h.gateway.port);
    t.teardown(() => c.socket.destroy());
    c.socket.write(first + 'GET /y HTTP/1.1\r\nHost: a\r\nX-Request-ID: second\r\n\r\n');
    await c.closed(3000);
    await sleep(200);
    t.same(parseResponses(c.received()).map((a) => a.status), [404], 'only the first answered');
    t.equal(h.logs.filter((l) => l.includes('"decision"')).length, 1, 'one decision line');
    t.notOk(h.logs.some((l) => l.includes('"second"')), 'nothing recorded for the bytes after it');
  });
}

const stallConfig = { upstream: { timeoutMs: 10_000 }, limits: { headersTimeoutMs: 1000, requestTimeoutMs: 2000 } };

t.test('slowloris behind a paused queue: a head trickled a byte at a time is still cut once the connection is read again', async (t) => {
  const h = await startHarness({ config: stallConfig });
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  h.provider.fault('slow', { method: 'GET', path: new RegExp(`/Appointment/${id}$`), delayMs: 2500 });
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  const t0 = Date.now();
  c.socket.write(head(`/STU3/1/Appointment/${id}`, identityHeaders('nhs-booking', 'read')) + 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(20) + 'GET /x HTTP/1.1\r\nX-a: ');
  while (Date.now() - t0 < 12_000 && !c.socket.destroyed) {
    if (await c.closed(500)) break;
    c.socket.write('a');
  }
  t.ok(c.socket.destroyed || (await c.closed(100)), `closed after ${Date.now() - t0} ms`);
  t.ok(Date.now() - t0 < 9000, 'within the headers timeout after the queue drained');
  t.equal(parseResponses(c.received()).length, 21, 'the queued requests were answered first');
});

t.test('a body trickled behind a paused queue held longer than the request timeout is still cut', async (t) => {
  const h = await startHarness({ config: stallConfig });
  t.teardown(() => h.close());
  const [id, id2] = h.provider.store.ids() as [string, string];
  const cr = await cancelRequest(h, 'nhs-booking', id2);
  h.provider.fault('slow', { method: 'GET', path: new RegExp(`/Appointment/${id}$`), delayMs: 5000 });
  const c = await rawTls(h.gateway.port);
  t.teardown(() => c.socket.destroy());
  const body = Buffer.from(cr.body as string);
  const put = [`PUT ${cr.path} HTTP/1.1`, 'Host: localhost', ...Object.entries(cr.headers!).map(([k, v]) => `${k}: ${v}`), `Content-Length: ${body.length}`, '', ''].join('\r\n');
  const t0 = Date.now();
  c.socket.write(head(`/STU3/1/Appointment/${id}`, identityHeaders('nhs-booking', 'read')) + 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(15) + put + body.subarray(0, 10).toString('latin1'));
  for (let i = 10; i < body.length - 1 && Date.now() - t0 < 15_000; i++) {
    if (await c.closed(500)) break;
    c.socket.write(body.subarray(i, i + 1));
  }
  t.ok(c.socket.destroyed || (await c.closed(100)), `closed after ${Date.now() - t0} ms`);
  t.ok(Date.now() - t0 < 10_000, 'within the request timeout after the queue drained');
  t.notOk(h.provider.requests.some((r) => r.method === 'PUT'), 'the cancel whose body never arrived was not forwarded');
});
