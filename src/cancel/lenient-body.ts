/**
 * Ruling 26 for a success body the strict decoders refused: what a lenient reader — the client's
 * HTTP library, a browser, a log viewer — may still see in it. Every resource a reader could find
 * is counted by its markers (a JSON `resourceType` member, escaped or not; a FHIR XML namespace
 * declaration or a root element named for a resource type); the body is passed on only when every
 * one of them is accounted for by this appointment (then, or when it shows none at all — `OK`, an
 * error page — ruling 12: a write the provider accepted reaches the client, as a logged breach).
 * Anything else is withheld: another type, another id, a key written twice, a resource this
 * reading cannot place. Linear in the body's length (a hostile provider sends up to
 * upstream.maxAnswerBytes); nothing here recurses on the body's own nesting. Pure.
 */
import { SaxesParser } from 'saxes';
import { isResourceType } from '../fhir/sd/model.js';

/** Whether a lenient reader of `body` may see a resource other than Appointment `id`. */
export function namesAnotherResource(body: Buffer, id: string): boolean {
  if (body.length === 0) return false;
  const text = decodeText(body);
  const markers = resourceMarkers(text);
  const found = /^\s*</.test(text) ? xmlResources(text, id) : jsonResources(text, id);
  // Every marker must be one of the resources read, and each of those this appointment; a body
  // with neither shows no resource at all.
  return found === undefined || found !== markers;
}

/** The text as readers that detect a byte order mark decode it. */
function decodeText(body: Buffer): string {
  if (body.length >= 2 && body[0] === 0xff && body[1] === 0xfe) return body.toString('utf16le', 2);
  if (body.length >= 2 && body[0] === 0xfe && body[1] === 0xff) return Buffer.from(body.subarray(2)).swap16().toString('utf16le');
  return body.toString('utf8').replace(/^\uFEFF/, '');
}

const ESCAPES = /\\u([0-9A-Fa-f]{4})|&#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}));/g;
const RESOURCE_TYPE_MEMBER = /\\*["']resourceType\\*["']\s*:/g;
const FHIR_NAMESPACE = /xmlns(?::[\w.-]+)?\s*=\s*["']http:\/\/hl7\.org\/fhir["']/g;

/**
 * How many resources a lenient reader may find: `resourceType` members (at any level of escaping,
 * with `\uXXXX` and `&#…;` references read) plus FHIR namespace declarations. Linear.
 */
function resourceMarkers(text: string): number {
  const plain = text.replace(ESCAPES, (_, u: string | undefined, x: string | undefined, d: string | undefined) => {
    const code = u !== undefined ? parseInt(u, 16) : x !== undefined ? parseInt(x, 16) : Number(d);
    return code <= 0x10ffff ? String.fromCodePoint(code) : '';
  });
  return (plain.match(RESOURCE_TYPE_MEMBER)?.length ?? 0) + (plain.match(FHIR_NAMESPACE)?.length ?? 0);
}

/**
 * JSON read leniently: the whole text, or else its top-level pieces, each parsed; the resources in
 * them (objects with `resourceType`, in arrays, in strings that hold JSON) found by an iterative
 * walk. The count of them when every one is this appointment and no key of theirs is written
 * twice; undefined when any is another (or cannot be read).
 */
function jsonResources(text: string, id: string): number | undefined {
  let values: unknown[];
  try {
    values = [JSON.parse(text)];
  } catch {
    values = [];
    for (const piece of jsonPieces(text)) {
      try {
        values.push(JSON.parse(piece));
      } catch {
        // an unreadable piece: whatever markers it holds stay unaccounted for
      }
    }
  }
  let found = 0;
  let idKeys = 0;
  // `inside`: within this appointment (its contained resources, text in its strings): accounted for.
  const stack: Array<{ v: unknown; depth: number; inside: boolean }> = values.map((v) => ({ v, depth: 0, inside: false }));
  while (stack.length) {
    const { v, depth, inside } = stack.pop()!;
    if (typeof v === 'string') {
      const s = v.trim();
      if (depth < 4 && (s.startsWith('{') || s.startsWith('['))) {
        try {
          stack.push({ v: JSON.parse(s), depth: depth + 1, inside });
        } catch {
          // a string that only looks like JSON
        }
      }
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (const x of v) stack.push({ v: x, depth, inside });
      continue;
    }
    const o = v as Record<string, unknown>;
    let within = inside;
    if (o.resourceType !== undefined) {
      // A resource outside this appointment must be it, written as JSON (not inside a string).
      if (!inside && (o.resourceType !== 'Appointment' || o.id !== id || depth > 0)) return undefined;
      found++;
      within = true;
    }
    for (const k of Object.keys(o)) {
      if (k === 'id' && depth === 0) idKeys++;
      stack.push({ v: o[k], depth, inside: within });
    }
  }
  // A first-wins reader could see an earlier `id` (another appointment's): refuse one written twice.
  // Counted with `\uXXXX` escapes decoded (`"\u0069d"` is an `id` key too): decoding only adds matches.
  const keys = text.replace(/\\u([0-9A-Fa-f]{4})/g, (_, u: string) => String.fromCharCode(parseInt(u, 16)));
  return (keys.match(/"id"\s*:/g)?.length ?? 0) > idKeys ? undefined : found;
}

/** Top-level JSON pieces of a text (`{…}`, `[…]`), by bracket matching outside strings. Linear. */
function jsonPieces(text: string): string[] {
  const pieces: string[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      if (depth > 0) inString = true; // quotes between pieces (prose) are not strings
    } else if (c === 0x7b || c === 0x5b) {
      if (depth++ === 0) start = i;
    } else if ((c === 0x7d || c === 0x5d) && depth > 0 && --depth === 0) {
      pieces.push(text.slice(start, i + 1));
    }
  }
  return pieces;
}

/**
 * XML read leniently: the root element is the resource type and the `id` children of the root its
 * id. One resource when it is this appointment, read to its end with nothing after it that names
 * a resource; undefined for another type, another or a second id, a DOCTYPE, a page that is not
 * FHIR (whatever it carries is unaccounted for), or a resource-named element after the root.
 */
function xmlResources(text: string, id: string): number | undefined {
  let level = 0;
  let root: string | undefined;
  let rootEnd = -1;
  const ids: string[] = [];
  let doctype = false;
  // FHIR namespace declarations on the root and inside it (a serializer may repeat it on each
  // contained resource): part of this appointment, each one of the markers.
  let declarations = 0;
  const p = new SaxesParser({ position: true });
  const local = (name: string) => name.slice(name.indexOf(':') + 1);
  p.on('opentag', (tag) => {
    level++;
    if (rootEnd < 0) {
      for (const [name, value] of Object.entries(tag.attributes as Record<string, string>)) {
        if ((name === 'xmlns' || name.startsWith('xmlns:')) && value === 'http://hl7.org/fhir') declarations++;
      }
    }
    if (level === 1) root = local(tag.name);
    else if (level === 2 && local(tag.name) === 'id') {
      const v = (tag.attributes as Record<string, string>)['value'];
      ids.push(typeof v === 'string' ? v : '');
    }
  });
  p.on('closetag', () => {
    if (--level === 0 && rootEnd < 0) rootEnd = p.position;
  });
  p.on('doctype', () => void (doctype = true));
  try {
    p.write(text).close();
  } catch {
    // not well-formed: judged on what was read
  }
  // A page that is not FHIR (an HTML error page): no resource of its own; whatever markers it
  // carries stay unaccounted for (0 found).
  if (root === undefined || !isResourceType(root)) return doctype && root === undefined ? undefined : 0;
  // FHIR XML has no DOCTYPE; a reader that expands its entities could see another resource or id.
  if (doctype || root !== 'Appointment' || ids.length !== 1 || ids[0] !== id || rootEnd < 0) return undefined;
  // After the root: a second root named for a resource (with or without a namespace) is another.
  for (const m of text.slice(rootEnd).matchAll(/<(?:[A-Za-z_][\w.-]*:)?([A-Z][A-Za-z]{0,63})[\s/>]/g)) if (isResourceType(m[1]!)) return undefined;
  return Math.max(1, declarations);
}
