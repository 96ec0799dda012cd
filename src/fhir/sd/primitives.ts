import { canonicalDiv, MAX_XHTML_DEPTH, Refusal } from '../xml/xhtml.js';

/**
 * FHIR 3.0.1 primitive types in JSON: the JSON type each needs and the regular expression of its
 * StructureDefinition, plus what a regular expression cannot say (calendar-possible dates, ranges).
 * Ruling 20: whitespace-only strings are valid `string`s; an instant with second 60 is valid;
 * `2019-02-30` is not.
 */
const DATE_TIME =
  /^(-?[0-9]{4})(?:-(0[1-9]|1[0-2])(?:-(0[0-9]|[1-2][0-9]|3[0-1])(?:T([01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?(?:Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$/;
const INSTANT =
  /^(-?[0-9]{4})-(0[1-9]|1[0-2])-(0[0-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?(?:Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))$/;
const DATE = /^(-?[0-9]{4})(?:-(0[1-9]|1[0-2])(?:-(0[0-9]|[1-2][0-9]|3[0-1]))?)?$/;
const TIME = /^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?$/;
// FHIR's regular expressions are XML Schema's: `\s` is space, tab, CR and LF only (not NBSP,
// U+2028 or a byte order mark, as JavaScript's `\s` would have it).
const CODE = /^[^ \t\r\n]+(?:[ \t\r\n][^ \t\r\n]+)*$/;
const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const OID = /^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$/;
const UUID = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/**
 * FHIR's `(\s*([0-9a-zA-Z\+/=]){4}\s*)+`, written so that it cannot backtrack: the group's
 * trailing and the next group's leading whitespace were one run that could be split every way
 * (exponential on a failing match: 109 characters took 18 s).
 */
const BASE64 = /^[ \t\r\n]*(?:[0-9a-zA-Z+/=]{4}[ \t\r\n]*)+$/;
const URI = /^[^ \t\r\n]*$/;
/** FHIR's decimal: no exponent (`1e1` and `1E-2` are JSON numbers, not FHIR decimals). */
const DECIMAL_TEXT = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$/;

const MAX_STRING = 1024 * 1024;

export const PRIMITIVES = new Set([
  'boolean', 'integer', 'string', 'decimal', 'uri', 'base64Binary', 'instant', 'date', 'dateTime', 'time',
  'code', 'oid', 'id', 'markdown', 'unsignedInt', 'positiveInt', 'uuid', 'xhtml',
]);

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** The day exists in its month (the regexes allow day 00 and 31 everywhere). */
function calendarOk(m: RegExpExecArray): boolean {
  if (m[3] === undefined) return true;
  const day = Number(m[3]);
  return day >= 1 && day <= daysIn(Number(m[1]), Number(m[2]));
}

/** FHIR's integer grammar: no fraction, no exponent (`15.0` and `1e1` are decimals, not integers). */
const INTEGER_TEXT = /^-?(?:0|[1-9][0-9]*)$/;

/**
 * A short reason when `v` is not a valid JSON value of FHIR primitive `type`, else undefined.
 * `written` is a number's text as the body wrote it (rulings 20, 26): an integer is judged by it.
 */
export function primitiveProblem(type: string, v: unknown, written?: string): string | undefined {
  switch (type) {
    case 'boolean':
      return typeof v === 'boolean' ? undefined : 'must be a JSON boolean';
    case 'integer':
    case 'unsignedInt':
    case 'positiveInt': {
      if (typeof v !== 'number' || !Number.isInteger(v) || (written !== undefined && !INTEGER_TEXT.test(written))) return `must be a JSON integer (FHIR ${type})`;
      const min = type === 'integer' ? -2147483648 : type === 'unsignedInt' ? 0 : 1;
      return v < min || v > 2147483647 ? `out of range for FHIR ${type}` : undefined;
    }
    case 'decimal':
      if (typeof v !== 'number' || !Number.isFinite(v)) return 'must be a JSON number (FHIR decimal)';
      return written !== undefined && !DECIMAL_TEXT.test(written) ? 'must be written without an exponent (FHIR decimal)' : undefined;
  }
  if (typeof v !== 'string') return `must be a JSON string (FHIR ${type})`;
  if (v.length === 0) return 'must not be empty (ele-1)';
  if (v.length > MAX_STRING) return 'too long';
  switch (type) {
    case 'string':
    case 'markdown':
      // FHIR's `[ \r\n\t\S]+` in XML Schema's terms: any non-empty text, whitespace alone
      // included (ruling 20), NBSP and every other character too.
      return undefined;
    case 'instant': {
      const m = INSTANT.exec(v);
      return m && calendarOk(m) ? undefined : 'invalid FHIR instant (a full date and time with seconds and a zone, on a real calendar day)';
    }
    case 'dateTime': {
      const m = DATE_TIME.exec(v);
      return m && calendarOk(m) ? undefined : 'invalid FHIR dateTime format or calendar date';
    }
    case 'date': {
      const m = DATE.exec(v);
      return m && calendarOk(m) ? undefined : 'invalid FHIR date format or calendar date';
    }
    case 'time':
      return TIME.test(v) ? undefined : 'invalid FHIR time';
    case 'code':
      return CODE.test(v) ? undefined : 'invalid FHIR code';
    case 'id':
      return ID.test(v) ? undefined : 'invalid FHIR id';
    case 'uri':
      return URI.test(v) ? undefined : 'invalid FHIR uri';
    case 'oid':
      return OID.test(v) ? undefined : 'invalid FHIR oid';
    case 'uuid':
      return UUID.test(v) ? undefined : 'invalid FHIR uuid';
    case 'base64Binary':
      return BASE64.test(v) ? undefined : 'invalid FHIR base64Binary';
    case 'xhtml':
      return xhtmlProblem(v);
  }
  return undefined;
}

/**
 * txt-1/txt-2 (`htmlchecks()`, which no JavaScript FHIRPath engine implements): a `div` element in
 * the XHTML namespace, no script, no event handlers, with some content. A deliberate, simplified
 * check (docs/profile-validation.md).
 */
export function xhtmlProblem(v: string): string | undefined {
  const s = v.trim();
  if (!/^<div[\s>]/.test(s) || !s.endsWith('</div>')) return 'txt-1: the narrative must be an XHTML <div> element';
  if (!/^<div[^>]*\sxmlns\s*=\s*["']http:\/\/www\.w3\.org\/1999\/xhtml["']/.test(s)) return 'txt-1: the narrative div must be in the XHTML namespace';
  const scan = scanMarkup(s);
  if (scan.active) return 'txt-1: the narrative contains active content';
  if (scan.structure) return 'txt-1: the narrative contains a document element (html, head, body, title, frames)';
  // txt-2: some text outside the tags (wherever it sits: after a line break, inside a <p>), or an image.
  if (!scan.text && !scan.image) return 'txt-2: the narrative must have some non-whitespace content';
  // FHIR's xhtml is XML: a div XML cannot read (an unclosed <p>, `&nbsp;`, an unquoted attribute)
  // has no FHIR XML twin (ruling 21, "checked identically"). The XML reader decides; it runs only
  // when a cheap look finds something it may refuse (a valid div costs nothing more).
  const read = mayBeMalformed(s) ? canonicalDiv(s, MAX_XHTML_DEPTH) : undefined;
  if (read instanceof Refusal) return read.reason === 'nesting too deep' ? `the narrative nests deeper than ${MAX_XHTML_DEPTH} elements` : 'the narrative is not well-formed XHTML';
  return undefined;
}

const ENTITY = /&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);)/;
const UNQUOTED_ATTRIBUTE = /<[A-Za-z][^<>]*?\s[A-Za-z_:][-\w:.]*\s*=\s*[^\s"'>]/;
const OTHER_MARKUP = /<(?:\?|!(?!--|\[CDATA\[))/;

/**
 * Whether the XML reader might refuse the div: an entity XML does not predefine, an unquoted
 * attribute, a DOCTYPE or processing instruction, element starts and ends that do not pair
 * up, or nesting deeper than the readers take. A cheap over-approximation; the reader itself has the last word.
 */
function mayBeMalformed(s: string): boolean {
  if (ENTITY.test(s) || UNQUOTED_ATTRIBUTE.test(s) || OTHER_MARKUP.test(s)) return true;
  const bare = s.includes('<!') ? s.replace(/<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>/g, '') : s;
  const open: string[] = [];
  for (const m of bare.matchAll(/<(\/?)([A-Za-z][-\w:.]*)[^>]*?(\/?)>/g)) {
    if (m[1]) {
      if (open.pop() !== m[2]) return true;
    } else if (!m[3] && open.push(m[2]!) > MAX_XHTML_DEPTH) return true;
  }
  return open.length !== 0;
}

const ACTIVE_ELEMENTS = new Set(['script', 'form', 'iframe', 'object', 'embed', 'style', 'base', 'link', 'meta', 'applet']);
/** STU3 narrative: "SHALL NOT contain a head, a body element, … frames" (a fragment, not a document). */
const DOCUMENT_ELEMENTS = new Set(['html', 'head', 'body', 'title', 'frame', 'frameset', 'noframes']);

/**
 * One pass over the markup: tags are read with their attributes, a quoted value running to its
 * closing quote (XML lets it hold `>`), so an event handler after `title=">"` is still an
 * attribute, and nothing inside a tag counts as text.
 */
function scanMarkup(s: string): { active: boolean; structure: boolean; text: boolean; image: boolean } {
  let active = false;
  let structure = false;
  let text = false;
  let image = false;
  let i = 0;
  while (i < s.length && !active) {
    const lt = s.indexOf('<', i);
    const end = lt === -1 ? s.length : lt;
    if (!text && /\S/.test(s.slice(i, end))) text = true;
    if (lt === -1) break;
    const name = /^<\/?\s*([A-Za-z][A-Za-z0-9:-]*)/.exec(s.slice(lt, lt + 64));
    let j = lt + 1;
    let quote = '';
    let attrs = '';
    for (; j < s.length; j++) {
      const c = s[j]!;
      if (quote) {
        if (c === quote) quote = '';
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '>') break;
      else attrs += c;
    }
    const local = name?.[1]!.toLowerCase().replace(/^.*:/, '');
    if (local && ACTIVE_ELEMENTS.has(local)) active = true;
    if (local && DOCUMENT_ELEMENTS.has(local)) structure = true;
    if (local === 'img') image = true;
    // Attribute names outside quoted values: an `on…` one is an event handler.
    if (/(?:^|\s)on[a-z]+\s*=/i.test(attrs)) active = true;
    i = j + 1;
  }
  return { active, structure, text, image };
}

/** Epoch milliseconds of a full instant-precision dateTime (second 60 counted as 59.999), else undefined. */
export function instantMillis(v: string): number | undefined {
  const m = INSTANT.exec(v);
  if (!m || !calendarOk(m)) return undefined;
  const ms = Date.parse(v.replace(/:60(?=[.Z+-])/, ':59'));
  return Number.isNaN(ms) ? undefined : ms;
}
