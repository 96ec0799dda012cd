/**
 * Issue 14 / README ruling 20: each class the independent check found, with the element's path.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { createProfileValidator, type ProfileIssue } from '../../src/fhir/profile.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const load = (std: string): Json => JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', std, 'appointment.json'), 'utf8')) as Json;
const booking = load('nhs-booking');
const gpc = load('gp-connect');
const vBooking = createProfileValidator('careconnect-appointment-1');
const vGpc = createProfileValidator('gpconnect-appointment-1');
const exprs = (issues: ProfileIssue[]): string[] => [...new Set(issues.map((i) => i.expression))].sort();
const mutate = (base: Json, f: (a: Json) => void): Json => {
  const a = structuredClone(base);
  f(a);
  return a;
};
const CC_REASON = 'https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-AppointmentCancellationReason-1';
const GPC_DELIVERY = 'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-DeliveryChannel-2';

t.test('valid FHIR is never refused', async (t) => {
  const valid: [string, Json, (r: unknown) => ProfileIssue[]][] = [
    ['companions on status, start, meta.profile', mutate(booking, (a) => {
      a._status = { extension: [{ url: 'https://example.org/why', valueString: 'x' }] };
      a._start = { id: 's' };
      a.meta._profile = [{ id: 'p' }];
    }), vBooking],
    ['gpc companions', mutate(gpc, (a) => {
      a._status = { id: 'x' };
      a._end = { id: 'e' };
    }), vGpc],
    ['array aligned with null (contained Patient given names)', mutate(booking, (a) => {
      a.contained[1].name[0].given = [null, 'James'];
      a.contained[1].name[0]._given = [{ extension: [{ url: 'https://example.org/x', valueCode: 'withheld' }] }, null];
    }), vBooking],
    ['whitespace-only string', mutate(booking, (a) => (a.description = ' \t ')), vBooking],
    ['whitespace-only comment (gpc)', mutate(gpc, (a) => (a.comment = '  ')), vGpc],
    ['instant with second 60', mutate(booking, (a) => (a.created = '2016-12-31T23:59:60Z')), vBooking],
    ['29 February of a leap year', mutate(booking, (a) => (a.contained[1].birthDate = '2020-02-29')), vBooking],
    ['known extension in its context', mutate(booking, (a) => (a.extension = [{ url: CC_REASON, valueString: 'r' }])), vBooking],
  ];
  for (const [name, body, v] of valid) t.same(v(body), [], name);
});

t.test('each class of invalid body is caught with its path', async (t) => {
  const cases: [string, Json, (r: unknown) => ProfileIssue[], string[]][] = [
    ['calendar-impossible instant', mutate(booking, (a) => (a.start = '2019-02-30T10:00:00Z')), vBooking, ['Appointment.start']],
    ['calendar-impossible date (contained)', mutate(booking, (a) => (a.contained[1].birthDate = '2019-02-29')), vBooking, ['Appointment.contained[1].birthDate']],
    ['day 00', mutate(gpc, (a) => (a.created = '2019-01-00')), vGpc, ['Appointment.created']],
    ['unknown contained resourceType', mutate(booking, (a) => (a.contained[0].resourceType = 'Letter')), vBooking, ['Appointment.contained[0].resourceType']],
    ['contained Slot status outside its binding', mutate(booking, (a) => (a.contained[2].status = 'taken')), vBooking, ['Appointment.contained[2].status']],
    // §c (review of stop 35): the Slot's and the DocumentReference's identifier {system rfc4122, UUID}
    ['contained Slot identifier of another system', mutate(booking, (a) => (a.contained[2].identifier[0].system = 'https://example.org/slots')), vBooking, ['Appointment.contained[2].identifier.system']],
    ['contained Slot identifier not a UUID', mutate(booking, (a) => (a.contained[2].identifier[0].value = 'slot-5')), vBooking, ['Appointment.contained[2].identifier[0].value']],
    ['created as a date only (§c: an instant in 2.0.1)', mutate(booking, (a) => (a.created = '2019-01-17')), vBooking, ['Appointment.created']],
    ['contained DocumentReference identifier not a UUID', mutate(booking, (a) => (a.contained[0].identifier[0].value = 'not-a-uuid')), vBooking, ['Appointment.contained[0].identifier[0].value']],
    ['contained Patient unknown element: not a name FHIR defines, so not echoed (ruling 20)', mutate(booking, (a) => (a.contained[1].nickname = 'x')), vBooking, ['Appointment.contained[1].<unknown>']],
    ['a FHIR element name out of place is echoed', mutate(booking, (a) => (a.contained[1].minutesDuration = 5)), vBooking, ['Appointment.contained[1].minutesDuration']],
    ['an identifier-shaped key holding data is never echoed (ruling 20)', mutate(booking, (a) => (a.Peter_Chalmers_9434765919 = 1)), vBooking, ['Appointment.<unknown>']],
    ['slot pointing at a Patient', mutate(booking, (a) => (a.slot[0].reference = '#P1')), vBooking, ['Appointment.contained[2]', 'Appointment.slot[0].reference']],
    ['booking slot as a literal reference (§c wants #id): the indexed path', mutate(booking, (a) => (a.slot[0].reference = 'Slot/slot002')), vBooking, ['Appointment.contained[2]', 'Appointment.slot[0].reference']],
    ['gpc slot pointing at a Patient', mutate(gpc, (a) => (a.slot[0].reference = 'Patient/1')), vGpc, ['Appointment.slot[0].reference']],
    ['per-1: requested period starting after its end', mutate(booking, (a) => (a.requestedPeriod = [{ start: '2019-01-18T10:00:00Z', end: '2019-01-17T10:00:00Z' }])), vBooking, ['Appointment.requestedPeriod[0]']],
    ['per-1 inside a contained resource', mutate(booking, (a) => (a.contained[1].name[0].period = { start: '2020-01-02', end: '2020-01-01' })), vBooking, ['Appointment.contained[1].name[0].period']],
    ['cancellation reason on a participant', mutate(booking, (a) => (a.participant[0].extension = [{ url: CC_REASON, valueString: 'r' }])), vBooking, ['Appointment.participant[0].extension[0]']],
    ['gpc delivery channel on a participant', mutate(gpc, (a) => (a.participant[0].extension = [{ url: GPC_DELIVERY, valueCode: 'Video' }])), vGpc, ['Appointment.participant[0].extension[0]']],
    ['unknown modifierExtension', mutate(booking, (a) => (a.modifierExtension = [{ url: 'https://example.org/not-really', valueBoolean: true }])), vBooking, ['Appointment.modifierExtension[0]']],
    ['unknown modifierExtension on a participant', mutate(gpc, (a) => (a.participant[1].modifierExtension = [{ url: 'https://example.org/m', valueBoolean: true }])), vGpc, ['Appointment.participant[1].modifierExtension[0]']],
    ['known non-modifier extension used as a modifier', mutate(booking, (a) => (a.modifierExtension = [{ url: CC_REASON, valueString: 'r' }])), vBooking, ['Appointment.modifierExtension[0]']],
    ['array not aligned with its companion', mutate(booking, (a) => (a.contained[1].name[0].given = [null, 'James'])), vBooking, ['Appointment.contained[1].name[0].given[0]']],
    ['companion of a non-primitive', mutate(booking, (a) => (a._participant = [{ id: 'x' }])), vBooking, ['Appointment._participant']],
    ['empty string', mutate(booking, (a) => (a.comment = '')), vBooking, ['Appointment.comment']],
  ];
  for (const [name, body, v, want] of cases) t.same(exprs(v(body)), want, name);
});

t.test('paths are rendered safely and issues capped', async (t) => {
  const odd = mutate(booking, (a) => {
    a['x.y'] = 1;
    a['$where'] = 1;
    a['a'.repeat(100)] = 1;
    a.participant[0]['<script>'] = 1;
  });
  t.same(exprs(vBooking(odd)), ['Appointment.<unknown>', 'Appointment.participant[0].<unknown>']);
  const many = mutate(booking, (a) => {
    a.contained = Array.from({ length: 40_000 }, (_, i) => ({ resourceType: 'Basic', id: `b${i}` }));
  });
  const started = process.hrtime.bigint();
  const issues = vBooking(many);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.equal(issues.length, 20);
  t.match(issues[19]!.diagnostics, /^and (more than )?\d+ more profile issues not listed$/);
  t.ok(ms < 2000, `40,000 small contained resources validated in ${ms.toFixed(0)} ms (linear walk)`);
});
