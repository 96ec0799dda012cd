import t from 'tap';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, relative } from 'node:path';
import { decodeFhirXml, encodeFhirXml, FhirXmlEncodeError } from '../../src/fhir/xml/index.js';
import { numberText } from '../../src/fhir/strict-json.js';
import { seedAppointments } from '../../demo/provider/seed/index.js';

const LIMITS = { maxDepth: 64, maxNodes: 100_000 };
const repo = fileURLToPath(new URL('../../', import.meta.url));
// The spec data lives beside the repository (../shared), as in CI.
const specData = join(repo, '../shared/spec/data');
const haveSpec = existsSync(specData);
const SKIP_SPEC = haveSpec ? false : 'the spec data (../shared/spec/data) is not beside the repository';

const decode = (xml: string | Buffer, limits = LIMITS) => decodeFhirXml(Buffer.isBuffer(xml) ? xml : Buffer.from(xml, 'utf8'), limits);

function filesUnder(dir: string, ext: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p, ext));
    else if (name.endsWith(ext)) out.push(p);
  }
  return out.sort();
}

/**
 * JSON files that are not (STU3) FHIR resources, with the reason they are left out of the
 * round trip. Everything else found must round-trip.
 */
const NOT_STU3_RESOURCES: [RegExp, string][] = [
  [/\/jwt\//, 'JWT claims, not FHIR'],
  [/postman_collection/, 'a Postman collection, not FHIR'],
  [/Spine-ErrorOrWarningCode-1\.codes\.json$/, 'a derived code list, not FHIR'],
  [/dstu2|v0\.x-/i, 'DSTU2: elements STU3 does not define'],
  [/\/demonstrator\/(goodAppt|goodAppt_1|badAppt_Status|request)\.json$/, 'loose demonstrator JSON: meta.profile is a string, not an array'],
  [/get_an_appointment_md__1_.*\.json$|fixtures\/diff\/appointment\.json$/, 'text.div is the plain word "Appointment", not XHTML: not expressible as FHIR XML'],
];

function jsonCorpus(): { name: string; resource: Record<string, unknown> }[] {
  const files = [...(haveSpec ? filesUnder(specData, '.json') : []), ...filesUnder(join(repo, 'test/fixtures'), '.json')];
  const out: { name: string; resource: Record<string, unknown> }[] = [];
  for (const f of files) {
    if (NOT_STU3_RESOURCES.some(([re]) => re.test(f))) continue;
    const v: unknown = JSON.parse(readFileSync(f, 'utf8'));
    // A file of several examples (an array) contributes each of them.
    const list = Array.isArray(v) ? v : [v];
    list.forEach((r, i) => {
      if (typeof r === 'object' && r !== null && typeof (r as { resourceType?: unknown }).resourceType === 'string') out.push({ name: `${relative(join(repo, '..'), f)}${list.length > 1 ? `#${i}` : ''}`, resource: r as Record<string, unknown> });
    });
  }
  for (const std of ['nhs-booking', 'gp-connect'] as const) seedAppointments(std, Date.UTC(2030, 0, 1)).forEach((r, i) => out.push({ name: `demo seed ${std} #${i}`, resource: r as Record<string, unknown> }));
  return out;
}

t.test('every JSON example, fixture and demo seed converts to XML and back unchanged', async (t) => {
  if (!haveSpec) t.comment('spec data not found beside the repository: fixtures and seeds only');
  const corpus = jsonCorpus();
  t.ok(corpus.length >= (haveSpec ? 40 : 10), `corpus of ${corpus.length} resources`);
  for (const { name, resource } of corpus) {
    const xml = encodeFhirXml(resource);
    const back = decode(xml, { maxDepth: 64, maxNodes: 1_000_000 });
    t.ok(back.ok, `${name} decodes`);
    if (back.ok) t.same(back.resource, resource, `${name} round-trips`);
    t.equal(encodeFhirXml(back.ok ? back.resource : {}), xml, `${name} re-encodes to the same bytes`);
  }
});

t.test('the left-out JSON files are refused by the encoder, not silently mangled', { skip: SKIP_SPEC }, async (t) => {
  const f = join(specData, 'nhs-booking/demonstrator/goodAppt.json');
  t.throws(() => encodeFhirXml(JSON.parse(readFileSync(f, 'utf8'))), FhirXmlEncodeError);
  const d = join(repo, 'test/fixtures/diff/appointment.json');
  t.throws(() => encodeFhirXml(JSON.parse(readFileSync(d, 'utf8'))), FhirXmlEncodeError);
});

t.test('XML examples in the spec data read to their JSON twins', { skip: SKIP_SPEC }, async (t) => {
  const pairs: [string, string, ((r: Record<string, unknown>) => unknown)?][] = [
    ['gp-connect/GPConnect-Appointment-1.profile-v1.6.0.gpc-1.2.7.xml', 'nhs-booking/tkw-FHIR_111_UEC/validator-fhir-assets/GPConnect-Appointment-1.json'],
    ['gp-connect/Extension-GPConnect-AppointmentCancellationReason-1.xml', 'nhs-booking/tkw-FHIR_111_UEC/validator-fhir-assets/Extension-GPConnect-AppointmentCancellationReason-1.json'],
    // The TKW XML cancel and the NHS Booking JSON cancelling example are the same resource; the
    // two sources list the contained resources in a different order (FHIR gives that order no
    // meaning: they are found by id), so contained is compared by id.
    ['nhs-booking/tkw-FHIR_111_UEC/CancelAppointmentRequest.json.xml', 'nhs-booking/spec-2.0.1/appointment_md__2_Cancelling_example_resource.json', byContainedId],
  ];
  for (const [x, j, norm = (r: Record<string, unknown>) => r] of pairs) {
    const d = decode(readFileSync(join(specData, x)));
    t.ok(d.ok, `${x} decodes`);
    if (d.ok) t.same(norm(d.resource), norm(JSON.parse(readFileSync(join(specData, j), 'utf8'))), `${x} reads to ${j}`);
  }
});

function byContainedId(r: Record<string, unknown>): unknown {
  const c = (r.contained as { id: string }[]).slice().sort((a, b) => (a.id < b.id ? -1 : 1));
  return { ...r, contained: c };
}

t.test('every STU3 XML example in the spec data decodes; DSTU2 and templates are refused', { skip: SKIP_SPEC }, async (t) => {
  for (const f of filesUnder(specData, '.xml')) {
    const name = relative(specData, f);
    const d = decode(readFileSync(f), { maxDepth: 64, maxNodes: 1_000_000 });
    // DSTU2 definitions use elements STU3 lacks; the HappyPath template has placeholder text nodes.
    const bad = /(Appointment-Created-1|cancellation-reason-1|gpconnect-appointment-1|OperationOutcome-1)\.DSTU2|provider-testing|CancelAppointment_HappyPath_Response/.test(name);
    t.equal(d.ok, !bad, `${name} ${bad ? 'refused' : 'decodes'}`);
  }
});

const NS = 'xmlns="http://hl7.org/fhir"';
const appt = (inner: string, rootAttrs = NS) => `<Appointment ${rootAttrs}><id value="a1"/>${inner}<status value="cancelled"/></Appointment>`;

t.test('FHIR XML rules: primitives, arrays, companions, div, contained, extensions, choice types', async (t) => {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<Appointment ${NS}>
  <id value="a1"/>
  <meta><versionId value="3"/><profile value="p1"/><profile value="p2"/></meta>
  <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p class="x">A &amp; B &lt;c&gt;</p><br/></div></text>
  <contained><Patient id="ignored-attr-not-allowed"/></contained>
</Appointment>`;
  t.notOk(decode(xml).ok, 'a resource takes no id attribute');
  const good = `<?xml version="1.0" encoding="UTF-8"?>
<Appointment ${NS}>
  <id value="a1"/>
  <meta><versionId value="3"/><profile value="p1"/><profile value="p2"/></meta>
  <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p class="x">A &amp; B &#60;c&gt;</p><br/></div></text>
  <contained><Patient><id value="P1"/><name><given value="Ann"/><given id="g2"><extension url="http://e"><valueBoolean value="true"/></extension></given></name><birthDate value="1970-01-01"/></Patient></contained>
  <extension url="http://x/ext"><valueDecimal value="1.50"/></extension>
  <status value="cancelled"><extension url="http://y"><valueInteger value="-7"/></extension></status>
  <priority value="0"/>
  <minutesDuration value="15"/>
  <participant id="p0"><actor><reference value="#P1"/></actor><required value="required"/><status value="accepted"/></participant>
</Appointment>`;
  const d = decodeFhirXml(Buffer.from(good), LIMITS, { keepNumberText: true });
  t.ok(d.ok);
  if (!d.ok) return;
  t.same(d.resource, {
    resourceType: 'Appointment',
    id: 'a1',
    meta: { versionId: '3', profile: ['p1', 'p2'] },
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><p class="x">A &amp; B &lt;c&gt;</p><br/></div>' },
    contained: [{ resourceType: 'Patient', id: 'P1', name: [{ given: ['Ann', null], _given: [null, { id: 'g2', extension: [{ url: 'http://e', valueBoolean: true }] }] }], birthDate: '1970-01-01' }],
    extension: [{ url: 'http://x/ext', valueDecimal: 1.5 }],
    status: 'cancelled',
    _status: { extension: [{ url: 'http://y', valueInteger: -7 }] },
    priority: 0,
    minutesDuration: 15,
    participant: [{ id: 'p0', actor: { reference: '#P1' }, required: 'required', status: 'accepted' }],
  });
  const ext = (d.resource.extension as Record<string, unknown>[])[0]!;
  t.equal(d.numberText?.get(ext)?.valueDecimal, '1.50', 'the exact decimal text is kept beside the number');
  t.equal(d.numberText?.get(d.resource)?.minutesDuration, '15');
  // Encoding writes elements in STU3 order whatever the key order of the model.
  const again = encodeFhirXml({ status: 'booked', id: 'x', resourceType: 'Appointment', meta: { versionId: '1' } });
  t.equal(again, `<?xml version="1.0" encoding="UTF-8"?><Appointment ${NS}><id value="x"/><meta><versionId value="1"/></meta><status value="booked"/></Appointment>`);
});

t.test('a UTF-8 byte order mark and XML comments are accepted; attribute escapes survive', async (t) => {
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(appt('<!-- c --><description value="a&#10;&quot;b&quot;&apos;"/>'))]);
  const d = decode(bom);
  t.ok(d.ok);
  if (d.ok) t.equal(d.resource.description, 'a\n"b"\'');
  if (d.ok) t.same(decode(encodeFhirXml(d.resource)), d);
});

t.test('a second byte order mark is refused: the XML 1.0 version and UTF-8 checks must see the declaration (XML review of stop 33)', async (t) => {
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  for (const decl of ['<?xml version="1.1" encoding="UTF-8"?>', '<?xml version="1.0" encoding="ISO-8859-1"?>', '']) {
    const d = decode(Buffer.concat([bom, bom, Buffer.from(decl + appt('<description value="Reason\u0085for calling"/>'))]));
    t.notOk(d.ok, `two BOMs then ${decl || 'no declaration'}`);
    if (!d.ok) t.match(d.diagnostics, /second byte order mark/);
  }
});

const OUTSIDE = 'http://attacker.invalid/x';
const REFUSALS: [string, string, RegExp][] = [
  ['DOCTYPE', `<!DOCTYPE Appointment>${appt('')}`, /DOCTYPE/],
  ['XXE external entity', `<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${appt('<description value="&xxe;"/>')}`, /DOCTYPE/],
  ['XXE without a DOCTYPE (undeclared entity)', appt('<description value="&xxe;"/>'), /entity/],
  ['parameter entities', `<!DOCTYPE a [<!ENTITY % p SYSTEM "${OUTSIDE}"> %p;]>${appt('')}`, /DOCTYPE/],
  ['external DTD', `<!DOCTYPE Appointment SYSTEM "${OUTSIDE}">${appt('')}`, /DOCTYPE/],
  ['billion laughs', `<!DOCTYPE l [<!ENTITY l0 "ha">${Array.from({ length: 9 }, (_, i) => `<!ENTITY l${i + 1} "${`&l${i};`.repeat(10)}">`).join('')}]>${appt('<description value="&l9;"/>')}`, /DOCTYPE/],
  ['an HTML entity', appt('<description value="&nbsp;"/>'), /entity/],
  ['processing instruction', `<?xml-stylesheet href="${OUTSIDE}"?>${appt('')}`, /processing instruction/],
  ['processing instruction inside', appt('<?php x ?>'), /processing instruction/],
  ['UTF-16 declared', `<?xml version="1.0" encoding="UTF-16"?>${appt('')}`, /encoding/],
  ['ISO-8859-1 declared', `<?xml version="1.0" encoding="ISO-8859-1"?>${appt('')}`, /encoding/],
  // XML 1.1 reads U+0085 and U+2028 as line ends (a provider's XML 1.0 parser keeps them).
  ['XML 1.1 declared', `<?xml version="1.1" encoding="UTF-8"?>${appt('<comment value="a\u0085b"/>')}`, /version/],
  ['XML 1.1 declared, single quotes', `<?xml version='1.1'?>${appt('')}`, /version/],
  ['no namespace', '<Appointment><id value="a1"/></Appointment>', /no namespace/],
  ['another namespace', '<Appointment xmlns="http://hl7.org/fhir/other"><id value="a1"/></Appointment>', /another namespace/],
  ['child in no namespace', appt('<description xmlns="" value="x"/>'), /no namespace/],
  ['child in another namespace', appt('<x:description xmlns:x="urn:x" value="x"/>'), /another namespace/],
  ['div outside XHTML', appt('<text><status value="generated"/><div><p/></div></text>'), /namespace|narrative/],
  ['non-XHTML inside div', appt('<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><f:x xmlns:f="urn:f"/></div></text>'), /XHTML/],
  ['not a resource root', `<Reference ${NS}/>`, /not a FHIR resource/],
  ['unknown element', appt('<colour value="red"/>'), /unknown element/],
  ['constructor as an element', appt('<constructor value="x"/>'), /unknown element/],
  ['id element on a data type', appt('<meta><id value="x"/></meta>'), /unknown element/],
  ['unknown attribute', appt('<description value="x" lang="en"/>'), /attribute/],
  ['attribute in another namespace', appt('<description xmlns:q="urn:q" q:value="x"/>'), /attribute/],
  ['repeated single-valued primitive', appt('<description value="a"/><description value="b"/>'), /repeated/],
  ['repeated single-valued complex', appt('<meta/><meta/>'), /repeated/],
  ['repeated single-valued after extension-only', appt('<description><extension url="u"><valueString value="v"/></extension></description><description value="b"/>'), /repeated/],
  ['stray text', appt('hello'), /text/],
  ['text inside a primitive', appt('<description value="a">text</description>'), /text/],
  ['CDATA outside the narrative', appt('<![CDATA[x]]>'), /text/],
  ['empty primitive', appt('<description/>'), /neither/],
  ['two contained resources in one', appt('<contained><Patient/><Patient/></contained>'), /more than one/],
  ['empty contained', appt('<contained/>'), /no resource/],
  ['contained non-resource', appt('<contained><Coding/></contained>'), /not hold a FHIR resource/],
  ['primitive with a non-extension child', appt('<description value="x"><id value="y"/></description>'), /only extensions/],
  ['malformed', `<Appointment ${NS}><id value="a1"/>`, /well-formed/],
  ['mismatched tags', `<Appointment ${NS}><meta></met></Appointment>`, /well-formed/],
  ['two roots', `${appt('')}${appt('')}`, /well-formed/],
  ['empty body', '', /well-formed|no root/],
  ['a number without a double', appt('<extension url="u"><valueDecimal value="1e400"/></extension>'), /out of range/],
];

t.test('a value not of its type is read as JSON would hold it, for the profile to refuse (rulings 20, 21)', async (t) => {
  const cases: Array<[string, string, string, unknown]> = [
    ['a boolean that is not true or false', '<extension url="u"><valueBoolean value="yes"/></extension>', 'extension', [{ url: 'u', valueBoolean: 'yes' }]],
    ['a decimal that is not a number', '<extension url="u"><valueDecimal value="1,5"/></extension>', 'extension', [{ url: 'u', valueDecimal: '1,5' }]],
    ['an integer written as a decimal', '<minutesDuration value="1.5"/>', 'minutesDuration', 1.5],
  ];
  for (const [name, xml, key, want] of cases) {
    const d = decode(appt(xml));
    t.ok(d.ok, name);
    if (d.ok) t.same(d.resource[key], want, name);
  }
  const d = decode(appt('<minutesDuration value="15.0"/><extension url="u"><valueDecimal value="1.50"/></extension>'));
  if (!d.ok) return t.fail('decoded');
  t.equal(numberText(d.resource, 'minutesDuration', 15), '15.0', 'the written text kept as JSON keeps it');
  t.equal(numberText((d.resource.extension as object[])[0]!, 'valueDecimal', 1.5), '1.50');
});

t.test('what is not FHIR XML is refused, with short diagnostics that quote nothing of the body', async (t) => {
  for (const [name, xml, re] of REFUSALS) {
    const d = decode(xml);
    t.equal(d.ok, false, name);
    if (d.ok) continue;
    t.match(d.diagnostics, re, `${name}: ${d.diagnostics}`);
    t.ok(d.diagnostics.length < 140, `${name}: short`);
    for (const secret of ['passwd', 'attacker', 'colour', 'hello', 'php', 'yes', '1,5', 'nbsp', 'xxe', 'l9', 'UTF-16']) t.notOk(d.diagnostics.includes(secret), `${name}: does not quote ${secret}`);
  }
});

t.test('invalid UTF-8 is refused', async (t) => {
  const d = decode(Buffer.concat([Buffer.from(appt('<description value="')), Buffer.from([0xff, 0xfe]), Buffer.from('"/>')]));
  t.same(d, { ok: false, diagnostics: 'The XML body is not valid UTF-8' });
});

t.test('depth and node limits are enforced while parsing', async (t) => {
  const deep = appt(`${'<extension url="u">'.repeat(100)}<valueString value="x"/>${'</extension>'.repeat(100)}`);
  t.match(decode(deep, { maxDepth: 64, maxNodes: 100_000 }), { ok: false, diagnostics: /nesting deeper/ });
  // Counted as its JSON twin is: each extension is an array and an object, two levels (ruling 21).
  t.match(decode(deep, { maxDepth: 200, maxNodes: 100_000 }), { ok: false, diagnostics: /nesting deeper/ });
  t.ok(decode(deep, { maxDepth: 201, maxNodes: 100_000 }).ok);
  const wide = appt('<identifier><value value="x"/></identifier>'.repeat(1000));
  t.match(decode(wide, { maxDepth: 64, maxNodes: 1000 }), { ok: false, diagnostics: /more nodes/ });
  t.ok(decode(wide, { maxDepth: 64, maxNodes: 5000 }).ok);
  // The narrative is one string in JSON: its nesting is not the resource's, and has its own bound.
  const deepDiv = (n: number) => appt(`<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">${'<b>'.repeat(n)}x${'</b>'.repeat(n)}</div></text>`);
  t.ok(decode(deepDiv(80)).ok, 'a narrative nested 80 deep: the resource is not');
  t.match(decode(deepDiv(300)), { ok: false, diagnostics: /narrative nests deeper/ }, 'beyond the narrative\'s own bound');
});

t.test('a large hostile body costs linear time', async (t) => {
  // 200k attributes-free elements vs 20k: time should scale about linearly (allowing noise).
  const body = (n: number) => Buffer.from(appt('<identifier><value value="x"/></identifier>'.repeat(n)));
  const time = (b: Buffer) => {
    const s = process.hrtime.bigint();
    decode(b, { maxDepth: 64, maxNodes: 10_000_000 });
    return Number(process.hrtime.bigint() - s);
  };
  time(body(1000));
  const small = Math.min(time(body(20_000)), time(body(20_000)));
  const big = Math.min(time(body(200_000)), time(body(200_000)));
  t.ok(big < small * 30, `10x input costs ${(big / small).toFixed(1)}x time`);
});

t.test('the encoder refuses models FHIR XML cannot express', async (t) => {
  const bad: [string, Record<string, unknown>][] = [
    ['no resourceType', { id: 'x' }],
    ['unknown resourceType', { resourceType: 'Nope' }],
    ['unknown element', { resourceType: 'Appointment', colour: 'red' }],
    ['array for a single element', { resourceType: 'Appointment', status: ['a'] }],
    ['scalar for a repeating element', { resourceType: 'Appointment', identifier: { value: 'x' } }],
    ['wrong primitive type', { resourceType: 'Appointment', minutesDuration: '15' }],
    ['non-integer integer', { resourceType: 'Appointment', minutesDuration: 1.5 }],
    ['div injection', { resourceType: 'Appointment', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"/></text><status value="booked"/><text><div xmlns="http://www.w3.org/1999/xhtml"/>' } }],
    ['div with an entity', { resourceType: 'Appointment', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">&nbsp;</div>' } }],
    ['mismatched companion arrays', { resourceType: 'Patient', name: [{ given: ['a', 'b'], _given: [null] }] }],
    ['companion with other keys', { resourceType: 'Appointment', _status: { value: 'x' } }],
    ['null in a complex array', { resourceType: 'Appointment', identifier: [null] }],
  ];
  for (const [name, r] of bad) t.throws(() => encodeFhirXml(r), FhirXmlEncodeError, name);
});

t.test('encoded text is escaped so it reads back as written', async (t) => {
  const r = { resourceType: 'Appointment', id: 'a', description: '<x> & "y" \'z\'\t\r\n', comment: ']]> </Appointment>' };
  const d = decode(encodeFhirXml(r));
  t.same(d, { ok: true, resource: r });
});

t.test('elements defined by contentReference are read and written like their origin (Questionnaire.item.item)', async (t) => {
  const limits = { maxDepth: 64, maxNodes: 5000 };
  const cases: Array<Record<string, unknown>> = [
    { resourceType: 'Questionnaire', id: 'q', status: 'draft', item: [{ linkId: '1', type: 'group', item: [{ linkId: '2', type: 'group', item: [{ linkId: '3', type: 'display' }] }] }] },
    { resourceType: 'ValueSet', id: 'v', status: 'draft', compose: { include: [{ system: 'http://x' }], exclude: [{ system: 'http://y', concept: [{ code: 'a' }] }] }, expansion: { identifier: 'http://e', timestamp: '2020-01-01', contains: [{ system: 'http://x', code: 'a', contains: [{ system: 'http://x', code: 'b' }] }] } },
    // max 1: not an array in JSON
    { resourceType: 'TestReport', id: 't', status: 'completed', testScript: { reference: 'TestScript/1' }, result: 'pass', teardown: { action: [{ operation: { result: 'pass' } }] } },
  ];
  for (const resource of cases) {
    const xml = encodeFhirXml(resource);
    const back = decodeFhirXml(Buffer.from(xml), limits);
    t.same(back, { ok: true, resource }, `${String(resource.resourceType)} round-trips`);
  }
});
