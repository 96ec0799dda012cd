/**
 * Issue 8 item 2: HTTP abuse over raw TLS sockets (the harness client certificate, raw bytes):
 * smuggling framings (ruling 16: 400 and the connection closed, nothing reaches the provider),
 * oversized headers (431 or closed), slow headers and slow bodies (closed at the configured limits,
 * nothing forwarded), idle connections and a slowloris trickle (a normal request is still served),
 * clients that go away mid-body or mid-response (the gateway keeps serving, no half PUT upstream),
 * HTTP/1.0 (answered, then closed) and pipelining (answers in order).
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { CATALOGUE } from '../../src/errors.js';
import { cancelRequest, identityHeaders, readThrough, startHarness, type Harness } from '../helpers/harness.js';
import { catalogueCodes, eventually, parseResponses, rawTls, type RawConnection } from './support.js';
import { adminGet, sample } from '../helpers/admin.js';

const HEADERS_TIMEOUT = 300;
const REQUEST_TIMEOUT = 600;

const h = await startHarness({ config: { limits: { headersTimeoutMs: HEADERS_TIMEOUT, requestTimeoutMs: REQUEST_TIMEOUT } } });
t.teardown(() => h.close());
const ids = h.provider.store.ids();

/** A raw HTTP request: request line, headers (one line per value), blank line, body. */
function raw(method: string, path: string, headers: Record<string, string | string[] | undefined>, body = '', version = '1.1'): string {
  const lines = [`${method} ${path} HTTP/${version}`, 'Host: localhost'];
  for (const [k, v] of Object.entries(headers)) for (const x of v === undefined ? [] : Array.isArray(v) ? v : [v]) lines.push(`${k}: ${x}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}
const readHeaders = () => identityHeaders('nhs-booking', 'read');
const providerCount = () => h.provider.requests.length;

async function connect(): Promise<RawConnection> {
  return rawTls(h.gateway.port);
}

/** A normal read through a fresh connection: the gateway still serves. */
async function stillServes(t: { equal: Function }, label: string): Promise<void> {
  const r = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${ids[4]}`, headers: readHeaders() });
  t.equal(r.status, 200, `${label}: a normal read is still served`);
}

t.test('request smuggling framings: 400 REQUEST_MALFORMED, connection closed, the provider sees nothing', async (t) => {
  const cancel = await cancelRequest(h, 'nhs-booking', ids[0]!);
  const body = String(cancel.body);
  // A second request hidden after the first one's framing: it must never be answered or forwarded.
  const smuggled = raw('GET', `/STU3/1/Appointment/${ids[1]}`, readHeaders());
  const headers = { ...cancel.headers } as Record<string, string>;
  const cases: Array<[string, Record<string, string | string[]>, string]> = [
    ['Content-Length with Transfer-Encoding', { 'Content-Length': String(body.length), 'Transfer-Encoding': 'chunked' }, `0\r\n\r\n${smuggled}`],
    ['Transfer-Encoding then Content-Length', { 'Transfer-Encoding': 'chunked', 'Content-Length': '5' }, `0\r\n\r\n${smuggled}`],
    ['two different Content-Lengths', { 'Content-Length': [String(body.length), '5'] }, body + smuggled],
    ['a Content-Length list', { 'Content-Length': `${body.length}, 5` }, body + smuggled],
    ['a negative Content-Length', { 'Content-Length': '-1' }, body],
    ['chunked not last in Transfer-Encoding', { 'Transfer-Encoding': 'chunked, identity' }, `0\r\n\r\n${smuggled}`],
  ];
  const traceId = Object.entries(headers).find(([k]) => k.toLowerCase() === 'ssp-traceid')?.[1];
  for (const [name, framing, payload] of cases) {
    const before = providerCount();
    const audited = h.audit.length;
    const logged = h.logs.length;
    const c = await connect();
    c.socket.write(raw('PUT', `/STU3/1/Appointment/${ids[0]}`, { ...headers, ...framing }, payload));
    t.ok(await c.closed(3000), `${name}: the connection is closed`);
    const answers = parseResponses(c.received());
    t.equal(answers.length, 1, `${name}: exactly one answer (the smuggled request is not answered)`);
    t.equal(answers[0]?.status, 400, `${name}: 400`);
    const oo = JSON.parse(answers[0]?.body || '{}');
    t.ok(catalogueCodes('nhs-booking', 400, oo).includes('REQUEST_MALFORMED'), `${name}: a REQUEST_MALFORMED OperationOutcome`);
    t.equal(oo.issue?.[0]?.code, CATALOGUE.REQUEST_MALFORMED.issue);
    t.equal(answers[0]?.headers['connection'], 'close', `${name}: Connection: close`);
    t.equal(providerCount(), before, `${name}: the provider saw nothing`);
    // Ruling 19: a request refused by the HTTP parser still gets its decision line and, on the cancel route, its audit record.
    const records = h.audit.slice(audited);
    t.equal(records.length, 1, `${name}: one audit record`);
    t.match(records[0], { appointmentId: ids[0], outcome: 'rejected', status: 400, code: 'REQUEST_MALFORMED', traceId }, `${name}: the record names the appointment, the refusal and the trace id`);
    const decisions = h.logs.slice(logged).filter((l) => l.includes('"msg":"decision"'));
    t.equal(decisions.length, 1, `${name}: one decision line`);
    t.match(JSON.parse(decisions[0] ?? '{}'), { method: 'PUT', status: 400, code: 'REQUEST_MALFORMED', outcome: 'rejected', route: 'cancel', traceId }, `${name}: the decision line`);
  }
  t.equal(h.provider.store.currentVersion(ids[0]!), '1', 'the appointment is untouched');
  await stillServes(t, 'after smuggling attempts');
});

t.test('ruling 21: a framing refusal is written in the format asked for (_format, then Accept, then Content-Type)', async (t) => {
  const cancel = await cancelRequest(h, 'nhs-booking', ids[0]!);
  const body = String(cancel.body);
  const framing = { 'Content-Length': String(body.length), 'Transfer-Encoding': 'chunked' };
  const cases: Array<[string, string, Record<string, string>, RegExp]> = [
    ['_format=xml', '?_format=xml', {}, /^application\/fhir\+xml/],
    ['Accept XML', '', { Accept: 'application/fhir+xml' }, /^application\/fhir\+xml/],
    ['an XML Content-Type', '', { 'Content-Type': 'application/fhir+xml' }, /^application\/fhir\+xml/],
    ['_format=json beats Accept XML', '?_format=json', { Accept: 'application/fhir+xml' }, /^application\/fhir\+json/],
    ['nothing asked', '', {}, /^application\/fhir\+json/],
  ];
  for (const [name, query, extra, type] of cases) {
    const headers = { ...(cancel.headers as Record<string, string>), 'Content-Type': 'application/fhir+json', ...extra, ...framing };
    const audited = h.audit.length;
    const c = await connect();
    c.socket.write(raw('PUT', `/STU3/1/Appointment/${ids[0]}${query}`, headers, `0\r\n\r\n`));
    t.ok(await c.closed(3000), `${name}: closed`);
    const [answer] = parseResponses(c.received());
    t.equal(answer?.status, 400, `${name}: 400`);
    // Ruling 19: the record names the interaction the request claimed, as for a request that was parsed.
    t.ok(await eventually(() => h.audit.length > audited, 1000), `${name}: audited`);
    t.match(h.audit[audited], { status: 400, code: 'REQUEST_MALFORMED', appointmentId: ids[0], interaction: (headers as Record<string, string>)['Ssp-InteractionID'] }, `${name}: the interaction named`);
    t.match(String(answer?.headers['content-type']), type, `${name}: ${type}`);
    t.match(answer?.body ?? '', /OperationOutcome/, `${name}: an OperationOutcome`);
  }
});

t.test('oversized header block (> 16 KiB): 431 HEADERS_TOO_LARGE or closed, nothing forwarded', async (t) => {
  for (const [name, extra] of [
    ['one huge header', { 'X-Big': 'a'.repeat(17 * 1024) }],
    ['many headers', Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`X-H${i}`, 'b'.repeat(50)]))],
  ] as const) {
    const before = providerCount();
    const c = await connect();
    c.socket.write(raw('GET', `/STU3/1/Appointment/${ids[0]}`, { ...readHeaders(), ...extra }));
    t.ok(await c.closed(3000), `${name}: the connection is closed`);
    const answers = parseResponses(c.received());
    if (answers.length) {
      t.equal(answers[0]!.status, 431, `${name}: 431`);
      t.ok(catalogueCodes('nhs-booking', 431, JSON.parse(answers[0]!.body)).includes('HEADERS_TOO_LARGE'), `${name}: a HEADERS_TOO_LARGE OperationOutcome`);
    } else t.pass(`${name}: closed without an answer`);
    t.equal(providerCount(), before, `${name}: the provider saw nothing`);
    t.ok(h.logs.some((l) => l.includes('"msg":"decision"') && l.includes('"code":"HEADERS_TOO_LARGE"')), `${name}: a decision line`);
  }
  await stillServes(t, 'after oversized headers');
});

t.test('a head over limits.maxHeaderBytes (16 KiB) but within the parser\'s bound: 431 with the whole request — decision line, audit record, X-Correlation-ID, format asked for (rulings 14, 16, 19, 21)', async (t) => {
  const traceId = randomUUID();
  for (const [name, extra] of [
    ['one huge header', { 'X-Big': 'a'.repeat(20 * 1024) }],
    ['400 small headers', Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`X-H${i}`, 'b'.repeat(50)]))],
  ] as const) {
    const cancel = await cancelRequest(h, 'nhs-booking', ids[0]!);
    const before = providerCount();
    const audited = h.audit.length;
    const logged = h.logs.length;
    const c = await connect();
    const headers = { ...(cancel.headers as Record<string, string>), 'Ssp-TraceID': traceId, Accept: 'application/fhir+xml', 'X-Request-ID': 'big-head-1', ...extra };
    c.socket.write(raw('PUT', `/STU3/1/Appointment/${ids[0]}`, { ...headers, 'Content-Length': String(Buffer.byteLength(String(cancel.body))) }, String(cancel.body)));
    t.ok(await c.closed(3000), `${name}: the connection is closed`);
    const [answer] = parseResponses(c.received());
    t.equal(answer?.status, 431, `${name}: 431`);
    t.match(answer?.headers['content-type'], /^application\/fhir\+xml/, `${name}: in the format asked for`);
    t.equal(answer?.headers['x-correlation-id'], 'big-head-1', `${name}: X-Correlation-ID`);
    t.equal(providerCount(), before, `${name}: the provider saw nothing`);
    const records = h.audit.slice(audited);
    t.equal(records.length, 1, `${name}: one audit record`);
    t.match(records[0], { appointmentId: ids[0], outcome: 'rejected', status: 431, code: 'HEADERS_TOO_LARGE', traceId }, `${name}: the audit record`);
    const decisions = h.logs.slice(logged).filter((l) => l.includes('"msg":"decision"'));
    t.match(JSON.parse(decisions[0] ?? '{}'), { method: 'PUT', status: 431, code: 'HEADERS_TOO_LARGE', route: 'cancel', traceId }, `${name}: the decision line`);
  }
  // Beyond the parser's own bound (four times the limit) the parser refuses: still 431, closed.
  const audited = h.audit.length;
  const c = await connect();
  c.socket.write(raw('PUT', `/STU3/1/Appointment/${ids[0]}`, { ...readHeaders(), 'X-Big': 'a'.repeat(70 * 1024) }));
  t.ok(await c.closed(3000), 'a 70 KiB head: closed');
  const answers = parseResponses(c.received());
  if (answers.length) t.equal(answers[0]!.status, 431, 'a 70 KiB head: 431');
  // Its request line is no longer among the bytes the parser held: the route is unknown, and it is
  // audited all the same, so that a head this large cannot keep a cancel attempt out of the trail.
  const records = h.audit.slice(audited);
  t.equal(records.length, 1, 'a 70 KiB head: one audit record');
  t.match(records[0], { outcome: 'rejected', status: 431, code: 'HEADERS_TOO_LARGE' }, 'a 70 KiB head: the audit record');
  await stillServes(t, 'after heads over the limit');
});

t.test('a request the parser refuses is audited whatever request line its last TLS record shows (the client chooses where records end)', async (t) => {
  const cancel = await cancelRequest(h, 'nhs-booking', ids[0]!);
  const audited = h.audit.length;
  const before = providerCount();
  const c = await connect();
  // The cancel's head, then — in a TLS record of its own — a line that looks like another request, which the parser refuses.
  c.socket.write(raw('PUT', `/STU3/1/Appointment/${ids[0]}`, cancel.headers as Record<string, string>).replace(/\r\n\r\n$/, '\r\n'));
  await new Promise((r) => setImmediate(r));
  c.socket.write('GET /STU3/1/metadata HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n');
  t.ok(await c.closed(3000), 'the connection is closed');
  t.equal(providerCount(), before, 'the provider saw nothing');
  const records = h.audit.slice(audited);
  t.equal(records.length, 1, 'one audit record, although the last record names a passthrough route');
  t.match(records[0], { outcome: 'rejected', status: 400, code: 'REQUEST_MALFORMED' });
});

t.test(`slow headers: closed once headersTimeoutMs (${HEADERS_TIMEOUT} ms) has passed, nothing forwarded`, async (t) => {
  const before = providerCount();
  const c = await connect();
  const start = Date.now();
  const full = raw('GET', `/STU3/1/Appointment/${ids[0]}`, readHeaders());
  c.socket.write(full.slice(0, 60)); // request line and part of the headers
  t.ok(await c.closed(HEADERS_TIMEOUT * 10), 'the connection is closed');
  const waited = Date.now() - start;
  t.ok(waited >= HEADERS_TIMEOUT - 50, `not before the limit (${waited} ms)`);
  t.equal(parseResponses(c.received()).filter((r) => r.status === 200).length, 0, 'no 200 answer');
  t.equal(providerCount(), before, 'the provider saw nothing');
  await stillServes(t, 'after slow headers');
});

t.test(`slow body: closed (or 408) once requestTimeoutMs (${REQUEST_TIMEOUT} ms) has passed, nothing forwarded`, async (t) => {
  const cancel = await cancelRequest(h, 'nhs-booking', ids[1]!);
  const body = String(cancel.body);
  const before = providerCount();
  const c = await connect();
  const start = Date.now();
  c.socket.write(raw('PUT', `/STU3/1/Appointment/${ids[1]}`, { ...cancel.headers, 'Content-Length': String(body.length) } as Record<string, string>));
  // Trickle 10 bytes every 100 ms: the whole body would take far longer than the limit.
  let sent = 0;
  const timer = setInterval(() => {
    if (c.socket.destroyed || sent >= body.length - 10) return;
    c.socket.write(body.slice(sent, sent + 10));
    sent += 10;
  }, 100);
  const closed = await c.closed(REQUEST_TIMEOUT * 10);
  clearInterval(timer);
  const waited = Date.now() - start;
  const answers = parseResponses(c.received());
  t.ok(closed || answers[0]?.status === 408, `closed or 408 (after ${waited} ms, ${sent} of ${body.length} bytes sent)`);
  t.ok(waited >= REQUEST_TIMEOUT - 50, 'not before the limit');
  t.ok(sent < body.length, 'the body never completed');
  t.notOk(answers.some((r) => r.status === 200), 'no 200 answer');
  t.equal(providerCount(), before, 'the provider saw nothing (not even the read)');
  t.equal(h.provider.store.currentVersion(ids[1]!), '1', 'the appointment is untouched');
  const traceId = (cancel.headers as Record<string, string>)['Ssp-TraceID'];
  t.ok(await eventually(() => h.audit.some((a) => a.traceId === traceId)), 'audited');
  t.match(h.audit.find((a) => a.traceId === traceId), { status: 400, outcome: 'rejected', code: 'REQUEST_MALFORMED' }, "the gateway's own refusal, not a client that left (499)");
  await stillServes(t, 'after a slow body');
});

t.test('a whole cancel pipelined ahead of a head that times out: the gateway cuts the connection, and the cancel, whose answer is lost, is 499', async (t) => {
  const id = 'pipelined-cut';
  h.provider.store.create({ ...structuredClone(h.provider.store.read(ids[0]!)!.resource), id } as Parameters<typeof h.provider.store.create>[0], id);
  const undo = h.provider.fault('slow', { method: 'PUT', delayMs: HEADERS_TIMEOUT * 4 });
  t.teardown(undo);
  const cancel = await cancelRequest(h, 'nhs-booking', id);
  const body = String(cancel.body);
  const traceId = (cancel.headers as Record<string, string>)['Ssp-TraceID'];
  const c = await connect();
  c.socket.write(raw('PUT', `/STU3/1/Appointment/${id}`, { ...cancel.headers, 'Content-Length': String(body.length) } as Record<string, string>) + body + 'GET /STU3/1/Appoint');
  t.ok(await c.closed(REQUEST_TIMEOUT * 10), 'the gateway cut the connection (the second head never came)');
  t.ok(await eventually(() => h.audit.some((a) => a.traceId === traceId), 5000), 'audited');
  t.match(h.audit.find((a) => a.traceId === traceId), { status: 499, outcome: 'error' }, 'not recorded as the 200 its client never got');
  undo();
  await stillServes(t, 'after a cut pipelined connection');
});

t.test('a client that hangs up mid-body is recorded as 499 (it left), not as a malformed request', async (t) => {
  const cancel = await cancelRequest(h, 'nhs-booking', ids[1]!);
  const body = String(cancel.body);
  const traceId = (cancel.headers as Record<string, string>)['Ssp-TraceID'];
  const c = await connect();
  c.socket.write(raw('PUT', `/STU3/1/Appointment/${ids[1]}`, { ...cancel.headers, 'Content-Length': String(body.length) } as Record<string, string>) + body.slice(0, 40));
  // Gone once the gateway holds the request (its head parsed, in flight), before the body is whole.
  let inFlight = 0;
  for (let i = 0; i < 200 && inFlight < 1; i++) inFlight = sample((await adminGet(h, '/metrics')).body, 'cancel_gateway_in_flight_requests') ?? 0;
  t.equal(inFlight, 1, 'the request is in flight');
  c.socket.destroy();
  t.ok(await eventually(() => h.audit.some((a) => a.traceId === traceId)), 'audited');
  t.match(h.audit.find((a) => a.traceId === traceId), { status: 499, outcome: 'error' });
  await stillServes(t, 'after a client left mid-body');
});

t.test('slowloris: connections trickling header bytes are closed at the limit while normal requests are served', async (t) => {
  const before = providerCount();
  const conns = await Promise.all(Array.from({ length: 40 }, () => connect()));
  const line = raw('GET', `/STU3/1/Appointment/${ids[0]}`, readHeaders());
  let i = 0;
  const timer = setInterval(() => {
    i++;
    for (const c of conns) if (!c.socket.destroyed && i < line.length - 4) c.socket.write(line[i]!);
  }, 50);
  conns.forEach((c) => c.socket.write(line[0]!));
  await stillServes(t, 'while 40 connections trickle headers');
  const allClosed = await Promise.all(conns.map((c) => c.closed(HEADERS_TIMEOUT * 10)));
  clearInterval(timer);
  t.ok(allClosed.every(Boolean), 'every trickling connection was closed by the gateway');
  t.equal(providerCount(), before + 1, 'the provider saw only the normal read');
});

t.test('200 idle TLS connections do not prevent a normal request (and are reaped at the headers timeout)', async (t) => {
  // A harness with the default (10 s) header timeout, so that all 200 stay open during the request.
  const patient = await startHarness();
  t.teardown(() => patient.close());
  const idle: RawConnection[] = [];
  for (let i = 0; i < 200; i += 20) idle.push(...(await Promise.all(Array.from({ length: 20 }, () => rawTls(patient.gateway.port)))));
  const started = Date.now();
  const r = await patient.request({ method: 'GET', path: `/STU3/1/Appointment/${ids[0]}`, headers: readHeaders() });
  t.equal(r.status, 200, `a normal read is served with 200 idle connections open (${Date.now() - started} ms)`);
  t.equal(idle.filter((c) => !c.socket.destroyed).length, 200, 'all 200 idle connections were still open');
  for (const c of idle) c.socket.destroy();

  // With the short limits, idle connections are closed by the gateway (slowloris cannot hold them).
  const reaped = await Promise.all(Array.from({ length: 50 }, () => connect()));
  await stillServes(t, 'with 50 idle connections on the short-limit gateway');
  const closed = await Promise.all(reaped.map((c) => c.closed(HEADERS_TIMEOUT * 10)));
  t.ok(closed.every(Boolean), 'idle connections are closed by the gateway within the limit');
});

t.test('a client that aborts mid-body: no PUT upstream, the gateway keeps serving', async (t) => {
  for (const framing of ['content-length', 'chunked'] as const) {
    const id = ids[2]!;
    const cancel = await cancelRequest(h, 'nhs-booking', id);
    const body = String(cancel.body);
    const half = body.slice(0, Math.floor(body.length / 2));
    const puts = h.provider.requests.filter((r) => r.method === 'PUT').length;
    const c = await connect();
    const headers = { ...cancel.headers, ...(framing === 'chunked' ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': String(body.length) }) } as Record<string, string>;
    c.socket.write(raw('PUT', `/STU3/1/Appointment/${id}`, headers, framing === 'chunked' ? `${half.length.toString(16)}\r\n${half}\r\n` : half));
    await new Promise((r) => setTimeout(r, 50));
    c.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    t.equal(h.provider.requests.filter((r) => r.method === 'PUT').length, puts, `${framing}: the provider never got a PUT for the half body`);
    t.equal(h.provider.store.currentVersion(id), '1', `${framing}: the appointment is untouched`);
    await stillServes(t, `${framing}: after a client abort mid-body`);
  }
  // And the same appointment can still be cancelled by a whole request.
  const ok = await h.request(await cancelRequest(h, 'nhs-booking', ids[2]!));
  t.equal(ok.status, 200, 'a complete cancel of that appointment then succeeds');
});

t.test('a client that aborts mid-response: the gateway keeps serving', async (t) => {
  // A read (a search bundle, the largest answer) and a cancel, each cut after the first byte.
  const before = providerCount();
  const c1 = await connect();
  c1.socket.write(raw('GET', '/STU3/1/Appointment', identityHeaders('nhs-booking', 'search')));
  t.ok(await c1.bytes(1), 'the answer started');
  c1.socket.destroy();
  await stillServes(t, 'after an abort mid-read');

  const id = ids[3]!;
  const cancel = await cancelRequest(h, 'nhs-booking', id);
  const puts = h.provider.requests.filter((r) => r.method === 'PUT').length;
  const c2 = await connect();
  c2.socket.write(raw('PUT', `/STU3/1/Appointment/${id}`, { ...cancel.headers, 'Content-Length': String(Buffer.byteLength(String(cancel.body))) } as Record<string, string>, String(cancel.body)));
  t.ok(await c2.bytes(1), 'the cancel answer started');
  c2.socket.destroy();
  await stillServes(t, 'after an abort mid-cancel-answer');
  t.equal(h.provider.requests.filter((r) => r.method === 'PUT').length, puts + 1, 'the complete cancel was forwarded exactly once');
  const history = h.provider.store.history(id);
  t.equal(history.length, 2, 'stored once');
  t.equal(history[1]?.resource['status'], 'cancelled');
  t.ok(providerCount() > before, 'the provider was used');
});

t.test('HTTP/1.0: a read is answered 200 and the connection closed', async (t) => {
  const c = await connect();
  c.socket.write(raw('GET', `/STU3/1/Appointment/${ids[0]}`, readHeaders(), '', '1.0'));
  t.ok(await c.closed(3000), 'the connection is closed after the answer');
  const answers = parseResponses(c.received());
  t.equal(answers.length, 1);
  t.equal(answers[0]?.status, 200);
  t.equal(JSON.parse(answers[0]?.body || '{}').id, ids[0], 'the appointment');
});

t.test('pipelining: two reads in one packet on one socket get two answers, in order', async (t) => {
  const before = providerCount();
  const c = await connect();
  c.socket.write(raw('GET', `/STU3/1/Appointment/${ids[0]}`, readHeaders()) + raw('GET', `/STU3/1/Appointment/${ids[4]}`, readHeaders()));
  t.ok(await eventually(() => parseResponses(c.received()).length >= 2, 3000), 'two answers');
  const answers = parseResponses(c.received());
  t.same(answers.map((a) => a.status), [200, 200]);
  t.same(answers.map((a) => JSON.parse(a.body).id), [ids[0], ids[4]], 'in request order');
  t.notOk(c.socket.destroyed, 'the connection stays open (keep-alive)');
  c.socket.destroy();
  t.equal(providerCount(), before + 2);
  const { etag } = await readThrough(h, 'nhs-booking', ids[0]!);
  t.ok(etag, 'still serving');
});

/** A fresh booked appointment in the provider, copied from the first seed. */
function freshAppointment(id: string): string {
  h.provider.store.create({ ...structuredClone(h.provider.store.read(ids[0]!)!.resource), id, status: 'booked' }, id);
  return id;
}

t.test('pipelining: nothing behind an answer that closed the connection is handled (rulings 1, 16; RFC 9112 §9.6)', async (t) => {
  const id = freshAppointment('pipe-closed');
  const cancel = await cancelRequest(h, 'nhs-booking', id);
  const cancelHeaders = { ...(cancel.headers as Record<string, string>), 'Content-Length': String(Buffer.byteLength(String(cancel.body))) };
  for (const [name, first] of [
    ['a method override (400, close)', raw('PUT', `/STU3/1/Appointment/${id}`, { ...cancelHeaders, 'X-HTTP-Method-Override': 'DELETE' }, String(cancel.body))],
    ['an over-limit chunked body (413, close)', raw('PUT', `/STU3/1/Appointment/${id}`, { ...cancelHeaders, 'Content-Length': undefined, 'Transfer-Encoding': 'chunked' }, `${(1024 * 1024 + 10).toString(16)}\r\n${'x'.repeat(1024 * 1024 + 10)}\r\n0\r\n\r\n`)],
  ] as const) {
    const before = providerCount();
    const c = await connect();
    c.socket.write(first + raw('PUT', cancel.path, cancelHeaders, String(cancel.body)));
    t.ok(await c.closed(5000), `${name}: the connection is closed`);
    const answers = parseResponses(c.received());
    t.equal(answers.length, 1, `${name}: one answer`);
    t.equal(providerCount(), before, `${name}: the pipelined cancel never reached the provider`);
    c.socket.destroy();
  }
  const { resource } = await readThrough(h, 'nhs-booking', id);
  t.equal(resource.status, 'booked', 'the appointment is still booked');
});

t.test('pipelining: a cancel and a read on one connection are handled one at a time, in order', async (t) => {
  const id = freshAppointment('pipe-order');
  const cancel = await cancelRequest(h, 'nhs-booking', id);
  const cancelHeaders = { ...(cancel.headers as Record<string, string>), 'Content-Length': String(Buffer.byteLength(String(cancel.body))) };
  const c = await connect();
  c.socket.write(raw('PUT', cancel.path, cancelHeaders, String(cancel.body)) + raw('GET', `/STU3/1/Appointment/${id}`, readHeaders()));
  t.ok(await eventually(() => parseResponses(c.received()).length >= 2, 5000), 'two answers');
  const answers = parseResponses(c.received());
  t.same(answers.map((a) => a.status), [200, 200]);
  t.equal(JSON.parse(answers[1]!.body).status, 'cancelled', 'the read started after the cancel was answered');
  c.socket.destroy();
});

t.test('RFC 9112 §3.2: an HTTP/1.1 request without Host, or with two, is a 400 OperationOutcome, logged and audited; HTTP/1.0 needs none', async (t) => {
  const cancel = await cancelRequest(h, 'nhs-booking', ids[0]!);
  const headers = { ...(cancel.headers as Record<string, string>), 'Content-Length': String(Buffer.byteLength(String(cancel.body))) };
  for (const [name, text] of [
    ['no Host', raw('PUT', cancel.path, headers, String(cancel.body)).replace('Host: localhost\r\n', '')],
    ['two Hosts', raw('PUT', cancel.path, { ...headers, Host: 'elsewhere' }, String(cancel.body))],
  ] as const) {
    const before = providerCount();
    const audited = h.audit.length;
    const c = await connect();
    c.socket.write(text);
    t.ok(await eventually(() => parseResponses(c.received()).length >= 1, 3000), `${name}: answered`);
    const [answer] = parseResponses(c.received());
    t.equal(answer?.status, 400, name);
    t.equal(JSON.parse(answer?.body || '{}').resourceType, 'OperationOutcome', `${name}: an OperationOutcome`);
    t.equal(providerCount(), before, `${name}: nothing forwarded`);
    t.ok(await eventually(() => h.audit.length > audited, 1000), `${name}: audited`);
    t.match(h.audit[audited], { status: 400, code: 'REQUEST_MALFORMED', appointmentId: ids[0] });
    c.socket.destroy();
  }
  const c = await connect();
  c.socket.write(raw('GET', `/STU3/1/Appointment/${ids[4]}`, readHeaders(), '', '1.0').replace('Host: localhost\r\n', ''));
  t.ok(await c.closed(3000));
  t.equal(parseResponses(c.received())[0]?.status, 200, 'HTTP/1.0 without Host: served');
});

t.test('an Expect other than 100-continue is ignored (RFC 9110 §10.1.1), not a bare 417: the request goes through the checks', async (t) => {
  const c = await connect();
  c.socket.write(raw('GET', `/STU3/1/Appointment/${ids[4]}`, { ...readHeaders(), Expect: 'x-foo', 'X-Request-ID': 'rid-expect' }));
  t.ok(await eventually(() => parseResponses(c.received()).length >= 1, 3000), 'answered');
  const [answer] = parseResponses(c.received());
  t.equal(answer?.status, 200);
  c.socket.destroy();
  const d = await connect();
  d.socket.write(raw('GET', `/STU3/1/Appointment/${ids[4]}`, { ...readHeaders(), Authorization: 'Bearer x', Expect: 'x-foo', 'X-Request-ID': 'rid-expect' }));
  t.ok(await eventually(() => parseResponses(d.received()).length >= 1, 3000), 'answered');
  const [refused] = parseResponses(d.received());
  t.equal(refused?.status, 403, 'a bad token is refused as usual');
  t.equal(refused?.headers['x-correlation-id'], 'rid-expect');
  t.equal(JSON.parse(refused?.body || '{}').resourceType, 'OperationOutcome');
  d.socket.destroy();
});

t.test('Expect: 100-continue — 100 only when the body is to be read; a refusal known from the head goes out first and closes (RFC 9110 §10.1.1; review of stop 34)', async (t) => {
  const id = freshAppointment('expect-continue');
  const cancel = await cancelRequest(h, 'nhs-booking', id);
  const body = String(cancel.body);
  const headers: Record<string, string> = { ...(cancel.headers as Record<string, string>), 'Content-Length': String(Buffer.byteLength(body)), Expect: '100-continue' };
  const before = providerCount();
  // A bad token: refused from the head, no 100, the connection closed (its body was never asked for).
  const bad = await connect();
  bad.socket.write(raw('PUT', cancel.path, { ...headers, Authorization: 'Bearer x' }));
  t.ok(await bad.closed(3000), 'a refusal from the head: closed without the body');
  t.notMatch(String(bad.received()), /100 Continue/, 'no 100 Continue first');
  t.equal(parseResponses(bad.received())[0]?.status, 403);
  // A declared length over the limit: 413 before the upload.
  const big = await connect();
  big.socket.write(raw('PUT', cancel.path, { ...headers, 'Content-Length': String(8 * 1024 * 1024) }));
  t.ok(await big.closed(3000), '413: closed');
  t.notMatch(String(big.received()), /100 Continue/, '413: no 100 Continue first');
  t.equal(parseResponses(big.received())[0]?.status, 413);
  t.equal(providerCount(), before, 'the provider saw nothing');
  // A valid cancel: 100 Continue once the checks before the body pass, then the body, then 200.
  const ok = await connect();
  ok.socket.write(raw('PUT', cancel.path, headers));
  t.ok(await eventually(() => /^HTTP\/1\.1 100 Continue\r\n/.test(String(ok.received())), 3000), '100 Continue');
  ok.socket.write(body);
  t.ok(await eventually(() => /HTTP\/1\.1 200 /.test(String(ok.received())), 5000), 'then 200');
  t.equal(h.provider.requests.filter((r) => r.method === 'PUT' && r.url.endsWith(`/Appointment/${id}`)).length, 1, 'forwarded once');
  ok.socket.destroy();
});

t.test('ruling 14: a framing refusal echoes X-Request-ID as X-Correlation-ID', async (t) => {
  const c = await connect();
  c.socket.write(raw('PUT', `/STU3/1/Appointment/${ids[0]}`, { 'Content-Length': '2', 'Transfer-Encoding': 'chunked', 'X-Request-ID': 'req-42' }, '0\r\n\r\n'));
  t.ok(await c.closed(3000));
  const [answer] = parseResponses(c.received());
  t.equal(answer?.status, 400);
  t.equal(answer?.headers['x-correlation-id'], 'req-42');
});

t.test('a framing header past 2000 header lines is still seen: no request smuggled to the provider (rulings 16, 25)', async (t) => {
  const target = ids[2]!;
  const before = h.provider.store.currentVersion(target);
  const smuggledBody = JSON.stringify({ resourceType: 'Appointment', id: target, status: 'cancelled' });
  const smuggled = `PUT /Appointment/${target} HTTP/1.1\r\nHost: provider\r\nContent-Type: application/fhir+json\r\nContent-Length: ${smuggledBody.length}\r\n\r\n${smuggledBody}`;
  for (const framing of [`Content-Length: ${smuggled.length}`, 'Transfer-Encoding: chunked']) {
    const payload = framing.startsWith('Content-Length') ? smuggled : `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
    const lines = [`GET /STU3/1/Appointment/${ids[3]} HTTP/1.1`, 'Host: localhost'];
    for (const [k, v] of Object.entries(readHeaders())) lines.push(`${k}: ${v}`);
    for (let i = 0; i < 2000; i++) lines.push('x: y');
    lines.push(framing);
    const seenBefore = providerCount();
    const c = await connect();
    c.socket.write(`${lines.join('\r\n')}\r\n\r\n${payload}`);
    await c.closed(3000);
    const answers = parseResponses(c.received());
    t.equal(answers[0]?.status, 400, `${framing}: a body on a GET is refused (ruling 25), the framing header seen`);
    t.equal(providerCount(), seenBefore, `${framing}: the provider saw nothing`);
  }
  t.equal(h.provider.store.currentVersion(target), before, 'the appointment the smuggled PUT named is untouched');
});

// Last: it cancels ids[3] (whatever earlier tests left of it), which they read as stored.
t.test('ruling 19: garbage pipelined behind a cancel in one packet is recorded as itself, never under the cancel\'s trace id or interaction', async (t) => {
  const cancel = await cancelRequest(h, 'nhs-booking', ids[3]!);
  const body = String(cancel.body);
  const audited = h.audit.length;
  const c = await connect();
  c.socket.write(raw('PUT', cancel.path, { ...(cancel.headers as Record<string, string>), 'Content-Length': String(Buffer.byteLength(body)) }, body) + 'BLAH\r\n\r\n');
  t.ok(await eventually(() => parseResponses(c.received()).length >= 2, 5000), 'two answers');
  const [first, second] = parseResponses(c.received()).map((a) => a.status);
  t.equal(second, 400, 'the garbage is answered after the cancel');
  t.ok(await eventually(() => h.audit.length >= audited + 2, 2000), 'two records');
  const records = h.audit.slice(audited);
  const traceId = (cancel.headers as Record<string, string>)['Ssp-TraceID'];
  t.same(records.filter((r) => r.traceId === traceId).map((r) => r.status), [first], 'the cancel\'s trace id is on its own record only');
  const refused = records.find((r) => r.status === 400);
  t.match(refused, { outcome: 'rejected', code: 'REQUEST_MALFORMED' });
  t.equal(refused?.appointmentId, undefined, 'no appointment named for the garbage');
  t.equal(refused?.interaction, undefined, 'nor an interaction');
  c.socket.destroy();
});

t.test('RFC 9112 §3.2.2: a cancel in absolute form is routed, checked, forwarded and audited as its origin form (review of stop 33)', async (t) => {
  const id = freshAppointment('absolute-form');
  const cancel = await cancelRequest(h, 'nhs-booking', id);
  const headers: Record<string, string> = { ...(cancel.headers as Record<string, string>), 'Content-Length': String(Buffer.byteLength(String(cancel.body))) };
  const trace = headers['Ssp-TraceID'];
  const c = await connect();
  c.socket.write(raw('PUT', `https://localhost:${h.gateway.port}${cancel.path}`, headers, String(cancel.body)));
  t.ok(await eventually(() => parseResponses(c.received()).length >= 1, 5000), 'answered');
  const [answer] = parseResponses(c.received());
  t.equal(answer!.status, 200, 'the cancel went through its checks');
  const put = h.provider.requests.filter((r) => r.method === 'PUT' && r.url.endsWith(`/Appointment/${id}`));
  t.equal(put.length, 1, 'one PUT, at the provider\'s own path');
  t.ok(h.audit.some((a) => (a as { traceId?: string; appointmentId?: string }).traceId === trace && (a as { appointmentId?: string }).appointmentId === id), 'audited under its appointment');
  c.socket.destroy();
});

t.test('ruling 13: a method the HTTP parser does not know is 405 with Allow on a served path, 404 elsewhere — never 400 (review of stop 33)', async (t) => {
  const before = providerCount();
  for (const [method, path, status, allow] of [
    ['FOO', `/STU3/1/Appointment/${ids[0]}`, 405, /GET.*PUT|PUT.*GET/],
    ['get', `/STU3/1/Appointment/${ids[0]}`, 405, /GET/],
    ['BREW', '/STU3/1/Nothing/here', 404, undefined],
  ] as const) {
    const c = await connect();
    c.socket.write(raw(method, path, readHeaders()));
    t.ok(await c.closed(3000), `${method} ${path}: closed after the answer`);
    const [answer] = parseResponses(c.received());
    t.equal(answer?.status, status, `${method}: ${status}`);
    t.ok(catalogueCodes('nhs-booking', status, JSON.parse(answer?.body ?? '{}')).includes(status === 405 ? 'METHOD_NOT_ALLOWED' : 'ROUTE_NOT_FOUND'), `${method}: its OperationOutcome`);
    if (allow) t.match(answer?.headers['allow'], allow, `${method}: Allow names the methods served`);
  }
  t.equal(providerCount(), before, 'the provider saw nothing');
  t.ok(h.logs.some((l) => l.includes('"msg":"decision"') && l.includes('"method":"FOO"') && l.includes('METHOD_NOT_ALLOWED')), 'a decision line');
  t.ok(h.audit.some((a) => (a as { code?: string; appointmentId?: string }).code === 'METHOD_NOT_ALLOWED' && (a as { appointmentId?: string }).appointmentId === ids[0]), 'audited as a write attempt on its appointment');

  // Ruling 25 comes first (README step 2): an override header or `_method` is 400, as with a known method.
  for (const [what, path, extra] of [
    ['an override header', `/STU3/1/Appointment/${ids[0]}`, { 'X-HTTP-Method-Override': 'PUT' }],
    ['_method in the query', '/STU3/1/Nothing?_method=DELETE', {}],
    ['a look-alike of a checked header', `/STU3/1/Appointment/${ids[0]}`, { 'If.Match': 'W/"1"' }],
  ] as const) {
    const c = await connect();
    c.socket.write(raw('FOO', path, { ...readHeaders(), ...extra }));
    t.ok(await c.closed(3000), `${what}: closed`);
    t.equal(parseResponses(c.received())[0]?.status, 400, `${what}: 400 first`);
  }
  // A request line the parser read whole before (a chunked cancel) is not the refused request's: no 405 from it.
  const cancel = await cancelRequest(h, 'nhs-booking', freshAppointment('unknown-behind-chunked'));
  const body = String(cancel.body);
  const c = await connect();
  c.socket.write(raw('PUT', cancel.path, { ...(cancel.headers as Record<string, string>), 'Transfer-Encoding': 'chunked' }, `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`) + raw('FOO', '/STU3/1/Nothing', readHeaders()));
  t.ok(await eventually(() => parseResponses(c.received()).length >= 2, 5000), 'two answers');
  const answers = parseResponses(c.received());
  t.equal(answers[0]!.status, 200, 'the cancel');
  t.equal(answers[1]!.status, 404, 'the unknown method is judged on its own line (no route), not the cancel\'s');
  const records = h.audit.filter((a) => (a as { traceId?: string }).traceId === (cancel.headers as Record<string, string>)['Ssp-TraceID']);
  t.equal(records.length, 1, 'nor recorded under the cancel: the cancel has its one record');
  c.socket.destroy();

  // Two chunked cancels read whole in one packet, then an unknown method at a served path (review of stop 34).
  const [one, two] = [await cancelRequest(h, 'nhs-booking', freshAppointment('chunked-one')), await cancelRequest(h, 'nhs-booking', freshAppointment('chunked-two'))];
  const chunked = (r: typeof one) => raw('PUT', r.path, { ...(r.headers as Record<string, string>), 'Transfer-Encoding': 'chunked', 'X-Request-ID': `rq-${r.path.slice(-12)}` }, `${Buffer.byteLength(String(r.body)).toString(16)}\r\n${String(r.body)}\r\n0\r\n\r\n`);
  const e = await connect();
  e.socket.write(chunked(one) + chunked(two) + raw('FOO', `/STU3/1/Appointment/${ids[0]}`, readHeaders()));
  t.ok(await eventually(() => parseResponses(e.received()).length >= 3, 5000), 'three answers');
  const three = parseResponses(e.received());
  t.same(three.map((a) => a.status), [200, 200, 405], 'both cancels, then the unknown method\'s own verdict');
  t.equal(three[2]!.headers['x-correlation-id'], undefined, 'no correlation id borrowed from a cancel');
  for (const r of [one, two]) t.equal(h.audit.filter((a) => (a as { traceId?: string }).traceId === (r.headers as Record<string, string>)['Ssp-TraceID']).length, 1, 'each cancel has its one record');
  e.socket.destroy();

  // RTSP's methods: Node's parser says INVALID_CONSTANT, not INVALID_METHOD; the same 405.
  const d = await connect();
  d.socket.write(raw('DESCRIBE', `/STU3/1/Appointment/${ids[0]}`, readHeaders()));
  t.ok(await d.closed(3000), 'DESCRIBE: closed');
  t.equal(parseResponses(d.received())[0]?.status, 405, 'DESCRIBE: 405');
});

t.test('an unknown method gets first what a known one would: framing 400, 431, Host 400; absolute form routed (review of stop 34)', async (t) => {
  const before = providerCount();
  const path = `/STU3/1/Appointment/${ids[0]}`;
  for (const [what, line, extra, status] of <[string, string, Record<string, string | string[]>, number][]>[
    ['Content-Length with Transfer-Encoding', path, { 'Content-Length': '1', 'Transfer-Encoding': 'chunked' }, 400],
    ['Host twice', path, { Host: ['gw', 'gw'] }, 400],
    ['a head over limits.maxHeaderBytes', path, { 'X-Pad': 'a'.repeat(17 * 1024) }, 431],
    ['absolute form', `https://gw.example${path}`, {}, 405],
  ]) {
    const c = await connect();
    c.socket.write(raw('FOO', line, { ...readHeaders(), ...extra }));
    t.ok(await c.closed(3000), `${what}: closed`);
    const [answer] = parseResponses(c.received());
    t.equal(answer?.status, status, `${what}: ${status}`);
    if (status === 405) t.match(answer?.headers['allow'], /GET.*PUT|PUT.*GET/, `${what}: Allow`);
  }
  t.ok(h.audit.some((a) => (a as { code?: string; appointmentId?: string }).code === 'METHOD_NOT_ALLOWED' && (a as { appointmentId?: string }).appointmentId === ids[0]), 'the absolute-form one audited with its appointment');
  t.equal(providerCount(), before, 'the provider saw nothing');
});

t.test('an unknown method from a client not on the allow-list is 403, before any route (README order)', async (t) => {
  const hx = await startHarness({ config: { tls: { allowedClients: { subjects: ['only.this.one'], sans: [] } } } });
  t.teardown(() => hx.close());
  const c = await rawTls(hx.gateway.port);
  c.socket.write(raw('FOO', '/STU3/1/Appointment/appt-1', readHeaders()));
  t.ok(await c.closed(3000), 'closed');
  const [answer] = parseResponses(c.received());
  t.equal(answer?.status, 403);
  t.equal(answer?.headers['allow'], undefined, 'no Allow: nothing learned of the routes');
  // Whatever else is wrong with the request (an oversized head aside: 431 first, ruling 16): an
  // override header or a second Host the parser refuses with FOO, an over-long target, CL+TE,
  // CONNECT (review of stop 36).
  const heads = [
    raw('FOO', '/STU3/1/Appointment/appt-1', { ...readHeaders(), 'X-HTTP-Method-Override': 'PUT' }),
    raw('FOO', '/STU3/1/Appointment/appt-1', { ...readHeaders(), Host: 'a' }),
    raw('FOO', `/STU3/1/Appointment/${'a'.repeat(3000)}`, readHeaders()),
    raw('GET', '/STU3/1/Appointment/appt-1', { ...readHeaders(), 'Content-Length': '5', 'Transfer-Encoding': 'chunked' }),
    'CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n',
  ];
  for (const head of heads) {
    const d = await rawTls(hx.gateway.port);
    d.socket.write(head);
    t.ok(await d.closed(3000), 'closed');
    const [refused] = parseResponses(d.received());
    t.equal(refused?.status, 403, `403 for ${head.slice(0, 12)}…`);
    t.match(refused?.body, /ACCESS.DENIED|forbidden/i);
  }
});

t.test('a client not on the allow-list whose head is over limits.maxHeaderBytes gets 431, as every client does (ruling 16 first)', async (t) => {
  const hx = await startHarness({ config: { limits: { maxHeaderBytes: 4096 }, tls: { allowedClients: { subjects: ['only.this.one'], sans: [] } } } });
  t.teardown(() => hx.close());
  for (const method of ['FOO', 'GET']) {
    const c = await rawTls(hx.gateway.port);
    c.socket.write(raw(method, '/STU3/1/Appointment/appt-1', { ...readHeaders(), 'X-Pad': 'p'.repeat(6000) }));
    t.ok(await c.closed(3000), 'closed');
    t.equal(parseResponses(c.received())[0]?.status, 431, method);
  }
});

t.test('Content-Length: 00 is no body (RFC 9110 §8.6); a raw refusal of HEAD has no content (§9.3.2) (review of stop 34)', async (t) => {
  const c = await connect();
  c.socket.write(raw('GET', `/STU3/1/Appointment/${ids[0]}`, { ...readHeaders(), 'Content-Length': '00' }));
  t.ok(await eventually(() => parseResponses(c.received()).length >= 1, 5000), 'answered');
  t.equal(parseResponses(c.received())[0]!.status, 200, 'a read with Content-Length: 00 is served');
  c.socket.destroy();
  const d = await connect();
  d.socket.write(raw('HEAD', `/STU3/1/Appointment/${ids[0]}`, { ...readHeaders(), 'Content-Length': '5', 'Transfer-Encoding': 'chunked' }));
  t.ok(await d.closed(3000), 'closed');
  const text = String(d.received());
  t.match(text, /^HTTP\/1\.1 400 /, '400');
  t.match(text, /Content-Length: [1-9]\d*\r\n/, 'Content-Length of what GET would get');
  t.ok(text.endsWith('\r\n\r\n'), 'and no content after the head');
});
