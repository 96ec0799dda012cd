import t from 'tap';
import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot, profilesDir } from '../../src/paths.js';
import { createProfileValidator, type ProfileIssue, type ProfileName } from '../../src/fhir/profile.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const fixtureDir = join(packageRoot, 'test', 'fixtures');
const load = (std: string): Json => JSON.parse(readFileSync(join(fixtureDir, std, 'appointment.json'), 'utf8')) as Json;
const booking = load('nhs-booking');
const gpc = load('gp-connect');

const validators: Record<ProfileName, (r: unknown) => ProfileIssue[]> = {
  'careconnect-appointment-1': createProfileValidator('careconnect-appointment-1'),
  'gpconnect-appointment-1': createProfileValidator('gpconnect-appointment-1'),
};
const vBooking = validators['careconnect-appointment-1'];
const vGpc = validators['gpconnect-appointment-1'];

/** Sorted distinct expressions: what the tables below assert exactly. */
const exprs = (issues: ProfileIssue[]): string[] => [...new Set(issues.map((i) => i.expression))].sort();
const mutate = (base: Json, f: (a: Json) => void): Json => {
  const a = structuredClone(base);
  f(a);
  return a;
};

const CC_REASON = 'https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-AppointmentCancellationReason-1';
const GPC_REASON = 'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1';

t.test('the fixtures are valid against their profile', async (t) => {
  t.same(vBooking(booking), []);
  t.same(vGpc(gpc), []);
  // the fixture keeps the provider's version (used by the version tests of others)
  t.equal(booking.meta.versionId, '2');
});

t.test('realistic valid variants stay valid', async (t) => {
  t.same(
    vBooking(
      mutate(booking, (a) => {
        a.status = 'cancelled';
        a.extension = [{ url: CC_REASON, valueString: 'Patient no longer needs the appointment' }];
      }),
    ),
    [],
  );
  t.same(
    vGpc(
      mutate(gpc, (a) => {
        a.status = 'cancelled';
        a.extension.push({ url: GPC_REASON, valueString: 'Double booked' });
      }),
    ),
    [],
  );
  // GP Connect: an empty reason is the cancel rule's to report (422 INVALID_PARAMETER), not the profile's
  t.same(vGpc(mutate(gpc, (a) => a.extension.push({ url: GPC_REASON, valueString: '' }))), []);
  // app-3: a cancelled appointment may lack start and end (the profile allows it for GP Connect's base...)
  t.same(
    exprs(
      vGpc(
        mutate(gpc, (a) => {
          a.status = 'cancelled';
          delete a.start;
          delete a.end;
        }),
      ),
    ),
    ['Appointment.end', 'Appointment.start'], // ...but GPConnect-Appointment-1 makes both 1..1; no app-2/app-3 issue
  );
  // ruling 20: primitive companions (`_status`, `_start`, `meta._profile`) are valid FHIR JSON
  t.same(
    vBooking(
      mutate(booking, (a) => {
        a._status = { id: 'x' };
        a._start = { extension: [{ url: 'https://example.org/x', valueBoolean: true }] };
        a.meta._profile = [{ id: 'p1' }];
      }),
    ),
    [],
  );
  // whitespace-only strings are valid FHIR strings; an instant with second 60 is valid
  t.same(vBooking(mutate(booking, (a) => (a.description = '   '))), []);
  t.same(vBooking(mutate(booking, (a) => (a.created = '2016-12-31T23:59:60Z'))), []);
  // unknown extension URLs are allowed (open slicing)
  t.same(vBooking(mutate(booking, (a) => (a.extension = [{ url: 'https://example.org/x', valueBoolean: true }]))), []);
});

interface Case {
  name: string;
  profile?: ProfileName;
  change: (a: Json) => void;
  expect: string[];
}

const cases: Case[] = [
  { name: 'missing status', change: (a) => delete a.status, expect: ['Appointment.status'] },
  { name: 'unknown status code', change: (a) => (a.status = 'done'), expect: ['Appointment.status'] },
  { name: 'entered in error spelt with spaces', change: (a) => (a.status = 'entered in error'), expect: ['Appointment.status'] },
  { name: 'instant without time', change: (a) => (a.start = '2019-01-17'), expect: ['Appointment.start'] },
  { name: 'instant without seconds', change: (a) => (a.end = '2019-01-17T15:10Z'), expect: ['Appointment.end'] },
  { name: 'instant without zone', change: (a) => (a.created = '2019-01-17T14:32:22'), expect: ['Appointment.created'] },
  { name: 'impossible month', change: (a) => (a.start = '2019-13-17T15:00:00Z'), expect: ['Appointment.start'] },
  { name: 'unknown top-level element', change: (a) => (a.cancelledBy = 'x'), expect: ['Appointment.<unknown>'] },
  { name: 'unknown element in participant', change: (a) => (a.participant[0].role = 'x'), expect: ['Appointment.participant[0].role'] },
  { name: 'unknown element in a Reference', change: (a) => (a.slot[0].ref = 'x'), expect: ['Appointment.slot[0].ref'] },
  {
    name: 'meta.profile missing the profile URI',
    change: (a) => (a.meta.profile = ['https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Patient-1']),
    expect: ['Appointment.meta.profile'],
  },
  { name: 'meta.profile absent', change: (a) => delete a.meta.profile, expect: ['Appointment.meta.profile'] },
  { name: 'meta absent', change: (a) => delete a.meta, expect: ['Appointment.meta'] },
  { name: 'meta.profile as a bare string', change: (a) => (a.meta.profile = a.meta.profile[0]), expect: ['Appointment.meta.profile'] },
  { name: 'participant without status', change: (a) => delete a.participant[0].status, expect: ['Appointment.participant[0].status'] },
  { name: 'participant status not in value set', change: (a) => (a.participant[0].status = 'yes'), expect: ['Appointment.participant[0].status'] },
  { name: 'no participant', change: (a) => delete a.participant, expect: ['Appointment.contained[1]', 'Appointment.participant'] },
  { name: 'empty participant array', change: (a) => (a.participant = []), expect: ['Appointment.contained[1]', 'Appointment.participant'] },
  {
    name: 'app-1: participant with neither type nor actor',
    change: (a) => a.participant.push({ status: 'accepted' }),
    expect: ['Appointment.participant[1]'],
  },
  {
    name: 'contained with nested contained (dom-2)',
    change: (a) => (a.contained[1].contained = [{ resourceType: 'Organization', id: 'o' }]),
    expect: ['Appointment.contained[1].contained'],
  },
  {
    name: 'contained with meta.versionId (dom-4)',
    change: (a) => (a.contained[1].meta.versionId = '1'),
    expect: ['Appointment.contained[1].meta.versionId'],
  },
  // Narrative.div is 1..1 in the base definition, so the incomplete narrative is reported too
  { name: 'contained with narrative (dom-1)', change: (a) => (a.contained[2].text = { status: 'empty' }), expect: ['Appointment.contained[2].text', 'Appointment.contained[2].text.div'] },
  { name: 'contained without id', change: (a) => delete a.contained[2].id, expect: ['Appointment.contained[2].id', 'Appointment.slot[0].reference'] },
  {
    name: 'dangling #ref (ref-1)',
    change: (a) => a.participant.push({ actor: { reference: '#ghost' }, status: 'accepted' }),
    expect: ['Appointment.participant[1].actor.reference'],
  },
  {
    name: 'unreferenced contained (dom-3)',
    change: (a) => a.contained.push({ resourceType: 'Organization', id: 'org1', name: 'Unused' }),
    expect: ['Appointment.contained[3]'],
  },
  {
    name: 'duplicate contained ids',
    change: (a) => a.contained.push(structuredClone(a.contained[2])),
    expect: ['Appointment.contained[3].id'],
  },
  { name: 'start without end (app-2, app-3, booking 1..1)', change: (a) => delete a.end, expect: ['Appointment', 'Appointment.end'] },
  { name: 'missing description (booking §c)', change: (a) => delete a.description, expect: ['Appointment.description'] },
  { name: 'missing slot (booking §c)', change: (a) => delete a.slot, expect: ['Appointment.contained[2]', 'Appointment.slot'] },
  { name: 'two slots (booking §c 1..1)', change: (a) => a.slot.push({ reference: '#slot002' }), expect: ['Appointment.slot'] },
  { name: 'wrong type: status number', change: (a) => (a.status = 5), expect: ['Appointment.status'] },
  { name: 'wrong type: description array', change: (a) => (a.description = ['Reason']), expect: ['Appointment.description'] },
  { name: 'wrong type: text as a string', change: (a) => (a.text = 'Appointment'), expect: ['Appointment.text'] },
  { name: 'wrong type: priority as string', change: (a) => (a.priority = '1'), expect: ['Appointment.priority'] },
  { name: 'wrong type: minutesDuration 0', change: (a) => (a.minutesDuration = 0), expect: ['Appointment.minutesDuration'] },
  { name: 'wrong type: slot not an array', change: (a) => (a.slot = a.slot[0]), expect: ['Appointment.slot'] },
  { name: 'wrong type: contained item not an object', change: (a) => a.contained.push('x'), expect: ['Appointment.contained[3]'] },
  { name: 'narrative div not xhtml', change: (a) => (a.text.div = 'Appointment'), expect: ['Appointment.text.div'] },
  { name: 'empty string', change: (a) => (a.description = ''), expect: ['Appointment.description'] },
  { name: 'empty object (ele-1)', change: (a) => (a.appointmentType = {}), expect: ['Appointment.appointmentType'] },
  { name: 'resourceType not Appointment', change: (a) => (a.resourceType = 'Slot'), expect: ['Appointment.resourceType'] },
  { name: 'bad id', change: (a) => (a.id = 'has space'), expect: ['Appointment.id'] },
  {
    name: 'cancellation reason with the wrong value[x]',
    change: (a) => (a.extension = [{ url: CC_REASON, valueCode: 'x' }]),
    expect: ['Appointment.extension[0].valueCode', 'Appointment.extension[0].valueString'],
  },
  {
    name: 'cancellation reason twice (slice 0..1)',
    change: (a) => (a.extension = [{ url: CC_REASON, valueString: 'a' }, { url: CC_REASON, valueString: 'b' }]),
    expect: ['Appointment.extension[1]'],
  },
  { name: 'extension without value (ext-1)', change: (a) => (a.extension = [{ url: 'https://example.org/x' }]), expect: ['Appointment.extension[0]'] },
  {
    name: 'extension with two values',
    change: (a) => (a.extension = [{ url: 'https://example.org/x', valueString: 'a', valueBoolean: true }]),
    expect: ['Appointment.extension[0]'],
  },
  { name: 'extension without url', change: (a) => (a.extension = [{ valueString: 'a' }]), expect: ['Appointment.extension[0].url'] },
  // ruling 20: a companion is valid FHIR (see the valid variants); one without its primitive must carry an extension (ele-1)
  { name: 'primitive companion without value or extension (ele-1)', change: (a) => { delete a.description; a._description = { id: 'x' }; }, expect: ['Appointment._description'] },

  // GPConnect-Appointment-1 1.6.0
  { name: 'gpc: fixture missing status', profile: 'gpconnect-appointment-1', change: (a) => delete a.status, expect: ['Appointment.status'] },
  {
    name: 'gpc: meta.profile is the Care Connect one',
    profile: 'gpconnect-appointment-1',
    change: (a) => (a.meta.profile = ['https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Appointment-1']),
    expect: ['Appointment.meta.profile'],
  },
  {
    name: 'gpc: participant without actor (1..1 and app-1)',
    profile: 'gpconnect-appointment-1',
    change: (a) => delete a.participant[0].actor,
    expect: ['Appointment.participant[0]', 'Appointment.participant[0].actor'],
  },
  { name: 'gpc: appointmentType 0..0', profile: 'gpconnect-appointment-1', change: (a) => (a.appointmentType = { text: 'x' }), expect: ['Appointment.appointmentType'] },
  { name: 'gpc: incomingReferral 0..0', profile: 'gpconnect-appointment-1', change: (a) => (a.incomingReferral = [{ reference: 'ReferralRequest/1' }]), expect: ['Appointment.incomingReferral'] },
  {
    name: 'gpc: identifier without system, with use',
    profile: 'gpconnect-appointment-1',
    change: (a) => (a.identifier = [{ use: 'official', value: '1' }]),
    expect: ['Appointment.identifier[0].system', 'Appointment.identifier[0].use'],
  },
  { name: 'gpc: missing slot', profile: 'gpconnect-appointment-1', change: (a) => delete a.slot, expect: ['Appointment.slot'] },
  { name: 'gpc: created may be a dateTime but not garbage', profile: 'gpconnect-appointment-1', change: (a) => (a.created = 'yesterday'), expect: ['Appointment.created'] },
  {
    name: 'gpc: reason coding not SNOMED',
    profile: 'gpconnect-appointment-1',
    change: (a) => (a.reason = [{ coding: [{ system: 'http://example.org', code: '1', display: 'x' }] }]),
    expect: ['Appointment.reason[0].coding[0].system'],
  },
  {
    name: 'gpc: cancellation reason without valueString',
    profile: 'gpconnect-appointment-1',
    change: (a) => a.extension.push({ url: GPC_REASON, extension: [{ url: 'x', valueString: 'y' }] }),
    expect: ['Appointment.extension[3].valueString'],
  },
  {
    name: 'gpc: booking organisation reference dangling',
    profile: 'gpconnect-appointment-1',
    change: (a) => (a.extension[0].valueReference.reference = '#2'),
    expect: ['Appointment.contained[0]', 'Appointment.extension[0].valueReference.reference'],
  },
];

t.test('bad inputs report the exact element paths', async (t) => {
  for (const c of cases) {
    const profile = c.profile ?? 'careconnect-appointment-1';
    const base = profile === 'careconnect-appointment-1' ? booking : gpc;
    const issues = validators[profile](mutate(base, c.change));
    t.same(exprs(issues), [...c.expect].sort(), c.name);
    for (const i of issues) t.ok(i.diagnostics.length > 0 && i.diagnostics.length < 400, `${c.name}: short diagnostics`);
  }
});

t.test('app-2 / app-3 are reported on the resource with their invariant id', async (t) => {
  const startOnly = vBooking(mutate(booking, (a) => delete a.end)).filter((i) => i.expression === 'Appointment');
  t.same(startOnly.map((i) => i.diagnostics.slice(0, 5)).sort(), ['app-2', 'app-3']);
  const cancelledStartOnly = vBooking(
    mutate(booking, (a) => {
      a.status = 'cancelled';
      delete a.end;
    }),
  ).filter((i) => i.expression === 'Appointment');
  t.same(cancelledStartOnly.map((i) => i.diagnostics.slice(0, 5)), ['app-2']);
  const cancelledNeither = vBooking(
    mutate(booking, (a) => {
      a.status = 'cancelled';
      delete a.start;
      delete a.end;
    }),
  );
  // the booking table still makes start and end 1..1, but app-2/app-3 hold
  t.same(exprs(cancelledNeither), ['Appointment.end', 'Appointment.start']);
  const app1 = vBooking(mutate(booking, (a) => a.participant.push({ status: 'accepted' })));
  t.match(app1[0]?.diagnostics, /^app-1/);
});

t.test('non-object input gives exactly one issue', async (t) => {
  for (const input of [null, undefined, 42, 'Appointment', true, [], [booking]]) {
    for (const v of [vBooking, vGpc]) {
      const issues = v(input);
      t.equal(issues.length, 1);
      t.equal(issues[0]?.expression, 'Appointment');
    }
  }
});

t.test('issues are de-duplicated and capped at 20 ("and N more")', async (t) => {
  const many = mutate(booking, (a) => {
    for (let i = 0; i < 200; i++) a.participant.push({ ...a.participant[0], status: 'nope' });
  });
  const issues = vBooking(many);
  t.equal(issues.length, 20);
  t.match(issues[19]?.diagnostics, /^and \d+ more profile issues not listed$/);
  // Unknown keys that are no FHIR names all read Appointment.<unknown> (ruling 20), yet each is a
  // violation of its own (ruling 7: one issue per violation), capped like any other.
  const two = vBooking(mutate(booking, (a) => { a.foo = 1; a.bar = 2; }));
  t.same(two.map((i) => i.expression), ['Appointment.<unknown>', 'Appointment.<unknown>']);
  const unknown = vBooking(mutate(booking, (a) => {
    for (let i = 0; i < 200; i++) a['unknown' + i] = i;
  }));
  t.equal(unknown.length, 20);
  t.same(new Set(unknown.slice(0, 19).map((i) => i.expression)), new Set(['Appointment.<unknown>']));
  t.match(unknown[19]?.diagnostics, /^and 181 more profile issues not listed$/);
  const keys = issues.map((i) => i.expression + '|' + i.diagnostics);
  t.equal(new Set(keys).size, keys.length);
  // The same violation found by two rules is one issue: a contained Slot without its schedule
  // (the standard's contained rows and the base definition's min 1).
  const noSchedule = vBooking(mutate(booking, (a) => {
    const slot = a.contained.find((c: Json) => c.resourceType === 'Slot');
    delete slot.schedule;
  }));
  const at = noSchedule.filter((i) => /\.schedule$/.test(i.expression));
  t.equal(at.length, 1, JSON.stringify(noSchedule));
});

t.test('the validator never throws', async (t) => {
  // deep nesting (recursive Extension), a cycle, a very wide object
  let deep: Json = { url: 'https://example.org/x' }; // innermost breaks ext-1
  for (let i = 0; i < 20000; i++) deep = { url: 'https://example.org/x', extension: [deep] };
  const cyclic: Json = structuredClone(booking);
  cyclic.contained[0].self = cyclic;
  const wide = mutate(booking, (a) => {
    a.participant = Array.from({ length: 20000 }, () => ({ status: 'nope' }));
  });
  for (const [name, input] of [['deep', mutate(booking, (a) => (a.extension = [deep]))], ['wide', wide]] as const) {
    for (const v of [vBooking, vGpc]) {
      const issues = v(input);
      t.ok(Array.isArray(issues) && issues.length > 0 && issues.length <= 20, name);
    }
  }
  // a cycle (not JSON, but the validator takes unknown): answered, not thrown; contained
  // resources are validated (ruling 20), so the unknown element is reported, not followed
  t.same(exprs(vBooking(cyclic)), ['Appointment.contained[0].<unknown>']);
  t.ok(vGpc(cyclic).length > 0);
  const loop: Json = structuredClone(booking);
  loop.participant[0].actor.extension = [{ url: 'https://example.org/x', extension: [] }];
  loop.participant[0].actor.extension[0].extension.push(loop.participant[0].actor.extension[0]);
  t.ok(vBooking(loop).length > 0, 'a cycle through known elements ends at the depth bound');
  fc.assert(
    fc.property(fc.oneof(fc.anything(), fc.jsonValue(), fc.record({ resourceType: fc.constant('Appointment') }, { requiredKeys: [] })), (input) => {
      for (const v of [vBooking, vGpc]) {
        const issues = v(input);
        if (!Array.isArray(issues)) return false;
        if (!issues.every((i) => typeof i.expression === 'string' && typeof i.diagnostics === 'string')) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  // random mutations of the fixture: still an array of issues, never an exception
  fc.assert(
    fc.property(fc.constantFrom(...Object.keys(booking)), fc.jsonValue(), (key, value) => {
      const issues = vBooking(mutate(booking, (a) => (a[key] = value)));
      return Array.isArray(issues);
    }),
    { numRuns: 300 },
  );
});

t.test('diagnostics never contain patient data from the fixture', async (t) => {
  const family = booking.contained[1].name[0].family as string;
  const nhsNumber = booking.contained[1].identifier[0].value as string;
  t.equal(family, 'Chalmers');
  t.equal(nhsNumber, '1234554321');
  const planted = [
    (a: Json) => (a.status = family),
    (a: Json) => (a.start = nhsNumber),
    (a: Json) => (a.description = [family]),
    (a: Json) => (a.participant[0].status = nhsNumber),
    (a: Json) => (a.participant[0].actor.identifier.use = family),
    (a: Json) => (a.participant[0].actor.reference = '#' + nhsNumber),
    (a: Json) => (a.resourceType = family),
    (a: Json) => (a.meta.profile = [family]),
    (a: Json) => (a.contained[1].meta.versionId = nhsNumber),
    (a: Json) => (a.contained[1].id = family + ' ' + nhsNumber),
    (a: Json) => (a.extension = [{ url: CC_REASON, valueCode: family }]),
    (a: Json) => (a.text = { status: family, div: nhsNumber }),
    (a: Json) => (a.priority = Number(nhsNumber) * 10),
    (a: Json) => (a.unknown = { family, nhsNumber }),
  ];
  for (const change of [...cases.filter((c) => !c.profile).map((c) => c.change), ...planted]) {
    for (const i of vBooking(mutate(booking, change))) {
      t.notOk(i.diagnostics.includes(family), 'no family name in: ' + i.diagnostics);
      t.notOk(i.diagnostics.includes(nhsNumber), 'no NHS number in: ' + i.diagnostics);
    }
  }
});

t.test('every overlay row says where it comes from ($comment)', async (t) => {
  const overlays = JSON.parse(readFileSync(join(profilesDir, 'overlays.json'), 'utf8')) as Json;
  for (const name of ['careconnect-appointment-1', 'gpconnect-appointment-1']) {
    const o = overlays[name];
    t.ok(o, name);
    for (const row of o.rows) t.type(row.$comment, 'string', `${name} ${row.p}`);
    t.type(o.containedRequired.$comment, 'string');
  }
  t.same(readdirSync(profilesDir).filter((f) => f.endsWith('.schema.json')), [], 'the hand-made JSON Schemas are gone');
});
