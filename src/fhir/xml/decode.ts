/**
 * FHIR STU3 XML -> the FHIR JSON model the checks use (issue 15, ruling 21).
 *
 * Safety first: saxes is a non-validating streaming parser that knows only the five predefined
 * entities and never reads a DTD, so nothing is fetched and nothing is expanded. A DOCTYPE is
 * refused as soon as it is reported, a reference to any other entity is a parse error, processing
 * instructions are refused, and depth and node count are bounded while parsing. Everything that
 * is not FHIR XML (another or no namespace, an unknown element or attribute, a repeated
 * single-valued element, text outside the narrative) is refused: the gateway must never check a
 * resource other than the one the provider will read. One pass over the input, O(1) work per event.
 */
import { SaxesParser, type SaxesAttributeNS, type SaxesTagNS } from 'saxes';
import { childOf, FHIR_NS, isResourceType, XHTML_NS, type ChildInfo, type PrimitiveJson } from './model.js';
import { MAX_XHTML_DEPTH, Refusal, XhtmlWriter } from './xhtml.js';
import { keepRaw } from '../strict-json.js';

export type XmlDecodeResult =
  | { ok: true; resource: Record<string, unknown>; numberText?: NumberText }
  | { ok: false; diagnostics: string };

/**
 * The exact text of every integer and decimal, by the object or array holding it and its key
 * (array index as a string): `numberText.get(holder)?.[key]`. The model keeps plain JS numbers
 * (JSON parity); this companion lets a comparison tell 1.0 from 1.00 (ruling 26, issue 13).
 */
export type NumberText = WeakMap<object, Record<string, string>>;

export interface XmlDecodeOptions {
  /** Also return numberText (default false). */
  keepNumberText?: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

const DECIMAL = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/** A repeating primitive's values and `_name` companions, aligned by index (null where absent). */
type Series = { values: unknown[]; companions: (Record<string, unknown> | null)[]; texts: (string | undefined)[]; anyValue: boolean; anyCompanion: boolean };

type Frame =
  | { kind: 'object'; obj: Record<string, unknown>; context: string; series: Map<string, Series> | undefined; resource: boolean }
  | { kind: 'primitive'; holder: Frame & { kind: 'object' }; info: ChildInfo; name: string; value: unknown; text: string | undefined; companion: Record<string, unknown> | undefined }
  | { kind: 'slot'; holder: Frame & { kind: 'object' }; info: ChildInfo; name: string; filled: boolean }
  | { kind: 'xhtml'; holder: Frame & { kind: 'object' }; name: string; writer: XhtmlWriter };

/** Parse-time markup tokens allowed per node of the limit (see Decoder.count). */
const MARKUP_PER_NODE = 4;

/** Nesting inside the narrative div: its own bound (in JSON the div is one string, not nesting). */

/**
 * Whether a decoded resource nests deeper than `maxDepth` as the JSON reader counts it (every
 * object and array one level, the root object at 1; the narrative div is a string).
 */
export function modelDeeperThan(v: unknown, maxDepth: number, depth = 1): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (depth > maxDepth) return true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (modelDeeperThan(v[i], maxDepth, depth + 1)) return true;
    return false;
  }
  for (const k in v as Record<string, unknown>) if (modelDeeperThan((v as Record<string, unknown>)[k], maxDepth, depth + 1)) return true;
  return false;
}

/**
 * The values of a decoded resource as the JSON reader counts them (each object, array, string,
 * number, boolean and null is one), stopping once past `limit`. The narrative div is one string,
 * as in JSON.
 */
export function modelNodes(v: unknown, limit: number, seen = 0): number {
  seen++;
  if (seen > limit || typeof v !== 'object' || v === null) return seen;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length && seen <= limit; i++) seen = modelNodes(v[i], limit, seen);
    return seen;
  }
  for (const k in v as Record<string, unknown>) {
    seen = modelNodes((v as Record<string, unknown>)[k], limit, seen);
    if (seen > limit) break;
  }
  return seen;
}

const refuse = (reason: string): never => {
  throw new Refusal(reason);
};


/**
 * A value attribute as the JSON model holds it. A value that is not of its type (`15.0` or `abc`
 * for an integer, `yes` for a boolean) is kept as the JSON reader would have met it — a number with
 * its written text, or a string — so that the profile check refuses it with its path (422), exactly
 * as it refuses the same value in JSON (ruling 21: checked identically). Only a number that has no
 * finite double (`1e400`) is refused here, as the JSON reader refuses it.
 */
function parseValue(raw: string, json: PrimitiveJson): unknown {
  if (json === 'string') return raw;
  if (json === 'boolean') return raw === 'true' ? true : raw === 'false' ? false : raw;
  if (!DECIMAL.test(raw)) return raw;
  const n = Number(raw);
  return Number.isFinite(n) ? n : refuse('a number is out of range');
}

export function decodeFhirXml(bytes: Buffer, limits: { maxDepth: number; maxNodes: number }, options: XmlDecodeOptions = {}): XmlDecodeResult {
  let text: string;
  try {
    text = utf8.decode(bytes); // a UTF-8 byte order mark is allowed in XML and skipped
  } catch {
    return { ok: false, diagnostics: 'The XML body is not valid UTF-8' };
  }
  const decoder = new Decoder(limits, options.keepNumberText === true);
  try {
    const resource = decoder.run(text);
    return decoder.numberText ? { ok: true, resource, numberText: decoder.numberText } : { ok: true, resource };
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, diagnostics: `The body is not FHIR XML: ${e.reason}` };
    // saxes reports a well-formedness error; its message may quote the body, so it is not passed on.
    const undefinedEntity = e instanceof Error && /undefined entity/.test(e.message);
    return { ok: false, diagnostics: undefinedEntity ? 'The body is not FHIR XML: an entity reference beyond the predefined ones' : 'The body is not well-formed XML' };
  }
}

class Decoder {
  private readonly stack: Frame[] = [];
  private nodes = 0;
  /** Frames inside the narrative div (counted against MAX_XHTML_DEPTH, not the FHIR depth). */
  private xhtmlDepth = 0;
  private root: Record<string, unknown> | undefined;
  readonly numberText: NumberText | undefined;

  constructor(private readonly limits: { maxDepth: number; maxNodes: number }, keepNumberText: boolean) {
    this.numberText = keepNumberText ? new WeakMap() : undefined;
  }

  run(text: string): Record<string, unknown> {
    checkDeclaredEncoding(text);
    const p = new SaxesParser({ xmlns: true, position: false });
    // At most six handlers: a seventh property added to the parser turns it into a slow
    // dictionary-mode object in V8 and decoding gets ~5x slower (measured); the XML declaration
    // is therefore read here rather than through an xmldecl handler (saxes still checks its syntax).
    p.on('doctype', () => refuse('a DOCTYPE'));
    p.on('processinginstruction', () => refuse('a processing instruction'));
    p.on('opentag', (tag) => this.open(tag));
    p.on('closetag', (tag) => this.close(tag));
    p.on('text', (t) => this.text(t));
    p.on('cdata', (t) => this.text(t, true));
    // A comment inside the narrative div is part of it (xhtml.ts); elsewhere FHIR XML ignores them.
    // The seventh handler only when the text can hold one (the slowdown above).
    if (text.includes('<!--')) p.on('comment', (t) => this.comment(t));
    p.write(text).close();
    const root = this.root ?? refuse('no root element');
    // Ruling 21, checked identically: the same body in JSON and in XML meets the same node and
    // depth limits, counted on the model (an element is not a level of JSON nesting: a primitive
    // is none, a repeating element two).
    if (modelNodes(root, this.limits.maxNodes) > this.limits.maxNodes) refuse('more nodes than the limit');
    if (modelDeeperThan(root, this.limits.maxDepth)) refuse('nesting deeper than the limit');
    return root;
  }

  private attributes(attrs: Record<string, SaxesAttributeNS>, id: boolean, url: boolean, root: boolean, value = false): Attributes {
    const a = checkAttributes(attrs, id, url, root, value);
    this.count(a.n);
    return a;
  }

  /**
   * The bound while parsing: markup (elements, attributes, narrative text) is several tokens per
   * value of the JSON model (`<status value="x"/>` is one value in two tokens, three with a
   * redundant xmlns), so it is bounded at MARKUP_PER_NODE × maxNodes to stop a hostile body early;
   * the limit itself is applied to the decoded model, counted as the JSON reader counts (modelNodes).
   */
  private count(n: number): void {
    this.nodes += n;
    if (this.nodes > this.limits.maxNodes * MARKUP_PER_NODE) refuse('more nodes than the limit');
  }

  private text(t: string, cdata = false): void {
    const top = this.stack[this.stack.length - 1];
    if (top?.kind === 'xhtml') {
      top.writer.text(t);
    } else if (cdata || /[^ \t\r\n]/.test(t)) refuse('text where FHIR allows none');
  }

  private comment(t: string): void {
    const top = this.stack[this.stack.length - 1];
    if (top?.kind === 'xhtml') {
      top.writer.comment(t);
    }
  }

  private open(tag: SaxesTagNS): void {
    const attrs = tag.attributes as Record<string, SaxesAttributeNS>;
    const top = this.stack[this.stack.length - 1];
    if (top?.kind === 'xhtml') {
      // The narrative is one string of the model (JSON counts it as one node): its markup is not
      // counted against maxNodes, or an XML body would be refused where its JSON twin passes
      // (ruling 21); the body size limit bounds it, and its depth MAX_XHTML_DEPTH.
      // The div itself is the first level, as canonicalDiv counts it (one bound for both readers).
      if (++this.xhtmlDepth >= MAX_XHTML_DEPTH) refuse('the narrative nests deeper than the limit');
      this.stack.push(top); // one frame per XHTML element
      top.writer.start(tag);
      return;
    }
    this.count(1); // attributes are counted where they are read (one pass over them)
    // An early stop while parsing (a repeating element is two levels of the model, so twice the
    // limit); the limit itself is applied to the decoded model (modelDeeperThan).
    if (this.stack.length - this.xhtmlDepth + 1 > this.limits.maxDepth * 2) refuse('nesting deeper than the limit');
    if (top === undefined) return this.openRoot(tag, attrs);
    // The narrative div is the one element in another namespace (XHTML); openChild checks it is one.
    if (tag.uri !== FHIR_NS && !(top.kind === 'object' && tag.uri === XHTML_NS)) refuse(tag.uri === '' ? 'an element in no namespace' : 'an element in another namespace');
    if (top.kind === 'slot') return this.openContained(top, tag, attrs);
    if (top.kind === 'primitive') {
      if (tag.local !== 'extension') refuse(`a primitive element (${top.info.path}) may contain only extensions`);
      top.companion ??= {};
      const list = (top.companion.extension ??= []) as unknown[];
      return this.openComplex(list, 'Extension', attrs, true);
    }
    this.openChild(top, tag, attrs);
  }

  private openRoot(tag: SaxesTagNS, attrs: Record<string, SaxesAttributeNS>): void {
    if (tag.uri !== FHIR_NS) refuse(tag.uri === '' ? 'the root element is in no namespace' : 'the root element is in another namespace');
    if (!isResourceType(tag.local)) refuse('the root element is not a FHIR resource');
    this.attributes(attrs, false, false, true);
    this.root = { resourceType: tag.local };
    this.stack.push({ kind: 'object', obj: this.root, context: tag.local, series: undefined, resource: true });
  }

  private openContained(slot: Frame & { kind: 'slot' }, tag: SaxesTagNS, attrs: Record<string, SaxesAttributeNS>): void {
    if (slot.filled) refuse(`${slot.info.path} holds more than one resource`);
    if (!isResourceType(tag.local)) refuse(`${slot.info.path} does not hold a FHIR resource`);
    this.attributes(attrs, false, false, false);
    slot.filled = true;
    const obj: Record<string, unknown> = { resourceType: tag.local };
    place(slot.holder.obj, slot.name, slot.info.repeating, obj);
    this.stack.push({ kind: 'object', obj, context: tag.local, series: undefined, resource: true });
  }

  private openComplex(list: unknown[] | undefined, context: string, attrs: Record<string, SaxesAttributeNS>, extension: boolean, holder?: Record<string, unknown>, name?: string, repeating?: boolean): void {
    const obj: Record<string, unknown> = {};
    const a = this.attributes(attrs, true, extension, false);
    if (a.id !== undefined) obj.id = a.id;
    if (a.url !== undefined) obj.url = a.url;
    if (list) list.push(obj);
    else place(holder!, name!, repeating!, obj);
    this.stack.push({ kind: 'object', obj, context, series: undefined, resource: false });
  }

  private openChild(top: Frame & { kind: 'object' }, tag: SaxesTagNS, attrs: Record<string, SaxesAttributeNS>): void {
    const name = tag.local;
    // On a data type or backbone element, id (and an extension's url) are attributes, not elements.
    const info = (top.resource || (name !== 'id' && !(name === 'url' && top.context === 'Extension'))) ? childOf(top.context, name) : undefined;
    if (!info) return refuse(`an unknown element in ${top.context}`);
    if ((info.kind === 'xhtml') !== (tag.uri === XHTML_NS)) refuse('an element in another namespace');
    // A plain property read is safe here: name is a FHIR element name, never an Object.prototype member.
    if (!info.repeating && (top.obj[name] !== undefined || top.obj[info.companion] !== undefined)) refuse(`${info.path} is repeated but allows one value`);
    if (info.kind === 'primitive') return this.openPrimitive(top, info, name, attrs);
    if (info.kind === 'complex') return this.openComplex(undefined, info.context, attrs, info.context === 'Extension', top.obj, name, info.repeating);
    if (info.kind === 'resource') {
      this.attributes(attrs, false, false, false);
      this.stack.push({ kind: 'slot', holder: top, info, name, filled: false });
      return;
    }
    if (info.kind === 'xhtml') {
      const writer = new XhtmlWriter();
      this.count(writer.start(tag)); // checks the namespace and that it is a div; copies its attributes
      this.stack.push({ kind: 'xhtml', holder: top, name, writer });
      return;
    }
  }

  private close(tag: SaxesTagNS): void {
    const top = this.stack.pop()!;
    if (top.kind === 'xhtml') {
      if (this.stack[this.stack.length - 1] === top) this.xhtmlDepth--; // an element inside the div closed
      top.writer.end(tag);
      if (!top.writer.open) top.holder.obj[top.name] = top.writer.result();
    } else if (top.kind === 'slot') {
      if (!top.filled) refuse(`${top.info.path} holds no resource`);
    } else if (top.kind === 'primitive') this.closePrimitive(top);
    else if (top.series) this.flushSeries(top.obj, top.series);
  }

  private closePrimitive(f: Frame & { kind: 'primitive' }): void {
    if (f.value === undefined && f.companion === undefined) refuse(`${f.info.path} has neither a value nor extensions`);
    const holder = f.holder;
    if (f.info.repeating) {
      holder.series ??= new Map();
      let s = holder.series.get(f.name);
      if (!s) holder.series.set(f.name, (s = { values: [], companions: [], texts: [], anyValue: false, anyCompanion: false }));
      s.values.push(f.value ?? null);
      s.companions.push(f.companion ?? null);
      s.texts.push(f.text);
      s.anyValue ||= f.value !== undefined;
      s.anyCompanion ||= f.companion !== undefined;
      return;
    }
    if (f.value !== undefined) holder.obj[f.name] = f.value;
    if (f.companion !== undefined) holder.obj[f.info.companion] = f.companion;
    if (f.text !== undefined) this.keepText(holder.obj, f.name, f.text);
  }

  private flushSeries(obj: Record<string, unknown>, series: Map<string, Series>): void {
    for (const [name, s] of series) {
      // With companions only, the values are nulls aligned with them, as FHIR JSON writes a
      // repeating primitive ("prefix": [null], "_prefix": [{…}]).
      if (s.anyValue || s.anyCompanion) {
        obj[name] = s.values;
        s.texts.forEach((t, i) => t !== undefined && this.keepText(s.values, String(i), t));
      }
      if (s.anyCompanion) obj[`_${name}`] = s.companions;
    }
  }

  /**
   * A number's written text: on the holder's RAW_NUMBERS when it is not the canonical form (as the
   * JSON reader does, so the diff and the profile see `1.50` and `15.0` whatever the format), and
   * in `numberText` when asked for.
   */
  private keepText(holder: object, key: string, text: string): void {
    if (text !== String(Number(text))) keepRaw(holder, key, text);
    if (this.numberText) addText(this.numberText, holder, key, text);
  }

  /** The frame keeps the parsed value and the `_name` companion until the element closes. */
  private openPrimitive(top: Frame & { kind: 'object' }, info: ChildInfo, name: string, attrs: Record<string, SaxesAttributeNS>): void {
    const a = this.attributes(attrs, true, false, false, true);
    const value = a.value === undefined ? undefined : parseValue(a.value, info.json);
    const text = typeof value === 'number' ? a.value : undefined;
    const companion = a.id === undefined ? undefined : { id: a.id };
    this.stack.push({ kind: 'primitive', holder: top, info, name, value, text, companion });
  }
}

/** The bytes were decoded as UTF-8; a declaration naming another encoding would be read differently elsewhere. */
function checkDeclaredEncoding(text: string): void {
  // One byte order mark was skipped in decoding; a second is no XML 1.0 (saxes would skip it too
  // and read what follows, declaration included, under rules other than the checks below).
  if (text.charCodeAt(0) === 0xfeff) refuse('a second byte order mark');
  if (!text.startsWith('<?xml')) return;
  const end = text.indexOf('?>');
  const declaration = end < 0 ? text : text.slice(0, end);
  const m = /\sencoding\s*=\s*(["'])([^"']*)\1/.exec(declaration);
  if (m && m[2]!.toLowerCase() !== 'utf-8') refuse('an encoding other than UTF-8 is declared');
  // XML 1.1 reads line ends (U+0085, U+2028) and control characters otherwise than the XML 1.0 a
  // provider's parser may only know: the gateway would check another value than the provider reads.
  const v = /\sversion\s*=\s*(["'])([^"']*)\1/.exec(declaration);
  if (v && v[2] !== '1.0') refuse('an XML version other than 1.0 is declared');
}

function addText(map: NumberText, holder: object, key: string, text: string): void {
  let r = map.get(holder);
  if (!r) map.set(holder, (r = {}));
  r[key] = text;
}

function place(holder: Record<string, unknown>, name: string, repeating: boolean, value: unknown): void {
  if (!repeating) holder[name] = value;
  else ((holder[name] ??= []) as unknown[]).push(value);
}

/**
 * The attributes FHIR XML allows: namespace declarations anywhere; `id` on data types and backbone
 * elements; `url` on extensions; `value` on primitives; xsi:schemaLocation on the root (a hint
 * that is never followed). Anything else is refused.
 */
type Attributes = { n: number; id?: string; url?: string; value?: string };

function checkAttributes(attrs: Record<string, SaxesAttributeNS>, id: boolean, url: boolean, root: boolean, value: boolean): Attributes {
  const out: Attributes = { n: 0 };
  for (const k in attrs) {
    const a = attrs[k]!;
    out.n++;
    if (a.name === 'xmlns' || a.prefix === 'xmlns') continue;
    if (a.prefix === '') {
      if (a.local === 'id' && id) out.id = a.value;
      else if (a.local === 'url' && url) out.url = a.value;
      else if (a.local === 'value' && value) out.value = a.value;
      else refuse('an attribute FHIR does not define');
    } else if (!(root && a.uri === 'http://www.w3.org/2001/XMLSchema-instance' && a.local === 'schemaLocation')) refuse('an attribute in another namespace');
  }
  return out;
}
