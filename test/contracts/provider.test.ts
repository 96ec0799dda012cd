/**
 * The provider port's contract (src/ports/provider.ts), run against every adapter (today: the
 * undici HTTP adapter) with an injected clock: deadlines fire when the clock is advanced, never by
 * sleeping. A real HTTP server on port 0 plays the provider.
 */
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpProvider } from '../../src/adapters/provider-http.js';
import { ManualClock } from '../../src/ports/clock.js';
import { ProviderFailure, type ProviderPort } from '../../src/ports/provider.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;

async function fakeProvider(handler: Handler) {
  const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  return { url, seen, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

const adapters: Array<[string, (url: string, clock: ManualClock) => ProviderPort]> = [
  ['provider-http (undici)', (url, clock) => createHttpProvider({ url, connections: 2, clock })],
];
const opts = { deadlineMs: 1000, bodyDeadlineMs: 1000, maxBytes: 1024 };

/** Resolves once `cond` holds, polling the event loop (a real condition, not a fixed sleep). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

for (const [name, make] of adapters) {
  t.test(`${name}: read and write send exactly what they are given, below the base path`, async (t) => {
    const p = await fakeProvider((req, res, body) => res.writeHead(200, { 'content-type': 'application/fhir+json', etag: 'W/"2"' }).end(req.method === 'PUT' ? body : '{"ok":true}'));
    const clock = new ManualClock();
    const port = make(p.url, clock);
    t.teardown(async () => { await port.close(); await p.close(); });
    const r = await port.read('Appointment/a1', { accept: 'application/fhir+json', 'ssp-traceid': 't' }, opts);
    t.equal(r.status, 200);
    t.equal(r.headers.etag, 'W/"2"');
    t.equal(r.body.toString(), '{"ok":true}');
    const bytes = Buffer.from('{ "odd" :  "spacing" }');
    const w = await port.write('Appointment/a1', bytes, { 'content-type': 'application/fhir+json', 'if-match': 'W/"1"' }, opts);
    t.ok(w.body.equals(bytes));
    t.same(p.seen.map((s) => `${s.method} ${s.url}`), ['GET /fhir/Appointment/a1', 'PUT /fhir/Appointment/a1']);
    t.ok(p.seen[1]!.body.equals(bytes), 'the body byte for byte');
    t.equal(p.seen[1]!.headers['if-match'], 'W/"1"');
    t.equal(p.seen[0]!.headers['ssp-traceid'], 't');
    t.notOk(p.seen[1]!.headers.expect, 'no Expect');
  });

  t.test(`${name}: the deadline aborts an exchange waiting for its status line`, async (t) => {
    let held: http.ServerResponse | undefined;
    const p = await fakeProvider((_req, res) => (held = res));
    const clock = new ManualClock();
    const port = make(p.url, clock);
    t.teardown(async () => { held?.destroy(); await port.close(); await p.close(); });
    const pending = port.write('Appointment/a1', Buffer.from('{}'), {}, opts).then(() => 'answered', (e) => e);
    await until(() => held !== undefined);
    clock.advance(999);
    clock.advance(1);
    const e = await pending;
    t.ok(e instanceof ProviderFailure, 'rejected');
    t.equal((e as ProviderFailure).kind, 'timeout');
    t.equal((e as ProviderFailure).mayHaveApplied, true, 'a write that reached the provider may have been applied');
  });

  t.test(`${name}: a write still queued for a connection at its deadline never left: not "may have been applied"`, async (t) => {
    const held: http.ServerResponse[] = [];
    const p = await fakeProvider((_req, res) => held.push(res));
    const clock = new ManualClock();
    const port = make(p.url, clock); // two connections
    t.teardown(async () => { for (const r of held) r.destroy(); await port.close(); await p.close(); });
    const reads = [port.read('Appointment/a1', {}, { ...opts, deadlineMs: 60_000 }), port.read('Appointment/a2', {}, { ...opts, deadlineMs: 60_000 })].map((x) => x.catch(() => undefined));
    await until(() => held.length === 2);
    const queued = port.write('Appointment/a3', Buffer.from('{}'), {}, opts).then(() => 'answered', (e) => e);
    clock.advance(1000);
    const e = await queued;
    t.ok(e instanceof ProviderFailure, 'rejected');
    t.equal((e as ProviderFailure).kind, 'timeout');
    t.equal((e as ProviderFailure).mayHaveApplied, false, 'it was never written');
    for (const r of held) r.writeHead(200).end('{}');
    await Promise.all(reads);
    t.equal(p.seen.filter((x) => x.method === 'PUT').length, 0, 'the provider never saw it');
  });

  t.test(`${name}: after the status line, a slow body has its own bound (slow-body, statusSeen)`, async (t) => {
    let held: http.ServerResponse | undefined;
    const p = await fakeProvider((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      res.write('{"resourceType":');
      held = res;
    });
    const clock = new ManualClock();
    const port = make(p.url, clock);
    t.teardown(async () => { held?.destroy(); await port.close(); await p.close(); });
    const before = clock.timersSet;
    const pending = port.read('Appointment/a1', {}, opts).then(() => 'answered', (e) => e);
    await until(() => held !== undefined);
    // The status line has reached the port once it arms the body's own deadline: the exchange's
    // second timer (the first is the head's).
    await until(() => clock.timersSet >= before + 2);
    clock.advance(1000);
    const e = (await pending) as ProviderFailure;
    t.equal(e.kind, 'slow-body');
    t.equal(e.statusSeen, 200);
  });

  t.test(`${name}: answers over maxBytes are refused; redirects are not followed; refused connections say so`, async (t) => {
    const p = await fakeProvider((req, res) => {
      if (req.url!.endsWith('big')) res.writeHead(200).end(Buffer.alloc(4096, 97));
      else res.writeHead(302, { location: 'http://elsewhere.example/' }).end();
    });
    const clock = new ManualClock();
    const port = make(p.url, clock);
    t.teardown(async () => { await port.close(); await p.close(); });
    const big = await port.read('big', {}, opts).catch((e) => e as ProviderFailure);
    t.equal((big as ProviderFailure).kind, 'too-large');
    const redirect = await port.read('moved', {}, opts);
    t.equal(redirect.status, 302, 'the redirect is the answer, not followed');
    t.equal(p.seen.length, 2, 'nothing fetched elsewhere');
    await port.ping();
    t.pass('ping resolves while the provider listens');
    await p.close();
    const down = make(p.url, clock);
    const refused = await down.write('x', Buffer.from('{}'), {}, opts).catch((e) => e as ProviderFailure);
    t.equal((refused as ProviderFailure).kind, 'refused');
    t.equal((refused as ProviderFailure).mayHaveApplied, false, 'a write refused at connect never left');
    await t.rejects(down.ping(), 'ping rejects when nothing listens');
    await down.close();
  });

  t.test(`${name}: an informational answer (103 Early Hints) is not the answer; the deadline still counts to the final status line`, async (t) => {
    let held: http.ServerResponse | undefined;
    const p = await fakeProvider((_req, res) => {
      res.writeEarlyHints({ link: '</x>; rel=preload' });
      held = res;
    });
    const clock = new ManualClock();
    const port = make(p.url, clock);
    t.teardown(async () => { held?.destroy(); await port.close(); await p.close(); });
    const pending = port.read('Appointment/a1', {}, opts).then((r) => r, (e) => e);
    await until(() => held !== undefined);
    held!.writeHead(200, { 'content-type': 'application/fhir+json', etag: 'W/"3"' }).end('{"ok":1}');
    const r = await pending;
    t.equal(r.status, 200, 'the final status');
    t.equal(r.headers.etag, 'W/"3"', 'the final headers');
    t.equal(r.body.toString(), '{"ok":1}');
    const slow = await fakeProvider((_req, res) => res.writeEarlyHints({ link: '</y>; rel=preload' }));
    const port2 = make(slow.url, clock);
    t.teardown(async () => { await port2.close(); await slow.close(); });
    const waiting = port2.read('Appointment/a2', {}, opts).then(() => 'answered', (e) => e);
    await until(() => slow.seen.length === 1);
    await new Promise((r) => setTimeout(r, 20)); // let the 103 arrive (a real event, not time passing for the port)
    clock.advance(1000);
    const e = await waiting;
    t.equal((e as ProviderFailure).kind, 'timeout', 'still waiting for the status line: timeout, not slow-body');
  });
}
