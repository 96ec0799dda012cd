/**
 * Issue 16 / ruling 27: GP Connect amend is a guarded change like cancel. Same identity, If-Match,
 * media type, body and profile checks; the stored appointment must be booked (not cancelled) and in
 * the future; only description and comment may change (status equal to the stored one). Real
 * gateway over mTLS in front of the recording demo provider.
 */
import t from 'tap';
import { STANDARDS } from '../../src/standards/index.js';
import type { Resource } from '../../demo/provider/store.js';
import { assertOutcome } from '../helpers/assert.js';
import { amendRequest, cancelRequest, seen, startHarness, type Harness, type RequestOptions } from '../helpers/harness.js';

const GPC = STANDARDS['gp-connect'];
const OO_PROFILE = GPC.operationOutcomeProfile;
const h = await startHarness({ standard: 'gp-connect', config: { interactions: { amend: true } } });
t.teardown(() => h.close());

let counter = 0;
/** A fresh copy of a seeded appointment under a new id, starting a day from now unless changed. */
function fresh(harness: Harness, change?: (r: Record<string, any>) => void): string {
  const r = structuredClone(harness.provider.store.read(harness.provider.store.ids()[0]!)!.resource) as Record<string, any>;
  const id = `amend-${++counter}`;
  r.id = id;
  r.start = new Date(Date.now() + 86400_000).toISOString().replace(/\.\d+Z$/, 'Z');
  r.end = new Date(Date.now() + 90000_000).toISOString().replace(/\.\d+Z$/, 'Z');
  change?.(r);
  harness.provider.store.create(r as Resource, id);
  return id;
}

async function send(req: RequestOptions) {
  const before = seen(h.provider, 'PUT', '/Appointment/');
  const r = await h.request(req);
  return { r, puts: seen(h.provider, 'PUT', '/Appointment/') - before };
}

t.test('200: only description and comment changed -> forwarded unchanged', async (t) => {
  const id = fresh(h);
  const req = await amendRequest(h, id, (r) => {
    r.comment = 'Bring your inhaler';
    r.description = 'Asthma review (amended)';
  });
  const { r, puts } = await send(req);
  t.equal(r.status, 200, r.body.toString().slice(0, 300));
  t.equal(puts, 1);
  const put = h.provider.requests.filter((x) => x.method === 'PUT').at(-1)!;
  t.ok(put.body.equals(Buffer.from(String(req.body))), 'the exact bytes');
  t.equal(put.headers['ssp-interactionid'], GPC.interactions.find((i) => i.name === 'amend')!.id);
  t.equal(r.json.comment, 'Bring your inhaler');
  t.match(String(r.headers.etag), /^W\/"\d+"$/);
  t.equal(r.headers['cache-control'], 'no-store');
});

t.test('description of 100 and comment of 500 characters (code points, not UTF-16 units) are amended', async (t) => {
  const { r, puts } = await send(await amendRequest(h, fresh(h), (a) => {
    a.description = 'd'.repeat(100);
    a.comment = '\u{1F600}'.repeat(500);
  }));
  t.equal(r.status, 200, r.body.toString().slice(0, 300));
  t.equal(puts, 1);
});

t.test('refusals: 422 business-rule with the path of each difference, nothing forwarded', async (t) => {
  const cases: Array<[string, (r: Record<string, any>) => void, string[]]> = [
    ['status changed', (r) => (r.status = 'cancelled'), ['Appointment.status']],
    ['another element changed', (r) => (r.minutesDuration = 99), ['Appointment.minutesDuration']],
    ['start moved', (r) => (r.start = '2099-01-01T10:00:00Z'), ['Appointment.start']],
    ['two differences', (r) => { r.minutesDuration = 7; r.comment = 'ok'; r.start = '2099-02-01T10:00:00Z'; }, ['Appointment.minutesDuration', 'Appointment.start']],
    ['description over 100 characters (gp-connect §c)', (r) => (r.description = 'd'.repeat(101)), ['Appointment.description']],
    ['comment over 500 characters (gp-connect §c)', (r) => (r.comment = '\u{1F600}'.repeat(501)), ['Appointment.comment']],
    // description is 1..1 in GPConnect-Appointment-1: an amend may change it, not blank it.
    ['description blanked', (r) => (r.description = '   '), ['Appointment.description']],
    ['description of no-break spaces (blank as the cancellation reason is)', (r) => (r.description = '\u00a0'), ['Appointment.description']],
    ['description of tabs and line breaks', (r) => (r.description = '\t\r\n '), ['Appointment.description']],
  ];
  for (const [name, change, paths] of cases) {
    const { r, puts } = await send(await amendRequest(h, fresh(h), change));
    assertOutcome(t, r, 422, 'INVALID_RESOURCE', { profile: OO_PROFILE, issue: 'business-rule' });
    const exprs = (r.json.issue as Array<{ expression?: string[] }>).flatMap((i) => i.expression ?? []).sort();
    for (const p of paths) t.ok(exprs.includes(p), `${name}: ${p} named (got ${exprs.join(', ')})`);
    t.equal(puts, 0, `${name}: nothing forwarded`);
  }
});

t.test('a cancelled or past appointment cannot be amended (422), nothing forwarded', async (t) => {
  const cancelled = fresh(h, (r) => (r.status = 'cancelled'));
  const a = await send(await amendRequest(h, cancelled, (r) => (r.comment = 'x')));
  assertOutcome(t, a.r, 422, 'INVALID_RESOURCE', { expression: 'Appointment.status' });
  t.equal(a.puts, 0);
  const past = fresh(h, (r) => {
    r.start = '2020-01-01T10:00:00Z';
    r.end = '2020-01-01T10:30:00Z';
  });
  const pastAmend = await amendRequest(h, past, (r) => (r.comment = 'x'));
  const reads = seen(h.provider, 'GET', `/Appointment/${past}`);
  const b = await send(pastAmend);
  assertOutcome(t, b.r, 422, 'INVALID_RESOURCE', { expression: 'Appointment.start' });
  t.equal(b.puts, 0);
  // The GP Connect ruling: a start in the past needs only the body, so the provider is not even read.
  t.equal(seen(h.provider, 'GET', `/Appointment/${past}`), reads, 'no provider read for a past start in the body');
});

t.test('same checks as a cancel: stale If-Match 409, media type 415, profile 422', async (t) => {
  const id = fresh(h);
  const req = await amendRequest(h, id, (r) => (r.comment = 'x'));
  const stale = await send({ ...req, headers: { ...req.headers, 'If-Match': 'W/"99"' } });
  assertOutcome(t, stale.r, 409, 'FHIR_CONSTRAINT_VIOLATION');
  const media = await send({ ...req, headers: { ...req.headers, 'Content-Type': 'text/plain' } });
  assertOutcome(t, media.r, 415, 'BAD_REQUEST');
  const bad = JSON.parse(String(req.body));
  bad.status = 'not-a-status';
  const profile = await send({ ...req, body: JSON.stringify(bad) });
  assertOutcome(t, profile.r, 422, 'INVALID_RESOURCE');
  t.equal(stale.puts + media.puts + profile.puts, 0, 'nothing forwarded');
});

t.test('race: two amends with the same If-Match -> one forwarded, the other 409', async (t) => {
  const id = fresh(h);
  const a = await amendRequest(h, id, (r) => (r.comment = 'first'));
  const b = await amendRequest(h, id, (r) => (r.comment = 'second'));
  const before = seen(h.provider, 'PUT', `/Appointment/${id}`);
  const replies = await Promise.all([h.request(a), h.request(b)]);
  t.same(replies.map((r) => r.status).sort(), [200, 409]);
  t.equal(seen(h.provider, 'PUT', `/Appointment/${id}`) - before, 1, 'exactly one PUT');
});

t.test('amend after cancel -> 422 (the appointment is cancelled)', async (t) => {
  const id = fresh(h);
  const c = await h.request(await cancelRequest(h, 'gp-connect', id));
  t.equal(c.status, 200);
  const { r, puts } = await send(await amendRequest(h, id, (x) => (x.comment = 'too late')));
  assertOutcome(t, r, 422, 'INVALID_RESOURCE', { expression: 'Appointment.status' });
  t.equal(puts, 0);
});

t.test('amend audited like a cancel', async (t) => {
  const id = fresh(h);
  const r = await h.request(await amendRequest(h, id, (x) => (x.comment = 'audited')));
  t.equal(r.status, 200);
  const rec = h.audit.filter((a) => a.appointmentId === id).at(-1)!;
  t.equal(rec.interaction, GPC.interactions.find((i) => i.name === 'amend')!.id);
  t.equal(rec.outcome, 'forwarded');
  t.ok(rec.versionBefore && rec.versionAfter && rec.versionBefore !== rec.versionAfter);
});
