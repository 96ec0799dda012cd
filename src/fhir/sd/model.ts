import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { profilesDir } from '../../paths.js';
import { PRIMITIVES } from './primitives.js';

/**
 * The element tree the validator walks, built once from the generated StructureDefinition rows
 * (config/profiles/`stu3-base.json`, `profiles.json`; scripts/profiles/generate-sd.ts). A TypeNode is the set of
 * JSON properties an object of that type may carry; choice elements are expanded into their JSON
 * names (`value[x]` -> `valueString`, ...). Profile rows overlay the base rows; the JSON shape
 * (array or not) always comes from the base definition.
 */

export interface Row {
  p: string;
  min: number;
  max: number;
  t?: string[];
  b?: string[];
  f?: unknown;
  pat?: unknown;
  k?: [string, string, string][];
  mod?: 1;
  sl?: string;
}
export interface Constraint {
  key: string;
  expression: string;
  human: string;
}
export interface ElementDef {
  /** JSON property name */
  name: string;
  /** its primitive companion's name (`_name`) */
  companion: string;
  /** FHIR path of the definition (for messages and FHIRPath's type lookup) */
  path: string;
  min: number;
  /** -1 = unbounded */
  max: number;
  /** JSON shape: the base definition repeats */
  array: boolean;
  type: string;
  /** Reference targets; undefined = any */
  targets?: Set<string>;
  codes?: Set<string>;
  fixed?: unknown;
  pattern?: unknown;
  constraints: Constraint[];
  modifier: boolean;
  /** the choice group (`value[x]`) this name belongs to */
  choice?: string;
  /** extension slices declared on this element: url -> slice */
  slices?: Map<string, { min: number; max: number }>;
  /** children, for complex types (lazy) */
  node?: () => TypeNode;
}
export interface TypeNode {
  /** type name, or the backbone element path */
  name: string;
  /** FHIRPath base for constraints evaluated on an object of this node */
  fpBase: string;
  elements: Map<string, ElementDef>;
  /** choice groups and single elements with min > 0: JSON names that satisfy each */
  required: { label: string; names: string[]; companions: string[] }[];
  constraints: Constraint[];
  isResource: boolean;
  /** choice groups with more than one JSON name: at most one may be present */
  choices?: Map<string, string[]>;
  /** the same, by JSON name: name -> its choice group (a walk looks up an object's keys, not every type) */
  choiceOf?: Map<string, string>;
}
export interface ExtensionDef {
  url: string;
  contextType: string;
  context: string[];
  modifier: boolean;
  /** The extension's own maximum on one element (its root `Extension` row; -1: unbounded). */
  max: number;
  node: TypeNode;
}

interface BaseData {
  types: Record<string, { kind: string; parent?: string; rows: Row[] }>;
}
interface ProfileData {
  profiles: Record<string, { url: string; version: string; rows: Row[] }>;
  extensions: Record<string, { contextType: string; context: string[]; rows: Row[] }>;
}

const sdDir = profilesDir;
/**
 * Elements defined by `contentReference` (`Questionnaire.item.item` reuses `Questionnaire.item`):
 * the generated rows carry no type for them; the fhirpath package's STU3 table names the origin.
 */
const DEFINED_ELSEWHERE = new Map(Object.entries(createRequire(import.meta.url)('fhirpath/fhir-context/stu3/pathsDefinedElsewhere.json') as Record<string, string>));
let baseData: BaseData | undefined;
let profileData: ProfileData | undefined;
export function loadBase(): BaseData {
  return (baseData ??= JSON.parse(readFileSync(join(sdDir, 'stu3-base.json'), 'utf8')) as BaseData);
}
export function loadProfiles(): ProfileData {
  return (profileData ??= JSON.parse(readFileSync(join(sdDir, 'profiles.json'), 'utf8')) as ProfileData);
}

const ucFirst = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

let elementNames: ReadonlySet<string> | undefined;
/**
 * Every element name the STU3 definitions (and the profiles' extensions) define, choice elements
 * expanded (`value[x]` -> `valueString`, ...), plus every type name. Ruling 20: a key of a body is
 * echoed in a path only when it is one of these; anything else (`Peter_Chalmers_9434…`) could be
 * data and is rendered `<unknown>`.
 */
export function fhirElementNames(): ReadonlySet<string> {
  if (elementNames) return elementNames;
  const names = new Set<string>(['resourceType', 'id', 'extension', 'modifierExtension', 'value', 'url']);
  const add = (rows: Row[]) => {
    for (const r of rows) {
      const leaf = r.p.slice(r.p.lastIndexOf('.') + 1);
      if (!leaf) continue;
      if (!leaf.endsWith('[x]')) names.add(leaf);
      else for (const t of r.t ?? []) names.add(leaf.slice(0, -3) + ucFirst(t.split(':')[0]!));
    }
  };
  const base = loadBase();
  for (const [name, t] of Object.entries(base.types)) {
    names.add(name);
    add(t.rows);
  }
  const profiles = loadProfiles();
  for (const pr of Object.values(profiles.profiles)) add(pr.rows);
  for (const e of Object.values(profiles.extensions)) add(e.rows);
  return (elementNames = names);
}

let resourceTypes: ReadonlySet<string> | undefined;
/** Whether `name` is a resource type of the STU3 definitions the gateway loads. */
export function isResourceType(name: string): boolean {
  resourceTypes ??= new Set(Object.entries(loadBase().types).filter(([, t]) => t.kind === 'resource').map(([n]) => n));
  return resourceTypes.has(name);
}

const LITERAL_REFERENCE = /(?:^|\/)([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
/**
 * The resource type a literal reference (`Type/id`, relative or absolute, with or without
 * `_history`) names, or undefined. Only a concrete STU3 resource type counts: in
 * `https://directory.example.org/Staff/42` FHIR can infer no target type, so none is judged
 * (ruling 20: never stricter than FHIR).
 */
export function referencedType(ref: string): string | undefined {
  const t = LITERAL_REFERENCE.exec(ref)?.[1];
  return t !== undefined && t !== 'Resource' && t !== 'DomainResource' && isResourceType(t) ? t : undefined;
}

/** A key that may appear verbatim in a path (ruling 20): a defined element name, or its `_` companion. */
export function isFhirElementName(key: string): boolean {
  return fhirElementNames().has(key.charCodeAt(0) === 0x5f ? key.slice(1) : key);
}
const INLINE = new Set(['BackboneElement', 'Element']);

/** Direct children rows of `parent` ('' = root), slice headers apart. */
function childrenOf(rows: Row[], parent: string): { plain: Row[]; slices: Row[] } {
  const plain: Row[] = [];
  const slices: Row[] = [];
  const prefix = parent === '' ? '' : parent + '.';
  for (const r of rows) {
    if (r.p === '' || !r.p.startsWith(prefix)) continue;
    if (r.p.slice(prefix.length).includes('.')) continue;
    (r.sl !== undefined ? slices : plain).push(r);
  }
  return { plain, slices };
}

/** `Reference:Patient`, `Reference:Location` -> `Reference:Patient|Location` (one element, several targets) */
function unionTypes(types: string[]): string {
  if (types.length <= 1) return types[0] ?? '';
  const code = types[0]!.split(':')[0]!;
  const targets = types.flatMap((t) => (t.split(':')[1] ?? 'Resource').split('|'));
  return `${code}:${[...new Set(targets)].join('|')}`;
}
/** `value[x]` with its types -> the JSON names, one per type code (Reference targets merged) */
function choiceTypes(leaf: string, types: string[]): (readonly [string, string])[] {
  const byCode = new Map<string, string[]>();
  for (const t of types) {
    const code = t.split(':')[0]!;
    byCode.set(code, [...(byCode.get(code) ?? []), t]);
  }
  return [...byCode].map(([code, ts]) => [leaf.slice(0, -3) + ucFirst(code), unionTypes(ts)] as const);
}

const constraintsOf = (r: Row | undefined): Constraint[] =>
  (r?.k ?? []).map(([key, expression, human]) => ({ key, expression, human }));

export class Model {
  private readonly nodes = new Map<string, TypeNode>();
  readonly base = loadBase();
  readonly extensions = new Map<string, ExtensionDef>();
  readonly resourceTypes: Set<string>;

  constructor() {
    this.resourceTypes = new Set(Object.entries(this.base.types).filter(([, t]) => t.kind === 'resource').map(([n]) => n));
    this.resourceTypes.delete('Resource');
    this.resourceTypes.delete('DomainResource');
    for (const [url, e] of Object.entries(loadProfiles().extensions)) {
      const root = e.rows.find((r) => r.p === '');
      this.extensions.set(url, {
        url,
        contextType: e.contextType,
        context: e.context,
        modifier: root?.mod === 1,
        max: root?.max ?? -1,
        node: this.build(`Extension<${url}>`, 'Extension', 'Extension', e.rows, this.base.types['Extension']!.rows, ''),
      });
    }
  }

  /** The node of a base type or resource. */
  type(name: string): TypeNode {
    const hit = this.nodes.get(name);
    if (hit) return hit;
    const t = this.base.types[name];
    if (!t) throw new Error(`unknown FHIR type ${name}`);
    const node = this.build(name, name, name, t.rows, t.rows, '');
    this.nodes.set(name, node);
    return node;
  }

  /** The node of a profile of a resource type. */
  profile(profileName: string, overlay: { p: string; min: number; max: number }[] = []): TypeNode {
    const p = loadProfiles().profiles[profileName];
    if (!p) throw new Error(`unknown profile ${profileName}`);
    const baseName = 'Appointment';
    // the standard's own rows (config/profiles/overlays.json) narrow the profile's cardinalities
    const rows = p.rows.map((r) => {
      const o = r.sl === undefined ? overlay.find((x) => x.p === r.p) : undefined;
      return o ? { ...r, min: o.min, max: o.max } : r;
    });
    return this.build(`${baseName}<${profileName}>`, baseName, baseName, rows, this.base.types[baseName]!.rows, '');
  }

  /**
   * A node from `rows` (a profile's or the base's) under `at`; `baseRows` give the JSON shape.
   * `fpBase` is the FHIRPath base for constraints of this node.
   */
  private build(name: string, fpBase: string, pathRoot: string, rows: Row[], baseRows: Row[], at: string): TypeNode {
    const rootRow = rows.find((r) => r.p === at);
    const { plain, slices } = childrenOf(rows, at);
    const node: TypeNode = {
      name,
      fpBase,
      elements: new Map(),
      required: [],
      constraints: at === '' ? constraintsOf(rootRow) : [],
      isResource: at === '' && this.resourceTypes.has(pathRoot),
    };
    for (const row of plain) {
      const baseRow = baseRows.find((b) => b.p === row.p) ?? baseRows.find((b) => b.p.endsWith('[x]') && row.p.startsWith(b.p.slice(0, -3)));
      const array = baseRow ? baseRow.max !== 1 : row.max !== 1;
      const leaf = row.p.slice(at === '' ? 0 : at.length + 1);
      const origin = (row.t ?? baseRow?.t) !== undefined ? undefined : DEFINED_ELSEWHERE.get(`${pathRoot}.${row.p}`);
      if (origin !== undefined) {
        this.addContentReference(node, row, rows, baseRows, array, leaf, pathRoot, origin);
        continue;
      }
      const types = row.t ?? baseRow?.t ?? [];
      const isChoice = leaf.endsWith('[x]') || (baseRow !== undefined && baseRow.p.endsWith('[x]'));
      const group = isChoice ? (leaf.endsWith('[x]') ? leaf : baseRow!.p.slice(baseRow!.p.lastIndexOf('.') + 1)) : undefined;
      if (group && !leaf.endsWith('[x]')) {
        // a profile's renamed choice (`valueString`) replaces the whole group
        for (const [k, d] of node.elements) if (d.choice === group) node.elements.delete(k);
      }
      const expanded = leaf.endsWith('[x]') ? choiceTypes(leaf, types) : [[leaf, unionTypes(types)] as const];
      if (leaf.endsWith('[x]') && [...node.elements.values()].some((d) => d.choice === group)) continue; // already renamed
      for (const [jsonName, typeSpec] of expanded) {
        const [type, targets] = typeSpec.split(':') as [string, string | undefined];
        const def: ElementDef = {
          name: jsonName,
          companion: '_' + jsonName,
          path: `${pathRoot}.${row.p}`,
          min: row.min,
          max: row.max,
          array,
          type: type === '' && row.p.endsWith('.extension') ? 'Extension' : type,
          constraints: this.withTypeConstraints(constraintsOf(row), type),
          modifier: row.mod === 1,
        };
        if (targets && !targets.split('|').includes('Resource')) def.targets = new Set(targets.split('|'));
        if (row.b) def.codes = type === 'code' ? bareCodes(row.b) : new Set(row.b);
        if (row.f !== undefined) def.fixed = row.f;
        if (row.pat !== undefined) def.pattern = row.pat;
        if (group) def.choice = group;
        if (leaf === 'extension' || leaf === 'modifierExtension') {
          const s = slices.filter((x) => x.p === row.p);
          if (s.length) def.slices = new Map(s.map((x) => [x.sl!, { min: x.min, max: x.max }]));
        }
        def.node = this.childNode(def, rows, baseRows, row.p, pathRoot);
        node.elements.set(jsonName, def);
      }
      if (row.min > 0) node.required.push({ label: group ?? leaf, names: expanded.map(([n]) => n), companions: expanded.map(([n]) => '_' + n) });
    }
    for (const d of node.elements.values()) {
      if (!d.choice) continue;
      const group = (node.choices ??= new Map()).get(d.choice) ?? [];
      group.push(d.name);
      node.choices.set(d.choice, group);
    }
    for (const [g, names] of node.choices ?? []) if (names.length < 2) node.choices!.delete(g);
    if (node.choices?.size) node.choiceOf = new Map([...node.choices].flatMap(([g, names]) => names.map((n): [string, string] => [n, g])));
    return node;
  }

  /**
   * An element defined by `contentReference` (`Questionnaire.item.item`): its own cardinality,
   * the content (children and constraints) of its origin (`Questionnaire.item`).
   */
  private addContentReference(node: TypeNode, row: Row, rows: Row[], baseRows: Row[], array: boolean, leaf: string, pathRoot: string, origin: string): void {
    const originRel = origin.slice(pathRoot.length + 1);
    const originRow = rows.find((r) => r.p === originRel) ?? baseRows.find((r) => r.p === originRel);
    const own = constraintsOf(row);
    const key = `${origin}<contentReference>`; // unique: a path starts with its resource type, and no profile has one
    node.elements.set(leaf, {
      name: leaf,
      companion: '_' + leaf,
      path: `${pathRoot}.${row.p}`,
      min: row.min,
      max: row.max,
      array,
      type: originRow?.t?.[0] ?? 'BackboneElement',
      constraints: [...own, ...constraintsOf(originRow).filter((c) => !own.some((o) => o.key === c.key))],
      modifier: row.mod === 1,
      node: () => {
        let built = this.nodes.get(key);
        if (!built) this.nodes.set(key, (built = this.build(origin, origin, pathRoot, rows, baseRows, originRel)));
        return built;
      },
    });
    if (row.min > 0) node.required.push({ label: leaf, names: [leaf], companions: ['_' + leaf] });
  }

  /** A datatype's own constraints (per-1 of Period, ref-1 of Reference) hold wherever it is used. */
  private withTypeConstraints(own: Constraint[], type: string): Constraint[] {
    const t = this.base.types[type];
    if (!t || t.kind !== 'complex-type') return own;
    const extra = constraintsOf(t.rows.find((r) => r.p === '')).filter((c) => !own.some((o) => o.key === c.key));
    return extra.length ? [...own, ...extra] : own;
  }

  private childNode(def: ElementDef, rows: Row[], baseRows: Row[], relPath: string, pathRoot: string): (() => TypeNode) | undefined {
    if (PRIMITIVES.has(def.type) || def.type === 'Resource' || def.type === '') return undefined;
    const hasOwnRows = rows.some((r) => r.p.startsWith(relPath + '.'));
    let cached: TypeNode | undefined;
    if (INLINE.has(def.type)) {
      // a backbone element: its children are rows of this definition
      return () => (cached ??= this.build(`${pathRoot}.${relPath}`, `${pathRoot}.${relPath}`, pathRoot, rows, baseRows, relPath));
    }
    if (!hasOwnRows) return () => this.type(def.type);
    // a datatype constrained by the profile: its own rows over the datatype's
    return () => {
      if (cached) return cached;
      const t = this.base.types[def.type]!;
      const rebased = rows.filter((r) => r.p.startsWith(relPath + '.')).map((r) => ({ ...r, p: r.p.slice(relPath.length + 1) }));
      const merged = [...t.rows.filter((b) => b.p === '' || !rebased.some((r) => r.p === b.p || (b.p.endsWith('[x]') && r.p.startsWith(b.p.slice(0, -3))))), ...rebased];
      cached = this.build(`${def.type}<${pathRoot}.${relPath}>`, def.type, def.type, merged, t.rows, '');
      return cached;
    };
  }
}

/**
 * A binding row lists each code twice, `system|code` (for Coding) and `code` (for a `code`
 * element). A `code` element is judged by the bare codes alone: `http://…|booked` is not `booked`.
 */
function bareCodes(entries: readonly string[]): Set<string> {
  const all = new Set(entries);
  return new Set(entries.filter((e) => {
    const bar = e.lastIndexOf('|');
    return bar < 0 || !all.has(e.slice(bar + 1));
  }));
}
