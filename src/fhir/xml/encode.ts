/**
 * The FHIR JSON model -> FHIR STU3 XML: elements in the order of the STU3 definitions, primitives
 * as `value` attributes with their `_name` companions merged back (id attribute, extension
 * children), `id` and an extension's `url` as attributes, contained resources wrapped in their
 * type's element, the narrative div embedded after it was parsed and rewritten (so it cannot
 * inject markup). Anything the model cannot say in FHIR XML throws FhirXmlEncodeError rather than
 * writing XML that would read back as something else.
 */
import { writtenNumber } from '../strict-json.js';
import { childOf, FHIR_NS, isResourceType, orderOf, type ChildInfo } from './model.js';
import { canonicalDiv, escAttr, MAX_XHTML_DEPTH, Refusal } from './xhtml.js';
import { isJsonObject as isObject } from '../json.js';

export class FhirXmlEncodeError extends Error {
  override readonly name = 'FhirXmlEncodeError';
}

const fail = (message: string): never => {
  throw new FhirXmlEncodeError(message);
};


/** Nesting bound for the narrative div parsed while encoding. */

/** Characters XML 1.0 cannot carry, escaped or not (§2.2 Char): C0 controls but tab and line breaks, U+FFFE/U+FFFF, a lone surrogate. */
const NOT_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function encodeFhirXml(resource: Record<string, unknown>): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  writeResource(out, resource, true);
  const xml = out.join('');
  // A JSON string may hold what no XML document can (`"\u0001"`): no XML is written for it.
  if (NOT_XML_CHAR.test(xml)) fail('a value holds a character XML 1.0 cannot carry');
  return xml;
}

function writeResource(out: string[], r: unknown, root: boolean): void {
  if (!isObject(r) || typeof r.resourceType !== 'string' || !isResourceType(r.resourceType)) return fail('not a FHIR resource');
  const type = r.resourceType;
  out.push(root ? `<${type} xmlns="${FHIR_NS}">` : `<${type}>`);
  writeChildren(out, r, type, true);
  out.push(`</${type}>`);
}

type Entry = { name: string; info: ChildInfo; order: number };

/** The object's elements in definition order (choice elements by their base name). */
function entries(obj: Record<string, unknown>, context: string, resource: boolean): Entry[] {
  const seen = new Set<string>();
  const list: Entry[] = [];
  for (const key of Object.keys(obj)) {
    if (resource && key === 'resourceType') continue;
    const name = key.startsWith('_') ? key.slice(1) : key;
    if (seen.has(name)) continue;
    seen.add(name);
    if (!resource && (name === 'id' || (name === 'url' && context === 'Extension'))) {
      if (key !== name) fail(`an attribute of ${context} cannot have extensions`);
      continue; // written as attributes
    }
    const info = childOf(context, name) ?? fail(`an unknown element in ${context}`);
    if (key !== name && info.kind !== 'primitive') fail(`${info.path} is not a primitive but has a _ companion`);
    list.push({ name, info, order: orderOf(context, info.base) });
  }
  return list.sort((a, b) => a.order - b.order);
}

function writeChildren(out: string[], obj: Record<string, unknown>, context: string, resource: boolean): void {
  for (const { name, info } of entries(obj, context, resource)) {
    if (info.kind === 'primitive') writePrimitives(out, name, info, obj[name], obj[`_${name}`], obj);
    else for (const v of asList(obj[name], info)) writeElement(out, name, info, v);
  }
}

function asList(v: unknown, info: ChildInfo): unknown[] {
  if (info.repeating) return Array.isArray(v) && v.length > 0 ? v : fail(`${info.path} must be a non-empty array`);
  return Array.isArray(v) ? fail(`${info.path} must not be an array`) : [v];
}

function writeElement(out: string[], name: string, info: ChildInfo, v: unknown): void {
  if (info.kind === 'xhtml') {
    const div = typeof v === 'string' ? canonicalDiv(v, MAX_XHTML_DEPTH) : new Refusal('not a string');
    if (div instanceof Refusal) return fail(`${info.path} is not an XHTML div`);
    out.push(div);
    return;
  }
  if (info.kind === 'resource') {
    out.push(`<${name}>`);
    writeResource(out, v, false);
    out.push(`</${name}>`);
    return;
  }
  if (!isObject(v)) return fail(`${info.path} must be an object`);
  out.push(`<${name}${attributes(v, info.context === 'Extension')}`);
  const start = out.length;
  out.push('>');
  writeChildren(out, v, info.context, false);
  if (out.length === start + 1) out[start] = '/>';
  else out.push(`</${name}>`);
}

function attributes(v: Record<string, unknown>, extension: boolean): string {
  let s = '';
  if (v.id !== undefined) s += ` id="${escAttr(typeof v.id === 'string' ? v.id : fail('an element id must be a string'))}"`;
  if (extension && v.url !== undefined) s += ` url="${escAttr(typeof v.url === 'string' ? v.url : fail('an extension url must be a string'))}"`;
  return s;
}

/** A primitive (or a repeating one) with its `_name` companion, aligned by index. */
function writePrimitives(out: string[], name: string, info: ChildInfo, value: unknown, companion: unknown, holder: object): void {
  if (!info.repeating) return writePrimitive(out, name, info, value, companion, writtenNumber(holder, name));
  const values = value === undefined ? [] : Array.isArray(value) ? value : fail(`${info.path} must be an array`);
  const companions = companion === undefined ? [] : Array.isArray(companion) ? companion : fail(`_${info.path} must be an array`);
  if (value !== undefined && companion !== undefined && values.length !== companions.length) fail(`${info.path} and its _ companion differ in length`);
  const n = Math.max(values.length, companions.length);
  if (n === 0) fail(`${info.path} must be a non-empty array`);
  for (let i = 0; i < n; i++) writePrimitive(out, name, info, values[i] ?? undefined, companions[i] ?? undefined, writtenNumber(values, i));
}

/** `written`: a number's text as it was read, when not canonical (ruling 26: `1.10` stays `1.10`). */
function writePrimitive(out: string[], name: string, info: ChildInfo, value: unknown, companion: unknown, written?: string): void {
  if (value === undefined && companion === undefined) return fail(`${info.path} has neither a value nor extensions`);
  let s = `<${name}`;
  if (companion !== undefined) {
    if (!isObject(companion)) return fail(`_${info.path} must be an object`);
    for (const k of Object.keys(companion)) if (k !== 'id' && k !== 'extension') fail(`_${info.path} may hold only id and extension`);
    s += attributes(companion, false);
  }
  if (value !== undefined) s += ` value="${escAttr(primitiveText(value, info, written))}"`;
  const ext = isObject(companion) ? companion.extension : undefined;
  if (ext === undefined) {
    out.push(`${s}/>`);
    return;
  }
  out.push(`${s}>`);
  const extInfo = childOf('Extension', 'extension')!;
  for (const e of asList(ext, extInfo)) writeElement(out, 'extension', extInfo, e);
  out.push(`</${name}>`);
}

function primitiveText(v: unknown, info: ChildInfo, written?: string): string {
  switch (info.json) {
    case 'boolean':
      return typeof v === 'boolean' ? String(v) : fail(`${info.path} must be a boolean`);
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v) ? written ?? String(v) : fail(`${info.path} must be an integer`);
    case 'decimal':
      return typeof v === 'number' && Number.isFinite(v) ? written ?? String(v) : fail(`${info.path} must be a number`);
    default:
      return typeof v === 'string' ? v : fail(`${info.path} must be a string`);
  }
}
