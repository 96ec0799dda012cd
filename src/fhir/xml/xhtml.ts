/**
 * The narrative `div` (FHIR STU3 Narrative.div): XHTML kept as a string in the JSON model. The
 * same writer serves the decoder (SAX events of the body's div -> string) and the encoder (a JSON
 * div is parsed and rewritten before it is embedded, so a div can never inject markup into the
 * surrounding FHIR XML). Canonical form: attributes in source order with double quotes, text with
 * & < > (and CR) escaped, `<x/>` kept apart from `<x></x>`, comments inside the div kept as
 * `<!--text-->` (they are part of the narrative a provider stores: adding or removing one is a
 * change the diff must see).
 */
import { SaxesParser, type SaxesAttributeNS, type SaxesTagNS } from 'saxes';
import { XHTML_NS } from './model.js';

export class Refusal {
  constructor(readonly reason: string) {}
}

// A carriage return is written as a reference: a literal one would be read back as a line feed.
const escText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');

/** Attribute values: quotes and whitespace as character references, so nothing is normalised away. */
export const escAttr = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;');

export class XhtmlWriter {
  private readonly parts: string[] = [];
  private depth = 0;

  get open(): boolean {
    return this.depth > 0;
  }

  /** An element start; the first one must be the `div` itself, all in the XHTML namespace unprefixed. Returns its attribute count. */
  start(tag: SaxesTagNS): number {
    if (tag.uri !== XHTML_NS || tag.prefix !== '') throw new Refusal('the narrative must be XHTML in the default namespace');
    if (this.depth === 0 && tag.local !== 'div') throw new Refusal('the narrative must be a div');
    let s = `<${tag.local}`;
    let declared = false;
    let n = 0;
    const attrs = tag.attributes as Record<string, SaxesAttributeNS>;
    for (const k in attrs) {
      const a = attrs[k]!;
      n++;
      if (a.name === 'xmlns') declared = true;
      s += ` ${a.name}="${escAttr(a.value)}"`;
    }
    // The JSON div must declare its namespace itself (it is read without the enclosing FHIR XML).
    if (this.depth === 0 && !declared) s = `<div xmlns="${XHTML_NS}"${s.slice(4)}`;
    this.parts.push(tag.isSelfClosing ? `${s}/>` : `${s}>`);
    this.depth++;
    return n;
  }

  text(t: string): void {
    this.parts.push(escText(t));
  }

  comment(t: string): void {
    this.parts.push(`<!--${t}-->`);
  }

  end(tag: SaxesTagNS): void {
    this.depth--;
    if (!tag.isSelfClosing) this.parts.push(`</${tag.local}>`);
  }

  result(): string {
    return this.parts.join('');
  }
}

/**
 * Parses a JSON div string and returns its canonical form, or a Refusal when it is not one
 * well-formed XHTML div (no DOCTYPE, no entities beyond the predefined ones, no PIs). `strict`
 * (the diff's reading, ruling 9): nothing at all around the div — an XML declaration, whitespace or
 * a comment before or after it is a Refusal too, so that such a string is compared as written
 * instead of being made equal to a div XML can carry. Without it (the encoder), those are dropped.
 */
/**
 * How deep a narrative may nest, one bound for every reader and writer of it (the XML decoder, the
 * XML encoder the vault re-encodes with, the canonical form the diff compares): a div one of them
 * accepts, the others accept too (ruling 21, "checked identically").
 */
export const MAX_XHTML_DEPTH = 256;

export function canonicalDiv(div: string, maxDepth: number, opts: { strict?: boolean } = {}): string | Refusal {
  if (opts.strict && !(div.startsWith('<div') && div.endsWith('>'))) return new Refusal('something around the div');
  const w = new XhtmlWriter();
  const p = new SaxesParser({ xmlns: true, position: false });
  let done = false;
  let depth = 0;
  const refuse = (r: string) => {
    throw new Refusal(r);
  };
  // The same handlers in the same order as the decoder, so every saxes parser has one hidden class
  // (see decode.ts: more handlers, or another set, makes saxes much slower). An XML declaration
  // before the div is checked by saxes and dropped from the canonical form.
  p.on('doctype', () => refuse('a DOCTYPE'));
  p.on('processinginstruction', () => refuse('a processing instruction'));
  p.on('opentag', (tag) => {
    if (done) refuse('more than one element');
    if (++depth > maxDepth) refuse('nesting too deep');
    w.start(tag);
  });
  p.on('closetag', (tag) => {
    depth--;
    w.end(tag);
    if (!w.open) done = true;
  });
  p.on('text', (t) => {
    if (w.open) w.text(t);
    else if (opts.strict || /[^ \t\r\n]/.test(t)) refuse('text outside the div');
  });
  p.on('cdata', (t) => (w.open ? w.text(t) : refuse('text outside the div')));
  // A seventh handler only when there can be a comment (see above: it slows every parser down).
  if (div.includes('<!--')) {
    p.on('comment', (t) => {
      if (w.open) w.comment(t);
      else if (opts.strict) refuse('a comment outside the div');
    });
  }
  try {
    p.write(div).close();
  } catch (e) {
    if (e instanceof Refusal) return e;
    return new Refusal('the narrative is not well-formed XHTML');
  }
  return done ? w.result() : new Refusal('the narrative is not a div');
}
