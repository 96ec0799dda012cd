/**
 * Issue 13 item 2 (ruling 24): every provider exchange lives under one deadline, `Expect` is never
 * forwarded, and passthrough traffic cannot starve cancels of provider connections.
 */
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cancelRequest, identityHeaders, startHarness } from '../helpers/harness.js';

const readOf = (id: string) => ({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: identityHeaders('nhs-booking', 'read') });

t.test('Expect is never forwarded (read and cancel)', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const [a, b] = h.provider.store.ids() as [string, string];
  const read = await h.request({ ...readOf(a), headers: { ...readOf(a).headers, Expect: '100-continue' } });
  t.equal(read.status, 200);
  const cancel = await cancelRequest(h, 'nhs-booking', b);
  const put = await h.request({ ...cancel, headers: { ...cancel.headers, Expect: '100-continue' } });
  t.equal(put.status, 200);
  const upstream = h.provider.requests.filter((r) => r.url.includes(a) || r.url.includes(b));
  t.ok(upstream.length >= 3, 'the provider saw the read, the current read and the PUT');
  t.notOk(upstream.some((r) => 'expect' in r.headers), 'no Expect header reached the provider');
});

t.test('64 slow passthrough reads holding the passthrough pool do not make a concurrent cancel fail', async (t) => {
  // The slow reads are held at the provider far longer than any cancel takes, even on a loaded
  // machine: a cancel that queued behind them would be answered only after them.
  const h = await startHarness({ config: { upstream: { maxSockets: 4, timeoutMs: 10_000 } } });
  let closed = false;
  const close = () => (closed ? undefined : ((closed = true), h.close()));
  t.teardown(close);
  const [slowId, cancelId] = h.provider.store.ids() as [string, string];
  const cancel = await cancelRequest(h, 'nhs-booking', cancelId);
  h.provider.fault('slow', { method: 'GET', path: new RegExp(`/Appointment/${slowId}$`), delayMs: 8000 });
  let slowAnswered = 0;
  const reads = Array.from({ length: 64 }, () => h.request(readOf(slowId)).then(() => void slowAnswered++, () => undefined));
  // Wait until the passthrough pool is really busy with the slow reads.
  const busy = () => h.provider.requests.filter((r) => r.method === 'GET' && r.url.endsWith(slowId)).length >= 4;
  while (!busy()) await new Promise((r) => setImmediate(r));
  const answer = await h.request(cancel);
  t.equal(answer.status, 200, 'the cancel is served while 64 slow reads hold the passthrough pool');
  t.equal(slowAnswered, 0, 'without waiting behind the slow reads: none of them has been answered yet');
  t.equal(h.provider.store.currentVersion(cancelId), '2', 'and applied');
  await close(); // the held reads end with the gateway, not 8 s later
  await Promise.all(reads);
});

t.test('a passthrough forward queued past upstream.timeoutMs is aborted and never reaches the provider later', async (t) => {
  // An upstream of our own whose /Appointment/hold answer streams without end: the passthrough's
  // only socket stays taken for as long as the test wants, whatever the deadline. It trickles a
  // byte every 50 ms, so the socket's inactivity timeout (upstream.timeoutMs too) never frees it
  // for the queued read before that read's deadline.
  const seenPaths: string[] = [];
  const held: http.ServerResponse[] = [];
  const trickles: NodeJS.Timeout[] = [];
  const upstream = http.createServer((req, res) => {
    seenPaths.push(req.url ?? '');
    res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"1"' });
    if (req.url?.endsWith('/hold')) {
      res.write('{');
      held.push(res);
      trickles.push(setInterval(() => res.write(' '), 50));
    } else res.end(JSON.stringify({ resourceType: 'Appointment', id: req.url?.split('/').pop(), meta: { versionId: '1' } }));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const h = await startHarness({ config: { upstream: { url, maxSockets: 1, timeoutMs: 400 } } });
  t.teardown(async () => {
    for (const i of trickles) clearInterval(i);
    for (const r of held) r.destroy();
    await h.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });
  const holding = h.request(readOf('hold')).catch(() => undefined);
  while (!seenPaths.some((p) => p.endsWith('/hold'))) await new Promise((r) => setImmediate(r));
  const queued = await h.request(readOf('queued'));
  t.equal(queued.status, 500, 'the read queued for the only socket is answered 500 at the deadline');
  // Free the socket: had the queued read survived, it would be sent now.
  for (const i of trickles) clearInterval(i);
  for (const r of held) r.end('}');
  await holding;
  t.equal((await h.request(readOf('later'))).status, 200, 'the pool serves again');
  t.notOk(seenPaths.some((p) => p.endsWith('/queued')), `the queued read never reached the provider (${seenPaths.join(' ')})`);
});
