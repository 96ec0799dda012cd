import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { diffResources, jsonEqual, type Difference } from '../../src/fhir/diff.js';

// The NHS Booking 2.0.1 sample appointment (copied from the spec data, unchanged): it has a
// top-level `contained` with three entries (ids 123, P1, slot002), which ruling 9 matches by id.
const appointment: Record<string, unknown> = JSON.parse(
  readFileSync(new URL('../fixtures/diff/appointment.json', import.meta.url), 'utf8'),
);

const clone = <T>(x: T): T => structuredClone(x);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function appt(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { resourceType: 'Appointment', id: 'a1', status: 'booked', ...extra };
}

// ---------------------------------------------------------------------------------------------
// Table of unit cases, one per rule of ruling 9 (each asserts the exact Difference[]).
// ---------------------------------------------------------------------------------------------

interface Case {
  name: string;
  before: unknown;
  after: unknown;
  options?: { root?: string; maxDifferences?: number };
  expected: Difference[];
  /** Contained entries matched by id are named by index on their own side: no swapped twin. */
  asymmetric?: boolean;
}

const changed = (path: string): Difference => ({ path, kind: 'changed' });
const added = (path: string): Difference => ({ path, kind: 'added' });
const removed = (path: string): Difference => ({ path, kind: 'removed' });

const patient = (id: unknown, family: string): Record<string, unknown> => ({
  resourceType: 'Patient',
  ...(id === undefined ? {} : { id }),
  name: [{ family, given: ['Peter'] }],
});

const cases: Case[] = [
  { name: 'identical', before: appt(), after: appt(), expected: [] },
  {
    name: 'object key order is irrelevant',
    before: { resourceType: 'Appointment', meta: { versionId: '2', lastUpdated: 'x' }, status: 'booked' },
    after: { status: 'booked', meta: { lastUpdated: 'x', versionId: '2' }, resourceType: 'Appointment' },
    expected: [],
  },
  {
    name: "strings exact: 'Z' vs '+00:00'",
    before: appt({ start: '2019-01-17T15:00:00.000Z' }),
    after: appt({ start: '2019-01-17T15:00:00.000+00:00' }),
    expected: [changed('Appointment.start')],
  },
  {
    name: 'strings exact: no trimming',
    before: appt({ description: 'Reason' }),
    after: appt({ description: 'Reason ' }),
    expected: [changed('Appointment.description')],
  },
  {
    name: 'strings exact: no case folding or unicode normalisation',
    before: appt({ description: 'caf\u00e9' }),
    after: appt({ description: 'cafe\u0301' }),
    expected: [changed('Appointment.description')],
  },
  {
    name: 'no number/string coercion: 1 vs "1"',
    before: appt({ priority: 1 }),
    after: appt({ priority: '1' }),
    expected: [changed('Appointment.priority')],
  },
  {
    name: '1 and 1.0 are the same JSON number',
    before: JSON.parse('{"resourceType":"Appointment","priority":1}'),
    after: JSON.parse('{"resourceType":"Appointment","priority":1.0}'),
    expected: [],
  },
  {
    name: '0 and -0 are the same JSON number',
    before: JSON.parse('{"resourceType":"Appointment","priority":0}'),
    after: JSON.parse('{"resourceType":"Appointment","priority":-0}'),
    expected: [],
  },
  {
    name: 'boolean vs string is a change',
    before: appt({ x: true }),
    after: appt({ x: 'true' }),
    expected: [changed('Appointment.x')],
  },
  {
    name: 'null vs value is a change',
    before: appt({ description: null }),
    after: appt({ description: 'x' }),
    expected: [changed('Appointment.description')],
  },
  {
    name: 'null vs 0 and "" vs null are changes',
    before: appt({ a: null, b: '' }),
    after: appt({ a: 0, b: null }),
    expected: [changed('Appointment.a'), changed('Appointment.b')],
  },
  {
    name: 'null vs missing: key with null removed',
    before: appt({ description: null }),
    after: appt(),
    expected: [removed('Appointment.description')],
  },
  {
    name: 'missing vs null: key with null added',
    before: appt(),
    after: appt({ description: null }),
    expected: [added('Appointment.description')],
  },
  {
    name: 'key on one side only: one difference, no descent',
    before: appt(),
    after: appt({ meta: { versionId: '3', tag: [{ code: 'a' }, { code: 'b' }] } }),
    expected: [added('Appointment.meta')],
  },
  {
    name: 'type change object vs array: one change, no descent',
    before: appt({ meta: { versionId: '2' } }),
    after: appt({ meta: [{ versionId: '2' }] }),
    expected: [changed('Appointment.meta')],
  },
  {
    name: 'type change array vs primitive',
    before: appt({ slot: [{ reference: '#s' }] }),
    after: appt({ slot: '#s' }),
    expected: [changed('Appointment.slot')],
  },
  {
    name: 'type change object vs null',
    before: appt({ meta: { versionId: '2' } }),
    after: appt({ meta: null }),
    expected: [changed('Appointment.meta')],
  },
  {
    name: 'nested leaf path',
    before: appt({ participant: [{ actor: { display: 'Peter James Chalmers' }, status: 'accepted' }] }),
    after: appt({ participant: [{ actor: { display: 'Peter Chalmers' }, status: 'accepted' }] }),
    expected: [changed('Appointment.participant[0].actor.display')],
  },
  {
    name: 'meta.versionId change',
    before: appt({ meta: { versionId: '2' } }),
    after: appt({ meta: { versionId: '3' } }),
    expected: [changed('Appointment.meta.versionId')],
  },
  {
    name: 'top-level array reorder is a difference (element by element)',
    before: appt({ slot: [{ reference: '#a' }, { reference: '#b' }] }),
    after: appt({ slot: [{ reference: '#b' }, { reference: '#a' }] }),
    expected: [changed('Appointment.slot[0].reference'), changed('Appointment.slot[1].reference')],
  },
  {
    name: 'array of primitives reorder',
    before: appt({ given: ['a', 'b'] }),
    after: appt({ given: ['b', 'a'] }),
    expected: [changed('Appointment.given[0]'), changed('Appointment.given[1]')],
  },
  {
    name: 'longer array: added for each extra index',
    before: appt({ slot: [{ reference: '#a' }] }),
    after: appt({ slot: [{ reference: '#a' }, { reference: '#b' }, { reference: '#c' }] }),
    expected: [added('Appointment.slot[1]'), added('Appointment.slot[2]')],
  },
  {
    name: 'shorter array: removed for each missing index',
    before: appt({ slot: [{ reference: '#a' }, { reference: '#b' }] }),
    after: appt({ slot: [{ reference: '#a' }] }),
    expected: [removed('Appointment.slot[1]')],
  },
  {
    name: 'insert at front: index-wise shifts, then added at the end',
    before: appt({ given: ['a', 'b'] }),
    after: appt({ given: ['x', 'a', 'b'] }),
    expected: [changed('Appointment.given[0]'), changed('Appointment.given[1]'), added('Appointment.given[2]')],
  },
  {
    name: 'empty array vs missing key',
    before: appt({ slot: [] }),
    after: appt(),
    expected: [removed('Appointment.slot')],
  },
  {
    name: 'contained reordering: no difference',
    before: appt({ contained: [patient('P1', 'Chalmers'), patient('P2', 'Smith'), { resourceType: 'Slot', id: 's' }] }),
    after: appt({ contained: [{ resourceType: 'Slot', id: 's' }, patient('P2', 'Smith'), patient('P1', 'Chalmers')] }),
    expected: [],
  },
  {
    name: 'contained entry changed: matched by id, named by its submitted index (never by its id)',
    asymmetric: true,
    before: appt({ contained: [patient('P0', 'Other'), patient('P1', 'Chalmers')] }),
    after: appt({ contained: [patient('P1', 'Chalmer'), patient('P0', 'Other')] }),
    expected: [changed('Appointment.contained[0].name[0].family')],
  },
  {
    name: 'contained entry added and removed by id (submitted entries first, then the removed ones)',
    asymmetric: true,
    before: appt({ contained: [patient('P1', 'a'), patient('P2', 'b')] }),
    after: appt({ contained: [patient('P3', 'c'), patient('P1', 'a')] }),
    expected: [added('Appointment.contained[0]'), removed('Appointment.contained[1]')],
  },
  {
    name: 'contained id changed: old removed, new added',
    asymmetric: true,
    before: appt({ contained: [patient('P1', 'a')] }),
    after: appt({ contained: [patient('P9', 'a')] }),
    expected: [added('Appointment.contained[0]'), removed('Appointment.contained[0]')],
  },
  {
    name: 'contained duplicate ids: falls back to index-wise',
    before: appt({ contained: [patient('P1', 'a'), patient('P1', 'b')] }),
    after: appt({ contained: [patient('P1', 'b'), patient('P1', 'a')] }),
    expected: [changed('Appointment.contained[0].name[0].family'), changed('Appointment.contained[1].name[0].family')],
  },
  {
    name: 'contained duplicate ids on the submitted side only: index-wise',
    before: appt({ contained: [patient('P1', 'a'), patient('P2', 'b')] }),
    after: appt({ contained: [patient('P1', 'a'), patient('P1', 'b')] }),
    expected: [changed('Appointment.contained[1].id')],
  },
  {
    name: 'contained entry without id: falls back to index-wise',
    before: appt({ contained: [patient('P1', 'a'), patient(undefined, 'b')] }),
    after: appt({ contained: [patient(undefined, 'b'), patient('P1', 'a')] }),
    expected: [
      removed('Appointment.contained[0].id'),
      changed('Appointment.contained[0].name[0].family'),
      added('Appointment.contained[1].id'),
      changed('Appointment.contained[1].name[0].family'),
    ],
  },
  {
    name: 'contained entry with a non-string id: index-wise',
    before: appt({ contained: [patient(1, 'a'), patient('P2', 'b')] }),
    after: appt({ contained: [patient('P2', 'b'), patient(1, 'a')] }),
    expected: [
      changed('Appointment.contained[0].id'),
      changed('Appointment.contained[0].name[0].family'),
      changed('Appointment.contained[1].id'),
      changed('Appointment.contained[1].name[0].family'),
    ],
  },
  {
    name: 'contained: array vs object is one change',
    before: appt({ contained: [patient('P1', 'a')] }),
    after: appt({ contained: patient('P1', 'a') }),
    expected: [changed('Appointment.contained')],
  },
  {
    name: 'contained only special at top level',
    before: appt({ extension: [{ contained: [patient('P1', 'a'), patient('P2', 'b')] }] }),
    after: appt({ extension: [{ contained: [patient('P2', 'b'), patient('P1', 'a')] }] }),
    expected: [
      changed('Appointment.extension[0].contained[0].id'),
      changed('Appointment.extension[0].contained[0].name[0].family'),
      changed('Appointment.extension[0].contained[1].id'),
      changed('Appointment.extension[0].contained[1].name[0].family'),
    ],
  },
  {
    name: 'contained id with a quote and backslash: never echoed',
    before: appt({ contained: [patient("a'b\\c", 'x')] }),
    after: appt({ contained: [patient("a'b\\c", 'y')] }),
    // Issue 13 item 6: an id is body data, never echoed.
    expected: [changed('Appointment.contained[0].name[0].family')],
  },
  {
    name: 'contained id with control characters: never echoed',
    before: appt({ contained: [patient('a\nb', 'x')] }),
    after: appt({ contained: [patient('a\nb', 'y')] }),
    expected: [changed('Appointment.contained[0].name[0].family')],
  },
  {
    name: 'keys that are not element names become <unknown> (issue 13 item 6: never echoed)',
    before: appt({ 'weird key': 1, 'a.b': 1, '': 1, 'q"uote': 1, "it's": 1, '1abc': 1, _ok: 1, '\u00e9': 1 }),
    after: appt({ 'weird key': 2, 'a.b': 2, '': 2, 'q"uote': 2, "it's": 2, '1abc': 2, _ok: 2, '\u00e9': 2 }),
    expected: [
      changed('Appointment.<unknown>'),
      changed('Appointment.<unknown>'),
      changed('Appointment._ok'),
      changed('Appointment.<unknown>'),
      changed('Appointment.<unknown>'),
      changed('Appointment.<unknown>'),
      changed('Appointment.<unknown>'),
      changed('Appointment.<unknown>'),
    ],
  },
  {
    name: 'weird key added, nested under a weird key',
    before: appt({ 'x y': { a: 1 } }),
    after: appt({ 'x y': { a: 1, 'b c': 2 } }),
    expected: [added('Appointment.<unknown>.<unknown>')],
  },
  {
    name: 'sorted by path: keys by code unit, indexes numerically',
    before: appt({ z: 1, a: 1, m: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] }),
    after: appt({ z: 2, a: 2, m: [0, 1, -2, 3, 4, 5, 6, 7, 8, 9, -10, 11] }),
    expected: [changed('Appointment.a'), changed('Appointment.m[2]'), changed('Appointment.m[10]'), changed('Appointment.z')],
  },
  {
    name: 'maxDifferences caps at the first ones in path order',
    before: appt({ e: 1, d: 1, c: 1, b: 1, a: 1 }),
    after: appt({ e: 2, d: 2, c: 2, b: 2, a: 2 }),
    options: { maxDifferences: 2 },
    expected: [changed('Appointment.a'), changed('Appointment.b')],
  },
  {
    name: 'maxDifferences cap counts inside arrays and contained too',
    before: appt({ contained: [patient('P1', 'a'), patient('P2', 'b')], slot: [1, 2] }),
    after: appt({ contained: [patient('P2', 'B'), patient('P1', 'A')], slot: [3, 4] }),
    options: { maxDifferences: 3 },
    expected: [
      changed('Appointment.contained[0].name[0].family'),
      changed('Appointment.contained[1].name[0].family'),
      changed('Appointment.slot[0]'),
    ],
  },
  {
    name: 'maxDifferences of 0 still reports one (never hides a difference)',
    before: appt({ a: 1, b: 1 }),
    after: appt({ a: 2, b: 2 }),
    options: { maxDifferences: 0 },
    expected: [changed('Appointment.a')],
  },
  {
    name: 'root option',
    before: appt({ a: 1 }),
    after: appt({ a: 2 }),
    options: { root: 'Bundle.entry[0].resource' },
    expected: [changed('Bundle.entry[0].resource.a')],
  },
  {
    name: 'root from resourceType of before (not after)',
    before: { resourceType: 'Patient', a: 1 },
    after: { resourceType: 'Appointment', a: 1 },
    expected: [changed('Patient.resourceType')],
  },
  {
    name: 'root Resource when before has no resourceType',
    before: { a: 1 },
    after: { a: 2 },
    expected: [changed('Resource.a')],
  },
  {
    name: 'root Resource when resourceType is not a string',
    before: { resourceType: 5, a: 1 },
    after: { resourceType: 5, a: 2 },
    expected: [changed('Resource.a')],
  },
  {
    name: 'root Resource when resourceType is not an identifier',
    before: { resourceType: 'Appoint ment', a: 1 },
    after: { resourceType: 'Appoint ment', a: 2 },
    expected: [changed('Resource.a')],
  },
  { name: 'primitives at the root', before: 1, after: 2, expected: [changed('Resource')] },
  { name: 'null vs object at the root', before: null, after: {}, expected: [changed('Resource')] },
  { name: 'arrays at the root', before: [1], after: [1, 2], expected: [added('Resource[1]')] },
  {
    name: 'contained at the root of an array is not special',
    before: [{ contained: [patient('P1', 'a'), patient('P2', 'b')] }],
    after: [{ contained: [patient('P1', 'a'), patient('P2', 'b')] }],
    expected: [],
  },
  {
    name: 'a key whose value is undefined counts as absent (JSON.stringify semantics)',
    before: appt({ description: undefined, a: 1 }),
    after: appt({ a: 1 }),
    expected: [],
  },
  {
    name: 'prototype-less objects and own __proto__ keys',
    before: JSON.parse('{"resourceType":"Appointment","__proto__":{"a":1}}'),
    after: Object.assign(Object.create(null), { resourceType: 'Appointment' }),
    expected: [removed('Appointment.__proto__')],
  },
  {
    name: 'inherited keys are not present (toString)',
    before: appt(),
    after: appt({ toString: 'x' }),
    expected: [added('Appointment.toString')],
  },
];

t.test('ruling 9 table', async (t) => {
  for (const c of cases) {
    t.same(diffResources(c.before, c.after, c.options), c.expected, c.name);
    // Differences are symmetric in path, with added/removed swapped (modulo the root name).
    if (c.options === undefined && !c.asymmetric && typeof c.before === typeof c.after) {
      const swap = (d: Difference): Difference => ({
        path: d.path,
        kind: d.kind === 'added' ? 'removed' : d.kind === 'removed' ? 'added' : 'changed',
      });
      const rootB = diffResources(c.after, c.before).map((d) => d.path.split(/[.[]/)[0]);
      if (rootB.every((r) => r === c.expected[0]?.path.split(/[.[]/)[0])) {
        t.same(diffResources(c.after, c.before), c.expected.map(swap), c.name + ' (swapped)');
      }
    }
    // jsonEqual agrees with "no difference" when contained plays no part.
    if (!JSON.stringify(c.before ?? null).includes('contained')) {
      t.equal(jsonEqual(c.before, c.after), c.expected.length === 0, c.name + ' (jsonEqual)');
    }
  }
});

t.test('default maxDifferences is 100', async (t) => {
  const before = appt({ given: Array.from({ length: 150 }, (_, i) => i) });
  const after = appt({ given: Array.from({ length: 150 }, (_, i) => -i - 1) });
  const d = diffResources(before, after);
  t.equal(d.length, 100);
  t.same(d[0], changed('Appointment.given[0]'));
  t.same(d[99], changed('Appointment.given[99]'));
  t.equal(diffResources(before, after, { maxDifferences: 1000 }).length, 150);
  t.equal(diffResources(before, after, { maxDifferences: Infinity }).length, 150);
  t.equal(diffResources(before, after, { maxDifferences: NaN }).length, 100);
});

t.test('jsonEqual', async (t) => {
  t.ok(jsonEqual({ a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1 }));
  t.notOk(jsonEqual({ a: 1 }, { a: '1' }));
  t.notOk(jsonEqual([1, 2], [2, 1]));
  t.notOk(jsonEqual({ a: null }, {}));
  t.notOk(jsonEqual({}, { a: null }));
  t.notOk(jsonEqual({ a: 1 }, { b: 1 }));
  t.notOk(jsonEqual([], {}));
  t.notOk(jsonEqual(null, {}));
  t.ok(jsonEqual({ a: undefined }, {}));
  t.ok(jsonEqual(JSON.parse('1.0'), 1));
  // contained is not special here
  const a = { contained: [{ id: 'a' }, { id: 'b' }] };
  const b = { contained: [{ id: 'b' }, { id: 'a' }] };
  t.notOk(jsonEqual(a, b));
  t.same(diffResources(a, b), []);
});

// ---------------------------------------------------------------------------------------------
// Depth: no stack overflow at 10,000 levels (the parser caps at ~64, but this must be safe).
// ---------------------------------------------------------------------------------------------

function nest(depth: number, leaf: unknown, kind: 'object' | 'array'): unknown {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = kind === 'object' ? { a: v } : [v];
  return v;
}

t.test('deep nesting (10,000 levels) does not throw', async (t) => {
  // Paths are cut at 256 characters (issue 13 item 6).
  const trunc = (p: string) => (p.length > 256 ? p.slice(0, 244) + '.<truncated>' : p);
  const cap = trunc('Resource' + '.a'.repeat(256));
  for (const depth of [10_000, 100_000]) {
    t.same(diffResources(nest(depth, 1, 'object'), nest(depth, 1, 'object')), [], `equal objects ${depth}`);
    t.same(diffResources(nest(depth, 1, 'object'), nest(depth, 2, 'object')), [changed(cap)], `leaf differs ${depth}`);
    t.same(diffResources(nest(depth, 1, 'array'), nest(depth, 1, 'array')), [], `equal arrays ${depth}`);
    t.same(
      diffResources(nest(depth, 1, 'array'), nest(depth, [1], 'array')),
      [changed(trunc('Resource' + '[0]'.repeat(256)))],
      `type change deep in arrays ${depth}`,
    );
    t.ok(jsonEqual(nest(depth, 'x', 'object'), nest(depth, 'x', 'object')));
    t.notOk(jsonEqual(nest(depth, 'x', 'object'), nest(depth, 'y', 'object')));
    t.notOk(jsonEqual(nest(depth, 'x', 'object'), nest(depth, 'x', 'array')));
  }
  // Below the guard, paths are exact.
  t.same(diffResources(nest(100, 1, 'object'), nest(100, 2, 'object')), [changed('Resource' + '.a'.repeat(100))]);
  // The guard only decides whole subtrees; a difference above it is still exact.
  t.same(diffResources({ b: 1, deep: nest(10_000, 1, 'object') }, { b: 2, deep: nest(10_000, 1, 'object') }), [
    changed('Resource.b'),
  ]);
});

t.test('never throws, even for non-JSON input (fails closed)', async (t) => {
  const hostile = new Proxy(
    {},
    {
      ownKeys() {
        throw new Error('boom');
      },
    },
  );
  t.same(diffResources(appt({ x: {} }), appt({ x: hostile })), [changed('Appointment')]);
  t.equal(jsonEqual({ x: {} }, { x: hostile }), false);
  t.same(diffResources(undefined, undefined), []);
  t.same(diffResources(undefined, null), [changed('Resource')]);
  t.same(diffResources(appt({ f: () => 1 }), appt({ f: () => 1 })), [changed('Appointment.f')]);
  t.same(diffResources(appt({ n: NaN }), appt({ n: NaN })), []);
  t.same(diffResources(appt({ b: 1n }), appt({ b: 1n })), []);
});

// ---------------------------------------------------------------------------------------------
// Property tests on the real appointment fixture.
// ---------------------------------------------------------------------------------------------

/** Deterministic PRNG from an fc-generated seed (mulberry32), to drive shuffles at every level. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(xs: readonly T[], rnd: () => number): T[] {
  const out = xs.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Rebuild with object keys in random order at every level; optionally reorder top-level contained. */
function shuffleKeys(v: unknown, rnd: () => number, reorderContained: boolean, isRoot = true): unknown {
  if (Array.isArray(v)) return v.map((x) => shuffleKeys(x, rnd, reorderContained, false));
  if (v === null || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of shuffled(Object.keys(o), rnd)) {
    let child = shuffleKeys(o[k], rnd, reorderContained, false);
    if (isRoot && reorderContained && k === 'contained' && Array.isArray(child)) child = shuffled(child, rnd);
    Object.defineProperty(out, k, { value: child, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

t.test('property: key-order shuffles and contained reordering never yield a difference', async (t) => {
  fc.assert(
    fc.property(fc.integer(), (seed) => {
      const rnd = prng(seed);
      const after = shuffleKeys(appointment, rnd, true);
      return diffResources(appointment, after).length === 0 && diffResources(after, appointment).length === 0;
    }),
    { seed: 42, numRuns: 500 },
  );
  // Same for arbitrary JSON (key order only: arrays are ordered, and contained is rarely generated).
  fc.assert(
    fc.property(fc.jsonValue(), fc.integer(), (v, seed) => {
      const after = shuffleKeys(v, prng(seed), false);
      return diffResources(v, after).length === 0 && jsonEqual(v, after);
    }),
    { seed: 42, numRuns: 500 },
  );
  t.pass('500 runs each');
});

t.test('property: diffResources(x, structuredClone(x)) is always []', async (t) => {
  t.same(diffResources(appointment, clone(appointment)), []);
  fc.assert(
    fc.property(fc.jsonValue(), (v) => diffResources(v, clone(v)).length === 0 && jsonEqual(v, clone(v))),
    { seed: 42, numRuns: 500 },
  );
  t.pass('500 runs');
});

t.test('property: jsonEqual agrees with canonical JSON text', async (t) => {
  const canon = (v: unknown): string =>
    JSON.stringify(v, (_k, x: unknown) =>
      x && typeof x === 'object' && !Array.isArray(x)
        ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : x,
    );
  const small = fc.jsonValue({ maxDepth: 2 });
  fc.assert(
    fc.property(small, small, (a, b) => jsonEqual(a, b) === (canon(a) === canon(b))),
    { seed: 42, numRuns: 500 },
  );
  t.pass('500 runs');
});

t.test('property: no difference exactly when equal (the allocation-free fast path agrees with the walk)', async (t) => {
  const small = fc.jsonValue({ maxDepth: 3 });
  const nearly = small.chain((a) => fc.oneof(fc.constant(clone(a)), small).map((b) => [a, b] as const));
  fc.assert(
    fc.property(nearly, ([a, b]) => {
      // `contained` at the root is matched by id, so equality by index is the stricter oracle only without it.
      const hasContained = typeof a === 'object' && a !== null && !Array.isArray(a) && 'contained' in a;
      return hasContained || (diffResources(a, b).length === 0) === jsonEqual(a, b);
    }),
    { seed: 7, numRuns: 1000 },
  );
  const objectWithUndefined = { a: 1, b: undefined } as unknown;
  t.same(diffResources(objectWithUndefined, { a: 1 }), [], 'a key holding undefined is absent');
  t.same(diffResources({ a: 1 }, { a: 1, c: undefined }), []);
  t.same(diffResources({ a: [1, { b: 2 }] }, { a: [1, { b: 3 }] }, { root: 'R' }), [{ path: 'R.a[1].b', kind: 'changed' }]);
});

// --- single random mutation -----------------------------------------------------------------

type Loc = (string | number)[];

/** Every node of a document (root included), with its location. */
function locations(v: unknown, loc: Loc = [], out: { loc: Loc; value: unknown }[] = []): { loc: Loc; value: unknown }[] {
  out.push({ loc, value: v });
  if (Array.isArray(v)) v.forEach((x, i) => locations(x, [...loc, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) locations(x, [...loc, k], out);
  return out;
}

function get(doc: unknown, loc: Loc): unknown {
  let v = doc;
  for (const s of loc) v = (v as Record<string | number, unknown>)[s];
  return v;
}

function typeClass(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'object' ? 'object' : 'primitive';
}

/** The spec's matching rule for the top-level contained, restated as the test oracle. */
function containedIds(doc: unknown): string[] | undefined {
  const c = (doc as Record<string, unknown> | null)?.['contained'];
  if (!Array.isArray(c)) return undefined;
  const ids: string[] = [];
  for (const e of c) {
    const id = e !== null && typeof e === 'object' && !Array.isArray(e) ? (e as Record<string, unknown>)['id'] : undefined;
    if (typeof id !== 'string' || ids.includes(id)) return undefined;
    ids.push(id);
  }
  return ids;
}

/**
 * Render a location as the diff would. A contained entry matched by id is named by its index (in
 * the submitted array, or the stored one when removed), never by its id (a body value): the
 * mutations below never reorder, so that is the location's own index either way.
 */
function render(loc: Loc, _byId: boolean, _doc: unknown): string {
  let p = 'Appointment';
  for (const s of loc) p += typeof s === 'number' ? '[' + s + ']' : /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(s) ? '.' + s : '.<unknown>';
  return p;
}

/** p equals `of` or is an ancestor path of it (segment boundary aware). */
function isSelfOrAncestor(p: string, of: string): boolean {
  return p === of || (of.startsWith(p) && (of[p.length] === '.' || of[p.length] === '['));
}

const MUTATIONS = ['change-primitive', 'delete-key', 'add-key', 'insert-element', 'remove-element', 'change-type'] as const;
type Mutation = (typeof MUTATIONS)[number];

const primitive = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
);

t.test('property: a single random mutation is always reported at the location or an ancestor', async (t) => {
  const all = locations(appointment);
  const candidates: Record<Mutation, typeof all> = {
    'change-primitive': all.filter((l) => typeClass(l.value) === 'primitive'),
    'delete-key': all.filter((l) => typeof l.loc[l.loc.length - 1] === 'string'),
    'add-key': all.filter((l) => typeClass(l.value) === 'object'),
    'insert-element': all.filter((l) => typeClass(l.value) === 'array'),
    'remove-element': all.filter((l) => Array.isArray(l.value) && l.value.length > 0),
    'change-type': all,
  };
  const seen = new Set<Mutation>();
  let byIdSeen = 0;

  fc.assert(
    fc.property(
      fc.constantFrom(...MUTATIONS),
      fc.nat(),
      fc.nat(),
      primitive,
      fc.jsonValue({ maxDepth: 3 }),
      fc.string(),
      fc.boolean(),
      fc.integer(),
      (mutation, pick, pos, prim, json, key, entryWithId, seed) => {
        const list = candidates[mutation];
        const { loc } = list[pick % list.length]!;
        const after = clone(appointment) as unknown;
        const target = get(after, loc);
        const parentLoc = loc.slice(0, -1);
        const last = loc[loc.length - 1];
        let replaced: unknown = after;
        let where: Loc = loc; // the mutated location
        let arrayEdit: { oldLength: number } | undefined;

        switch (mutation) {
          case 'change-primitive':
          case 'change-type': {
            const v = mutation === 'change-primitive' ? prim : json;
            if (mutation === 'change-type' && typeClass(v) === typeClass(target)) return fc.pre(false);
            if (jsonEqual(v, target)) return fc.pre(false);
            if (loc.length === 0) replaced = v;
            else (get(after, parentLoc) as Record<string | number, unknown>)[last!] = v;
            break;
          }
          case 'delete-key':
            delete (get(after, parentLoc) as Record<string, unknown>)[last as string];
            break;
          case 'add-key': {
            const o = target as Record<string, unknown>;
            if (Object.prototype.hasOwnProperty.call(o, key)) return fc.pre(false);
            Object.defineProperty(o, key, { value: json, enumerable: true, writable: true, configurable: true });
            where = [...loc, key];
            break;
          }
          case 'insert-element': {
            const a = target as unknown[];
            arrayEdit = { oldLength: a.length };
            const isContained = loc.length === 1 && loc[0] === 'contained';
            const fresh = isContained && entryWithId ? { resourceType: 'Basic', id: 'new-' + key } : json;
            const at = pos % (a.length + 1);
            a.splice(at, 0, fresh);
            where = [...loc, at];
            break;
          }
          case 'remove-element': {
            const a = target as unknown[];
            arrayEdit = { oldLength: a.length };
            const at = pos % a.length;
            a.splice(at, 1);
            where = [...loc, at];
            break;
          }
        }
        seen.add(mutation);

        // Key order of the submitted side is irrelevant, so shuffle it too.
        const submitted = shuffleKeys(replaced, prng(seed), false);
        const diff = diffResources(appointment, submitted);
        if (diff.length === 0) return false;
        if (!jsonEqual(diffResources(appointment, replaced), diff)) return false;

        const idsBefore = containedIds(appointment);
        const idsAfter = containedIds(replaced);
        const byId = idsBefore !== undefined && idsAfter !== undefined && where[0] === 'contained';
        if (byId) byIdSeen++;

        if (byId && where.length >= 2) {
          // Entries matched by id: identify the mutated entry by its ids on either side.
          const i = where[1] as number;
          if (mutation === 'insert-element' && where.length === 2) {
            return jsonEqual(diff, [added(render(['contained', i], true, replaced))]);
          }
          if (mutation === 'remove-element' && where.length === 2) {
            return jsonEqual(diff, [removed(render(['contained', i], true, appointment))]);
          }
          // The entry's id itself changed: the new entry is added, then the old one removed, both
          // at its index.
          if (idsBefore![i] !== idsAfter![i]) {
            const entryPath = render(['contained', i], true, replaced);
            return jsonEqual(diff, [added(entryPath), removed(entryPath)]);
          }
        }

        if (arrayEdit) {
          // Index-wise arrays: every difference lies within the edited array, and an
          // `added` (insert) or `removed` (remove) sits at its old tail.
          const arrPath = render(where.slice(0, -1), byId, appointment);
          const tail =
            mutation === 'insert-element'
              ? added(arrPath + '[' + arrayEdit.oldLength + ']')
              : removed(arrPath + '[' + (arrayEdit.oldLength - 1) + ']');
          return (
            diff.some((d) => d.path === tail.path && d.kind === tail.kind) &&
            diff.every((d) => d.path.startsWith(arrPath + '['))
          );
        }

        const expectedPath = render(where, byId, loc.length > 0 ? appointment : replaced);
        const kind = mutation === 'delete-key' ? 'removed' : mutation === 'add-key' ? 'added' : 'changed';
        // Exactly one difference, at the mutated location (the only ancestor case is the
        // contained fallback to index-wise matching, which still points at the entry's path).
        if (diff.length !== 1) return false;
        const [d] = diff;
        return d!.kind === kind && d!.path === expectedPath && isSelfOrAncestor(d!.path, expectedPath);
      },
    ),
    { seed: 42, numRuns: 500 },
  );
  t.same([...seen].sort(), [...MUTATIONS].sort(), 'every mutation kind exercised');
  t.ok(byIdSeen > 0, 'mutations inside contained matched by id were exercised');
});

t.test('a repeating primitive with extensions only: values as nulls or left out are one element (ruling 21; review of stop 35)', async (t) => {
  const ext = [{ extension: [{ url: 'http://e/x', valueString: 'y' }] }];
  const stored = { resourceType: 'Appointment', id: 'a1', meta: { _profile: ext } };
  const asXmlReadsIt = { resourceType: 'Appointment', id: 'a1', meta: { profile: [null], _profile: ext } };
  t.same(diffResources(stored, asXmlReadsIt), [], 'nulls added beside the companion');
  t.same(diffResources(asXmlReadsIt, stored), [], 'nulls left out');
  t.same(diffResources(stored, { ...asXmlReadsIt, meta: { profile: [null], _profile: [{ extension: [{ url: 'http://e/x', valueString: 'z' }] }] } }), [{ path: 'Appointment.meta._profile[0].extension[0].valueString', kind: 'changed' }], 'the companion itself is still compared');
  t.same(diffResources(stored, { ...asXmlReadsIt, meta: { profile: ['http://p'], _profile: ext } }), [{ path: 'Appointment.meta.profile', kind: 'added' }], 'a value is a difference');
  t.same(diffResources({ meta: {} }, { meta: { profile: [null] } }, { root: 'Appointment' }), [{ path: 'Appointment.meta.profile', kind: 'added' }], 'nulls without a companion are a difference');
});
