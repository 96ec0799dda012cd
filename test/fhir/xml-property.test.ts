import t from 'tap';
import fc from 'fast-check';
import assert from 'node:assert';
import { decodeFhirXml, encodeFhirXml } from '../../src/fhir/xml/index.js';
import { childOf, type ChildInfo } from '../../src/fhir/xml/model.js';
import { ELEMENT_ORDER } from '../../src/fhir/xml/element-order.js';
import { prng } from '../../scripts/fuzz/xml-cases.js';

/**
 * A seeded random corpus of STU3 resources in the JSON model, built by walking the type model
 * itself (every element of the chosen types may appear), so the round trip is tested well beyond
 * the examples: primitives of each JSON kind, repeating primitives with null-aligned `_name`
 * companions, extensions, contained resources, narrative divs, awkward strings.
 */
type Obj = Record<string, unknown>;
const TYPES = ['Appointment', 'Patient', 'OperationOutcome', 'Slot', 'Practitioner', 'Organization'];
const CHARS = ['a', 'Z', '0', ' ', '<', '>', '&', '"', "'", '\t', '\n', '\r', 'é', '€', '😀', ']]>', '--'];

function generator(seed: number) {
  const r = prng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const str = () => Array.from({ length: Math.floor(r() * 6) }, () => pick(CHARS)).join('');
  const primitive = (info: ChildInfo): unknown => {
    if (info.json === 'boolean') return r() < 0.5;
    if (info.json === 'integer') return Math.floor(r() * 2000) - 1000 || 1;
    if (info.json === 'decimal') return Math.round((r() - 0.5) * 1e6) / 100 || 0.5;
    return str();
  };
  const extension = (depth: number): Obj => {
    const e: Obj = { url: `http://example.org/${str()}` };
    if (r() < 0.3) e.id = 'e1';
    const kind = pick(['valueString', 'valueBoolean', 'valueDecimal', 'valueInteger', 'valueCodeableConcept', 'nested']);
    if (kind === 'nested' && depth < 3) e.extension = [extension(depth + 1)];
    else if (kind === 'valueCodeableConcept' || kind === 'nested') e.valueCodeableConcept = { text: str() };
    else e[kind] = primitive(childOf('Extension', kind)!);
    return e;
  };
  const companion = (depth: number): Obj => (r() < 0.5 ? { id: 'c1' } : { extension: [extension(depth + 1)] });
  const complex = (context: string, depth: number, resource: boolean): Obj => {
    const o: Obj = resource ? { resourceType: context } : {};
    if (!resource && r() < 0.1) o.id = 'x1';
    for (const name of ELEMENT_ORDER[context] ?? []) {
      if (name === 'resourceType' || (!resource && name === 'id') || r() > 0.35 / (depth + 1)) continue;
      if (context === 'Extension' && name === 'url') continue;
      const info = childOf(context, name);
      if (!info) continue; // a choice element: covered through Extension.value[x]
      if (info.kind === 'primitive') addPrimitive(o, name, info, depth);
      else if (info.kind === 'xhtml') o[name] = `<div xmlns="http://www.w3.org/1999/xhtml"><p>${str().replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;')}</p><br/></div>`;
      else if (info.kind === 'resource') {
        if (depth < 1) o[name] = info.repeating ? [complex(pick(['Patient', 'Slot']), depth + 1, true)] : complex('Patient', depth + 1, true);
      } else if (depth < 3) {
        const one = () => (info.context === 'Extension' ? extension(depth + 1) : complex(info.context, depth + 1, false));
        o[name] = info.repeating ? Array.from({ length: 1 + Math.floor(r() * 2) }, one) : one();
      }
    }
    return o;
  };
  const addPrimitive = (o: Obj, name: string, info: ChildInfo, depth: number) => {
    if (!info.repeating) {
      if (r() < 0.85) o[name] = primitive(info);
      if (r() < 0.2 || o[name] === undefined) o[`_${name}`] = companion(depth);
      return;
    }
    const n = 1 + Math.floor(r() * 3);
    const values = Array.from({ length: n }, () => (r() < 0.8 ? primitive(info) : null));
    const comps = values.map((v) => (v === null || r() < 0.2 ? companion(depth) : null));
    // FHIR JSON's form: with any companion, the values array is there too (nulls aligned).
    if (values.some((v) => v !== null) || comps.some((c) => c !== null)) o[name] = values;
    if (comps.some((c) => c !== null)) o[`_${name}`] = comps;
  };
  return () => complex(pick(TYPES), 0, true);
}

t.test('a seeded random corpus of resources converts to XML and back unchanged', async (t) => {
  let checked = 0;
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
      const resource = generator(seed)();
      const back = decodeFhirXml(Buffer.from(encodeFhirXml(resource), 'utf8'), { maxDepth: 128, maxNodes: 1_000_000 });
      checked++;
      if (!back.ok) throw new Error(back.diagnostics);
      assert.deepStrictEqual(back.resource, resource);
    }),
    { seed: 20261204, numRuns: 300 },
  );
  t.equal(checked, 300);
});
