/**
 * Issue 8 item 5 (ruling 10): 200 concurrent cancels over 50 appointments, 4 per appointment (2
 * carrying the current version, 2 a stale one). Per appointment and version at most one cancel
 * succeeds; every 200 is exactly one PUT at the provider and one stored version; every rejected
 * request is absent from the provider's PUTs; every request is answered. The provider is made a
 * little slow on PUT so the requests really overlap while a cancel is being decided.
 */
import t from 'tap';
import { seedAppointments } from '../../demo/provider/seed/index.js';
import { identityHeaders, startHarness, type Reply } from '../helpers/harness.js';

const h = await startHarness();
t.teardown(() => h.close());
const template = seedAppointments('nhs-booking')[0]!;
const APPOINTMENTS = 50;
const ids = Array.from({ length: APPOINTMENTS }, (_, i) => {
  const id = `race-${i}`;
  h.provider.store.create(structuredClone(template), id);
  return id;
});
h.provider.fault('slow', { method: 'PUT', delayMs: 30 });

interface Sent { rid: string; id: string; ifMatch: string; reply?: Reply; error?: string }

/** The cancel body for the appointment's current stored version (what a client read before). */
function cancelBody(id: string, version: string): string {
  const stored = h.provider.store.vread(id, version)?.resource ?? h.provider.store.read(id)!.resource;
  return JSON.stringify({ ...stored, status: 'cancelled' });
}

async function round(label: string, plan: Array<{ id: string; ifMatch: string; bodyVersion: string }>): Promise<Sent[]> {
  const sent: Sent[] = plan.map((p, i) => ({ rid: `${label}-${i}`, id: p.id, ifMatch: p.ifMatch }));
  // Built first, then all sent at once: 200 requests in flight, each on its own TLS connection.
  const requests = plan.map((p, i) => ({
    method: 'PUT',
    path: `/STU3/1/Appointment/${p.id}`,
    headers: { ...identityHeaders('nhs-booking', 'cancel'), 'If-Match': p.ifMatch, 'Content-Type': 'application/fhir+json', 'X-Request-ID': sent[i]!.rid },
    body: cancelBody(p.id, p.bodyVersion),
  }));
  await Promise.all(requests.map(async (r, i) => {
    try {
      sent[i]!.reply = await h.request(r);
    } catch (e) {
      sent[i]!.error = (e as Error).message;
    }
  }));
  return sent;
}

/** PUTs the provider received, by X-Request-ID. */
function providerPuts(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of h.provider.requests) if (r.method === 'PUT') m.set(String(r.headers['x-request-id']), (m.get(String(r.headers['x-request-id'])) ?? 0) + 1);
  return m;
}

function check(t: Tap, sent: Sent[], current: string, versionsAfter: number): void {
  t.equal(sent.filter((s) => s.reply).length, sent.length, `every one of the ${sent.length} requests was answered`);
  t.same(sent.filter((s) => s.error).map((s) => s.error), [], 'no request failed at the client');
  const puts = providerPuts();
  const ok = sent.filter((s) => s.reply?.status === 200);
  const rejected = sent.filter((s) => s.reply && s.reply.status !== 200);
  t.equal(ok.length, APPOINTMENTS, 'exactly one cancel succeeded per appointment');
  for (const id of ids) {
    const mine = sent.filter((s) => s.id === id);
    const wins = mine.filter((s) => s.reply?.status === 200);
    if (wins.length !== 1) t.fail(`${id}: ${wins.length} cancels succeeded (statuses ${mine.map((s) => s.reply?.status).join(',')})`);
    else if (wins[0]!.ifMatch !== `W/"${current}"` && wins[0]!.ifMatch !== `"${current}"`) t.fail(`${id}: a stale If-Match (${wins[0]!.ifMatch}) won`);
    const history = h.provider.store.history(id);
    if (history.length !== versionsAfter) t.fail(`${id}: ${history.length} stored versions, expected ${versionsAfter}`);
    const last = history.at(-1)!;
    if (last.resource['status'] !== 'cancelled' || history.filter((v) => v.resource['status'] === 'cancelled').length !== versionsAfter / 2) t.fail(`${id}: the accepted cancel is not stored exactly once`);
  }
  t.ok(ok.every((s) => puts.get(s.rid) === 1), 'every 200 is exactly one PUT at the provider');
  t.ok(ok.every((s) => s.reply!.headers.etag === `W/"${Number(current) + 1}"`), 'every 200 carries the new version');
  t.ok(rejected.every((s) => !puts.has(s.rid)), 'no rejected request reached the provider as a PUT');
  const statuses = new Set(rejected.map((s) => `${s.reply!.status} ${s.reply!.json?.issue?.[0]?.details?.coding?.[0]?.code}`));
  t.same([...statuses], ['409 CONFLICTING_VALUES'], 'every rejection is 409 CONFLICTING_VALUES (stale, or overtaken by the winner)');
  t.equal(sent.filter((s) => h.audit.some((a) => a.requestId === s.rid)).length, sent.length, 'every request has its audit record');
}
type Tap = { equal: Function; same: Function; ok: Function; fail: Function };

t.test('200 concurrent cancels over 50 appointments (2 current, 2 stale If-Match each)', async (t) => {
  const plan = ids.flatMap((id) => [
    { id, ifMatch: 'W/"1"', bodyVersion: '1' },
    { id, ifMatch: 'W/"99"', bodyVersion: '1' },
    { id, ifMatch: '"1"', bodyVersion: '1' },
    { id, ifMatch: 'W/"99"', bodyVersion: '1' },
  ]);
  const putsBefore = h.provider.requests.filter((r) => r.method === 'PUT').length;
  const sent = await round('r1', plan);
  check(t, sent, '1', 2);
  t.equal(h.provider.requests.filter((r) => r.method === 'PUT').length - putsBefore, APPOINTMENTS, '50 PUTs in all');
});

t.test('again after each appointment is re-booked (version 3): one success per version, old versions refused', async (t) => {
  for (const id of ids) {
    const v = h.provider.store.read(id)!;
    h.provider.store.update(id, { ...v.resource, status: 'booked' });
  }
  const plan = ids.flatMap((id) => [
    { id, ifMatch: 'W/"3"', bodyVersion: '3' },
    { id, ifMatch: 'W/"1"', bodyVersion: '3' },
    { id, ifMatch: 'W/"3"', bodyVersion: '3' },
    { id, ifMatch: 'W/"2"', bodyVersion: '3' },
  ]);
  const putsBefore = h.provider.requests.filter((r) => r.method === 'PUT').length;
  const sent = await round('r2', plan);
  check(t, sent, '3', 4);
  t.equal(h.provider.requests.filter((r) => r.method === 'PUT').length - putsBefore, APPOINTMENTS, '50 more PUTs');
});
