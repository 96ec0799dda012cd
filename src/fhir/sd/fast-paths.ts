import { instantMillis } from './primitives.js';
import { isJsonObject as isObj } from '../json.js';

/**
 * Hand-written equivalents of the hot FHIRPath constraints (issue 14: evaluating FHIRPath for every
 * constraint of every element costs 50-150 µs each). Each returns whether the constraint holds on
 * `o` (the object the constraint's context names), or undefined when it cannot decide cheaply, and
 * the engine is asked. test/fhir/profile-fast-paths.test.ts proves each agrees with the engine.
 */
type Obj = Record<string, unknown>;
export type FastPath = (o: Obj, resource: Obj) => boolean | undefined;

const has = (o: Obj, k: string): boolean => {
  const v = o[k];
  if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) return true;
  const c = o['_' + k];
  return c !== undefined && c !== null && !(Array.isArray(c) && c.length === 0);
};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

/** Every `reference` string of the Reference elements below `o` (descendants().reference, approximately). */
export function collectReferences(o: unknown, out: Set<string>, depth = 0): void {
  if (depth > 100) return;
  if (Array.isArray(o)) {
    for (const x of o) collectReferences(x, out, depth + 1);
    return;
  }
  if (!isObj(o)) return;
  for (const k of Object.keys(o)) {
    const v = o[k];
    if (k === 'reference' && typeof v === 'string') out.add(v);
    else if (typeof v === 'object' && v !== null) collectReferences(v, out, depth + 1);
  }
}

/**
 * per-1 where a date has a year before 1 (STU3's dateTime allows `-0001`; the FHIRPath engine
 * cannot read it). Two full instants compare by their time; otherwise by year, month and day at
 * the precision both carry, and equal there is no violation (FHIRPath's answer is then empty).
 */
function signedYearsOrder(s: string, e: string): boolean | undefined {
  const a = signedDateTime(s);
  const b = signedDateTime(e);
  if (!a || !b) return undefined;
  if (a.ms !== undefined && b.ms !== undefined) return a.ms <= b.ms;
  const n = Math.min(a.parts.length, b.parts.length);
  for (let i = 0; i < n; i++) if (a.parts[i] !== b.parts[i]) return a.parts[i]! < b.parts[i]!;
  return true;
}

const SIGNED_DATE_TIME = /^(-?\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;

/** Year (signed), month and day as written, and the instant when a time and zone are given. */
function signedDateTime(v: string): { parts: number[]; ms?: number } | undefined {
  const m = SIGNED_DATE_TIME.exec(v);
  if (!m) return undefined;
  const parts = [Number(m[1]), ...(m[2] ? [Number(m[2])] : []), ...(m[3] ? [Number(m[3])] : [])];
  if (!m[4]) return { parts };
  const d = new Date(0);
  d.setUTCFullYear(parts[0]!, parts[1]! - 1, parts[2]!); // any year, 0-99 not read as 1900-1999
  d.setUTCHours(Number(m[4]), Number(m[5]), Number(m[6]), m[7] ? Math.floor(Number(m[7]) * 1000) : 0);
  const zone = m[8]!;
  const offset = zone === 'Z' ? 0 : (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  return { parts, ms: d.getTime() - offset * 60_000 };
}

export const FAST_PATHS: Record<string, FastPath> = {
  'ext-1': (o) => {
    let value = false;
    for (const k of Object.keys(o)) {
      if (/^_?value[A-Z]/.test(k) && o[k] !== null) value = true;
    }
    return has(o, 'extension') !== value;
  },
  'app-1': (o) => has(o, 'type') || has(o, 'actor'),
  'app-2': (o) => has(o, 'start') === has(o, 'end'),
  'app-3': (o) => {
    if (has(o, 'start') && has(o, 'end')) return true;
    // no status: the engine's answer is empty, not false (status 1..1 is reported on its own)
    if (typeof o['status'] !== 'string') return undefined;
    return o['status'] === 'proposed' || o['status'] === 'cancelled';
  },
  'dom-1': (o) => list(o['contained']).every((c) => !isObj(c) || !has(c, 'text')),
  'dom-2': (o) => list(o['contained']).every((c) => !isObj(c) || !has(c, 'contained')),
  'dom-4': (o) =>
    list(o['contained']).every((c) => !isObj(c) || !isObj(c['meta']) || (!has(c['meta'], 'versionId') && !has(c['meta'], 'lastUpdated'))),
  'dom-3': (o, resource) => {
    const contained = list(o['contained']);
    if (contained.length === 0) return true;
    const refs = new Set<string>();
    collectReferences(resource, refs);
    return contained.every((c) => !isObj(c) || c['id'] === undefined || (typeof c['id'] === 'string' && refs.has('#' + c['id'])));
  },
  'ref-1': (o, resource) => {
    const ref = o['reference'];
    // '#' alone names the container (the engine's substring(1) is empty, so the constraint holds)
    if (typeof ref !== 'string' || !ref.startsWith('#') || ref === '#') return true;
    const id = ref.slice(1);
    return list(resource['contained']).some((c) => isObj(c) && c['id'] === id);
  },
  'per-1': (o) => {
    const s = o['start'];
    const e = o['end'];
    if (s === undefined || e === undefined) return true;
    if (typeof s !== 'string' || typeof e !== 'string') return undefined;
    // a year before 1 (STU3's dateTime allows `-0001`): the engine cannot read it, so decide here
    if (s.charCodeAt(0) === 0x2d || e.charCodeAt(0) === 0x2d) return signedYearsOrder(s, e);
    const a = instantMillis(s);
    const b = instantMillis(e);
    // the engine compares at the precision both carry: decide only when it cannot matter
    if (a === undefined || b === undefined) return undefined;
    if (Math.abs(a - b) >= 1000) return a <= b;
    return undefined;
  },
  'cpt-2': (o) => !has(o, 'value') || has(o, 'system'),
  'att-1': (o) => !has(o, 'data') || has(o, 'contentType'),
  'org-1': (o) => has(o, 'identifier') || has(o, 'name'),
  // where(use = 'home').empty() on one address / telecom
  'org-2': (o) => o['use'] !== 'home',
  'org-3': (o) => o['use'] !== 'home',
};
