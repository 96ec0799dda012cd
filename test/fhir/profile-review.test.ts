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
import { createProfileValidator, type ProfileIssue } from '../../src/fhir/profile.js';
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
