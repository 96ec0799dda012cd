/**
 * Ruling 21: element order is read leniently (see docs/fhir-xml.md). A repeating primitive with
 * extensions only decodes as FHIR JSON writes it: its values array of nulls beside the companions.
 */
import t from 'tap';
import { decodeFhirXml } from '../../src/fhir/xml/decode.js';

const NS = 'xmlns="http://hl7.org/fhir"';
const appt = (inner: string) => Buffer.from(`<Appointment ${NS}><id value="a1"/>${inner}</Appointment>`);
const limits = { maxDepth: 64, maxNodes: 10_000 };

t.test('order is not enforced (NHS\'s own test tool writes meta out of order; the diff sees the resource, not its order)', async (t) => {
  for (const inner of ['<start value="2030-01-01T10:00:00Z"/><status value="booked"/>', '<identifier><value value="1"/><system value="https://x.example"/></identifier><status value="booked"/>']) {
    t.equal(decodeFhirXml(appt(inner), limits).ok, true);
  }
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
