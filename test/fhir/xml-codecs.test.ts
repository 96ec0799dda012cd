import t from 'tap';
import { readFileSync } from 'node:fs';
import { jsonCodec } from '../../src/adapters/codec-json.js';
import { xmlCodec } from '../../src/adapters/codec-xml.js';
import type { Codec } from '../../src/ports/codec.js';

const LIMITS = { maxDepth: 64, maxNodes: 100_000 };
const appointment = JSON.parse(readFileSync(new URL('../fixtures/nhs-booking/appointment.json', import.meta.url), 'utf8')) as Record<string, unknown>;

t.test('both codecs: media types, content type, and bytes -> resource -> bytes -> the same resource', async (t) => {
  const cases: [Codec, string, string[], string][] = [
    [jsonCodec, 'json', ['application/fhir+json', 'application/json+fhir', 'application/json', 'text/json'], 'application/fhir+json; charset=utf-8'],
    [xmlCodec, 'xml', ['application/fhir+xml', 'application/xml+fhir', 'application/xml', 'text/xml'], 'application/fhir+xml; charset=utf-8'],
  ];
  for (const [codec, format, types, contentType] of cases) {
    t.equal(codec.format, format);
    t.same(codec.mediaTypes, types);
    t.equal(codec.contentType, contentType);
    t.ok(Object.isFrozen(codec) && Object.isFrozen(codec.mediaTypes), `${format} codec is frozen`);
    const bytes = codec.encode(appointment);
    t.ok(Buffer.isBuffer(bytes));
    t.same(codec.decode(bytes, LIMITS), { ok: true, resource: appointment }, `${format} round trip`);
  }
  // The two wire formats carry the same model.
  t.same(xmlCodec.decode(xmlCodec.encode(appointment), LIMITS), jsonCodec.decode(Buffer.from(JSON.stringify(appointment)), LIMITS));
});

t.test('JSON codec refusals: BOM, bad UTF-8, not an object, duplicate keys, depth, node count', async (t) => {
  const refused: [string, Buffer, { maxDepth: number; maxNodes: number }, RegExp][] = [
    ['BOM', Buffer.from('\ufeff{}', 'utf8'), LIMITS, /byte order mark/],
    ['bad UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), LIMITS, /UTF-8/],
    ['array', Buffer.from('[]'), LIMITS, /not a JSON object/],
    ['duplicate key', Buffer.from('{"a":1,"a":2}'), LIMITS, /duplicate key/],
    ['depth', Buffer.from('{"a":{"b":{"c":{}}}}'), { maxDepth: 3, maxNodes: 100 }, /nesting deeper/],
    ['nodes', Buffer.from(JSON.stringify({ a: Array.from({ length: 50 }, () => 1) })), { maxDepth: 64, maxNodes: 40 }, /more than 40 (JSON )?values/],
  ];
  for (const [name, bytes, limits, re] of refused) t.match(jsonCodec.decode(bytes, limits), { ok: false, diagnostics: re }, name);
  t.ok(jsonCodec.decode(Buffer.from(JSON.stringify({ a: Array.from({ length: 50 }, () => 1) })), { maxDepth: 64, maxNodes: 52 }).ok, 'exactly at the node limit');
});

t.test('XML codec: refusals come back as diagnostics, never as exceptions', async (t) => {
  t.match(xmlCodec.decode(Buffer.from('<!DOCTYPE x><x/>'), LIMITS), { ok: false, diagnostics: /DOCTYPE/ });
  t.match(xmlCodec.decode(Buffer.from('{"resourceType":"Appointment"}'), LIMITS), { ok: false, diagnostics: /well-formed/ });
  t.throws(() => xmlCodec.encode({ resourceType: 'Appointment', colour: 'red' }), { name: 'FhirXmlEncodeError' });
  // What XML 1.0 cannot carry (review of stop 34: the vault served such a version as XML its own reader refused).
  for (const bad of ['a\u0001b', 'a\u0000b', 'x\ud800y', 'x\udc00', '\uffff']) t.throws(() => xmlCodec.encode({ resourceType: 'Appointment', comment: bad }), { name: 'FhirXmlEncodeError' }, JSON.stringify(bad));
  t.doesNotThrow(() => xmlCodec.encode({ resourceType: 'Appointment', comment: 'tab\tline\nreturn\r😀' }), 'tab, line breaks and a surrogate pair are XML');
});

t.test('ruling 21: the node limit is met at the same count in JSON and in XML (the model counted as JSON counts it)', async (t) => {
  const big = structuredClone(appointment) as Record<string, any>;
  big.text = { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'<p>a<b>b</b></p>'.repeat(200)}</div>` };
  big.identifier = Array.from({ length: 300 }, (_, i) => ({ system: 'https://example.org/ids', value: `v${i}` }));
  let exact = 0;
  for (let n = 1; n < 100_000 && exact === 0; n *= 2) if (jsonCodec.decode(Buffer.from(JSON.stringify(big)), { maxDepth: 64, maxNodes: n }).ok) exact = n;
  let lo = exact / 2;
  while (lo + 1 < exact) {
    const mid = Math.floor((lo + exact) / 2);
    if (jsonCodec.decode(Buffer.from(JSON.stringify(big)), { maxDepth: 64, maxNodes: mid }).ok) exact = mid;
    else lo = mid;
  }
  t.ok(exact > 1000, `the JSON body holds ${exact} values`);
  for (const [codec, bytes] of [[jsonCodec, Buffer.from(JSON.stringify(big))], [xmlCodec, xmlCodec.encode(big)]] as const) {
    t.ok(codec.decode(bytes, { maxDepth: 64, maxNodes: exact }).ok, `${codec.format}: accepted at ${exact}`);
    t.match(codec.decode(bytes, { maxDepth: 64, maxNodes: exact - 1 }), { ok: false, diagnostics: /node|values/ }, `${codec.format}: refused at ${exact - 1}`);
  }
});

t.test('the narrative is one value of the model in both formats: its markup is not counted against maxNodes; one depth bound for reading and writing it (review of stop 35)', async (t) => {
  const XHTML = 'http://www.w3.org/1999/xhtml';
  const limits = { maxDepth: 64, maxNodes: 5000 };
  const div = `<div xmlns="${XHTML}">${'<p>x</p>'.repeat(12_000)}</div>`;
  const asJson = { resourceType: 'Appointment', id: 'a1', text: { status: 'generated', div }, status: 'booked' };
  t.ok(jsonCodec.decode(Buffer.from(JSON.stringify(asJson)), limits).ok, 'JSON: accepted');
  const asXml = `<Appointment xmlns="http://hl7.org/fhir"><id value="a1"/><text><status value="generated"/>${div}</text><status value="booked"/></Appointment>`;
  const d = xmlCodec.decode(Buffer.from(asXml), limits);
  t.ok(d.ok, `XML: accepted as well${d.ok ? '' : `: ${d.diagnostics}`}`);
  // A narrative nested 200 deep: read from XML, written back to XML (the vault's re-encoding).
  const deep = `<div xmlns="${XHTML}">${'<span>'.repeat(200)}x${'</span>'.repeat(200)}</div>`;
  const read = xmlCodec.decode(Buffer.from(`<Appointment xmlns="http://hl7.org/fhir"><id value="a2"/><text><status value="generated"/>${deep}</text><status value="booked"/></Appointment>`), limits);
  t.ok(read.ok, 'read');
  t.doesNotThrow(() => read.ok && xmlCodec.encode(read.resource as Record<string, unknown>), 'and written back (the encoder took 64 levels only)');
  const nested = (n: number) => `<Appointment xmlns="http://hl7.org/fhir"><id value="a3"/><text><status value="generated"/><div xmlns="${XHTML}">${'<b>'.repeat(n)}x${'</b>'.repeat(n)}</div></text></Appointment>`;
  const at255 = xmlCodec.decode(Buffer.from(nested(255)), limits);
  t.ok(at255.ok, '256 levels with the div: read');
  t.doesNotThrow(() => at255.ok && xmlCodec.encode(at255.resource as Record<string, unknown>), 'and written back: one bound for decoder and encoder');
  t.notOk(xmlCodec.decode(Buffer.from(nested(256)), limits).ok, 'one level more: refused by the decoder as by the encoder');
});
