/**
 * Issue 13 items 1, 5, 7 and 13 (ruling 25): listener-level attacks over real TLS — a client-initiated
 * renegotiation, idle connections that never handshake, a certificate revoked while its connection
 * stays busy, connections without an end, and a malformed request pipelined behind a cancel.
 */
import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCrl, issueCertificate } from '../../demo/certs.js';
import { cancelRequest, identityHeaders, pki, startHarness } from '../helpers/harness.js';
import { eventually, parseResponses, rawTls } from '../reliability/support.js';

function raw(method: string, path: string, headers: Record<string, string | string[] | undefined>, body = ''): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: localhost'];
  for (const [k, v] of Object.entries(headers)) for (const x of v === undefined ? [] : Array.isArray(v) ? v : [v]) lines.push(`${k}: ${x}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}
const read = (id: string) => raw('GET', `/STU3/1/Appointment/${id}`, identityHeaders('nhs-booking', 'read'));

t.test('item 1: a client-initiated TLS 1.2 renegotiation is refused and the connection is cut off', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const c = await rawTls(h.gateway.port, { tls: { maxVersion: 'TLSv1.2' } });
  t.equal(c.socket.getProtocol(), 'TLSv1.2');
  let renegotiated: string = 'pending';
  // The client's own socket may never report 'close' here (its write is held behind the pending
  // renegotiation); what counts is that the gateway ended the TCP connection: 'end' or a reset.
  const ended = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 2000);
    const done = () => { clearTimeout(timer); resolve(true); };
    c.socket.once('end', done);
    c.socket.once('close', done);
    c.socket.once('error', done);
  });
  c.socket.renegotiate({ rejectUnauthorized: false }, (err) => { renegotiated = err ? 'error' : 'done'; });
  // Whatever the client library reports, the server must not carry on with the connection.
  c.socket.write(read(h.provider.store.ids()[0]!));
  const closed = await ended;
  t.not(renegotiated, 'done', `the renegotiation never completed (${renegotiated})`);
  t.ok(closed, 'the gateway ended the connection (not left stalled)');
  t.notMatch(c.received().toString('latin1'), /^HTTP\/1\.1 200/m, 'nothing is served after the renegotiation');
  t.equal(h.provider.requests.filter((r) => r.method === 'GET').length, 0, 'the provider saw nothing');
});

t.test('item 5: idle TCP connections without a handshake do not lock authenticated clients out', async (t) => {
  const h = await startHarness({ config: { limits: { maxConnections: 32, maxPendingHandshakes: 8, maxPendingHandshakesPerAddress: 4 } } });
  t.teardown(() => h.close());
  const idle: net.Socket[] = [];
  let closedByServer = 0;
  await Promise.all(Array.from({ length: 48 }, () => new Promise<void>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: h.gateway.port }, () => resolve());
    s.on('error', () => resolve());
    s.on('close', () => { closedByServer += 1; resolve(); });
    idle.push(s);
  })));
  t.teardown(() => { for (const s of idle) s.destroy(); });
  t.ok(await eventually(() => closedByServer >= 48 - 4), `the gateway closed the surplus idle connections (${closedByServer} of 48)`);
  // More idle connections keep arriving while a real client connects.
  for (let i = 0; i < 8; i++) idle.push(net.connect({ host: '127.0.0.1', port: h.gateway.port }).on('error', () => {}));
  for (let i = 0; i < 3; i++) {
    const r = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${h.provider.store.ids()[i]}`, headers: identityHeaders('nhs-booking', 'read') });
    t.equal(r.status, 200, `authenticated read ${i + 1} served`);
  }
});

t.test('item 7: a connection answers with Connection: close after limits.maxRequestsPerConnection', async (t) => {
  const h = await startHarness({ config: { limits: { maxRequestsPerConnection: 3 } } });
  t.teardown(() => h.close());
  const c = await rawTls(h.gateway.port);
  const id = h.provider.store.ids()[0]!;
  for (let i = 1; i <= 3; i++) {
    c.socket.write(read(id));
    t.ok(await eventually(() => parseResponses(c.received()).length >= i), `answer ${i}`);
  }
  const answers = parseResponses(c.received());
  t.same(answers.map((a) => a.status), [200, 200, 200]);
  t.equal(answers[1]!.headers['connection'], 'keep-alive');
  t.equal(answers[2]!.headers['connection'], 'close', 'the last allowed request closes the connection');
  t.ok(await c.closed(3000), 'and the connection is closed');
});

t.test('item 7: the last allowed request closes the connection when its answer is a refusal too', async (t) => {
  const h = await startHarness({ config: { limits: { maxRequestsPerConnection: 2 } } });
  t.teardown(() => h.close());
  const c = await rawTls(h.gateway.port);
  const id = h.provider.store.ids()[0]!;
  c.socket.write(read(id));
  t.ok(await eventually(() => parseResponses(c.received()).length >= 1), 'answer 1');
  // The second (last allowed) request is refused by the gateway itself: 404, no such route.
  c.socket.write(raw('GET', '/STU3/1/Nothing/here', identityHeaders('nhs-booking', 'read')));
  t.ok(await eventually(() => parseResponses(c.received()).length >= 2), 'answer 2');
  const answers = parseResponses(c.received());
  t.same(answers.map((a) => a.status), [200, 404]);
  t.equal(answers[1]!.headers['connection'], 'close', 'the refusal keeps Connection: close');
  t.ok(await c.closed(3000), 'and the connection is closed');
});

/** A gateway with an (empty) CRL, a client certificate it trusts, and `revoke()` to write a CRL naming it. */
async function withCrl(t: { teardown(fn: () => unknown): void }) {
  const p = pki();
  const crlFile = join(mkdtempSync(join(tmpdir(), 'gw-crl-')), 'crl.pem');
  writeFileSync(crlFile, createCrl(p.ca, []));
  const h = await startHarness({ config: { tls: { crl: crlFile } } });
  t.teardown(() => h.close());
  const victim = issueCertificate(p.ca, { commonName: 'revoked-later.test.nhs.uk', kind: 'client', dnsNames: ['revoked-later.test.nhs.uk'] });
  return { h, victim, revoke: () => writeFileSync(crlFile, createCrl(p.ca, [victim.serialNumber])) };
}

t.test('item 7: after a CRL reload, a busy connection with a now-revoked certificate closes after its in-flight answer', async (t) => {
  const { h, victim, revoke } = await withCrl(t);
  const other = await rawTls(h.gateway.port);
  const c = await rawTls(h.gateway.port, { cert: victim });
  const id = h.provider.store.ids()[0]!;
  c.socket.write(read(id));
  t.ok(await eventually(() => parseResponses(c.received()).length === 1), 'served before the revocation');
  // A slow read is in flight when the CRL is reloaded.
  const undo = h.provider.fault('slow', { method: 'GET', delayMs: 400 });
  const seenBefore = h.provider.requests.length;
  c.socket.write(read(id));
  t.ok(await eventually(() => h.provider.requests.length > seenBefore), 'the second read reached the provider');
  revoke();
  t.ok(h.gateway.reloadTls(), 'reloaded');
  t.notOk(c.socket.destroyed, 'not cut off mid-answer');
  t.ok(await c.closed(3000), 'closed after the in-flight answer');
  undo();
  const answers = parseResponses(c.received());
  t.same(answers.map((a) => a.status), [200, 200], 'the in-flight answer was delivered');
  t.match(String(answers[1]!.headers['connection']), /close/i, 'saying Connection: close, not keep-alive (review of stop 34)');
  // A connection with a certificate that is still good stays open and served.
  other.socket.write(read(id));
  t.ok(await eventually(() => parseResponses(other.received()).length === 1), 'the other connection is still served');
  t.notOk(other.socket.destroyed);
  other.socket.destroy();
});

for (const when of ['pipelined before the reload', 'sent after the reload, while the read is in flight'] as const) {
  t.test(`ruling 25: a cancel ${when} on a connection whose certificate a reloaded CRL revokes never reaches the provider`, async (t) => {
    const { h, victim, revoke } = await withCrl(t);
    const [readId, cancelId] = h.provider.store.ids() as [string, string];
    const cancel = await cancelRequest(h, 'nhs-booking', cancelId);
    const body = String(cancel.body);
    const put = raw('PUT', cancel.path, { ...(cancel.headers as Record<string, string>), 'Content-Length': String(Buffer.byteLength(body)) }, body);
    const c = await rawTls(h.gateway.port, { cert: victim });
    const undo = h.provider.fault('slow', { method: 'GET', path: new RegExp(readId), delayMs: 300 });
    const seen = h.provider.requests.length;
    c.socket.write(when === 'pipelined before the reload' ? read(readId) + put : read(readId));
    t.ok(await eventually(() => h.provider.requests.length > seen), 'the read is in flight at the provider');
    revoke();
    t.ok(h.gateway.reloadTls(), 'reloaded');
    if (when !== 'pipelined before the reload') c.socket.write(put);
    t.ok(await c.closed(4000), 'closed after the in-flight answer');
    undo();
    // Everything the gateway was handling has ended (a queued cancel would have run by now).
    await h.gateway.settled();
    t.same(parseResponses(c.received()).map((a) => a.status), [200], 'only the in-flight read was answered');
    t.equal(h.provider.requests.filter((r) => r.method === 'PUT').length, 0, 'no PUT from the revoked certificate reached the provider');
    t.equal(h.provider.store.currentVersion(cancelId), '1', 'the appointment is unchanged');
  });
}

t.test('item 13: a malformed request pipelined behind a cancel is answered after the cancel, in order', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  const cancel = await cancelRequest(h, 'nhs-booking', id);
  const c = await rawTls(h.gateway.port);
  const body = String(cancel.body);
  const undo = h.provider.fault('slow', { method: 'PUT', delayMs: 200 });
  c.socket.write(raw('PUT', cancel.path, { ...cancel.headers as Record<string, string>, 'Content-Length': String(Buffer.byteLength(body)) }, body) + 'NOT A REQUEST\r\n\r\n');
  t.ok(await c.closed(5000), 'the connection is closed after the malformed request');
  undo();
  const answers = parseResponses(c.received());
  t.same(answers.map((a) => a.status), [200, 400], 'the cancel\'s answer first, then the 400');
  t.equal(h.provider.store.currentVersion(id), '2', 'the cancel was applied');
});

t.test('a refusal before the body is read closes the connection when the body is over the limit or of unknown length (never read to its end)', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const id = h.provider.store.ids()[0]!;
  // The read interaction on the cancel route: refused at the Spine headers, before any body is read.
  const headers = { ...identityHeaders('nhs-booking', 'read'), 'If-Match': 'W/"1"', 'Content-Type': 'application/fhir+json' };
  for (const [name, extra] of [
    ['8 MiB declared', { 'Content-Length': String(8 * 1024 * 1024) }],
    ['chunked', { 'Transfer-Encoding': 'chunked' }],
  ] as const) {
    const c = await rawTls(h.gateway.port);
    const head = raw('PUT', `/STU3/1/Appointment/${id}`, { ...headers, ...extra });
    c.socket.write(head.replace(/\r\n\r\n$/, '\r\n\r\n') + (name === 'chunked' ? '400\r\n' + 'x'.repeat(1024) + '\r\n' : 'x'.repeat(1024)));
    t.ok(await eventually(() => parseResponses(c.received()).length >= 1), `${name}: answered`);
    const [answer] = parseResponses(c.received());
    t.equal(answer!.status, 400, `${name}: refused before the body`);
    t.equal(answer!.headers['connection'], 'close', `${name}: Connection: close`);
    t.ok(await c.closed(3000), `${name}: closed without reading the rest`);
  }
  // A small declared body still keeps the connection (Node reads it off): nothing to protect.
  const c = await rawTls(h.gateway.port);
  c.socket.write(raw('PUT', `/STU3/1/Appointment/${id}`, { ...headers, 'Content-Length': '10' }, '0123456789'));
  t.ok(await eventually(() => parseResponses(c.received()).length >= 1));
  t.equal(parseResponses(c.received())[0]!.headers['connection'], 'keep-alive', 'a small unread body: kept alive');
  c.socket.destroy();
});
