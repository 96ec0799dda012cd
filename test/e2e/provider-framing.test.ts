import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { nhsBookingAppointment } from '../../demo/provider/seed/nhs-booking.js';
import { gpConnectAppointment } from '../../demo/provider/seed/gp-connect.js';
import { cancelRequest, identityHeaders, startHarness } from '../helpers/harness.js';

/**
 * A provider that frames its answers with Transfer-Encoding: chunked (no Content-Length), as many
 * real servers do. Found by the benchmark: the gateway buffered the answer, added Content-Length
 * and also copied the provider's Transfer-Encoding, which clients must refuse (RFC 7230 §3.3.3).
 */
t.test('chunked provider answers reach the client as valid HTTP (read, cancel, error)', async (t) => {
  let version = 1;
  const upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const id = (req.url ?? '').split('/')[2] ?? '';
      if (id === 'missing') {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.write('not ');
        res.end('found');
        return;
      }
      if (req.method === 'PUT') version++;
      const body = JSON.stringify({ ...nhsBookingAppointment, id, meta: { ...(nhsBookingAppointment as { meta: object }).meta, versionId: String(version) }, status: req.method === 'PUT' ? 'cancelled' : 'booked' });
      res.writeHead(200, { 'Content-Type': 'application/fhir+json' }); // no Content-Length: chunked
      res.write(body.slice(0, 100));
      res.end(body.slice(100));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { upstream.closeAllConnections(); upstream.close(() => r()); }));
  const h = await startHarness({ config: { upstream: { url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` } } });
  t.teardown(() => h.close());

  const read = await h.request({ method: 'GET', path: '/STU3/1/Appointment/c1', headers: identityHeaders('nhs-booking', 'read') });
  t.equal(read.status, 200);
  t.equal(read.json?.id, 'c1');
  t.equal(read.headers.etag, 'W/"1"', 'ETag added from the body');
  t.notOk(read.headers['transfer-encoding'] && read.headers['content-length'], 'not both framings');

  const cancel = await h.request(await cancelRequest(h, 'nhs-booking', 'c1'));
  t.equal(cancel.status, 200, cancel.body.toString().slice(0, 200));
  t.equal(cancel.json?.status, 'cancelled');
  t.equal(cancel.headers['content-length'], String(cancel.body.length), 'framed by Content-Length');
  t.notOk(cancel.headers['transfer-encoding'], 'the provider\'s Transfer-Encoding is not copied');

  const missing = await h.request({ method: 'GET', path: '/STU3/1/Appointment/missing', headers: identityHeaders('nhs-booking', 'read') });
  t.equal(missing.status, 404);
  t.equal(missing.json?.resourceType, 'OperationOutcome');
});

/**
 * Ruling 26: a 200 to a cancel naming another resource is never passed on, and it is audited as a
 * contract breach — the record says `breaches: ["other-resource"]`, not merely a 500.
 */
t.test('a provider 200 naming another appointment: 500, audited as a contract breach (ruling 26)', async (t) => {
  const upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const id = (req.url ?? '').split('/')[2] ?? '';
      const put = req.method === 'PUT';
      const body = JSON.stringify({ ...nhsBookingAppointment, id: put ? 'someone-else' : id, meta: { ...(nhsBookingAppointment as { meta: object }).meta, versionId: put ? '2' : '1' }, status: put ? 'cancelled' : 'booked' });
      res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { upstream.closeAllConnections(); upstream.close(() => r()); }));
  const h = await startHarness({ config: { upstream: { url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` } } });
  t.teardown(() => h.close());

  const req = await cancelRequest(h, 'nhs-booking', 'b1');
  const r = await h.request(req);
  t.equal(r.status, 500);
  t.equal(r.json?.resourceType, 'OperationOutcome');
  t.match(JSON.stringify(r.json), /may have been applied/);
  t.notMatch(r.body.toString(), /someone-else/, 'the other resource is not passed on');
  const traceId = String(req.headers!['Ssp-TraceID']);
  let rec: (typeof h.audit)[number] | undefined;
  for (let i = 0; i < 50 && !rec; i++) {
    rec = h.audit.find((a) => a.traceId === traceId);
    if (!rec) await new Promise((ok) => setTimeout(ok, 10));
  }
  t.ok(rec, 'an audit record');
  t.equal(rec?.status, 500);
  t.equal(rec?.outcome, 'error');
  t.same(rec?.breaches, ['other-resource'], 'audited as a contract breach');
  t.equal(rec?.inDoubt, true, 'and as a write that may have been applied');
});

/**
 * Ruling 24: after the status line a slow body gets its own bound on every provider exchange,
 * also on a passthrough read streamed to the client (the provider gave an ETag, so nothing is
 * buffered): the answer is cut, never left open or made to look complete.
 */
t.test('a passthrough read whose body stalls is cut at upstream.bodyTimeoutMs', async (t) => {
  const body = JSON.stringify({ ...nhsBookingAppointment, id: 's1' });
  const upstream = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"1"', 'Content-Length': Buffer.byteLength(body) });
    res.write(body.slice(0, 10)); // then nothing more
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { upstream.closeAllConnections(); upstream.close(() => r()); }));
  const h = await startHarness({ config: { upstream: { url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, timeoutMs: 5000, bodyTimeoutMs: 300 } } });
  t.teardown(() => h.close());
  const outcome = await h.request({ method: 'GET', path: '/STU3/1/Appointment/s1', headers: identityHeaders('nhs-booking', 'read') })
    .then((r) => (r.body.length === Buffer.byteLength(body) ? 'complete' : 'short'), () => 'cut');
  t.equal(outcome, 'cut', 'the client sees the answer cut, not complete');
});

/**
 * Ruling 11: a provider 4xx to the forwarded write without an OperationOutcome keeps its status and
 * gets the gateway's OperationOutcome, coded as the standard codes that status — a provider 403
 * under GP Connect is `forbidden`/`ACCESS DENIED`, not the JWT failure GP Connect answers with 400 —
 * and the audit record says the request was forwarded (the provider refused it, not the gateway).
 */
for (const [standard, status, issue, spine] of [
  ['gp-connect', 403, 'forbidden', 'ACCESS DENIED'],
  ['nhs-booking', 429, 'processing', 'BAD_REQUEST'],
] as const) {
  t.test(`${standard}: a provider ${status} to the write without an OperationOutcome`, async (t) => {
    const seed = standard === 'gp-connect' ? gpConnectAppointment : nhsBookingAppointment;
    const puts: string[] = [];
    const upstream = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const id = (req.url ?? '').split('/')[2] ?? '';
        if (req.method === 'PUT') {
          puts.push(id);
          res.writeHead(status, { 'Content-Type': 'text/plain', 'Retry-After': '30' });
          res.end('nope');
          return;
        }
        const body = JSON.stringify({ ...seed, id, start: '2031-01-01T10:00:00Z', end: '2031-01-01T10:30:00Z', meta: { ...(seed as { meta: object }).meta, versionId: '1' }, status: 'booked' });
        res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"1"', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    t.teardown(() => new Promise<void>((r) => { upstream.closeAllConnections(); upstream.close(() => r()); }));
    const h = await startHarness({ standard, config: { upstream: { url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` } } });
    t.teardown(() => h.close());

    const req = await cancelRequest(h, standard, 'p1');
    const r = await h.request(req);
    t.equal(r.status, status, r.body.toString().slice(0, 300));
    t.equal(r.json?.resourceType, 'OperationOutcome');
    t.equal(r.json?.issue?.[0]?.code, issue);
    t.equal(r.json?.issue?.[0]?.details?.coding?.[0]?.code, spine);
    t.equal(r.headers['retry-after'], '30', "the provider's Retry-After is passed on");
    t.same(puts, ['p1'], 'forwarded once');
    const traceId = String(req.headers!['Ssp-TraceID']);
    let rec: (typeof h.audit)[number] | undefined;
    for (let i = 0; i < 50 && !rec; i++) {
      rec = h.audit.find((a) => a.traceId === traceId);
      if (!rec) await new Promise((ok) => setTimeout(ok, 10));
    }
    t.match(rec, { status, outcome: 'forwarded', code: 'UPSTREAM_REFUSED' }, 'audited as the provider refusing a forwarded request');
    t.equal(rec?.inDoubt, undefined, 'a refusal is no write in doubt');
  });
}
