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
  t.match(head('GET * HTTP/1.1\r\n\r\n'), { url: '*' }, 'asterisk form: as sent (no route)');
  t.match(head('GET https://u@x/ HTTP/1.1\r\n\r\n'), { url: 'https://u@x/' }, 'an absolute form with userinfo: as sent, no route (404)');
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
  t.equal(requestHeadOf(Buffer.from(chunked + 'BLAH\r\n\r\n', 'latin1'), chunked.length + 1), undefined, 'a chunked request read whole is skipped too');
  const ext = `PUT /STU3/1/Appointment/c4 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nab\r\n0\r\nT: 1\r\n\r\n`;
  const foo = 'FOO /STU3/1/Appointment/d5 HTTP/1.1\r\nHost: x\r\n\r\n';
  t.match(requestHeadOf(Buffer.from(chunked + ext + foo, 'latin1'), chunked.length + ext.length + 1), { method: 'FOO', url: '/STU3/1/Appointment/d5' }, 'two chunked (extensions, trailers) skipped: the refused one is named');
  const cut = `PUT /STU3/1/Appointment/c6 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nab`;
  t.match(requestHeadOf(Buffer.from(cut, 'latin1'), cut.length), { url: '/STU3/1/Appointment/c6' }, 'a chunked body not held whole: its request is the refused one');
  const long = `PUT /STU3/1/Appointment/c7 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n000000002;x=${'y'.repeat(300)}\r\nab\r\n0\r\n\r\n`;
  t.match(requestHeadOf(Buffer.from(long + foo, 'latin1'), long.length + 1), { method: 'FOO' }, 'a 9-digit chunk size and a long extension are measured too');
});

t.test('an absolute-form target is read as its origin form', async (t) => {
  t.match(head(`PUT https://gw.example:443/STU3/1/Appointment/a1?x=1 HTTP/1.1\r\nSsp-TraceID: ${TRACE}\r\nX-Request-ID: r1\r\n\r\n`), { method: 'PUT', url: '/STU3/1/Appointment/a1?x=1', traceId: TRACE, requestId: 'r1' });
});

t.test('an unknown method: what a known one would get first (431, 400) is named', async (t) => {
  const foo = (headers: string, line = 'FOO /STU3/1/Appointment/a1 HTTP/1.1') => requestHeadOf(Buffer.from(`${line}\r\n${headers}\r\n`, 'latin1'), undefined, 1024)?.refusedFirst;
  t.equal(foo('Host: x\r\n'), undefined, 'a plain head: the route decides');
  t.equal(foo('Host: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n'), 'REQUEST_MALFORMED', 'CL and TE (ruling 16)');
  t.equal(foo('Host: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n'), 'REQUEST_MALFORMED', 'two Content-Lengths');
  t.equal(foo('Host: x\r\nHost: y\r\n'), 'REQUEST_MALFORMED', 'Host twice');
  t.equal(foo('Host: x, y\r\n'), 'REQUEST_MALFORMED', 'Host a list');
  t.equal(foo(''), 'REQUEST_MALFORMED', 'no Host (HTTP/1.1)');
  t.equal(foo('', 'FOO /STU3/1/Appointment/a1 HTTP/1.0'), undefined, 'no Host (HTTP/1.0): none needed');
  t.equal(foo('Host: x\r\nX-HTTP-Method-Override: PUT\r\n'), 'REQUEST_MALFORMED', 'an override header');
  t.equal(foo('Host: x\r\nIf.Match: W/"1"\r\n'), 'REQUEST_MALFORMED', 'a look-alike');
  t.equal(foo('Host: x\r\n', 'FOO /STU3/1/Appointment/a1?_method=PUT HTTP/1.1'), 'REQUEST_MALFORMED', '_method');
  t.equal(foo(`Host: x\r\nX-Pad: ${'a'.repeat(1100)}\r\n`), 'HEADERS_TOO_LARGE', 'a head over the limit');
  for (const [what, headers, line] of <[string, string, string?][]>[
    ['Content-Length twice, same value', 'Host: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n'],
    ['Content-Length not digits', 'Host: x\r\nContent-Length: -1\r\n'],
    ['Transfer-Encoding not chunked', 'Host: x\r\nTransfer-Encoding: chunked, identity\r\n'],
    ['Transfer-Encoding twice', 'Host: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n'],
    ['Transfer-Encoding on HTTP/1.0', 'Transfer-Encoding: chunked\r\n', 'FOO /STU3/1/Appointment/a1 HTTP/1.0'],
    ['obs-fold', 'Host: x\r\nX-A: 1\r\n  folded\r\n'],
    ['a bare LF', 'Host: x\nX-A: 1\r\n'],
    ['whitespace before the colon', 'Host : x\r\n'],
    ['a name that is no token', 'Host: x\r\nFoo Bar: 1\r\n'],
  ]) t.equal(foo(headers, line), 'REQUEST_MALFORMED', what);
  t.equal(foo('Host: x\r\nContent-Length: 00\r\nTransfer-Encoding: chunked\r\n'.replace('Transfer-Encoding: chunked\r\n', '')), undefined, 'Content-Length: 00 is digits');
  const partial = requestHeadOf(Buffer.from('FOO /STU3/1/Appointment/a1 HTTP/1.1\r\nAccept: */*\r\n', 'latin1'), undefined, 1024);
  t.equal(partial?.refusedFirst, undefined, 'a head not held whole: its Host may still come');
  t.equal(foo('Host: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n', 'GET /STU3/1/Appointment/a1 HTTP/1.1'), undefined, 'a known method: the parser judged it');
});

t.test('an empty line between pipelined requests (RFC 9112 §2.2) does not hide the refused one', async (t) => {
  const post = 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab';
  const bad = 'GET /STU3/1/Appointment/b HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n';
  t.match(requestHeadOf(Buffer.from(`${post}\r\n${bad}`, 'latin1'), post.length + 2 + 40), { method: 'GET', url: '/STU3/1/Appointment/b' });
});
