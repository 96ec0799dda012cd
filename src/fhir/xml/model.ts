/**
 * The STU3 type model the XML codec needs: what each child element of a type or backbone element
 * is (primitive, complex, resource or XHTML), whether it repeats, and the order to write it in.
 * Built once from the fhirpath package's STU3 tables (path2Type, path2Repeating, choiceTypePaths,
 * type2Parent, pathsDefinedElsewhere) and the generated element-order table; lookups are cached,
 * so a decode pays one Map lookup per element.
 */
import { createRequire } from 'node:module';
import { ELEMENT_ORDER } from './element-order.js';
import { loadBase } from '../sd/model.js';

const require = createRequire(import.meta.url);
const load = <T>(name: string): T => require(`fhirpath/fhir-context/stu3/${name}.json`) as T;

// Maps, never plain-object lookups: an element name such as `constructor` must not find a prototype member.
const PATH_TO_TYPE = new Map(Object.entries(load<Record<string, string | { code: string }>>('path2Type')).map(([k, v]) => [k, typeof v === 'string' ? v : v.code]));
const REPEATING = new Set(load<string[]>('path2Repeating'));
const CHOICES = new Map(Object.entries(load<Record<string, string[]>>('choiceTypePaths')));
const TYPE_PARENT = new Map(Object.entries(load<Record<string, string>>('type2Parent')));
const DEFINED_ELSEWHERE = new Map(Object.entries(load<Record<string, string>>('pathsDefinedElsewhere')));

export const FHIR_NS = 'http://hl7.org/fhir';
export const XHTML_NS = 'http://www.w3.org/1999/xhtml';

/** How a primitive's `value` attribute is typed in the JSON model. */
export type PrimitiveJson = 'string' | 'boolean' | 'integer' | 'decimal';

export interface ChildInfo {
  /** The FHIR path of the element definition, e.g. Appointment.participant.actor. */
  readonly path: string;
  readonly repeating: boolean;
  readonly kind: 'primitive' | 'complex' | 'resource' | 'xhtml';
  /** For primitives: how the value is written in JSON. */
  readonly json: PrimitiveJson;
  /** For complex elements: the type name or backbone path their children are looked up under. */
  readonly context: string;
  /** The element's name without a choice type suffix (valueString -> value): its place in the order. */
  readonly base: string;
  /** The JSON key of a primitive's id/extension companion: `_` + the element name. */
  readonly companion: string;
}

const INTEGER_TYPES = new Set(['integer', 'positiveInt', 'unsignedInt']);

function primitiveJson(type: string): PrimitiveJson {
  if (type === 'boolean') return 'boolean';
  if (type === 'decimal') return 'decimal';
  return INTEGER_TYPES.has(type) ? 'integer' : 'string';
}

function inheritsFrom(type: string, ancestor: string): boolean {
  for (let t: string | undefined = TYPE_PARENT.get(type); t !== undefined; t = TYPE_PARENT.get(t)) if (t === ancestor) return true;
  return false;
}

const RESOURCE_TYPES = new Set([...TYPE_PARENT.keys()].filter((t) => t !== 'DomainResource' && inheritsFrom(t, 'Resource')));

/** Whether a name is a concrete STU3 resource type (what a root or contained element may be called). */
export function isResourceType(name: string): boolean {
  return RESOURCE_TYPES.has(name);
}

function baseName(context: string, name: string): string {
  for (let cut = name.length - 1; cut > 0; cut--) {
    const suffixes = CHOICES.get(`${context}.${name.slice(0, cut)}`);
    if (suffixes && suffixes.includes(name.slice(cut))) return name.slice(0, cut);
  }
  return name;
}

/** Whether an element defined by `contentReference` repeats (the fhirpath tables leave these out; the StructureDefinition rows say). */
function repeatsElsewhere(path: string): boolean {
  const dot = path.indexOf('.');
  const row = loadBase().types[path.slice(0, dot)]?.rows.find((r) => r.p === path.slice(dot + 1));
  return row === undefined || row.max !== 1;
}

function resolve(context: string, name: string): ChildInfo | undefined {
  // A recursive backbone element (CodeSystem.concept.concept) has its children under its origin;
  // a derived data type (Age) may take an element from its parent type (Quantity).
  for (let ctx: string | undefined = DEFINED_ELSEWHERE.get(context) ?? context; ctx !== undefined; ctx = TYPE_PARENT.get(ctx)) {
    const path = `${ctx}.${name}`;
    const elsewhere = DEFINED_ELSEWHERE.get(path);
    // an element defined by contentReference (`Questionnaire.item.item`): complex, its children those of its origin
    if (elsewhere !== undefined) return { path, repeating: repeatsElsewhere(path), kind: 'complex', json: 'string', context: elsewhere, base: name, companion: `_${name}` };
    const type = PATH_TO_TYPE.get(path);
    if (type === undefined) continue;
    const base = baseName(ctx, name);
    const repeating = REPEATING.has(path);
    const companion = `_${name}`;
    if (type === 'xhtml') return { path, repeating, kind: 'xhtml', json: 'string', context: '', base, companion };
    if (type === 'Resource') return { path, repeating, kind: 'resource', json: 'string', context: '', base, companion };
    if (type === 'BackboneElement' || type === 'Element') return { path, repeating, kind: 'complex', json: 'string', context: DEFINED_ELSEWHERE.get(path) ?? path, base, companion };
    if (/^[a-z]/.test(type)) return { path, repeating, kind: 'primitive', json: primitiveJson(type), context: '', base, companion };
    return { path, repeating, kind: 'complex', json: 'string', context: type, base, companion };
  }
  return undefined;
}

// context -> name -> answer (null: no such element). Two levels, so a lookup builds no string.
const cache = new Map<string, Map<string, ChildInfo | null>>();

/** What the child element `name` of an element of the given context is, or undefined if FHIR has none. */
export function childOf(context: string, name: string): ChildInfo | undefined {
  let byName = cache.get(context);
  if (byName === undefined) cache.set(context, (byName = new Map()));
  let info = byName.get(name);
  if (info === undefined) {
    info = resolve(context, name) ?? null;
    // Unknown names are not remembered: a hostile body must not grow the cache without bound.
    if (info !== null) byName.set(name, info);
  }
  return info ?? undefined;
}

const orderCache = new Map<string, Map<string, number>>();

/** The position of an element (by base name) among its siblings in the STU3 definitions. */
export function orderOf(context: string, base: string): number {
  const ctx = DEFINED_ELSEWHERE.get(context) ?? context;
  let m = orderCache.get(ctx);
  if (!m) {
    m = new Map((ELEMENT_ORDER[ctx] ?? []).map((n, i) => [n, i]));
    orderCache.set(ctx, m);
  }
  return m.get(base) ?? Number.MAX_SAFE_INTEGER;
}
