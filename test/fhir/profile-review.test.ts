/**
 * Ruling 20 (profile, exactly): what the eighth review of the validator found. Each case would fail
 * on the code before it: a hostile base64Binary that backtracked for minutes, strings and narratives
 * refused for where their whitespace sat, constraints using resolve() that always failed, a code in
 * `system|code` form taken as a bound code, and decimals with an exponent.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { createProfileValidator, MAX_ENGINE_EVALUATIONS, type ProfileIssue } from '../../src/fhir/profile.js';
import { parseStrictJson } from '../../src/fhir/strict-json.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const booking = JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'nhs-booking', 'appointment.json'), 'utf8')) as Json;
const validate = createProfileValidator('careconnect-appointment-1');
const mutate = (f: (a: Json) => void): Json => {
  const a = structuredClone(booking);
  f(a);
  return a;
};
const at = (issues: ProfileIssue[]): string[] => issues.map((i) => `${i.expression}: ${i.diagnostics}`);
const XHTML = 'http://www.w3.org/1999/xhtml';
const div = (inner: string): string => `<div xmlns="${XHTML}">${inner}</div>`;

t.test('a hostile base64Binary is refused at once (the old pattern backtracked exponentially)', async (t) => {
  // 60 groups of four with doubled spaces and a bad last character: ~1e18 ways to split with the old pattern.
  const hostile = 'AAAA  '.repeat(60) + '!';
  const issues = validate(mutate((a) => (a.extension ??= []).push({ url: 'https://example.org/blob', valueBase64Binary: hostile })));
  t.match(at(issues).join('\n'), /valueBase64Binary: invalid FHIR base64Binary/);
  const fine = validate(mutate((a) => (a.extension ??= []).push({ url: 'https://example.org/blob', valueBase64Binary: 'QUJD\nREVG  R0hJ' })));
  t.same(at(fine), [], 'whitespace between groups is allowed');
});

t.test('FHIR strings are any non-empty text (XML Schema whitespace, not JavaScript\'s)', async (t) => {
  for (const [name, text] of <[string, string][]>[['no-break space', 'Reason\u00a0for calling'], ['only no-break spaces', '\u00a0\u00a0'], ['line separator', 'a\u2028b'], ['byte order mark', '\ufeffx'], ['form feed', 'a\fb']]) {
    t.same(at(validate(mutate((a) => (a.description = text)))), [], name);
  }
  t.same(at(validate(mutate((a) => (a.contained[1].name[0].family = 'Van\u00a0Dyke')))), [], 'a contained family name with NBSP');
  t.match(at(validate(mutate((a) => (a.status = 'cancelled\u00a0')))).join('\n'), /Appointment.status/, 'a code is still judged by its value set');
});

t.test('narrative: a div XML cannot read is refused, as its FHIR XML twin cannot exist (ruling 21; review of stop 35)', async (t) => {
  const withDiv = (d: string): Json => mutate((a) => (a.text = { status: 'generated', div: d }));
  for (const bad of ['<p>a</p><p>b', 'a&nbsp;b', '<p class=x>a</p>', '<b><i>a</b></i>', 'a & b', '<?pi x?>a']) {
    t.match(at(validate(withDiv(div(bad)))).join('\n'), /Appointment\.text\.div: the narrative is not well-formed XHTML/, bad);
  }
  // One depth bound for every reader (the div itself is the first of MAX_XHTML_DEPTH levels).
  t.same(at(validate(withDiv(div(`${'<b>'.repeat(255)}x${'</b>'.repeat(255)}`)))), [], '256 levels with the div: read');
  t.match(at(validate(withDiv(div(`${'<b>'.repeat(256)}x${'</b>'.repeat(256)}`)))).join('\n'), /the narrative nests deeper than 256 elements/, 'one more: refused, as the XML reader refuses it');
  for (const good of ['a &amp; b &#160; &#xA0; &lt;', '<br/>a<br />b', '<!-- <p> -->a', '<img src="a.png" alt="x>y"/>t', '<![CDATA[<p>]]>a', '<p title=\'q\'>a</p>']) {
    t.same(at(validate(withDiv(div(good)))), [], good);
  }
});

t.test('narrative: text anywhere counts (txt-2), handlers only inside tags (txt-1)', async (t) => {
  const withDiv = (d: string): Json => mutate((a) => (a.text = { status: 'generated', div: d }));
  t.same(at(validate(withDiv(div('\n  Appointment\n')))), [], 'text after a line break');
  t.same(at(validate(withDiv(div('<p> Appointment</p>')))), [], 'text after a space in a <p>');
  t.same(at(validate(withDiv(div('<p>online =yes</p>')))), [], 'the text "online =" is no handler');
  t.match(at(validate(withDiv(div('<p onclick="x()">Appointment</p>')))).join('\n'), /txt-1: the narrative contains active content/);
  t.match(at(validate(withDiv(div('<p>  </p>\n')))).join('\n'), /txt-2/, 'whitespace only is still refused');
  t.same(at(validate(withDiv(div('<img src="#a"/>')))), [], 'an image is content');
  // A quoted attribute value may hold '>' (XML): the tag goes on to its real end.
  for (const bypass of ['<a title=">" onclick="alert(1)">x</a>', '<img alt="a>b" onerror="x()"/>', '<p title=\'>\' onmouseover=\'x()\'>x</p>']) {
    t.match(at(validate(withDiv(div(bypass)))).join('\n'), /txt-1: the narrative contains active content/, bypass);
  }
  t.match(at(validate(withDiv(div('<span title=">"></span>')))).join('\n'), /txt-2/, 'a quote inside a tag is not text');
  // STU3 narrative: "SHALL NOT contain a head, a body element, … frames".
  for (const fragment of ['x<head><title>x</title></head>', '<body>x</body>', '<html>x</html>', '<frameset><frame/></frameset>x']) {
    t.match(at(validate(withDiv(div(fragment)))).join('\n'), /txt-1: the narrative contains a document element/, fragment);
  }
  t.same(at(validate(withDiv(div('<p>heading</p><table><tbody><tr><td>body</td></tr></tbody></table>')))), [], 'tbody, and words like head or body in text, are fine');
});

t.test('constraints using resolve(): contained and literal references are resolved, nothing fetched', async (t) => {
  const referral = (requester: Json, more: (a: Json) => void = () => undefined): Json =>
    mutate((a) => {
      a.contained.push({ resourceType: 'ReferralRequest', id: 'rr', status: 'active', intent: 'order', subject: { reference: `#${a.contained[1].id}` }, requester });
      a.incomingReferral = [{ reference: '#rr' }];
      more(a);
    });
  const org = { reference: 'Organization/1' };
  t.same(at(validate(referral({ agent: { reference: 'Practitioner/1' }, onBehalfOf: org }))), [], 'rfr-1: a Practitioner agent may act on behalf');
  t.same(at(validate(referral({ agent: { reference: 'https://x.example/fhir/Device/9' }, onBehalfOf: org }))), [], 'an absolute Device reference');
  t.same(at(validate(referral({ agent: { reference: '#pr' }, onBehalfOf: org }, (a) => a.contained.push({ resourceType: 'Practitioner', id: 'pr', name: [{ family: 'X' }] })))), [], 'a contained Practitioner');
  t.same(at(validate(referral({ agent: { reference: 'Organization/2' } }))), [], 'no onBehalfOf: any agent');
  const refused = at(validate(referral({ agent: { reference: 'Organization/2' }, onBehalfOf: org })));
  t.match(refused.join('\n'), /Appointment\.contained\[\d+\]\.requester: rfr-1/, 'an Organization agent on behalf of another is refused');
});

t.test('a code element is judged by the bare codes of its value set', async (t) => {
  t.match(at(validate(mutate((a) => (a.status = 'http://hl7.org/fhir/appointmentstatus|booked')))).join('\n'), /Appointment.status: code is not in the required value set/);
  t.same(at(validate(mutate((a) => (a.status = 'booked')))), []);
});

t.test('decimals are written without an exponent', async (t) => {
  const withLongitude = (text: string): ProfileIssue[] => {
    const body = mutate((a) => {
      a.contained.push({ resourceType: 'Location', id: 'L1', position: { longitude: '__RAW__', latitude: 1 } });
      a.participant.push({ actor: { reference: '#L1' }, status: 'accepted' });
    });
    const parsed = parseStrictJson(JSON.stringify(body).replace('"__RAW__"', text), 64);
    if (!parsed.ok) throw new Error(parsed.reason);
    return validate(parsed.value);
  };
  for (const bad of ['1e1', '1E-2', '-2.5e+3']) t.match(at(withLongitude(bad)).join('\n'), /position.longitude: must be written without an exponent/, bad);
  for (const good of ['1.50', '-0.0', '10', '0.000001']) t.same(at(withLongitude(good)), [], good);
});

// Twelfth review (helper on a clone): elements defined by contentReference, reference types named
// by any capitalised segment, resources held by elements other than `contained`, §c companions, and
// the cost of FHIRPath constraints. Each case fails on the code before it.
const withContained = (r: Json): Json =>
  mutate((a) => {
    a.contained.push(r);
    (a.extension ??= []).push({ url: 'https://example.org/ext', valueReference: { reference: `#${r.id}` } });
  });

t.test('elements defined by contentReference (Questionnaire.item.item) are walked like their origin', async (t) => {
  const q = (inner: Json): Json => withContained({ resourceType: 'Questionnaire', id: 'q', status: 'draft', item: [{ linkId: '1', type: 'group', item: [inner] }] });
  t.same(at(validate(q({ linkId: '2', type: 'group', item: [{ linkId: '3', type: 'display', text: 'x' }] }))), [], 'three levels of valid items');
  const bad = at(validate(q({ linkId: '2', type: 'string', modifierExtension: [{ url: 'https://example.org/must-understand', valueBoolean: true }], bogus: 1 })));
  t.match(bad.join('\n'), /contained\[\d+\]\.item\[0\]\.item\[0\]\.modifierExtension\[0\]: unknown modifier extension/, 'an unknown modifierExtension two levels down');
  t.match(bad.join('\n'), /contained\[\d+\]\.item\[0\]\.item\[0\]\.<unknown>: element is not defined here/, 'an unknown element two levels down');
  t.match(at(validate(q({ type: 'string' }))).join('\n'), /item\[0\]\.item\[0\]\.linkId: required element is missing/, "the origin's cardinality");
  t.match(at(validate(q({ linkId: '2', type: 'group' }))).join('\n'), /item\[0\]\.item\[0\]: que-1/, "the origin's constraints");
  const obs = withContained({ resourceType: 'Observation', id: 'q', status: 'final', code: { text: 'x' }, component: [{ code: { text: 'c' }, referenceRange: [{ bogus: 1 }] }] });
  t.match(at(validate(obs)).join('\n'), /component\[0\]\.referenceRange\[0\]\.<unknown>/, 'Observation.component.referenceRange reuses Observation.referenceRange');
});

t.test('a reference names a target type only with a concrete resource type', async (t) => {
  const actor = (reference: string): string[] => at(validate(mutate((a) => a.participant.push({ actor: { reference }, status: 'accepted' }))));
  t.same(actor('https://directory.example.org/Staff/42'), [], '"Staff" is no FHIR type: FHIR infers no target, nothing is judged');
  t.match(actor('https://directory.example.org/Observation/42').join('\n'), /participant\[\d+\]\.actor\.reference: reference target type not allowed here/);
});

t.test('a resource inside Bundle.entry.resource is a resource of its own, not a contained one', async (t) => {
  const bundle = (resource: Json): string[] => at(validate(withContained({ resourceType: 'Bundle', id: 'q', type: 'collection', entry: [{ resource }] })));
  t.same(bundle({ resourceType: 'Patient', active: true }), [], "the standard's rows for contained resources (an id, a meta) do not apply to it");
  t.match(bundle({ resourceType: 'Patient', contained: [{ resourceType: 'Nope' }] }).join('\n'), /entry\[0\]\.resource\.contained\[0\]\.resourceType: not a FHIR STU3 resource type/, 'its own contained are walked');
  const nested = { resourceType: 'Patient', id: 'p', text: { status: 'generated', div: div('x') }, contained: [{ resourceType: 'Patient', id: 'z' }] };
  const found = bundle({ resourceType: 'Patient', active: true, contained: [nested] }).join('\n');
  t.match(found, /resource\.contained\[0\]\.contained: dom-2/, 'dom-2 holds for its contained');
  t.match(found, /resource\.contained\[0\]\.text: dom-1/, 'dom-1 holds for its contained');
  // Its `#id` references resolve to its own contained resources, not the Appointment's.
  const gp = { resourceType: 'Practitioner', id: 'pr1', name: [{ family: 'X' }] };
  t.same(bundle({ resourceType: 'Patient', contained: [gp], generalPractitioner: [{ reference: '#pr1' }] }), [], 'a local reference to its own contained Practitioner');
  t.match(bundle({ resourceType: 'Patient', generalPractitioner: [{ reference: '#pr1' }] }).join('\n'), /resource\.generalPractitioner\[0\]\.reference: ref-1/, 'one to nothing it contains: ref-1');
  t.match(bundle({ resourceType: 'Patient', contained: [gp] }).join('\n'), /resource\.contained\[0\]: dom-3/, 'an unreferenced contained resource: dom-3');
  const slot = booking.contained.find((c: Json) => c.resourceType === 'Slot');
  t.match(bundle({ resourceType: 'Patient', generalPractitioner: [{ reference: `#${String(slot.id)}` }] }).join('\n'), /ref-1/, "the Appointment's contained ids are not its own");
});

t.test("a contained resource's required primitive may be given by its companion alone (§c, as a base min 1)", async (t) => {
  const slot = booking.contained.findIndex((c: Json) => c.resourceType === 'Slot');
  const absent = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] };
  t.same(at(validate(mutate((a) => { delete a.contained[slot].start; a.contained[slot]._start = absent; }))), []);
  t.match(at(validate(mutate((a) => delete a.contained[slot].start))).join('\n'), /contained\[\d+\]\.start: required element is missing/);
});

t.test('the FHIRPath constraints a body needs are bounded: past the bound it is refused (422), in bounded time', async (t) => {
  const sd = (n: number): Json =>
    withContained({ resourceType: 'StructureDefinition', id: 'q', url: 'https://example.org/sd', name: 'x', status: 'draft', kind: 'logical', abstract: false, type: 'x', snapshot: { element: Array.from({ length: n }, () => ({ path: 'x', min: 0, max: '1', definition: 'd' })) } });
  const issues = validate(sd(1000));
  t.equal(issues.length, 1);
  t.match(issues[0], { expression: 'Appointment', diagnostics: `the resource needs more than ${MAX_ENGINE_EVALUATIONS} FHIRPath constraint evaluations; it is refused as too complex to validate` });
  t.match(at(validate(sd(3))).join('\n'), /sdf-/, 'a small one is judged by its constraints');
});

t.test('a primitive given by its companion alone is present: max 0 and fixed values hold (fourteenth review)', async (t) => {
  const gpc = JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'gp-connect', 'appointment.json'), 'utf8')) as Json;
  const validateGp = createProfileValidator('gpconnect-appointment-1');
  const ext = { extension: [{ url: 'http://example.org/x', valueString: 'y' }] };
  const gp = (f: (a: Json) => void): string[] => {
    const a = structuredClone(gpc);
    f(a);
    return at(validateGp(a));
  };
  t.same(gp(() => undefined), [], 'the example is valid');
  const ident = { system: 'https://fhir.nhs.uk/Id/gpconnect-appointment-identifier', value: '1' };
  t.same(gp((a) => (a.identifier = [{ ...ident }])), [], 'an identifier');
  t.match(gp((a) => (a.identifier = [{ ...ident, _use: ext }])).join('\n'), /identifier\[0\]\.use: element is not allowed in this profile \(max 0\)/, 'identifier.use is 0..0');
  t.equal(gp((a) => (a.identifier = [{ ...ident, use: 'official', _use: ext }])).length, 1, 'with its value as well: one issue');
  const reason = (coding: Json): string[] => gp((a) => (a.reason = [{ coding: [coding] }]));
  t.match(reason({ _system: ext, code: '17436001', display: 'x' }).join('\n'), /reason\[0\]\.coding\[0\]\.system: must equal the fixed value/, 'a fixed system with no value');
  t.match(reason({ system: 'http://snomed.info/sct', _version: ext, code: '17436001', display: 'x' }).join('\n'), /coding\[0\]\.version: element is not allowed/, 'coding.version is 0..0');
});

t.test('no companion where FHIR XML has an attribute or xhtml has no extensions', async (t) => {
  const ext = { extension: [{ url: 'http://example.org/x', valueString: 'y' }] };
  t.match(at(validate(mutate((a) => (a.text._div = ext)))).join('\n'), /Appointment\.text\._div: element is not defined here/);
  t.match(at(validate(mutate((a) => (a.extension ??= []).push({ url: 'http://example.org/x', _url: ext, valueString: 'y' })))).join('\n'), /\._url: element is not defined here/);
  t.match(at(validate(mutate((a) => (a.participant[0]._id = ext)))).join('\n'), /participant\[0\]\._id: element is not defined here/);
  t.same(at(validate(mutate((a) => (a._id = ext)))), [], "a resource's id is an element: it may have extensions");
  t.same(at(validate(mutate((a) => (a._description = ext)))), [], 'an ordinary primitive may');
});

t.test('per-1 with a year before 1 (STU3 dateTime allows "-0001"): decided, not refused as an engine error', async (t) => {
  const period = (start: string, end: string): string[] => at(validate(mutate((a) => (a.requestedPeriod = [{ start, end }]))));
  t.same(period('-0001', '2020'), []);
  t.same(period('-0100-01-01', '-0001'), []);
  t.match(period('2020', '-0001').join('\n'), /per-1/);
  // Full instants compare by their time, zones included (a review of the first fix).
  t.same(period('-0002-12-31T23:00:00Z', '-0001-01-01T00:00:00Z'), [], 'across a year boundary');
  t.same(period('-0001-12-31T23:00:00Z', '0000-01-01T01:00:00Z'), [], 'into year 0');
  t.same(period('-0001-06-01T10:00:00+05:00', '-0001-06-01T06:00:00Z'), [], '05:00Z before 06:00Z');
  t.match(period('-0001-06-01T06:00:00-05:00', '-0001-06-01T10:00:00Z').join('\n'), /per-1/, '11:00Z after 10:00Z');
  t.same(period('-0001-06', '-0001-06-15'), [], 'equal at the precision both carry');
});

t.test('an empty primitive companion is refused: FHIR JSON objects are never empty (review of stop 34)', async (t) => {
  t.match(at(validate(mutate((a) => (a._status = {})))).join('\n'), /Appointment\._status: ele-1/, '_status: {}');
  t.match(at(validate(mutate((a) => (a._description = {})))).join('\n'), /Appointment\._description: ele-1/, '_description: {}');
  t.match(at(validate(mutate((a) => (a.meta._profile = a.meta.profile.map(() => ({})))))).join('\n'), /Appointment\.meta\._profile\[0\]: ele-1/, 'meta._profile: [{}]');
  t.same(at(validate(mutate((a) => (a._status = { id: 's1' })))), [], 'a companion with an id');
  t.same(at(validate(mutate((a) => (a.meta._profile = a.meta.profile.map(() => null))))), [], 'null items: no companion');
});

t.test('a participant with no status is one issue, not two (ruling 7; review of stop 34)', async (t) => {
  const issues = at(validate(mutate((a) => delete a.participant[0].status)));
  t.equal(issues.filter((i) => i.startsWith('Appointment.participant[0].status')).length, 1, issues.join('\n'));
  t.match(at(validate(mutate((a) => (a.participant[0].status = 'declined')))).join('\n'), /participant\[0\]\.status: must be accepted/, 'a wrong status is still the §c rule\'s');
});

t.test('`#` alone names the container (the Appointment): judged against the element\'s target types (review of stop 36)', async (t) => {
  const actor = at(validate(mutate((a) => a.participant.push({ actor: { reference: '#' }, status: 'accepted' }))));
  t.match(actor.join('\n'), /participant\[\d+\]\.actor\.reference: reference target type not allowed here/, 'an Appointment is no participant');
  const org = at(validate(mutate((a) => (a.extension ??= []).push({ url: 'https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-BookingOrganisation-1', valueReference: { reference: '#' } }))));
  t.match(org.join('\n'), /valueReference\.reference: reference target type not allowed here/, 'an Appointment is no booking organisation');
  t.notMatch(at(validate(booking)).join('\n'), /target type/, 'the valid example is untouched');
});

t.test('an extension\'s own maximum holds where no profile slices it (a contained Slot\'s delivery channel) (review of stop 36)', async (t) => {
  const url = 'https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-DeliveryChannel-1';
  const slotIndex = booking.contained.findIndex((r: Json) => r.resourceType === 'Slot');
  t.ok(slotIndex >= 0, 'the example contains a Slot');
  const once = at(validate(mutate((a) => (a.contained[slotIndex].extension = [{ url, valueCode: 'In-person' }]))));
  t.same(once, [], 'once is fine');
  const twice = at(validate(mutate((a) => (a.contained[slotIndex].extension = [{ url, valueCode: 'In-person' }, { url, valueCode: 'Telephone' }]))));
  t.match(twice.join('\n'), new RegExp(`contained\\[${slotIndex}\\]\\.extension\\[1\\]: extension Extension-CareConnect-DeliveryChannel-1 is 0\\.\\.1`));
});
