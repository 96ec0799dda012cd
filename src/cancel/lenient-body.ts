/**
 * Ruling 26 for a success body the strict decoders refused: what a lenient reader — the client's
 * HTTP library, a browser, a log viewer — may still see in it. A body that shows another resource
 * than the appointment written (another type, another id, or this one with a second resource beside
 * it) is never passed on; one that shows no resource at all (`OK`, an HTML error page) stays a
 * logged breach, passed on (ruling 12: a write the provider accepted reaches the client). Pure.
 */
import { SaxesParser } from 'saxes';
import { isResourceType } from '../fhir/sd/model.js';

type Verdict = 'none' | 'this' | 'other';
/** Bodies nest (a string holding JSON, XML inside HTML); the reading stops this deep (fail closed). */
const MAX_NESTING = 4;

/** Whether a lenient reader of `body` may see a resource other than Appointment `id`. */
export function namesAnotherResource(body: Buffer, id: string): boolean {
  if (body.length === 0) return false;
  return judgeText(body.toString('utf8').replace(/^\uFEFF/, ''), id, 0) === 'other';
}

function judgeText(text: string, id: string, depth: number): Verdict {
  if (depth > MAX_NESTING) return 'other';
  if (/^\s*</.test(text)) return judgeXml(text, id, depth);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    // Not one JSON value (two resources one after the other, trailing text): every value a
    // reader that stops at the first, or skips to the next, may find.
    return judgeJsonPieces(text, id, depth);
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const r = v as Record<string, unknown>;
    if (r.resourceType !== 'Appointment' || r.id !== id) return 'other';
    // A first-wins reader could see an earlier resourceType or id: refuse when either is written twice.
    const twice = writtenKeys(text, 'resourceType') > countKey(r, 'resourceType') || writtenKeys(text, 'id') > countKey(r, 'id');
    return twice ? 'other' : 'this';
  }
  return judgeValue(v, id, depth);
}

/** A parsed value as a resource carrier: objects with `resourceType`, in arrays, or inside strings (JSON written twice). */
function judgeValue(v: unknown, id: string, depth: number): Verdict {
  if (depth > MAX_NESTING) return 'other';
  if (typeof v === 'string') {
    const s = v.trim();
    return s.startsWith('{') || s.startsWith('[') || s.startsWith('"') || s.startsWith('<') ? judgeText(s, id, depth + 1) : 'none';
  }
  if (Array.isArray(v)) return combine(v.map((x) => judgeValue(x, id, depth + 1)));
  if (typeof v !== 'object' || v === null) return 'none';
  const r = v as Record<string, unknown>;
  if (r.resourceType === undefined) return 'none';
  return r.resourceType === 'Appointment' && r.id === id ? 'this' : 'other';
}

/** Several things a reader may see: any other resource is 'other'; else this appointment if shown. */
function combine(verdicts: Verdict[]): Verdict {
  if (verdicts.includes('other')) return 'other';
  return verdicts.includes('this') ? 'this' : 'none';
}

/**
 * A text that is not one JSON value: its top-level JSON pieces (`{…}`, `[…]`, `"…"`), found by
 * bracket matching outside strings, each judged where it parses. A piece that does not parse but
 * mentions `resourceType` may show one to a more lenient reader: 'other'.
 */
function judgeJsonPieces(text: string, id: string, depth: number): Verdict {
  const verdicts: Verdict[] = [];
  for (const piece of jsonPieces(text)) {
    let v: unknown;
    try {
      v = JSON.parse(piece);
    } catch {
      verdicts.push(/resourceType/.test(piece) ? 'other' : 'none');
      continue;
    }
    verdicts.push(judgeValue(v, id, depth));
  }
  return combine(verdicts);
}

/** Top-level JSON pieces of a text, in order (a string's quotes and escapes respected). */
function jsonPieces(text: string): string[] {
  const pieces: string[] = [];
  let depth = 0;
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = closingQuote(text, i);
      if (depth === 0) pieces.push(text.slice(i, end + 1));
      i = end;
    } else if (c === '{' || c === '[') {
      if (depth++ === 0) start = i;
    } else if ((c === '}' || c === ']') && depth > 0 && --depth === 0) {
      pieces.push(text.slice(start, i + 1));
    }
  }
  if (depth > 0) pieces.push(text.slice(start)); // cut short: judged as unparsable
  return pieces;
}

/** The index of the quote that closes the string opened at `open` (the text's end when none). */
function closingQuote(text: string, open: number): number {
  for (let i = open + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return text.length - 1;
}

/**
 * XML read leniently: the root element is the resource type and the `id` children of the root its
 * id. Another resource type, no id, another id, two ids or a DOCTYPE → another resource. A root
 * that is no FHIR resource type (an HTML page) shows none itself — but what it carries (FHIR XML
 * or JSON inside it) is judged; so is whatever follows the root when it breaks the XML (a second
 * root, trailing text). Only well-formedness errors stop the reading.
 */
function judgeXml(text: string, id: string, depth: number): Verdict {
  let level = 0;
  let root: string | undefined;
  let rootEnd = -1;
  const ids: string[] = [];
  const p = new SaxesParser({ position: true });
  const local = (name: string) => name.slice(name.indexOf(':') + 1);
  p.on('opentag', (tag) => {
    level++;
    if (level === 1) root = local(tag.name);
    else if (level === 2 && local(tag.name) === 'id') {
      const v = (tag.attributes as Record<string, string>)['value'];
      ids.push(typeof v === 'string' ? v : '');
    }
  });
  p.on('closetag', () => {
    if (--level === 0) rootEnd = p.position;
  });
  let doctype = false;
  p.on('doctype', () => void (doctype = true));
  let wellFormed = true;
  try {
    p.write(text).close();
  } catch {
    wellFormed = false;
  }
  // FHIR XML has no DOCTYPE; a reader that expands its entities could see another resource or id,
  // so XML with one cannot be shown to be this Appointment (an HTML page's `<!DOCTYPE html>` aside).
  if (doctype && (root === undefined || isResourceType(root))) return 'other';
  if (root === undefined || !isResourceType(root)) return carried(text, id, depth);
  // An Appointment without its id (none written, or the reading stopped before it) is not shown
  // to be this one, as a JSON body without `id` is not.
  const own: Verdict = root !== 'Appointment' || ids.length !== 1 || ids[0] !== id ? 'other' : 'this';
  if (own === 'other' || wellFormed || rootEnd < 0) return own;
  return combine([own, judgeText(text.slice(rootEnd), id, depth + 1)]);
}

const FHIR_ELEMENT = /<(?:[A-Za-z_][\w.-]*:)?([A-Z][A-Za-z]+)\b[^>]*\bxmlns(?::[\w.-]+)?\s*=\s*["']http:\/\/hl7\.org\/fhir["']/g;

/** What a page that is not FHIR carries: FHIR XML resources (by their namespace) and JSON pieces. */
function carried(text: string, id: string, depth: number): Verdict {
  const verdicts: Verdict[] = [];
  for (const m of text.matchAll(FHIR_ELEMENT)) if (isResourceType(m[1]!)) verdicts.push(judgeXml(text.slice(m.index), id, depth + 1));
  verdicts.push(judgeJsonPieces(text, id, depth + 1));
  return combine(verdicts);
}

const MEMBER_NAME = /"((?:[^"\\]|\\.)*)"\s*:/g;

/** How many members named `key` a JSON text writes, escaped names (`"resource\u0054ype"`) decoded. */
function writtenKeys(text: string, key: string): number {
  let n = 0;
  for (const m of text.matchAll(MEMBER_NAME)) {
    const raw = m[1]!;
    let name = raw;
    if (raw.includes('\\')) {
      try {
        name = JSON.parse(`"${raw}"`) as string;
      } catch {
        continue;
      }
    }
    if (name === key) n++;
  }
  return n;
}

/** How many members named `key` the parsed value holds (nested ones included). */
function countKey(v: unknown, key: string): number {
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + countKey(x, key), 0);
  if (typeof v !== 'object' || v === null) return 0;
  let n = 0;
  for (const [k, x] of Object.entries(v)) n += (k === key ? 1 : 0) + countKey(x, key);
  return n;
}
