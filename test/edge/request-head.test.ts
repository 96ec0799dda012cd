/** The head of a request Node's parser refused (src/edge/request-head.ts): pure, bounded. */
import t from 'tap';
import { requestHeadOf } from '../../src/edge/request-head.js';

const head = (text: string) => requestHeadOf(Buffer.from(text, 'latin1'));
const TRACE = '0f8fad5b-d9cb-469f-a165-70867728950e';

t.test('the request line, a well-formed trace id and X-Request-ID, Accept and Content-Type', async (t) => {
  t.same(head(`PUT /STU3/1/Appointment/a1 HTTP/1.1\r\nSsp-TraceID: ${TRACE}\r\nX-Request-ID: req-42\r\nAccept: application/fhir+xml\r\nContent-Type: application/fhir+json\r\n\r\n`), {
    method: 'PUT', url: '/STU3/1/Appointment/a1', traceId: TRACE, requestId: 'req-42', accept: 'application/fhir+xml', contentType: 'application/fhir+json',
  });
});

t.test('a version the parser refuses (HTTP/1.2) still names its request, for its audit record', async (t) => {
  t.match(head('PUT /STU3/1/Appointment/a1 HTTP/1.2\r\n\r\n'), { method: 'PUT', url: '/STU3/1/Appointment/a1' });
});

t.test('an X-Request-ID the gateway would not echo is not taken', async (t) => {
  t.equal(head(`GET /x HTTP/1.1\r\nX-Request-ID: ${'a'.repeat(257)}\r\n\r\n`)?.requestId, undefined, 'too long');
  t.equal(head('GET /x HTTP/1.1\r\nX-Request-ID: caf\xe9\r\n\r\n')?.requestId, undefined, 'not ASCII');
  t.equal(head('GET /x HTTP/1.1\r\nX-Request-ID:\r\n\r\n')?.requestId, undefined, 'empty');
});

t.test('not a request line: nothing', async (t) => {
  t.equal(head('hello'), undefined);
  t.equal(head('GET http://x/ HTTP/1.1\r\n\r\n'), undefined, 'absolute form is not read');
  t.equal(requestHeadOf(undefined), undefined);
});

t.test('requests the parser read whole before the failure (pipelined in one packet) are skipped', async (t) => {
  const cancel = `PUT /STU3/1/Appointment/a1 HTTP/1.1\r\nSsp-TraceID: ${TRACE}\r\nSsp-InteractionID: urn:x\r\nContent-Length: 2\r\n\r\n{}`;
  const garbage = Buffer.from(`${cancel}BLAH\r\n\r\n`, 'latin1');
  t.equal(requestHeadOf(garbage, cancel.length + 2), undefined, 'the refused request is the garbage, not the cancel before it');
  const read = `GET /STU3/1/Appointment/a1 HTTP/1.1\r\nSsp-TraceID: ${TRACE}\r\n\r\n`;
  const second = `PUT /STU3/1/Appointment/b2 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n`;
  const two = Buffer.from(read + second, 'latin1');
  t.match(requestHeadOf(two, read.length + 60), { method: 'PUT', url: '/STU3/1/Appointment/b2', traceId: undefined }, 'the second request, not the first');
  t.match(requestHeadOf(Buffer.from(second, 'latin1'), 60), { method: 'PUT', url: '/STU3/1/Appointment/b2' }, 'alone: itself');
  t.match(requestHeadOf(Buffer.from(second, 'latin1')), { method: 'PUT' }, 'no failure point: from the start, as before');
  const chunked = `PUT /STU3/1/Appointment/c3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n`;
  t.match(requestHeadOf(Buffer.from(chunked + 'BLAH\r\n\r\n', 'latin1'), chunked.length + 1), { url: '/STU3/1/Appointment/c3' }, 'a chunked body is not measured: the request it belongs to is taken');
});

t.test('an empty line between pipelined requests (RFC 9112 §2.2) does not hide the refused one', async (t) => {
  const post = 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab';
  const bad = 'GET /STU3/1/Appointment/b HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n';
  t.match(requestHeadOf(Buffer.from(`${post}\r\n${bad}`, 'latin1'), post.length + 2 + 40), { method: 'GET', url: '/STU3/1/Appointment/b' });
});
