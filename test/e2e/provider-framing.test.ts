import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { nhsBookingAppointment } from '../../demo/provider/seed/nhs-booking.js';
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
