/**
 * The diff check (ruling 9) driven directly with a hand-built RequestContext, no HTTP: a cancel may
 * change only status, meta.versionId, meta.lastUpdated and add (never change or remove) the
 * standard's cancellation-reason extension; the stored appointment must not be cancelled already;
 * every other difference is one BUSINESS_RULE issue with its path.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { changeIssues } from '../../src/cancel/change-rules.js';
import type { Issue } from '../../src/errors.js';
import { STANDARDS, type Standard } from '../../src/standards/index.js';

type Json = Record<string, any>;

const NHS = STANDARDS['nhs-booking'];
const GPC = STANDARDS['gp-connect'];
const CC_REASON = NHS.cancel.reasonExtensionUrl;
const GPC_REASON = GPC.cancel.reasonExtensionUrl;
const DELIVERY = 'https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-DeliveryChannel-1';

const fixture: Json = JSON.parse(readFileSync(new URL('../fixtures/nhs-booking/appointment.json', import.meta.url), 'utf8'));
const ID = 'appt-1';

/** The stored appointment as the provider would return it: booked, version 1. */
function stored(mutate?: (r: Json) => void): Json {
  const r = structuredClone(fixture);
  r.id = ID;
  r.status = 'booked';
  r.meta = { ...r.meta, versionId: '1', lastUpdated: '2030-01-01T10:00:00.000Z' };
  mutate?.(r);
  return r;
}

/** A pure cancellation of `s`, then `mutate`. */
function cancelOf(s: Json, mutate?: (r: Json) => void): Json {
  const r = structuredClone(s);
  r.status = 'cancelled';
  mutate?.(r);
  return r;
}

interface Decision {
  ok: boolean;
  code?: string;
  issues: readonly Issue[];
  ctx: { differingPaths?: string[] };
}

/** The cancel change set of the standard (src/cancel/change-rules.ts), as the transaction applies it. */
function decide(current: Json, submitted: Json, standard: Standard = NHS): Decision {
  const { issues, paths } = changeIssues(standard.changeSets.cancel, current, submitted, Date.now());
  if (!issues.length) return { ok: true, issues: [], ctx: {} };
  return { ok: false, code: 'BUSINESS_RULE', issues, ctx: { differingPaths: paths } };
}

function passes(t: Tap, d: Decision, name: string): void {
  t.ok(d.ok, `${name}: passes${d.ok ? '' : ` (got ${d.code}: ${d.issues.map((i) => i.expression).join(', ')})`}`);
  t.equal(d.ctx.differingPaths, undefined, `${name}: no differing paths recorded`);
}

function failsWith(t: Tap, d: Decision, paths: string[], name: string): void {
  t.equal(d.ok, false, `${name}: refused`);
  t.equal(d.code, 'BUSINESS_RULE', `${name}: BUSINESS_RULE`);
  t.same(d.issues.map((i) => i.expression), paths, `${name}: one issue per difference, with its path`);
  for (const i of d.issues) {
    t.ok(i.diagnostics.length > 0, `${name}: diagnostics`);
    t.equal(i.issue, undefined, `${name}: the catalogue's issue type (business-rule) applies`);
  }
  t.same(d.ctx.differingPaths, paths, `${name}: differing paths recorded for the audit`);
}

type Tap = Pick<typeof t, 'ok' | 'equal' | 'same' | 'match'>;


t.test('allowed differences only -> passes', async (t) => {
  const s = stored();
  passes(t, decide(s, cancelOf(s)), 'status only');
  passes(t, decide(s, cancelOf(s, (r) => (r.meta.versionId = '9'))), 'meta.versionId differs');
  passes(t, decide(s, cancelOf(s, (r) => (r.meta.lastUpdated = '1999-01-01T00:00:00Z'))), 'meta.lastUpdated differs');
  passes(t, decide(s, cancelOf(s, (r) => (delete r.meta.versionId, delete r.meta.lastUpdated))), 'server meta omitted');
  const bare = stored((r) => (r.meta = { versionId: '1', lastUpdated: '2030-01-01T10:00:00.000Z' }));
  passes(t, decide(bare, cancelOf(bare, (r) => delete r.meta)), 'meta holding only server fields omitted');
  passes(t, decide(bare, cancelOf(bare, (r) => (r.meta = {}))), 'meta holding only server fields emptied');
  const noMeta = stored((r) => delete r.meta);
  passes(t, decide(noMeta, cancelOf(noMeta, (r) => (r.meta = { versionId: '1', lastUpdated: 'x' }))), 'server meta added');
  // Key order is irrelevant (ruling 9: JSON values).
  const reordered = Object.fromEntries(Object.entries(cancelOf(s)).reverse());
  passes(t, decide(s, reordered), 'keys in another order');
  // contained is matched by id, not by position.
  passes(t, decide(s, cancelOf(s, (r) => r.contained.reverse())), 'contained in another order');
});

t.test('the cancellation-reason extension may be added', async (t) => {
  const s = stored();
  const reason = { url: CC_REASON, valueString: 'Patient request' };
  passes(t, decide(s, cancelOf(s, (r) => (r.extension = [reason]))), 'reason added');
  const withOther = stored((r) => (r.extension = [{ url: DELIVERY, valueCode: 'In-person' }]));
  passes(t, decide(withOther, cancelOf(withOther, (r) => r.extension.push(reason))), 'reason added after another extension');
  passes(t, decide(withOther, cancelOf(withOther, (r) => r.extension.unshift(reason))), 'reason added before another extension');
  failsWith(t, decide(s, cancelOf(s, (r) => (r.extension = [reason, { ...reason, valueString: 'again' }]))), ['Appointment.extension'], 'two reasons added');
  failsWith(t, decide(withOther, cancelOf(withOther, (r) => (r.extension = [reason]))), ['Appointment.extension'], 'reason added, another extension removed');
  failsWith(
    t,
    decide(s, cancelOf(s, (r) => (r.extension = [reason, { url: DELIVERY, valueCode: 'In-person' }]))),
    ['Appointment.extension'],
    'reason added together with another extension',
  );
  // Each standard has its own reason extension; the other one is just a difference.
  failsWith(t, decide(s, cancelOf(s, (r) => (r.extension = [{ url: GPC_REASON, valueString: 'x' }]))), ['Appointment.extension'], 'the GP Connect reason under nhs-booking');
  passes(t, decide(s, cancelOf(s, (r) => (r.extension = [{ url: GPC_REASON, valueString: 'x' }])), GPC), 'the GP Connect reason under gp-connect');
  failsWith(t, decide(s, cancelOf(s, (r) => (r.extension = [reason])), GPC), ['Appointment.extension'], 'the CareConnect reason under gp-connect');
});

t.test('a stored reason may not be changed or removed', async (t) => {
  const reason = { url: CC_REASON, valueString: 'Original reason' };
  const s = stored((r) => (r.extension = [reason]));
  passes(t, decide(s, cancelOf(s)), 'kept as it was');
  failsWith(t, decide(s, cancelOf(s, (r) => (r.extension[0].valueString = 'Other reason'))), ['Appointment.extension[0].valueString'], 'reason changed');
  failsWith(t, decide(s, cancelOf(s, (r) => delete r.extension)), ['Appointment.extension'], 'reason removed (the only extension)');
  const two = stored((r) => (r.extension = [{ url: DELIVERY, valueCode: 'In-person' }, reason]));
  failsWith(t, decide(two, cancelOf(two, (r) => r.extension.pop())), ['Appointment.extension[1]'], 'reason removed (one of two)');
  failsWith(t, decide(s, cancelOf(s, (r) => r.extension.push({ url: CC_REASON, valueString: 'second' }))), ['Appointment.extension[1]'], 'a second reason added');
});

t.test('an appointment already cancelled is refused', async (t) => {
  const s = stored((r) => (r.status = 'cancelled'));
  failsWith(t, decide(s, cancelOf(s)), ['Appointment.status'], 'already cancelled');
  failsWith(t, decide(s, cancelOf(s, (r) => (r.description = 'x'))), ['Appointment.status', 'Appointment.description'], 'already cancelled and changed');
});

t.test('every other difference is reported with its path', async (t) => {
  const s = stored();
  const cases: Array<[string, (r: Json) => void, string[]]> = [
    ['description changed', (r) => (r.description = 'Other'), ['Appointment.description']],
    ['description removed', (r) => delete r.description, ['Appointment.description']],
    ['comment added', (r) => (r.comment = 'Note'), ['Appointment.comment']],
    ['start with +00:00 instead of Z', (r) => (r.start = r.start.replace('Z', '+00:00')), ['Appointment.start']],
    ['start one second later', (r) => (r.start = r.start.replace(':00.000Z', ':01.000Z')), ['Appointment.start']],
    ['contained Patient family changed', (r) => (r.contained.find((c: Json) => c.id === 'P1').name[0].family = 'Smith'), ['Appointment.contained[1].name[0].family']],
    ['contained Patient removed', (r) => (r.contained = r.contained.filter((c: Json) => c.id !== 'P1')), ['Appointment.contained[1]']],
    ['contained resource added', (r) => r.contained.push({ resourceType: 'Practitioner', id: 'PR1' }), ['Appointment.contained[3]']],
    ['participant removed', (r) => (r.participant = []), ['Appointment.participant[0]']],
    ['participant added', (r) => r.participant.push({ actor: { reference: 'Practitioner/1' }, status: 'accepted' }), ['Appointment.participant[1]']],
    ['participant status changed', (r) => (r.participant[0].status = 'declined'), ['Appointment.participant[0].status']],
    ['slot reference changed', (r) => (r.slot[0].reference = '#other'), ['Appointment.slot[0].reference']],
    ['meta.profile changed', (r) => (r.meta.profile = ['https://example.org/x']), ['Appointment.meta.profile[0]']],
    ['meta.security added', (r) => (r.meta.security = [{ code: 'R' }]), ['Appointment.meta.security']],
    ['text narrative changed', (r) => (r.text.div = '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'), ['Appointment.text.div']],
    ['a primitive extension on status added', (r) => (r._status = { extension: [{ url: 'x', valueString: 'y' }] }), ['Appointment._status']],
    ['a number for a string', (r) => (r.minutesDuration = 10), ['Appointment.minutesDuration']],
    [
      'several changes: one issue each, in path order',
      (r) => {
        r.participant[0].actor.display = 'Someone else';
        r.description = 'Other';
        r.contained.find((c: Json) => c.id === 'P1').gender = 'female';
      },
      ['Appointment.contained[1].gender', 'Appointment.description', 'Appointment.participant[0].actor.display'],
    ],
  ];
  for (const [name, mutate, paths] of cases) failsWith(t, decide(s, cancelOf(s, mutate)), paths, name);
});

t.test('the inputs are not modified', async (t) => {
  const s = stored((r) => (r.extension = [{ url: DELIVERY, valueCode: 'In-person' }]));
  const sub = cancelOf(s, (r) => r.extension.push({ url: CC_REASON, valueString: 'x' }));
  const [s0, sub0] = [structuredClone(s), structuredClone(sub)];
  decide(s, sub);
  t.same(s, s0, 'stored unchanged');
  t.same(sub, sub0, 'submitted unchanged (it is forwarded as received)');
});

t.test('ruling 20: a key the stored appointment holds that FHIR does not define is never echoed in a path', async (t) => {
  const s = stored((r) => (r.Peter_Chalmers_9434765919 = 1));
  const { paths } = changeIssues(NHS.changeSets.cancel, s, cancelOf(stored()), Date.now());
  t.same(paths, ['Appointment.<unknown>']);
  const named = changeIssues(NHS.changeSets.cancel, stored((r) => (r.minutesDuration = 5)), cancelOf(stored((r) => (r.minutesDuration = 6))), Date.now());
  t.same(named.paths, ['Appointment.minutesDuration'], 'element names FHIR defines are echoed');
});

t.test('GP Connect 1.2.7 backwards compatibility: serviceCategory and serviceType may be left out, never changed; NHS Booking tolerates no omission', async (t) => {
  const s = stored((r) => {
    r.serviceCategory = { text: 'GP' };
    r.serviceType = [{ text: 'Routine' }];
    r._serviceCategory = undefined;
  });
  delete s._serviceCategory;
  const gp = (mutate: (r: Json) => void) => decide(s, cancelOf(s, (r) => { r.extension = [...(r.extension ?? []), { url: GPC_REASON, valueString: 'x' }]; mutate(r); }), GPC);
  passes(t, gp((r) => { delete r.serviceCategory; delete r.serviceType; }), 'both left out');
  passes(t, gp((r) => { delete r.serviceType; }), 'one left out');
  t.same(gp((r) => { r.serviceType = [{ text: 'Urgent' }]; }).ctx.differingPaths, ['Appointment.serviceType[0].text'], 'a changed one is a difference');
  t.same(gp((r) => { r.serviceCategory = { text: 'GP' }; r._serviceCategory = { extension: [{ url: 'https://example.org/x', valueString: 'y' }] }; }).ok, false, 'a companion sent is compared');
  const nhs = decide(s, cancelOf(s, (r) => { delete r.serviceType; }), NHS);
  t.same(nhs.ctx.differingPaths, ['Appointment.serviceType'], 'nhs-booking: left out is removed');
});
