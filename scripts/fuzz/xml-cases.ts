/**
 * Seeded XML fuzz cases (issue 15): valid FHIR XML bodies mutated byte-wise and token-wise, and the
 * invariant every decode must keep. Shared by the seeded share in `npm test`
 * (test/fuzz/xml.test.ts) and the long run (scripts/fuzz/xml.ts, `npm run fuzz`).
 */
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { decodeFhirXml, encodeFhirXml, FhirXmlEncodeError } from '../../src/fhir/xml/index.js';

export const FUZZ_LIMITS = { maxDepth: 64, maxNodes: 20_000 };

/** A small deterministic PRNG (mulberry32), so a failing case is reproduced from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Valid bodies to mutate: the test fixtures written as XML, plus hand-made ones using every rule. */
export function fuzzSeeds(repoRoot: URL): string[] {
  const fixtures = ['test/fixtures/nhs-booking/appointment.json', 'test/fixtures/gp-connect/appointment.json'].map((p) =>
    encodeFhirXml(JSON.parse(readFileSync(new URL(p, repoRoot), 'utf8')) as Record<string, unknown>),
  );
  const ns = 'xmlns="http://hl7.org/fhir"';
  return [
    ...fixtures,
    `<?xml version="1.0" encoding="UTF-8"?><Patient ${ns}><id value="p"/><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>a &amp; b</p><br/></div></text><name id="n"><given value="A"/><given><extension url="u"><valueDecimal value="1.50"/></extension></given></name><active value="true"/></Patient>`,
    `<OperationOutcome ${ns}><issue><severity value="error"/><code value="invalid"/><details><coding><system value="s"/><code value="BAD_REQUEST"/></coding></details><diagnostics value="x &lt; y"/></issue></OperationOutcome>`,
  ];
}

const TOKENS = [
  '<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]>', '<!ENTITY x "y">', '&e;', '&amp;', '&#60;', '&#x1F600;', '&#0;', '<![CDATA[x]]>',
  '<?pi x?>', '<!-- c -->', 'xmlns="urn:x"', 'xmlns=""', ' value="1.0"', ' id="i"', ' url="u"', '<extension url="u">', '</extension>', '<div xmlns="http://www.w3.org/1999/xhtml">',
  '</div>', '<contained>', '</contained>', '<Patient>', '</Patient>', '<status value="booked"/>', '<', '>', '/>', '"', "'", '=', ' ', '\n', 'x', '\u0000', '\ufeff',
  '<valueBoolean value="true"/>', '<valueInteger value="007"/>', '<constructor/>', '<__proto__/>', '<meta/>', '<given value=""/>',
];

/** One mutated body for a case number: 1-4 mutations of a seed (flip, delete, duplicate, insert token, splice). */
export function mutate(seeds: string[], seed: number): string {
  const r = prng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  let s = pick(seeds);
  const n = 1 + Math.floor(r() * 4);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(r() * (s.length + 1));
    const len = 1 + Math.floor(r() * 16);
    switch (Math.floor(r() * 5)) {
      case 0:
        s = s.slice(0, at) + String.fromCharCode(Math.floor(r() * 128)) + s.slice(at + 1);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + len);
        break;
      case 2:
        s = s.slice(0, at) + s.slice(at, at + len) + s.slice(at);
        break;
      case 3:
        s = s.slice(0, at) + pick(TOKENS) + s.slice(at);
        break;
      default: {
        const other = pick(seeds);
        const from = Math.floor(r() * other.length);
        s = s.slice(0, at) + other.slice(from, from + len * 8) + s.slice(at);
      }
    }
  }
  return s;
}

export type CaseOutcome = 'accepted' | 'refused';

/**
 * Decodes one body. Never throws for the input's sake; an accepted body must be a plain JSON
 * object with a resourceType that the encoder writes back and the decoder reads to the same model.
 * Returns the outcome, or throws an Error naming the broken invariant (never the body).
 */
export function runCase(body: string): CaseOutcome {
  const d = decodeFhirXml(Buffer.from(body, 'utf8'), FUZZ_LIMITS);
  if (!d.ok) {
    if (typeof d.diagnostics !== 'string' || d.diagnostics.length === 0) throw new Error('a refusal without diagnostics');
    return 'refused';
  }
  const r = d.resource;
  if (Object.getPrototypeOf(r) !== Object.prototype || typeof r.resourceType !== 'string') throw new Error('accepted output is not a plain resource object');
  if (!isDeepStrictEqual(JSON.parse(JSON.stringify(r)), r)) throw new Error('accepted output is not plain JSON');
  let encoded: string;
  try {
    encoded = encodeFhirXml(r);
  } catch (e) {
    // A value not of its type (`<active value="yes"/>`) is read as JSON would hold it, for the
    // profile check to refuse with its path (rulings 20, 21); the typed encoder cannot write it.
    if (e instanceof FhirXmlEncodeError && /must be (a boolean|an integer|a number)$/.test(e.message)) return 'refused';
    throw e;
  }
  const again = decodeFhirXml(Buffer.from(encoded, 'utf8'), { maxDepth: 1000, maxNodes: 1_000_000 });
  if (!again.ok || !isDeepStrictEqual(again.resource, r)) throw new Error('accepted output does not survive encode and decode');
  return 'accepted';
}
