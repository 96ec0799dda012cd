/**
 * Ruling 9 with ruling 21: when either side of a cancel went through XML, both narratives are
 * compared in the XML decoder's canonical form (src/fhir/xml/narrative.ts). That form must not
 * hide a change: a comment added to or removed from the div, anything written around a JSON div,
 * or (ruling 26) a number's written text on a resource whose div was rewritten.
 */
import t from 'tap';
import { jsonCodec } from '../../src/adapters/codec-json.js';
import { xmlCodec } from '../../src/adapters/codec-xml.js';
import { changeIssues } from '../../src/cancel/change-rules.js';
import { narrativesAsXmlReadsThem } from '../../src/fhir/xml/narrative.js';
import { canonicalDiv, Refusal } from '../../src/fhir/xml/xhtml.js';
import { STANDARDS } from '../../src/standards/index.js';

const LIMITS = { maxDepth: 64, maxNodes: 100_000 };
const XHTML = 'http://www.w3.org/1999/xhtml';
const NOW = Date.parse('2026-12-07T00:00:00Z');
const set = STANDARDS['nhs-booking'].changeSets.cancel!;

type Json = Record<string, unknown>;

function json(text: string): Json {
  const d = jsonCodec.decode(Buffer.from(text), LIMITS);
  if (!d.ok) throw new Error(d.diagnostics);
  return d.resource as Json;
}

function xml(text: string): Json {
  const d = xmlCodec.decode(Buffer.from(text), LIMITS);
  if (!d.ok) throw new Error(d.diagnostics);
  return d.resource as Json;
}

/** What decide() in src/cancel/transaction.ts does when either side is XML. */
function differing(stored: Json, submitted: Json): string[] {
  return changeIssues(set, narrativesAsXmlReadsThem(stored), narrativesAsXmlReadsThem(submitted, { strict: true }), NOW).paths;
}

const storedJson = (div: string, extra = '') =>
  json(`{"resourceType":"Appointment","id":"a1","status":"booked"${extra},"text":{"status":"generated","div":${JSON.stringify(div)}},"start":"2027-01-01T10:00:00Z","end":"2027-01-01T10:15:00Z","participant":[{"status":"accepted"}]}`);
const submittedXml = (div: string, extra = '') =>
  xml(`<Appointment xmlns="http://hl7.org/fhir"><id value="a1"/><text><status value="generated"/>${div}</text><status value="cancelled"/>${extra}<start value="2027-01-01T10:00:00Z"/><end value="2027-01-01T10:15:00Z"/><participant><status value="accepted"/></participant></Appointment>`);

t.test('a comment inside the div is part of the narrative, in JSON and in XML', async (t) => {
  t.same(differing(storedJson(`<div xmlns="${XHTML}">Appointment</div>`), submittedXml(`<div xmlns="${XHTML}">Appointment</div>`)), [], 'the same div: only the cancellation');
  t.same(differing(storedJson(`<div xmlns="${XHTML}">Appointment</div>`), submittedXml(`<div xmlns="${XHTML}">Appointment<!-- added --></div>`)), ['Appointment.text.div'], 'a comment added in XML is a change');
  t.same(differing(storedJson(`<div xmlns="${XHTML}">Appointment<!-- keep me --></div>`), submittedXml(`<div xmlns="${XHTML}">Appointment</div>`)), ['Appointment.text.div'], 'a comment removed in XML is a change');
  t.same(differing(storedJson(`<div xmlns="${XHTML}">Appointment<!-- keep me --></div>`), submittedXml(`<div xmlns="${XHTML}">Appointment<!-- keep me --></div>`)), [], 'the same comment on both sides: no change');
  // Comments elsewhere in FHIR XML are not content (the model has no place for them).
  const elsewhere = submittedXml(`<div xmlns="${XHTML}">A</div>`, '<!-- a note between elements -->');
  t.same(differing(storedJson(`<div xmlns="${XHTML}">A</div>`), elsewhere), [], 'a comment between FHIR elements changes nothing');
  const decoded = submittedXml(`<div xmlns="${XHTML}">A<!--c--><b>x<!-- d --></b></div>`);
  t.equal((decoded.text as Json).div, `<div xmlns="${XHTML}">A<!--c--><b>x<!-- d --></b></div>`, 'the decoder keeps them in the div string');
});

t.test('a JSON div with anything around it is compared as written (stored XML, submitted JSON)', async (t) => {
  const stored = submittedXml(`<div xmlns="${XHTML}">Appointment</div>`);
  stored.status = 'booked';
  const submitted = (div: string) => {
    const r = structuredClone(stored);
    r.status = 'cancelled';
    r.text = { status: 'generated', div };
    return r;
  };
  t.same(differing(stored, submitted(`<div xmlns="${XHTML}">Appointment</div>`)), [], 'the same div');
  for (const [name, div] of [
    ['trailing whitespace', `<div xmlns="${XHTML}">Appointment</div>  `],
    ['leading whitespace', `\n<div xmlns="${XHTML}">Appointment</div>`],
    ['an XML declaration', `<?xml version="1.0"?><div xmlns="${XHTML}">Appointment</div>`],
    ['a comment after the div', `<div xmlns="${XHTML}">Appointment</div><!-- x -->`],
    ['a comment before the div', `<!-- x --><div xmlns="${XHTML}">Appointment</div>`],
  ]) {
    t.same(differing(stored, submitted(div!)), ['Appointment.text.div'], `${name}: a change`);
  }
});

t.test('what a provider stored around its JSON div does not make an XML cancel a 422 (stored JSON, submitted XML)', async (t) => {
  for (const [name, div] of [
    ['a trailing line break', `<div xmlns="${XHTML}">Appointment</div>\n`],
    ['leading indentation', `\n  <div xmlns="${XHTML}">Appointment</div>`],
    ['an XML declaration', `<?xml version="1.0"?><div xmlns="${XHTML}">Appointment</div>`],
  ]) {
    t.same(differing(storedJson(div!), submittedXml(`<div xmlns="${XHTML}">Appointment</div>`)), [], `${name}: only the cancellation`);
  }
  t.same(differing(storedJson(`<div xmlns="${XHTML}">Appointment</div>\n`), submittedXml(`<div xmlns="${XHTML}">Appointment changed</div>`)), ['Appointment.text.div'], 'a changed div still is a change');
});

t.test('ruling 26 survives the rewritten div: a number written 15.0 against 15 is a change', async (t) => {
  const div = `<div xmlns="${XHTML}">Appointment<br /></div>`; // rewritten to <br/> by the XML reading
  const stored = storedJson(div, ',"minutesDuration":15.0');
  t.same(differing(stored, submittedXml(`<div xmlns="${XHTML}">Appointment<br/></div>`, '<minutesDuration value="15"/>')), ['Appointment.minutesDuration'], 'refused: 15.0 and 15 differ as written');
  t.same(differing(stored, submittedXml(`<div xmlns="${XHTML}">Appointment<br/></div>`, '<minutesDuration value="15.0"/>')), [], 'the same text: only the cancellation');
});

t.test('canonicalDiv: strict for the diff, lenient for the encoder; comments kept inside', async (t) => {
  const div = `<div xmlns="${XHTML}">a<!-- c --></div>`;
  t.equal(canonicalDiv(div, 64), div);
  t.equal(canonicalDiv(`${div}\n`, 64), div, 'the encoder drops whitespace around the div');
  t.ok(canonicalDiv(`${div}\n`, 64, { strict: true }) instanceof Refusal, 'the diff does not');
  t.equal(canonicalDiv(`<!-- x -->${div}`, 64), div, 'the encoder drops a comment around the div');
  t.ok(canonicalDiv(`${div}<!-- x -->`, 64, { strict: true }) instanceof Refusal);
  t.equal(canonicalDiv(`<div xmlns="${XHTML}">a<br /></div>`, 64, { strict: true }), `<div xmlns="${XHTML}">a<br/></div>`);
});
