/**
 * A direct, slow evaluation of the StructureDefinitions, for the differential test only (issue 14).
 * It reads the generated definition rows by path string at every step (no compiled tree, no fast
 * path) and evaluates EVERY constraint, ele-1 included, with HL7's FHIRPath engine; a constraint
 * failure is reported at the path of the constraint's context element. Shared with the gateway:
 * the primitive formats (src/fhir/sd/primitives.ts, tested on their own) and the engine wrapper.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { compileConstraint, holds } from '../../src/fhir/sd/fhirpath.js';
import { PRIMITIVES, primitiveProblem, xhtmlProblem } from '../../src/fhir/sd/primitives.js';
import { isFhirElementName } from '../../src/fhir/sd/model.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
interface Row { p: string; min: number; max: number; t?: string[]; b?: string[]; f?: unknown; pat?: unknown; k?: [string, string, string][]; mod?: 1; sl?: string }

const sd = (f: string): Obj => JSON.parse(readFileSync(join(packageRoot, 'config', 'profiles', f), 'utf8')) as Obj;
const BASE = sd('stu3-base.json').types as Record<string, { kind: string; rows: Row[] }>;
const PROFILES = sd('profiles.json') as { profiles: Record<string, { rows: Row[] }>; extensions: Record<string, { contextType: string; context: string[]; rows: Row[] }> };
const OVERLAYS = JSON.parse(readFileSync(join(packageRoot, 'config', 'profiles', 'overlays.json'), 'utf8')) as Obj;
const RESOURCES = new Set(Object.entries(BASE).filter(([n, t]) => t.kind === 'resource' && n !== 'Resource' && n !== 'DomainResource').map(([n]) => n));
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const uc = (s: string): string => s[0]!.toUpperCase() + s.slice(1);

/** Where an object sits: the rows describing it and the row path of the object itself. */
interface Frame { rows: Row[]; baseRows: Row[]; at: string; fpBase: string; ctxPath: string; ctxType: string }

export interface RefIssue { path: string; what: string }

export function referenceEvaluate(profile: string, res: unknown): RefIssue[] {
  const out: RefIssue[] = [];
  if (!isObj(res)) return [{ path: 'Appointment', what: 'not an object' }];
  const overlay = OVERLAYS[profile];
  const rows = PROFILES.profiles[profile]!.rows.map((r) => {
    const o = r.sl ? undefined : (overlay.rows as Row[]).find((x) => x.p === r.p);
    return o ? { ...r, min: o.min, max: o.max } : r;
  });
  if (res.resourceType !== 'Appointment') out.push({ path: 'Appointment.resourceType', what: 'resourceType' });
  const ids = new Map<string, string>();
  (Array.isArray(res.contained) ? res.contained : []).forEach((c: unknown, i: number) => {
    if (isObj(c) && typeof c.id === 'string') {
      if (ids.has(c.id)) out.push({ path: `Appointment.contained[${i}].id`, what: 'duplicate id' });
      else ids.set(c.id, typeof c.resourceType === 'string' ? c.resourceType : '');
    }
  });
  const env = { res, ids, overlay, out };
  obj(env, res, { rows, baseRows: BASE['Appointment']!.rows, at: '', fpBase: 'Appointment', ctxPath: 'Appointment', ctxType: 'Appointment' }, 'Appointment', true, 0);
  if (!isObj(res.meta) || !Array.isArray(res.meta.profile) || !res.meta.profile.includes(overlay.metaProfile)) {
    if (isObj(res.meta)) out.push({ path: 'Appointment.meta.profile', what: 'meta.profile' });
  }
  for (const rule of overlay.rootValues ?? []) valueRule(env, res, 'Appointment', 'Appointment', rule);
  if (overlay.patientParticipant) patientParticipant(env, res, overlay.patientParticipant);
  return out;
}

/** An overlay value rule as a FHIRPath expression on the resource (independent of the gateway's walk). */
function valueRule(env: Env, node: Obj, type: string, at: string, rule: { path: string; oneOf?: string[]; includes?: string; pattern?: string; withSystem?: string }): void {
  const q = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const exprs: string[] = [];
  if (rule.oneOf) exprs.push(`${rule.path}.all(${rule.oneOf.map((v) => `$this = ${q(v)}`).join(' or ')})`);
  if (rule.includes !== undefined) exprs.push(`${rule.path}.empty() or ${rule.path}.where($this = ${q(rule.includes)}).exists()`);
  if (rule.pattern && rule.withSystem !== undefined) {
    // Each identifier of the system, by its own FHIRPath, reported at its value.
    const list = node[rule.path];
    const items = Array.isArray(list) ? list : list === undefined ? [] : [list];
    const one = compileConstraint('Identifier', `system = ${q(rule.withSystem)} implies (value.exists() and value.matches(${q(rule.pattern)}))`);
    items.forEach((item, i) => { if (isObj(item) && !holds(one, item, env.res, env.res)) issue(env, `${at}.${rule.path}[${i}].value`, 'overlay value'); });
  } else if (rule.pattern) exprs.push(`${rule.path}.all($this.matches(${q(rule.pattern)}))`);
  for (const e of exprs) if (!holds(compileConstraint(type, e), node, env.res, env.res)) issue(env, `${at}.${rule.path}`, 'overlay value');
}

/** §c: the participant whose actor is a contained Patient is accepted and names the NHS number when it names one. */
function patientParticipant(env: Env, res: Obj, rule: { status: string; identifier: { use: string; system: string; value: string } }): void {
  if (!Array.isArray(res.participant)) return;
  for (let i = 0; i < res.participant.length; i++) {
    const p = res.participant[i];
    const ref = isObj(p) && isObj(p.actor) ? p.actor.reference : undefined;
    if (typeof ref !== 'string' || ref[0] !== '#' || env.ids.get(ref.substring(1)) !== 'Patient') continue;
    if (p.status !== rule.status) issue(env, `Appointment.participant[${i}].status`, 'patient participant status');
    const id = p.actor.identifier;
    if (id === undefined) continue;
    const ok = isObj(id) && id.use === rule.identifier.use && id.system === rule.identifier.system && typeof id.value === 'string' && new RegExp(rule.identifier.value).test(id.value);
    if (!ok) issue(env, `Appointment.participant[${i}].actor.identifier`, 'patient participant identifier');
  }
}

interface Env { res: Obj; ids: Map<string, string>; overlay: Obj; out: RefIssue[] }

const child = (f: Frame, name: string): string => (f.at ? `${f.at}.${name}` : name);

/** The row for JSON property `key` of an object at frame f, and its JSON shape (base max). */
function rowFor(f: Frame, key: string): { row: Row; type: string; array: boolean } | undefined {
  const direct = f.rows.find((r) => r.p === child(f, key) && !r.sl);
  const baseOf = (p: string): Row | undefined => f.baseRows.find((r) => r.p === p) ?? f.baseRows.find((r) => r.p.endsWith('[x]') && p.startsWith(r.p.slice(0, -3)) && p.length > r.p.length - 3);
  if (direct) {
    const t = direct.t?.[0] ?? baseOf(direct.p)?.t?.[0] ?? (key === 'extension' || key === 'modifierExtension' ? 'Extension' : '');
    return { row: direct, type: t.split(':')[0]!, array: (baseOf(direct.p) ?? direct).max !== 1 };
  }
  for (const r of f.rows) {
    if (!r.p.endsWith('[x]') || r.sl) continue;
    const stem = r.p.slice(0, -3);
    if (child(f, key).startsWith(stem) && !f.rows.some((x) => x.p !== r.p && x.p.startsWith(stem) && !x.p.endsWith('[x]') && x.p.length > stem.length)) {
      const suffix = child(f, key).slice(stem.length);
      const t = (r.t ?? []).map((x) => x.split(':')[0]!).find((c) => uc(c) === suffix);
      if (t) return { row: r, type: t, array: false };
    }
  }
  return undefined;
}

function issue(env: Env, path: string, what: string): void {
  env.out.push({ path, what });
}

function obj(env: Env, o: Obj, f: Frame, path: string, isResource: boolean, depth: number, primitiveHasValue = false): void {
  if (depth > 90) return;
  // every constraint of the object's own element, by the engine (ele-1 included)
  for (const k of f.rows.find((r) => r.p === f.at && !r.sl)?.k ?? []) constraint(env, f.fpBase, k, o, path, isResource, primitiveHasValue);
  const present = new Set<string>();
  const groups = new Map<string, number>();
  for (const key of Object.keys(o)) {
    if (isResource && key === 'resourceType') continue;
    if (isResource && key === 'contained' && o !== env.res) continue;
    const isComp = key.startsWith('_');
    const r = rowFor(f, isComp ? key.slice(1) : key);
    // Ruling 20: only a name FHIR defines is echoed (rendering only; the judgement is this file's own).
    const shown = /^_?[A-Za-z][A-Za-z0-9_]{0,63}$/.test(key) && isFhirElementName(key) ? key : '<unknown>';
    if (!r || (isComp && !PRIMITIVES.has(r.type))) {
      issue(env, `${path}.${shown}`, 'unknown');
      continue;
    }
    present.add(r.row.p.endsWith('[x]') ? r.row.p : r.row.p);
    if (r.row.p.endsWith('[x]') || f.rows.some((x) => x.p.endsWith('[x]') && r.row.p.startsWith(x.p.slice(0, -3)))) groups.set(r.row.p.endsWith('[x]') ? r.row.p : r.row.p, 0);
    prop(env, o, key, r, f, `${path}.${key}`, depth, isComp);
  }
  choiceCount(env, o, f, path);
  for (const r of f.rows) {
    const leaf = r.p.slice(f.at ? f.at.length + 1 : 0);
    if (r.sl || r.min < 1 || !r.p.startsWith(f.at ? f.at + '.' : '') || leaf.includes('.') || r.p === f.at) continue;
    const names = leaf.endsWith('[x]') ? (r.t ?? []).map((t) => leaf.slice(0, -3) + uc(t.split(':')[0]!)) : [leaf];
    if (!names.some((n) => n in o || '_' + n in o)) issue(env, `${path}.${names.length === 1 ? names[0] : leaf.slice(0, -3)}`, 'missing');
  }
}

function choiceCount(env: Env, o: Obj, f: Frame, path: string): void {
  for (const r of f.rows) {
    if (!r.p.endsWith('[x]') || r.sl || r.p.slice(f.at ? f.at.length + 1 : 0).includes('.') || !r.p.startsWith(f.at ? f.at + '.' : '')) continue;
    const stem = r.p.slice(f.at ? f.at.length + 1 : 0, -3);
    const n = (r.t ?? []).filter((t) => { const k = stem + uc(t.split(':')[0]!); return k in o || '_' + k in o; }).length;
    if (n > 1) issue(env, path, 'choice');
  }
}

function prop(env: Env, o: Obj, key: string, r: { row: Row; type: string; array: boolean }, f: Frame, path: string, depth: number, isComp: boolean): void {
  const v = o[key];
  if (r.row.max === 0) return issue(env, path, 'max 0');
  const items: [unknown, string][] = [];
  if (r.array) {
    if (!Array.isArray(v)) {
      issue(env, path, 'not array');
      if (isObj(v)) items.push([v, path]);
    } else {
      if (v.length === 0) issue(env, path, 'empty array');
      if (!isComp && r.row.max > 0 && v.length > r.row.max) issue(env, path, 'too many');
      v.forEach((x, i) => items.push([x, `${path}[${i}]`]));
    }
  } else if (Array.isArray(v)) return issue(env, path, 'array');
  else items.push([v, path]);
  const counts = new Map<string, number>();
  items.forEach(([x, p], i) => {
    if (isComp) {
      if (x === null) return;
      const main = o[key.slice(1)];
      const hasValue = r.array ? Array.isArray(main) && main[i] !== null && main[i] !== undefined : main !== undefined && main !== null;
      if (!isObj(x)) return issue(env, p, 'companion not object');
      return obj(env, x, { rows: BASE['Element']!.rows, baseRows: BASE['Element']!.rows, at: '', fpBase: 'Element', ctxPath: f.ctxPath, ctxType: r.type }, p, false, depth + 1, hasValue);
    }
    if (x === null) {
      const comp = o['_' + key];
      if (!PRIMITIVES.has(r.type) || !Array.isArray(comp) || !isObj(comp[i])) issue(env, p, 'null');
      return;
    }
    item(env, x, r, f, p, depth, counts);
  });
  if (Array.isArray(v) && v.length !== (Array.isArray(o['_' + key]) ? o['_' + key].length : v.length)) issue(env, `${path.replace(/\.([^.]+)$/, '._$1')}`, 'misaligned');
  if (isComp && r.array && (!Array.isArray(v) || v.length === 0)) return;
  for (const s of f.rows.filter((x) => x.sl && x.p === r.row.p)) {
    if ((counts.get(s.sl!) ?? 0) < s.min) issue(env, path, 'slice min');
  }
}

function item(env: Env, x: unknown, r: { row: Row; type: string; array: boolean }, f: Frame, p: string, depth: number, counts: Map<string, number>): void {
  const row = r.row;
  if (PRIMITIVES.has(r.type)) {
    const problem = r.type === 'xhtml' && typeof x === 'string' ? xhtmlProblem(x) : primitiveProblem(r.type, x);
    if (problem) return issue(env, p, 'primitive');
    if (row.b && !row.b.includes(x as string)) issue(env, p, 'binding');
    if (row.f !== undefined && x !== row.f) issue(env, p, 'fixed');
    return;
  }
  if (!isObj(x)) return issue(env, p, 'not object');
  if (r.type === 'Resource') return containedResource(env, x, p, depth);
  let frame: Frame;
  const own = f.rows.some((q) => q.p.startsWith(row.p + '.') && !q.sl);
  if (r.type === 'BackboneElement' || r.type === 'Element') {
    const root = f.fpBase.split('.')[0]!;
    frame = { ...f, at: row.p, fpBase: `${root}.${row.p}`, ctxPath: `${root}.${row.p}`, ctxType: `${root}.${row.p}` };
  }
  else if (own) {
    const rebased = f.rows.filter((q) => q.p.startsWith(row.p + '.')).map((q) => ({ ...q, p: q.p.slice(row.p.length + 1) }));
    const base = BASE[r.type]!.rows;
    const merged = [...base.filter((b) => !rebased.some((q) => q.p === b.p || (b.p.endsWith('[x]') && q.p.startsWith(b.p.slice(0, -3))))), ...rebased];
    frame = { rows: merged, baseRows: base, at: '', fpBase: r.type, ctxPath: `${f.ctxPath}.${row.p.split('.').pop()}`, ctxType: r.type };
  } else frame = { rows: BASE[r.type]!.rows, baseRows: BASE[r.type]!.rows, at: '', fpBase: r.type, ctxPath: `${f.ctxPath}.${row.p.split('.').pop()}`, ctxType: r.type };
  if (r.type === 'Extension') frame = extensionFrame(env, x, r, f, p, frame, counts);
  let value = x;
  const gpcReason = env.overlay.emptyReasonLeftToCancelRule?.urls ?? [];
  if (r.type === 'Extension' && x.valueString === '' && gpcReason.includes(x.url)) value = { ...x, valueString: 'x' };
  obj(env, value, frame, p, false, depth + 1);
  // the element's own constraints, as written on its row (the datatype's root row is read by obj)
  for (const k of row.k ?? []) if (!(frame.rows.find((q) => q.p === '')?.k ?? []).some((z) => z[0] === k[0])) constraint(env, frame.fpBase, k, x, p, false, false);
  if (row.f !== undefined && JSON.stringify(x) !== JSON.stringify(row.f)) issue(env, p, 'fixed');
  if (row.b && (r.type === 'CodeableConcept' || r.type === 'Coding')) {
    const codings: unknown[] = r.type === 'Coding' ? [x] : Array.isArray(x.coding) ? x.coding : [];
    if (!codings.some((c) => isObj(c) && row.b!.includes(`${c.system}|${c.code}`))) issue(env, p, 'binding');
  }
  if (r.type === 'Reference' && typeof x.reference === 'string') {
    const targets = (row.t ?? []).flatMap((t) => (t.split(':')[1] ?? 'Resource').split('|'));
    const ref: string = x.reference;
    const type = ref.startsWith('#') ? env.ids.get(ref.slice(1)) : /(?:^|\/)([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/.exec(ref)?.[1];
    if (targets.length && !targets.includes('Resource') && type && !targets.includes(type)) issue(env, `${p}.reference`, 'target');
  }
}

function extensionFrame(env: Env, x: Obj, r: { row: Row }, f: Frame, p: string, frame: Frame, counts: Map<string, number>): Frame {
  const ext = typeof x.url === 'string' ? PROFILES.extensions[x.url] : undefined;
  const modifier = r.row.p.endsWith('modifierExtension');
  const slice = f.rows.find((s) => s.sl && s.p === r.row.p && s.sl === x.url);
  if (slice) {
    counts.set(x.url, (counts.get(x.url) ?? 0) + 1);
    if (slice.max >= 0 && counts.get(x.url)! > slice.max) issue(env, p, 'slice max');
  }
  if (!ext) {
    if (modifier) issue(env, p, 'unknown modifier');
    return frame;
  }
  const isMod = ext.rows.find((q) => q.p === '')?.mod === 1;
  if (modifier !== isMod) issue(env, p, 'modifier');
  const ok = slice || ext.context.some((c) => c === '*' || c === 'Element' || (ext.contextType === 'resource' ? c === f.ctxPath : c === f.ctxType));
  if (!ok) issue(env, p, 'context');
  return { rows: ext.rows, baseRows: BASE['Extension']!.rows, at: '', fpBase: 'Extension', ctxPath: frame.ctxPath, ctxType: 'Extension' };
}

function containedResource(env: Env, x: Obj, p: string, depth: number): void {
  const rt = x.resourceType;
  if (typeof rt !== 'string' || !RESOURCES.has(rt)) return issue(env, `${p}.resourceType`, 'resourceType');
  const req: string[] = env.overlay.containedRequired[rt] ?? env.overlay.containedRequired['*'] ?? [];
  for (const k of req) if (!(k in x)) issue(env, `${p}.${k}`, 'missing');
  for (const rule of env.overlay.containedValues ?? []) if (rule.type === rt) valueRule(env, x, rt, p, rule);
  const rows = BASE[rt]!.rows.map((q) => (q.p === '' ? { ...q, k: q.k?.filter((k) => !k[0].startsWith('dom-')) } : q));
  obj(env, x, { rows, baseRows: BASE[rt]!.rows, at: '', fpBase: rt, ctxPath: rt, ctxType: rt }, p, true, depth + 1);
}

function constraint(env: Env, fpBase: string, k: [string, string, string], node: unknown, path: string, isResource: boolean, primitiveHasValue: boolean): void {
  const [key, expr] = k;
  if (key === 'txt-1' || key === 'txt-2') return; // htmlchecks(): checked on the div's format
  if (key === 'ele-1') {
    // on a primitive's companion the element is the primitive: its value counts
    if (primitiveHasValue || isResource) return;
  }
  if (!holds(compileConstraint(fpBase, expr), node, env.res, env.res)) issue(env, path, key);
}
