/**
 * parseStrictJson (ruling 6): agrees with JSON.parse on every valid document, and refuses what two
 * readers could see differently (duplicate keys, prototype keys), nesting beyond the limit, numbers
 * JSON.parse would turn into Infinity, and everything JSON.parse itself refuses. Never throws.
 */
import t from 'tap';
import fc from 'fast-check';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseStrictJson } from '../../src/fhir/strict-json.js';

const BIG = 10_000;

function accepts(t: { ok: Function; same: Function; equal: Function }, text: string, maxDepth = BIG, name = JSON.stringify(text).slice(0, 80)): void {
  const r = parseStrictJson(text, maxDepth);
  t.ok(r.ok, `accepted: ${name}${r.ok ? '' : ` (${r.reason} at ${r.offset})`}`);
  if (r.ok) {
    const expected = JSON.parse(text);
    t.same(r.value, expected, `equal to JSON.parse: ${name}`);
    t.equal(JSON.stringify(r.value), JSON.stringify(expected), `same serialization: ${name}`);
  }
}

function rejects(t: { ok: Function; match: Function; equal: Function }, text: string, reason: RegExp, maxDepth = BIG, name = JSON.stringify(text).slice(0, 80)): { offset: number } | undefined {
  let r;
  try {
    r = parseStrictJson(text, maxDepth);
  } catch (e) {
    t.ok(false, `threw instead of returning a rejection: ${name}: ${String(e)}`);
    return undefined;
  }
  t.equal(r.ok, false, `rejected: ${name}`);
  if (!r.ok) {
    t.match(r.reason, reason, `reason for ${name}`);
    t.ok(Number.isInteger(r.offset) && r.offset >= 0 && r.offset <= text.length, `offset in range: ${name}`);
    return { offset: r.offset };
  }
  return undefined;
}

t.test('valid JSON round-trips equal to JSON.parse', async (t) => {
  const table = [
    '0', '-0', '1', '-1', '1.5', '-0.25', '1e3', '1E3', '1e+3', '1e-3', '-1.5e-7', '123456789012345678901234567890', '1e308', '1e-400', '5e-324',
    'true', 'false', 'null',
    '""', '"a"', '"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"\\u00e9\\u20ac\\ud83d\\ude00"', '"é€😀"', '"\u007f"', '"\\u0000"',
    '"\\ud800"', '"\\udc00x"', '"\ud800"', '"a\udc00b"',
    '[]', '{}', '[[]]', '[{}]', '{"a":[]}', '[1,"2",true,null,{"x":[1.5]}]',
    ' \t\r\n{ "a" : 1 , "b" : [ 1 , 2 ] } \n',
    '{"":1}', '{"a":{"a":{"a":1}}}', '[{"a":1},{"a":2}]', '{"a":1,"b":{"a":2}}',
    '{"__proto":1,"proto__":2,"Constructor":3,"PROTOTYPE":4,"__proto__x":5}',
    '{"toString":1,"hasOwnProperty":2,"valueOf":3}',
    '"' + 'x'.repeat(10_000) + '"',
    JSON.stringify({ resourceType: 'Appointment', id: 'a', nested: { deep: [[[['x']]]] } }),
  ];
  for (const text of table) accepts(t, text);
  const r = parseStrictJson('-0', 10);
  t.ok(r.ok && Object.is(r.value, -0), '-0 stays -0, as in JSON.parse');
  const own = parseStrictJson('{"toString":1}', 10);
  t.ok(own.ok && Object.prototype.hasOwnProperty.call(own.value, 'toString'), 'keys are own properties');
});

t.test('the fixtures and shipped JSON files round-trip equal to JSON.parse', async (t) => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.json')) files.push(p);
    }
  };
  walk(join(root, 'test', 'fixtures'));
  walk(join(root, 'config'));
  t.ok(files.length >= 6, `found ${files.length} JSON files`);
  for (const f of files) accepts(t, readFileSync(f, 'utf8'), 64, f.slice(root.length));
});

t.test('random JSON (fast-check) agrees with JSON.parse', async (t) => {
  fc.assert(
    fc.property(fc.json({ depthSize: 'medium' }), (text) => {
      const r = parseStrictJson(text, 1000);
      if (!r.ok) return /forbidden key/.test(r.reason); // fc may generate "__proto__"/"constructor" keys
      return JSON.stringify(r.value) === JSON.stringify(JSON.parse(text));
    }),
    { numRuns: 500 },
  );
  // Formatting must not matter either.
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      const text = JSON.stringify(v, null, 2);
      const r = parseStrictJson(text, 1000);
      if (!r.ok) return /forbidden key/.test(r.reason);
      return JSON.stringify(r.value) === JSON.stringify(JSON.parse(text));
    }),
    { numRuns: 300 },
  );
  t.pass('properties hold');
});

t.test('duplicate keys are refused at any depth, never merged', async (t) => {
  const dup = /duplicate key/;
  const at = rejects(t, '{"a":1,"a":2}', dup);
  t.equal(at?.offset, 7, 'the offset points at the second key');
  rejects(t, '{"status":"booked","id":"x","status":"cancelled"}', dup);
  rejects(t, '{"a":{"b":1,"b":1}}', dup);
  rejects(t, '[{"x":1},{"x":1,"x":1}]', dup);
  rejects(t, '{"a":[[[{"k":null,"k":null}]]]}', dup);
  rejects(t, '{"a":1,"\\u0061":2}', dup, BIG, 'a duplicate spelled with an escape');
  rejects(t, '{"":1,"":2}', dup);
  t.equal(JSON.parse('{"a":1,"a":2}').a, 2, '(JSON.parse would silently keep the last)');
});

t.test('__proto__, constructor and prototype keys are refused', async (t) => {
  const bad = /forbidden key/;
  for (const k of ['__proto__', 'constructor', 'prototype']) {
    rejects(t, `{"${k}":{}}`, bad);
    rejects(t, `{"a":{"b":[{"${k}":1}]}}`, bad, BIG, `${k} nested`);
  }
  rejects(t, '{"\\u005f_proto__":{"isAdmin":true}}', bad, BIG, '__proto__ spelled with an escape');
  rejects(t, '{"constructo\\u0072":1}', bad, BIG, 'constructor spelled with an escape');
  t.equal(({} as Record<string, unknown>).isAdmin, undefined, 'no prototype pollution');
});

t.test('the depth limit: depth N accepted, N+1 refused', async (t) => {
  for (const n of [1, 2, 10, 64]) {
    accepts(t, '['.repeat(n) + ']'.repeat(n), n, `${n} nested arrays at limit ${n}`);
    rejects(t, '['.repeat(n + 1) + ']'.repeat(n + 1), /nesting deeper than/, n, `${n + 1} nested arrays at limit ${n}`);
    accepts(t, '{"a":'.repeat(n) + '1' + '}'.repeat(n), n, `${n} nested objects at limit ${n}`);
    rejects(t, '{"a":'.repeat(n + 1) + '1' + '}'.repeat(n + 1), /nesting deeper than/, n, `${n + 1} nested objects at limit ${n}`);
    accepts(t, '{"a":'.repeat(n - 1) + '[1]' + '}'.repeat(n - 1), n, `mixed depth ${n} at limit ${n}`);
  }
  // Depth is nesting, not the number of containers.
  accepts(t, '[' + '[],'.repeat(1000) + '[]]', 2, 'many siblings at depth 2');
  // Limit 0: scalars only.
  accepts(t, '1', 0);
  rejects(t, '[]', /nesting deeper than/, 0);
});

t.test('100,000-deep nesting does not throw', async (t) => {
  const n = 100_000;
  const arrays = '['.repeat(n) + ']'.repeat(n);
  rejects(t, arrays, /nesting deeper than 64/, 64, '100k arrays');
  rejects(t, '{"a":'.repeat(n) + '1' + '}'.repeat(n), /nesting deeper than 64/, 64, '100k objects');
  rejects(t, '['.repeat(n), /nesting deeper than|unexpected end/, 64, '100k unclosed');
  const deep = parseStrictJson(arrays, n);
  t.equal(deep.ok, true, 'with a limit that allows it, parsed without a stack overflow');
  rejects(t, '['.repeat(n), /unexpected end/, n, '100k unclosed within the limit');
});

t.test('trailing data is refused', async (t) => {
  for (const text of ['{} x', '{}{}', '[]]', '1 2', '"a" "b"', 'true false', '{"a":1}}', 'null,']) rejects(t, text, /trailing data/);
});

t.test('bad escapes are refused', async (t) => {
  for (const text of ['"\\x"', '"\\u12"', '"\\u12G4"', '"\\U0041"', '"\\\'"', '"\\a"', '"\\0"', '"\\', '"\\"']) rejects(t, text, /invalid escape|unterminated/);
});

t.test('raw control characters in strings are refused', async (t) => {
  for (let c = 0; c < 0x20; c++) rejects(t, `"a${String.fromCharCode(c)}b"`, /control character/, BIG, `U+${c.toString(16).padStart(4, '0')}`);
  rejects(t, '{"a\nb":1}', /control character/, BIG, 'in a key');
});

t.test('numbers JSON.parse would make infinite are refused', async (t) => {
  for (const text of ['1e400', '-1e400', '[1e309]', '{"a":123e1000}', '9'.repeat(400)]) rejects(t, text, /out of range/);
  t.equal(JSON.parse('1e400'), Infinity, '(JSON.parse gives Infinity)');
});

t.test('everything JSON.parse refuses is refused too', async (t) => {
  const table = [
    '', ' ', '\ufeff{}', '01', '-01', '1.', '.5', '+1', '-', '1e', '1e+', '0x10', 'NaN', 'Infinity', '-Infinity',
    'tru', 'nul', 'True', 'undefined', "'a'", '"abc', '[1,]', '{"a":1,}', '[,1]', '{,}', '{a:1}', "{'a':1}",
    '[1 2]', '{"a" 1}', '{"a":}', '{"a"}', '{1:2}', '[', '{', ']', '}', '{"a":1', '[1', '/*c*/1', '1//c', '[\u00a01]',
  ];
  for (const text of table) {
    let jsonParseThrows = false;
    try {
      JSON.parse(text);
    } catch {
      jsonParseThrows = true;
    }
    t.ok(jsonParseThrows, `(JSON.parse refuses ${JSON.stringify(text)})`);
    rejects(t, text, /./);
  }
});

/**
 * Issue 17: a backslash-free text is parsed natively and only checked. The fast path must give
 * exactly what the scanning parser gives — the same value, the same raw number texts, the same
 * refusal — for any text, hostile or not.
 */
t.test('the native fast path agrees with the scanning parser on every text', async (t) => {
  const { parseStrictJsonScanning, RAW_NUMBERS } = await import('../../src/fhir/strict-json.js');
  const same = (text: string, depth: number, nodes: number): boolean => {
    const a = parseStrictJson(text, depth, nodes);
    const b = parseStrictJsonScanning(text, depth, nodes);
    if (a.ok !== b.ok) return false;
    if (!a.ok || !b.ok) return !a.ok && !b.ok && a.reason === b.reason && a.offset === b.offset;
    const raw = (v: unknown): unknown => (v && typeof v === 'object' ? [(v as Record<symbol, unknown>)[RAW_NUMBERS], ...Object.values(v).map(raw)] : undefined);
    return JSON.stringify(a.value) === JSON.stringify(b.value) && JSON.stringify(raw(a.value), (_k, v) => (v instanceof Map ? [...v] : v)) === JSON.stringify(raw(b.value), (_k, v) => (v instanceof Map ? [...v] : v));
  };
  const pieces = ['{', '}', '[', ']', ':', ',', '"a"', '"b"', '"__proto__"', '"constructor"', '1', '-0', '1.0', '1e2', '12345678901234567890', '0.5', 'true', 'null', ' ', '"x:y"', '"1,2"', '"\\u0061"', '"', '"\\""', '"x\\\\"', '\\', '"\\u005f_proto__"', '"a\\":1"'];
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 24 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 30 }), (parts, depth, nodes) => same(parts.join(''), depth, nodes)),
    { numRuns: 20_000 },
  );
  const objects = fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v, null, Math.random() < 0.5 ? 0 : 1));
  fc.assert(fc.property(objects, (text) => same(text, 4, 200) && same(text, 64, 100_000)), { numRuns: 3_000 });
  for (const text of ['{"a":1,"a":1}', '{"a":{"b":1},"c":{"b":2,"b":3}}', '{"__proto__":{}}', '{"n":1.50}', '{"n":-0}', '{"n":1e400}', '{"a":"x:y","b":2}', '{"a" : 1 , "b":[1,2,{"c":"d"}]}', '{"a":"\\"","\\u0061":1}', '{"d":"<div xmlns=\\"x\\">\\\\</div>","n":2}', '{"\\u005f_proto__":1}']) {
    t.ok(same(text, 64, 1000), text);
  }
});

t.test('stringifyKeepingNumberText: JSON.stringify, but numbers as written', async (t) => {
  const { stringifyKeepingNumberText, parseStrictJson } = await import('../../src/fhir/strict-json.js');
  const samples: unknown[] = [{ a: 1, b: [1, 'x', null, true, { c: 2.5 }], d: 'é"\\\n', e: undefined, f: -3 }, [undefined, () => 1, 1], 'plain', 7, null, { nested: { deep: [[1]] } }];
  // eslint-disable-next-line no-sparse-arrays
  samples.push([1, , 3]);
  for (const v of samples) t.equal(stringifyKeepingNumberText(v), JSON.stringify(v), JSON.stringify(v));
  const text = '{"a":1.10,"b":[1.0,2,1e2],"c":{"d":100000000000000000001}}';
  const parsed = parseStrictJson(text, 64);
  t.ok(parsed.ok);
  if (parsed.ok) t.equal(stringifyKeepingNumberText(parsed.value), text, 'every number as written');
});
