/**
 * Ruling 21: a request body's XML follows FHIR's element order (strictOrder), as FHIR XML
 * requires; provider answers are read without it. A repeating primitive with extensions only
 * decodes as FHIR JSON writes it: its values array of nulls beside the companions.
 */
import t from 'tap';
import { decodeFhirXml } from '../../src/fhir/xml/decode.js';

const NS = 'xmlns="http://hl7.org/fhir"';
const appt = (inner: string) => Buffer.from(`<Appointment ${NS}><id value="a1"/>${inner}</Appointment>`);
const limits = { maxDepth: 64, maxNodes: 10_000 };
const strict = (b: Buffer) => decodeFhirXml(b, limits, { strictOrder: true });

t.test('order: refused for a request body, read leniently otherwise', async (t) => {
  const cases: Array<[string, string]> = [
    ['status after start', '<start value="2030-01-01T10:00:00Z"/><status value="booked"/>'],
    ['identifier children reversed', '<identifier><value value="1"/><system value="https://x.example"/></identifier><status value="booked"/>'],
    ['a repeated element after another', '<identifier><value value="1"/></identifier><status value="booked"/><identifier><value value="2"/></identifier>'],
    ['an extension after the resource\'s own elements', '<status value="booked"/><extension url="https://x.example/e"><valueString value="x"/></extension>'],
  ];
  for (const [name, inner] of cases) {
    t.match(strict(appt(inner)), { ok: false, diagnostics: /out of the order FHIR defines/ }, `${name}: refused`);
    t.equal(decodeFhirXml(appt(inner), limits).ok, true, `${name}: a provider answer is read`);
  }
  t.equal(strict(appt('<extension url="https://x.example/e"><valueString value="x"/></extension><identifier><system value="https://x.example"/><value value="1"/></identifier><identifier><value value="2"/></identifier><status value="booked"/><start value="2030-01-01T10:00:00Z"/>')).ok, true, 'in order, repeated elements adjacent');
  const twoChoices = strict(appt('<extension url="https://x.example/e"><valueString value="x"/><valueBoolean value="true"/></extension><status value="booked"/>'));
  t.equal(twoChoices.ok, true, 'two variants of one choice are left to the profile check, as in JSON');
});

t.test('a repeating primitive with extensions only: values of null beside the companions', async (t) => {
  const d = decodeFhirXml(appt('<status value="booked"/><participant><actor><display value="x"/></actor><status value="accepted"/></participant>'.replace('<participant>', '<comment value="c"/><participant>')), limits);
  t.equal(d.ok, true);
  const contained = decodeFhirXml(Buffer.from(`<Patient ${NS}><name><family value="F"/><prefix><extension url="https://x.example/e"><valueString value="x"/></extension></prefix></name></Patient>`), limits);
  t.ok(contained.ok);
  const name = contained.ok ? (contained.resource.name as Array<Record<string, unknown>>)[0] : {};
  t.same(name?.prefix, [null], 'prefix: [null]');
  t.same(name?._prefix, [{ extension: [{ url: 'https://x.example/e', valueString: 'x' }] }], '_prefix: the extension');
});
