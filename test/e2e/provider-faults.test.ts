import t from 'tap';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { nhsBookingAppointment } from '../../demo/provider/seed/nhs-booking.js';
import { cancelRequest, identityHeaders, startHarness, type Harness } from '../helpers/harness.js';
import { adminGet } from '../helpers/admin.js';

/**
 * A provider written byte by byte: its answers to a PUT (the forwarded cancel) and to reads of a
 * few ids are scripted per appointment id. Every other GET is a valid appointment, version 1.
 */
type Script = (sock: net.Socket, id: string) => void;

function appointment(id: string, version: string, status = 'booked'): string {
  return JSON.stringify({ ...nhsBookingAppointment, id, status, meta: { ...(nhsBookingAppointment as { meta: object }).meta, versionId: version } });
}

function head(status: string, headers: string[], length?: number): string {
  return [`HTTP/1.1 ${status}`, ...headers, ...(length === undefined ? [] : [`Content-Length: ${length}`]), '', ''].join('\r\n');
}

async function startRawProvider(puts: Record<string, Script>, gets: Record<string, Script>): Promise<{ url: string; putsSeen: string[]; close(): Promise<void> }> {
  const putsSeen: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const headText = buf.slice(0, end);
        const length = Number(/content-length:\s*(\d+)/i.exec(headText)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        buf = buf.slice(end + 4 + length);
        const [method, path] = headText.split('\r\n')[0]!.split(' ');
        const id = decodeURIComponent(path!.split('/').pop() ?? '');
        if (method === 'PUT') {
          putsSeen.push(id);
          (puts[id] ?? ((s) => s.end(head('500 No', [], 0))))(sock, id);
        } else if (gets[id]) gets[id]!(sock, id);
        else {
          const body = appointment(id, '1');
          sock.write(head('200 OK', ['Content-Type: application/fhir+json', 'ETag: W/"1"'], Buffer.byteLength(body)) + body);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    putsSeen,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

function decisions(h: Harness): Array<Record<string, any>> {
  return h.logs.map((l) => JSON.parse(l)).filter((j) => j.msg === 'decision');
}

const OO = '{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"conflict","diagnostics":"the provider\'s own"}]}';
const PARTIAL_OO = '{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"conflict"';

t.test('a provider refusal whose body is then cut, slow or too large keeps its status, not in doubt (ruling 11)', async (t) => {
  const p = await startRawProvider({
    'cut-409': (s) => { s.write(head('409 Conflict', ['Content-Type: application/fhir+json'], 500) + PARTIAL_OO); setImmediate(() => s.destroy()); },
    'cut-503': (s) => { s.write(head('503 Busy', ['Content-Type: application/fhir+json', 'Retry-After: 7'], 500) + PARTIAL_OO); setImmediate(() => s.destroy()); },
    'slow-412': (s) => { s.write(head('412 Precondition Failed', ['Content-Type: application/fhir+json'], 500) + PARTIAL_OO); },
    'big-409': (s) => { s.write(head('409 Conflict', ['Content-Type: text/plain'], 3_000_000)); s.write(Buffer.alloc(3_000_000, 0x61)); },
  }, {});
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url, timeoutMs: 2000, bodyTimeoutMs: 300, maxAnswerBytes: 1_000_000 } } });
  t.teardown(() => h.close());
  const want: Record<string, number> = { 'cut-409': 409, 'cut-503': 503, 'slow-412': 412, 'big-409': 409 };
  for (const [id, status] of Object.entries(want)) {
    const req = await cancelRequest(h, 'nhs-booking', id);
    const r = await h.request(req);
    t.equal(r.status, status, `${id}: the provider's status is kept`);
    t.equal(r.json?.resourceType, 'OperationOutcome', `${id}: the gateway's OperationOutcome`);
    t.notMatch(r.body.toString(), /may have been applied/, `${id}: not in doubt`);
    if (id === 'cut-503') t.equal(r.headers['retry-after'], '7', 'its Retry-After is passed on');
    const rec = h.audit.find((a) => a.traceId === req.headers!['Ssp-TraceID']);
    t.equal(rec?.status, status);
    t.equal(rec?.outcome, status >= 500 ? 'error' : 'forwarded');
    t.notOk(rec?.inDoubt, `${id}: the audit record is not in doubt`);
  }
  t.same(p.putsSeen, Object.keys(want), 'each cancel was forwarded once');
  // Not held through doubt: the same appointment is decided again at once (read, then forwarded).
  const again = await h.request(await cancelRequest(h, 'nhs-booking', 'cut-409'));
  t.equal(again.status, 409);
  t.equal(p.putsSeen.length, 5);
});

t.test('a status outside 100–599 is no HTTP answer: 500, to a cancel (in doubt) and to a read', async (t) => {
  const odd: Script = (s) => s.end(head('600 Odd', ['Content-Type: text/plain'], 2) + 'no');
  const p = await startRawProvider({ 'odd-put': odd }, { 'odd-read': odd });
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url } } });
  t.teardown(() => h.close());
  const r = await h.request(await cancelRequest(h, 'nhs-booking', 'odd-put'));
  t.equal(r.status, 500);
  t.match(r.body.toString(), /invalid status; the write may have been applied/);
  const read = await h.request({ method: 'GET', path: '/STU3/1/Appointment/odd-read', headers: identityHeaders('nhs-booking', 'read') });
  t.equal(read.status, 500);
  t.equal(read.json?.resourceType, 'OperationOutcome');
  const m = await adminGet(h, '/metrics');
  t.match(m.body, /cancel_gateway_upstream_errors_total\{kind="protocol"\} 2/);
});

t.test('an answer that is no HTTP at all counts as protocol on every route (the cancel read, a passthrough read)', async (t) => {
  const garbage: Script = (s) => s.end('SSH-2.0-OpenSSH_9.2\r\n\r\n');
  const p = await startRawProvider({}, { 'garbage-read': garbage, 'garbage-pass': garbage });
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url } } });
  t.teardown(() => h.close());
  const body = JSON.stringify({ ...nhsBookingAppointment, id: 'garbage-read', status: 'cancelled' });
  const cancel = await h.request({ method: 'PUT', path: '/STU3/1/Appointment/garbage-read', body, headers: { ...identityHeaders('nhs-booking', 'cancel'), 'If-Match': 'W/"1"', 'Content-Type': 'application/fhir+json' } });
  t.equal(cancel.status, 500, "the cancel's read of the current appointment");
  const read = await h.request({ method: 'GET', path: '/STU3/1/Appointment/garbage-pass', headers: identityHeaders('nhs-booking', 'read') });
  t.equal(read.status, 500, 'a passthrough read');
  const m = await adminGet(h, '/metrics');
  t.match(m.body, /cancel_gateway_upstream_errors_total\{kind="protocol"\} 2/, 'both as protocol');
  t.notMatch(m.body, /cancel_gateway_upstream_errors_total\{kind="other"\}/, 'none as other');
});

t.test('a cancel 200 with single-valued headers twice and ETags that disagree: one value each, a breach; provider URLs in Link, Refresh, Alt-Svc dropped', async (t) => {
  const body = appointment('dup', '2', 'cancelled');
  const p = await startRawProvider({
    dup: (s) => s.write(head('200 OK', [
      'Content-Type: application/fhir+json', 'Content-Type: application/fhir+xml',
      'ETag: W/"7"', 'ETag: W/"2"',
      'Last-Modified: Thu, 01 Jan 2026 00:00:00 GMT', 'Last-Modified: Fri, 01 Jan 2100 00:00:00 GMT',
      'Link: <http://internal.provider:8080/fhir/Appointment/dup>; rel="self"', 'Refresh: 0; url=http://internal.provider/', 'Alt-Svc: h2="internal.provider:443"',
    ], Buffer.byteLength(body)) + body),
  }, {});
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url } } });
  t.teardown(() => h.close());
  const req = await cancelRequest(h, 'nhs-booking', 'dup');
  const r = await h.request(req);
  t.equal(r.status, 200);
  t.equal(r.headers['content-type'], 'application/fhir+json', 'the first Content-Type, the one the body was judged by');
  t.equal(r.headers.etag, 'W/"2"', 'the ETag the body agrees with');
  t.equal(r.headers['last-modified'], 'Thu, 01 Jan 2026 00:00:00 GMT');
  for (const name of ['link', 'refresh', 'alt-svc']) t.equal(r.headers[name], undefined, `${name} not passed back`);
  const rec = h.audit.find((a) => a.traceId === req.headers!['Ssp-TraceID']);
  t.same(rec?.breaches, ['etag-disagrees']);
  t.equal(rec?.versionAfter, '2');
});

t.test('a passthrough answer the provider cuts after its status line is its failure, not a client hang-up; a provider 404 is logged UPSTREAM_REFUSED', async (t) => {
  const p = await startRawProvider({}, {
    'cut-read': (s) => { s.write(head('200 OK', ['Content-Type: application/fhir+json', 'ETag: W/"1"'], 4000) + '{"resourceType":"Appointment"'); setTimeout(() => s.destroy(), 20); },
    'reset-read': (s) => { s.write(head('200 OK', ['Content-Type: application/fhir+json', 'ETag: W/"1"', 'Alt-Svc: h2=":443"', 'Link: <http://internal/x>'], 4000) + '{"resourceType":"Appointment"'); setTimeout(() => s.resetAndDestroy(), 20); },
    'gone-read': (s) => s.write(head('404 Not Found', ['Content-Type: text/plain'], 9) + 'not found'),
  });
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url } } });
  t.teardown(() => h.close());
  for (const id of ['cut-read', 'reset-read']) {
    const traceId = `7f1c2e4a-0b3d-4c5e-9f6a-${id === 'cut-read' ? '000000000001' : '000000000002'}`;
    await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: { ...identityHeaders('nhs-booking', 'read'), 'Ssp-TraceID': traceId } }).then(
      (r) => t.ok(r.body.length < 4000, `${id}: the client never sees a complete answer`),
      () => t.pass(`${id}: the client's answer is cut`),
    );
    const line = decisions(h).find((d) => d.traceId === traceId);
    t.equal(line?.status, 200, `${id}: the status that went out`);
    t.equal(line?.outcome, 'error', `${id}: recorded as a failure`);
    t.equal(line?.code, 'UPSTREAM_UNAVAILABLE', `${id}: the provider's`);
  }
  const m = await adminGet(h, '/metrics');
  t.match(m.body, /cancel_gateway_upstream_errors_total\{kind="reset"\} 2/);
  t.notMatch(m.body, /status="499"/, 'no client hang-up counted');
  const traceId = '7f1c2e4a-0b3d-4c5e-9f6a-000000000003';
  const gone = await h.request({ method: 'GET', path: '/STU3/1/Appointment/gone-read', headers: { ...identityHeaders('nhs-booking', 'read'), 'Ssp-TraceID': traceId } });
  t.equal(gone.status, 404);
  const line = decisions(h).find((d) => d.traceId === traceId);
  t.equal(line?.code, 'UPSTREAM_REFUSED');
  t.equal(line?.outcome, 'forwarded');
});

t.test('time spent on a provider call that failed is the provider\'s, not the gateway\'s own', async (t) => {
  const hang: Script = () => {};
  const p = await startRawProvider({ 'hang-put': hang }, { 'hang-get': hang });
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url, timeoutMs: 300, inDoubtHoldMs: 0 } } });
  t.teardown(() => h.close());
  const put = await cancelRequest(h, 'nhs-booking', 'hang-put');
  t.equal((await h.request(put)).status, 500);
  const readReq = { ...(await cancelRequest(h, 'nhs-booking', 'x', (r) => { r.id = 'hang-get'; })), path: '/STU3/1/Appointment/hang-get' };
  t.equal((await h.request(readReq)).status, 500);
  const passthrough = { method: 'GET', path: '/STU3/1/Appointment/hang-get', headers: identityHeaders('nhs-booking', 'read') };
  t.equal((await h.request(passthrough)).status, 500);
  for (const traceId of [put.headers!['Ssp-TraceID'], readReq.headers!['Ssp-TraceID'], passthrough.headers['Ssp-TraceID']]) {
    const line = decisions(h).find((d) => d.traceId === traceId);
    t.ok(line && line.upstreamMs >= 290, `upstreamMs counts the deadline: ${line?.upstreamMs}`);
    t.ok(line && line.ms - line.upstreamMs < 250, `the gateway's own time excludes it: ${line?.ms} - ${line?.upstreamMs}`);
  }
});

t.test('a passthrough or version-read refusal whose body is cut or slow keeps its status; 5xx recorded as an error, counted as a rejection', async (t) => {
  const cut503: Script = (s) => { s.write(head('503 Busy', ['Content-Type: application/fhir+json', 'Retry-After: 7', 'Retry-After: 9'], 500) + PARTIAL_OO); setImmediate(() => s.destroy()); };
  const slow404: Script = (s) => s.write(head('404 Not Found', ['Content-Type: application/fhir+json'], 500) + PARTIAL_OO);
  const p = await startRawProvider({ 'twice-503': (s) => s.end(head('503 Busy', ['Content-Type: text/plain', 'Retry-After: 7', 'Retry-After: 9'], 4) + 'busy') }, { 'cut-503': cut503, 'slow-404': slow404, '1': slow404 });
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url, bodyTimeoutMs: 300 } } });
  t.teardown(() => h.close());
  const read = (path: string, traceId: string) => h.request({ method: 'GET', path, headers: { ...identityHeaders('nhs-booking', 'read'), 'Ssp-TraceID': traceId } });
  const a = await read('/STU3/1/Appointment/cut-503', '7f1c2e4a-0b3d-4c5e-9f6a-000000000011');
  t.equal(a.status, 503);
  t.equal(a.headers['retry-after'], '7', 'the first Retry-After');
  t.equal(a.json?.resourceType, 'OperationOutcome');
  const b = await read('/STU3/1/Appointment/slow-404', '7f1c2e4a-0b3d-4c5e-9f6a-000000000012');
  t.equal(b.status, 404);
  const c = await read('/STU3/1/Appointment/v1/_history/1', '7f1c2e4a-0b3d-4c5e-9f6a-000000000013');
  t.equal(c.status, 404, 'a version read: the same');
  const lines = decisions(h);
  t.match(lines.find((d) => d.traceId.endsWith('11')), { status: 503, outcome: 'error', code: 'UPSTREAM_ERROR' });
  t.match(lines.find((d) => d.traceId.endsWith('12')), { status: 404, outcome: 'forwarded', code: 'UPSTREAM_REFUSED' });
  const m = await adminGet(h, '/metrics');
  t.match(m.body, /cancel_gateway_rejections_total\{code="UPSTREAM_ERROR"\} 1/);
  // A cancel's refusal with Retry-After sent twice passes on the first.
  const r = await h.request(await cancelRequest(h, 'nhs-booking', 'twice-503'));
  t.equal(r.status, 503);
  t.equal(r.headers['retry-after'], '7');
});

t.test('a read of the current appointment whose body stalls is told as such (review of stop 34)', async (t) => {
  let reads = 0;
  const p = await startRawProvider({}, {
    'slow-read': (s, id) => {
      const body = appointment(id, '1');
      // the first read builds the cancel; the gateway's own read then stalls after its status line
      if (reads++ === 0) s.write(head('200 OK', ['Content-Type: application/fhir+json', 'ETag: W/"1"'], Buffer.byteLength(body)) + body);
      else s.write(head('200 OK', ['Content-Type: application/fhir+json', 'ETag: W/"1"'], Buffer.byteLength(body)) + body.slice(0, 10));
    },
  });
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url, bodyTimeoutMs: 300 } } });
  t.teardown(() => h.close());
  const r = await h.request(await cancelRequest(h, 'nhs-booking', 'slow-read'));
  t.equal(r.status, 500);
  t.match(r.json?.issue?.[0]?.diagnostics, /sent the current appointment too slowly/);
  t.same(p.putsSeen, [], 'nothing forwarded');
});

t.test('a passthrough redirect with no target the gateway passes on is the provider\'s failure, not a bare 3xx; report endpoints dropped (review of stop 34)', async (t) => {
  const p = await startRawProvider({}, {
    'redir-self': (s) => s.write(head('301 Moved Permanently', ['Location: /Appointment/redir-self'], 0)),
    'redir-slot': (s) => s.write(head('302 Found', ['Location: /Slot/9'], 0)),
    'redir-other': (s) => s.write(head('307 Temporary Redirect', ['Location: /Appointment/elsewhere'], 0)),
    'redir-search': (s) => s.write(head('302 Found', ['Location: /Appointment?patient=9&page=2'], 0)),
    'redir-slots': (s) => s.write(head('303 See Other', [`Location: ${p.url}/Slot?start=ge2030-01-01`], 0)),
    'redir-meta': (s) => s.write(head('302 Found', ['Location: metadata'], 0)),
    'redir-frag': (s) => s.write(head('302 Found', ['Location: /Slot?page=2#x'], 0)),
    'reports': (s, id) => {
      const body = appointment(id, '1');
      s.write(head('200 OK', ['Content-Type: application/fhir+json', 'ETag: W/"1"', 'Report-To: {"url":"https://provider.internal/r"}', 'NEL: {"report_to":"x"}', 'Reporting-Endpoints: x="https://provider.internal/r"'], Buffer.byteLength(body)) + body);
    },
  });
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url } } });
  t.teardown(() => h.close());
  const read = (id: string) => h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders('nhs-booking', 'read') });
  for (const id of ['redir-self', 'redir-slot', 'redir-frag']) {
    const r = await read(id);
    t.equal(r.status, 500, `${id}: 500`);
    t.match(r.json?.issue?.[0]?.diagnostics, /redirect to no route the gateway serves/, `${id}: saying why`);
    t.equal(r.headers.location, undefined, `${id}: no Location`);
  }
  const other = await read('redir-other');
  t.equal(other.status, 307, 'a redirect to a route the gateway serves is passed on');
  t.equal(other.headers.location, 'https://gateway.example.nhs.uk/STU3/1/Appointment/elsewhere', 'its Location on the gateway');
  // Review of stop 35: a search's next page, a slot search and the capability statement are routes
  // the gateway serves, on the provider's base: passed on with their query.
  for (const [id, status, location] of [
    ['redir-search', 302, '/Appointment?patient=9&page=2'],
    ['redir-slots', 303, '/Slot?start=ge2030-01-01'],
    ['redir-meta', 302, '/metadata'],
  ] as const) {
    const r = await read(id);
    t.equal(r.status, status, `${id}: passed on`);
    t.equal(r.headers.location, `https://gateway.example.nhs.uk/STU3/1${location}`, `${id}: its Location on the gateway, query kept`);
  }
  const m = await adminGet(h, '/metrics');
  t.match(m.body, /cancel_gateway_upstream_errors_total\{kind="redirect"\} 3/, 'counted as the provider\'s redirects');
  const r = await read('reports');
  t.equal(r.status, 200);
  for (const name of ['report-to', 'nel', 'reporting-endpoints']) t.equal(r.headers[name], undefined, `${name} not passed back`);
});

t.test('a provider 401 keeps its WWW-Authenticate and a 405 its Allow (RFC 9110 §11.6.1, §15.5.6; review of stop 34)', async (t) => {
  const p = await startRawProvider({
    'put-401': (s) => s.write(head('401 Unauthorized', ['Content-Type: text/plain', 'WWW-Authenticate: Bearer realm="fhir"'], 2) + 'no'),
    'put-405': (s) => s.write(head('405 Method Not Allowed', ['Content-Type: text/plain', 'Allow: GET'], 2) + 'no'),
    'put-409oo': (s) => s.write(head('409 Conflict', ['Content-Type: application/fhir+json', 'Cache-Control: max-age=60'], Buffer.byteLength(OO)) + OO),
  }, {
    'read-404oo': (s) => s.write(head('404 Not Found', ['Content-Type: application/fhir+json'], Buffer.byteLength(OO)) + OO),
    'read-401': (s) => s.write(head('401 Unauthorized', ['Content-Type: text/plain', 'WWW-Authenticate: Bearer realm="fhir"'], 2) + 'no'),
    'read-405': (s) => s.write(head('405 Method Not Allowed', ['Content-Type: text/plain', 'Allow: PUT'], 2) + 'no'),
  });
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url } } });
  t.teardown(() => h.close());
  const read = (id: string) => h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders('nhs-booking', 'read') });
  const r401 = await read('read-401');
  t.equal(r401.status, 401);
  t.equal(r401.headers['www-authenticate'], 'Bearer realm="fhir"', 'a read\'s 401');
  t.equal(r401.json?.resourceType, 'OperationOutcome', 'the body is the gateway\'s');
  const r405 = await read('read-405');
  t.equal(r405.status, 405);
  t.equal(r405.headers.allow, 'PUT', 'a read\'s 405');
  const c401 = await h.request(await cancelRequest(h, 'nhs-booking', 'put-401'));
  t.equal(c401.status, 401);
  t.equal(c401.headers['www-authenticate'], 'Bearer realm="fhir"', 'a cancel\'s 401');
  const c405 = await h.request(await cancelRequest(h, 'nhs-booking', 'put-405'));
  t.equal(c405.status, 405);
  t.equal(c405.headers.allow, 'GET', 'a cancel\'s 405');
  t.equal(c405.headers['retry-after'], undefined, 'nothing else of the provider\'s');
  // The provider's own OperationOutcome passed on (ruling 11): an error is never cached, under NHS Booking too.
  const r404 = await read('read-404oo');
  t.equal(r404.status, 404);
  t.equal(r404.headers['cache-control'], 'no-store', 'a passed-on read error: no-store');
  const c409 = await h.request(await cancelRequest(h, 'nhs-booking', 'put-409oo'));
  t.equal(c409.status, 409);
  t.equal(c409.json?.issue?.[0]?.diagnostics, 'the provider\'s own', 'the provider\'s body');
  t.equal(c409.headers['cache-control'], 'no-store', 'a passed-on cancel error: no-store, not the provider\'s max-age');
});

t.test('a passthrough answer with Location or Content-Location twice passes one; ETags naming no version do not disagree; a read with W/"1" and "1" is one version', async (t) => {
  const body2 = appointment('star', '2', 'cancelled');
  const one = appointment('same-tags', '1');
  const p = await startRawProvider({
    star: (s) => s.write(head('200 OK', ['Content-Type: application/fhir+json', 'ETag: W/"2"', 'ETag: *'], Buffer.byteLength(body2)) + body2),
  }, {
    'two-locations': (s) => { const b = appointment('two-locations', '1'); s.write(head('200 OK', ['Content-Type: application/fhir+json', 'ETag: W/"1"', 'Content-Location: /fhir/Appointment/two-locations/_history/1', 'Content-Location: /fhir/Appointment/other/_history/9'], Buffer.byteLength(b)) + b); },
    'same-tags': (s) => s.write(head('200 OK', ['Content-Type: application/fhir+json', 'ETag: W/"1"', 'ETag: "1"'], Buffer.byteLength(one)) + one),
  });
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url } } });
  t.teardown(() => h.close());
  const read = await h.request({ method: 'GET', path: '/STU3/1/Appointment/two-locations', headers: identityHeaders('nhs-booking', 'read') });
  t.equal(read.headers['content-location'], 'https://gateway.example.nhs.uk/STU3/1/Appointment/two-locations/_history/1', 'the first, made public');
  const req = await cancelRequest(h, 'nhs-booking', 'star');
  t.equal((await h.request(req)).status, 200);
  t.notOk(h.audit.find((a) => a.traceId === req.headers!['Ssp-TraceID'])?.breaches, '`*` names no version: no breach');
  const same = await cancelRequest(h, 'nhs-booking', 'same-tags');
  const r = await h.request(same);
  t.equal(r.status, 500, 'the cancel reaches the provider (the raw provider answers its PUT 500)');
  t.same(p.putsSeen.filter((id) => id === 'same-tags'), ['same-tags'], 'the read with two tags of one version was used');
});

t.test('a client that stops reading a streamed answer is not blamed on the provider (499, no provider error counted)', async (t) => {
  const { rawTls, eventually } = await import('../reliability/support.js');
  const big = 20 * 1024 * 1024;
  const p = await startRawProvider({}, {
    'big-read': (s) => { s.write(head('200 OK', ['Content-Type: application/fhir+json', 'ETag: W/"1"'], big)); s.write(Buffer.alloc(big, 0x20)); },
  });
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url, bodyTimeoutMs: 300 } } });
  t.teardown(() => h.close());
  const traceId = '7f1c2e4a-0b3d-4c5e-9f6a-000000000021';
  const headers = { ...identityHeaders('nhs-booking', 'read'), 'Ssp-TraceID': traceId, Host: 'localhost' };
  const c = await rawTls(h.gateway.port);
  c.socket.write(`GET /STU3/1/Appointment/big-read HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`);
  c.socket.pause(); // reads nothing more: the answer backs up to the provider
  t.ok(await eventually(() => decisions(h).some((d) => d.traceId === traceId), 5000), 'decided');
  c.socket.destroy();
  t.match(decisions(h).find((d) => d.traceId === traceId), { status: 499, outcome: 'error' });
  const m = await adminGet(h, '/metrics');
  t.notMatch(m.body, /cancel_gateway_upstream_errors_total\{kind="slow-body"\}/, 'not the provider\'s failure');
});

t.test('a 200 naming a lower version than the one read is a contract breach, counted (ruling 12; review of stop 35)', async (t) => {
  const body = appointment('lower', '0', 'cancelled');
  const p = await startRawProvider({
    lower: (s) => s.write(head('200 OK', ['Content-Type: application/fhir+json', 'ETag: W/"0"'], Buffer.byteLength(body)) + body),
  }, {});
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url } } });
  t.teardown(() => h.close());
  const req = await cancelRequest(h, 'nhs-booking', 'lower');
  const r = await h.request(req);
  t.equal(r.status, 200, 'the provider\'s success reaches the client');
  t.same(h.audit.find((a) => a.traceId === req.headers!['Ssp-TraceID'])?.breaches, ['version-unchanged'], 'audited as a breach');
  const m = await adminGet(h, '/metrics');
  t.match(m.body, /cancel_gateway_provider_contract_breaches_total\{reason="version-unchanged"\} 1/, 'counted');
});

t.test('a provider 5xx with its own OperationOutcome is still counted as its failure, on a cancel and a passthrough read (review of stop 35)', async (t) => {
  const p = await startRawProvider({
    'put-500oo': (s) => s.write(head('500 Internal Server Error', ['Content-Type: application/fhir+json'], Buffer.byteLength(OO)) + OO),
  }, {
    'read-503oo': (s) => s.write(head('503 Service Unavailable', ['Content-Type: application/fhir+json'], Buffer.byteLength(OO)) + OO),
  });
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url } } });
  t.teardown(() => h.close());
  const c = await h.request(await cancelRequest(h, 'nhs-booking', 'put-500oo'));
  t.equal(c.status, 500);
  t.equal(c.json?.issue?.[0]?.diagnostics, 'the provider\'s own', 'the provider\'s OperationOutcome');
  const r = await h.request({ method: 'GET', path: '/STU3/1/Appointment/read-503oo', headers: identityHeaders('nhs-booking', 'read') });
  t.equal(r.status, 503);
  const m = await adminGet(h, '/metrics');
  t.match(m.body, /cancel_gateway_upstream_errors_total\{kind="status"\} 2/, 'both counted');
});

t.test('a 201 answering the cancel is passed on as the provider\'s success, and counted: the founding text\'s success is a 200 (review of stop 35)', async (t) => {
  const body = appointment('created', '2', 'cancelled');
  const p = await startRawProvider({
    created: (s) => s.write(head('201 Created', ['Content-Type: application/fhir+json', 'ETag: W/"2"'], Buffer.byteLength(body)) + body),
  }, {});
  t.teardown(() => p.close());
  const h = await startHarness({ config: { upstream: { url: p.url } } });
  t.teardown(() => h.close());
  const req = await cancelRequest(h, 'nhs-booking', 'created');
  const r = await h.request(req);
  t.equal(r.status, 201, 'passed on');
  t.same(h.audit.find((a) => a.traceId === req.headers!['Ssp-TraceID'])?.breaches, ['status-not-200']);
  t.match((await adminGet(h, '/metrics')).body, /cancel_gateway_provider_contract_breaches_total\{reason="status-not-200"\} 1/);
});
