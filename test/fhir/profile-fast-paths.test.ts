/**
 * Issue 14: every hand-written fast path (src/fhir/sd/fast-paths.ts) gives the verdict of HL7's
 * FHIRPath engine on the constraint's own expression, over a generated corpus (seeded). Where the
 * fast path declines (undefined) the validator asks the engine, so only decided cases count.
 */
import t from 'tap';
import fc from 'fast-check';
import { FAST_PATHS } from '../../src/fhir/sd/fast-paths.js';
import { compileConstraint, holds } from '../../src/fhir/sd/fhirpath.js';
import { loadBase } from '../../src/fhir/sd/model.js';

type Obj = Record<string, unknown>;

/** key -> [FHIRPath base, expression], read from the generated base definitions. */
function expressions(): Map<string, [string, string]> {
  const out = new Map<string, [string, string]>();
  for (const [type, def] of Object.entries(loadBase().types)) {
    for (const row of def.rows) {
      for (const [key, expr] of row.k ?? []) {
        if (!out.has(key)) out.set(key, [row.p ? `${type}.${row.p}` : type, expr]);
      }
    }
  }
  // dom-* are first met on a resource, whatever it is; evaluate them as Appointment's
  for (const k of ['dom-1', 'dom-2', 'dom-3', 'dom-4']) out.set(k, ['Appointment', out.get(k)![1]]);
  return out;
}

const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined, freq: 2 });
const clean = (o: Obj): Obj => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
const dateTimes = fc.constantFrom(
  '2019-01-17T15:00:00Z', '2019-01-17T15:00:00.000Z', '2019-01-17T16:00:00+01:00', '2019-01-17T15:00:01Z',
  '2019-01-17T14:59:59Z', '2019-01-17', '2019-01', '2019', '2019-01-18T00:00:00Z', '2016-12-31T23:59:60Z', '2017-01-01T00:00:00Z',
);
const ids = fc.constantFrom('a', 'b', 'c');
const refs = fc.constantFrom('#a', '#b', '#c', '#', 'Patient/1', 'http://x/Slot/2');
const contained = fc.array(
  fc.record({
    resourceType: fc.constantFrom('Patient', 'Slot'),
    id: opt(fc.oneof(ids, ids, fc.constant(7))),
    text: opt(fc.constant({ status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' })),
    contained: opt(fc.constant([{ resourceType: 'Basic', id: 'z' }])),
    meta: opt(fc.record({ versionId: opt(fc.constant('1')), lastUpdated: opt(fc.constant('2019-01-01T00:00:00Z')), _versionId: opt(fc.constant({ id: 'v' })) }).map(clean)),
  }).map(clean),
  { maxLength: 3 },
);
const appointment = fc
  .record({
    resourceType: fc.constant('Appointment'),
    status: opt(fc.constantFrom('proposed', 'cancelled', 'booked', 'pending')),
    start: opt(dateTimes),
    end: opt(dateTimes),
    _start: opt(fc.constant({ id: 's' })),
    _end: opt(fc.constant({ id: 'e' })),
    contained: opt(contained),
    slot: opt(fc.array(fc.record({ reference: refs }), { minLength: 1, maxLength: 2 })),
    participant: opt(fc.array(fc.record({ actor: opt(fc.record({ reference: refs })), type: opt(fc.constant([{ text: 't' }])) }).map(clean), { minLength: 1, maxLength: 2 })),
  })
  .map(clean);

const corpora: Record<string, fc.Arbitrary<{ node: Obj; resource: Obj }>> = {
  'ext-1': fc
    .record({
      url: fc.constant('https://example.org/x'),
      extension: opt(fc.constantFrom([], [{ url: 'u', valueString: 'x' }])),
      valueString: opt(fc.constant('x')),
      valueBoolean: opt(fc.boolean()),
      _valueString: opt(fc.constant({ id: 'v' })),
    })
    .map((o) => ({ node: clean(o), resource: { resourceType: 'Appointment' } })),
  'app-1': fc
    .record({ type: opt(fc.constantFrom([{ text: 't' }], [])), actor: opt(fc.record({ display: fc.constant('d') })), status: fc.constant('accepted') })
    .map((o) => ({ node: clean(o), resource: { resourceType: 'Appointment' } })),
  'per-1': fc.record({ start: opt(dateTimes), end: opt(dateTimes) }).map((o) => ({ node: clean(o), resource: { resourceType: 'Appointment' } })),
  'cpt-2': fc.record({ system: opt(fc.constant('phone')), value: opt(fc.constant('1')), _system: opt(fc.constant({ id: 'x' })) }).map((o) => ({ node: clean(o), resource: { resourceType: 'Patient' } })),
  'att-1': fc.record({ data: opt(fc.constant('AAAA')), contentType: opt(fc.constant('text/plain')) }).map((o) => ({ node: clean(o), resource: { resourceType: 'DocumentReference' } })),
  'org-1': fc
    .record({ resourceType: fc.constant('Organization'), identifier: opt(fc.constant([{ value: '1' }])), name: opt(fc.constant('n')), _name: opt(fc.constant({ id: 'n' })) })
    .map((o) => ({ node: clean(o), resource: clean(o) })),
  'org-2': fc.record({ use: opt(fc.constantFrom('home', 'work')), city: fc.constant('x') }).map((o) => ({ node: clean(o), resource: { resourceType: 'Organization' } })),
  'org-3': fc.record({ use: opt(fc.constantFrom('home', 'work')), value: fc.constant('x') }).map((o) => ({ node: clean(o), resource: { resourceType: 'Organization' } })),
  'ref-1': fc.tuple(fc.record({ reference: opt(refs), display: opt(fc.constant('d')) }).map(clean), appointment).map(([node, resource]) => ({ node, resource })),
};
for (const k of ['app-2', 'app-3', 'dom-1', 'dom-2', 'dom-3', 'dom-4']) corpora[k] = appointment.map((a) => ({ node: a, resource: a }));

t.test('each fast path agrees with the FHIRPath engine', async (t) => {
  const exprs = expressions();
  t.same(Object.keys(FAST_PATHS).filter((k) => !corpora[k]), [], 'every fast path has a corpus');
  for (const [key, fast] of Object.entries(FAST_PATHS)) {
    const [base, expression] = exprs.get(key)!;
    const fn = compileConstraint(base, expression);
    let decided = 0;
    fc.assert(
      fc.property(corpora[key]!, ({ node, resource }) => {
        const verdict = fast(node, resource);
        if (verdict === undefined) return true;
        decided++;
        return verdict === holds(fn, node, resource, resource);
      }),
      { numRuns: 400, seed: 14 },
    );
    t.ok(decided > 100, `${key}: ${decided} decided cases agree with "${expression}"`);
  }
});
