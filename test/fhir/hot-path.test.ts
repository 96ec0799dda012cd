/**
 * Guards for the issue 6 hot-path rewrites, which must not change any answer:
 * - diff: the in-place key sort for small objects gives exactly `Array.prototype.sort` order;
 * - profile: element paths built lazily render exactly as before (indexes, unsafe names, root);
 * - strict JSON: duplicate detection through the object under construction, not a Set.
 */
import t from 'tap';
import fc from 'fast-check';
import { UNKNOWN_SEGMENT, diffResources } from '../../src/fhir/diff.js';
import { createProfileValidator } from '../../src/fhir/profile.js';
import { parseStrictJson } from '../../src/fhir/strict-json.js';

t.test('diff reports differing keys in code-unit order, for small and large objects', async (t) => {
  // Keys chosen to expose a wrong comparator: case, digits, non-ASCII, a surrogate pair.
  const alphabet = ['a', 'B', 'b', '_', 'Z', '0', '9', 'é', 'ä', '😀', 'aa', 'A'];
  fc.assert(
    fc.property(fc.uniqueArray(fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 3 }).map((p) => p.join('')), { minLength: 1, maxLength: 40 }), (keys) => {
      const before: Record<string, unknown> = { resourceType: 'Appointment' };
      const after: Record<string, unknown> = { resourceType: 'Appointment' };
      keys.forEach((k, i) => {
        before[k] = i;
        after[k] = i + 1;
      });
      const got = diffResources(before, after, { root: 'R', maxDifferences: 1000 }).map((d) => d.path);
      // Keys that are not element names are never echoed (ruling 20): a placeholder in their place.
      const want = [...keys].sort().map((k) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `R.${k}` : `R.${UNKNOWN_SEGMENT}`));
      return JSON.stringify(got) === JSON.stringify(want);
    }),
    { numRuns: 300 },
  );
  // The boundary of the two sort paths (24 keys) in both directions, deterministic.
  for (const n of [23, 24, 25, 26]) {
    const keys = Array.from({ length: n }, (_, i) => `k${String.fromCharCode(122 - i)}${i % 3 ? 'X' : 'x'}`);
    const before = Object.fromEntries(keys.map((k) => [k, 1]));
    const after = Object.fromEntries(keys.map((k) => [k, 2]));
    t.same(diffResources(before, after, { root: 'R', maxDifferences: 1000 }).map((d) => d.path), [...keys].sort().map((k) => `R.${k}`), `${n} keys`);
  }
});

t.test('profile invariant issues keep their exact element paths', async (t) => {
  const validate = createProfileValidator('careconnect-appointment-1');
  const base = {
    resourceType: 'Appointment',
    status: 'cancelled',
    start: '2030-01-01T10:00:00Z',
    end: '2030-01-01T10:10:00Z',
    participant: [{ actor: { reference: '#nowhere' }, status: 'accepted' }],
  };
  // ref-1 deep inside arrays and objects.
  const r = validate({ ...base, participant: [{ actor: { display: 'x' }, status: 'accepted' }, { actor: { reference: '#ghost' }, status: 'accepted' }] });
  t.ok(r.some((i) => i.expression === 'Appointment.participant[1].actor.reference' && /ref-1/.test(i.diagnostics)), 'ref-1 at participant[1].actor.reference');
  // ext-1 on a nested extension array (paths rendered lazily, indexes exact).
  const r2 = validate({ ...base, participant: [{ actor: { display: 'x' }, status: 'accepted', extension: [{ url: 'https://example.org/x' }] }] });
  t.ok(r2.some((i) => i.expression === 'Appointment.participant[0].extension[0]' && /ext-1/.test(i.diagnostics)), 'ext-1 path');
  // Ruling 20: a key that is not a FHIR element name is never echoed; unknown elements are not walked.
  const odd = 'we\u0001ird';
  const r3 = validate({ ...base, [odd]: [{ reference: '#ghost' }] });
  t.ok(r3.some((i) => i.expression === 'Appointment.<unknown>'), 'unsafe key replaced');
  t.notOk(r3.some((i) => i.expression.includes('\u0001') || i.expression.includes('ghost')), 'never echoed');
});

t.test('strict JSON refuses duplicates of inherited names and accepts them once', async (t) => {
  for (const k of ['toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', '__defineGetter__']) {
    const once = parseStrictJson(`{"${k}":1,"x":{"${k}":2}}`, 10);
    t.ok(once.ok, `${k} once per object is accepted`);
    const twice = parseStrictJson(`{"a":0,"${k}":1,"${k}":2}`, 10);
    t.match(twice, { ok: false, reason: /^duplicate key$/ }, `${k} twice is refused`);
    const nested = parseStrictJson(`{"${k}":{"${k}":1,"${k}":[2]}}`, 10);
    t.match(nested, { ok: false, reason: /duplicate key/ }, `${k} twice in a nested object is refused`);
  }
  const after = parseStrictJson('{"a":{"b":1},"a":2}', 10);
  t.match(after, { ok: false, reason: /^duplicate key$/ }, 'a duplicate after a container value is refused');
});
