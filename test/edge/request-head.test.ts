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
