/**
 * Ruling 16, hostile review round three: chunked framing that breaks inside a body the pipeline is
 * already reading is answered — once, 400 REQUEST_MALFORMED, Connection: close — at once, not
 * left to the request timeout (30 s here) with a decision line and audit record twice.
 */
import t from 'tap';
import { cancelRequest, identityHeaders, startHarness } from '../helpers/harness.js';
import { catalogueCodes, eventually, parseResponses, rawTls } from './support.js';

const h = await startHarness({ config: { limits: { requestTimeoutMs: 30_000, headersTimeoutMs: 10_000 } } });
t.teardown(() => h.close());
const id = h.provider.store.ids()[0]!;

function raw(path: string, headers: Record<string, string>, body: string): string {
  const lines = [`PUT ${path} HTTP/1.1`, 'Host: localhost', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

for (const [name, broken] of [
  ['a chunk size that is not hex', 'zz\r\n'],
  ['a chunk size past 64 bits', 'ffffffffffffffffff\r\n'],
] as const) {
  t.test(`${name}: 400 at once, closed, recorded once, nothing forwarded`, async (t) => {
    const cancel = await cancelRequest(h, 'nhs-booking', id);
    const headers: Record<string, string> = { ...(cancel.headers as Record<string, string>), 'Transfer-Encoding': 'chunked' };
    delete headers['Content-Length'];
    const traceId = headers['Ssp-TraceID']!;
    const puts = h.provider.requests.filter((r) => r.method === 'PUT').length;
    const c = await rawTls(h.gateway.port);
    const body = String(cancel.body);
    c.socket.write(raw(`/STU3/1/Appointment/${id}`, headers, `${(20).toString(16)}\r\n${body.slice(0, 20)}\r\n${broken}`));
    t.ok(await c.closed(5000), 'the connection is closed (well before the 30 s request timeout)');
    const answers = parseResponses(c.received());
    t.equal(answers.length, 1, 'one answer');
    t.equal(answers[0]?.status, 400);
    t.ok(catalogueCodes('nhs-booking', 400, JSON.parse(answers[0]?.body || '{}')).includes('REQUEST_MALFORMED'), 'REQUEST_MALFORMED');
    t.equal(answers[0]?.headers.connection, 'close');
    t.equal(h.provider.requests.filter((r) => r.method === 'PUT').length, puts, 'nothing forwarded');
    t.ok(await eventually(() => h.audit.some((a) => a.traceId === traceId)), 'audited');
    t.equal(h.audit.filter((a) => a.traceId === traceId).length, 1, 'once');
  });
}

t.test('a request refused before its body was read (a bad token), whose framing then breaks: one answer, then closed', async (t) => {
  const cancel = await cancelRequest(h, 'nhs-booking', id);
  const headers: Record<string, string> = { ...(cancel.headers as Record<string, string>), 'Transfer-Encoding': 'chunked', Authorization: 'Bearer not-a-token' };
  delete headers['Content-Length'];
  const bad = raw(`/STU3/1/Appointment/${id}`, headers, `14\r\n${String(cancel.body).slice(0, 20)}\r\nzz\r\n`);
  const read = `GET /STU3/1/Appointment/${id} HTTP/1.1\r\nHost: localhost\r\n${Object.entries(identityHeaders('nhs-booking', 'read')).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
  for (const [name, bytes, statuses] of [
    ['alone', bad, [403]],
    ['pipelined behind a read', read + bad, [200, 403]],
  ] as const) {
    const c = await rawTls(h.gateway.port);
    c.socket.write(bytes);
    t.ok(await c.closed(5000), `${name}: closed at once`);
    const answers = parseResponses(c.received());
    t.same(answers.map((a) => a.status), statuses, `${name}: one answer each, no second one for the broken body`);
    // Refused before the parser met the broken chunk (alone, in the same packet), the answer may
    // still say keep-alive; the connection is closed right after it either way.
    if (statuses.length > 1) t.equal(answers.at(-1)?.headers.connection, 'close', `${name}: the refusal closes the connection`);
  }
});
