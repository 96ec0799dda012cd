/**
 * Pure structural diff of two FHIR JSON resources, for the business rules of
 * ../shared/spec/README.md ruling 9: "any difference between the stored and the submitted
 * appointment other than the cancellation" is reported, one issue per differing element.
 *
 * Semantics (ruling 9, "comparison is of JSON values"):
 * - object key order is irrelevant; a key present on one side only is one `added`/`removed`
 *   at that key (we do not descend into it). A key whose value is `undefined` counts as absent,
 *   as in `JSON.stringify` (only reachable for in-process objects, never for parsed JSON).
 * - primitives compare exactly: strings by code units (`Z` vs `+00:00` differ, no trimming),
 *   no coercion (`1` vs `"1"` differ), numbers by their decimal text as written when parsed by
 *   ./strict-json.ts (`1.0` and `1.00` differ, ruling 26), else by value.
 * - a type change (object / array / primitive / null) is one `changed` at that node.
 * - arrays are compared element by element; the longer side's extra indexes are `added` /
 *   `removed`. The top-level `contained` array is the exception: entries are matched by `id`
 *   (FHIR references them as `#id`, so their position carries no meaning), unless an entry on
 *   either side lacks a string id or an id repeats, in which case that array is compared by index.
 *   A matched entry is named by its index in the submitted array (a removed one, in the stored
 *   one), never by its id: the id is a body value (ruling 19: no patient data in the audit).
 *
 * Never throws, never recurses without bound: descent stops at MAX_DEPTH, below which an
 * iterative equality check decides and a single `changed` is reported.
 */

import { numberText } from './strict-json.js';
import { isJsonObject as isObject } from './json.js';

export type DiffKind = 'added' | 'removed' | 'changed';
export interface Difference {
  path: string;
  kind: DiffKind;
}

export interface DiffOptions {
  /** First path segment; default the `resourceType` of `before`, else `Resource`. */
  root?: string;
  /** Stop after this many differences (the first ones in path order); default 100, minimum 1. */
  maxDifferences?: number;
  /**
   * Which identifier-shaped keys may be echoed in a path (ruling 20); default any. The cancel's
   * change rules pass the names FHIR defines, so a key holding data is rendered `<unknown>`.
   */
  echoKey?: (key: string) => boolean;
}

const ANY_KEY = (): boolean => true;

/** Deeper nodes are compared as a whole (iteratively), bounding both recursion and path length. */
const MAX_DEPTH = 256;
const DEFAULT_MAX_DIFFERENCES = 100;
/** FHIRPath identifier (FHIRPath N1 §"Identifiers"): element names such as `_birthDate` qualify. */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/**
 * Issue 13 item 6 (ruling 20): a key from the body is echoed only when it could be a FHIR element
 * name; anything else (a key holding a name and an address, 2 KB of text) becomes a placeholder.
 */
const ELEMENT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
export const UNKNOWN_SEGMENT = '<unknown>';
const MAX_PATH = 256;

const hasOwn = Object.prototype.hasOwnProperty;

type JsonObject = Record<string, unknown>;

/** A path segment: an object key or an array index (a `contained` entry matched by id: its index). */
type Segment = string | number;


/** Present = own property with a defined value (JSON.stringify drops `undefined`). */
function present(o: JsonObject, k: string): boolean {
  return hasOwn.call(o, k) && o[k] !== undefined;
}

/** Primitive equality: `===`, except that NaN equals NaN (not JSON, but keeps equality reflexive). */
function primitiveEqual(a: unknown, b: unknown): boolean {
  return a === b || (a !== a && b !== b);
}

/** Deep JSON equality with the same semantics (key order irrelevant, arrays ordered, contained not special). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  try {
    return jsonEqualIterative(a, b);
  } catch {
    // Only non-JSON inputs (throwing getters, revoked proxies) get here; "not equal" fails closed.
    return false;
  }
}

/** Explicit work stack instead of recursion: safe at any nesting depth. */
function jsonEqualIterative(a0: unknown, b0: unknown): boolean {
  const left: unknown[] = [a0];
  const right: unknown[] = [b0];
  while (left.length > 0) {
    const a = left.pop();
    const b = right.pop();
    if (a === b) continue; // same primitive or same reference (JSON trees are acyclic)
    if (Array.isArray(a)) {
      if (!Array.isArray(b) || a.length !== b.length) return false;
      for (let i = 0; i < a.length; i++) {
        left.push(a[i]);
        right.push(b[i]);
      }
    } else if (isObject(a)) {
      if (!isObject(b)) return false;
      let countA = 0;
      for (const k of Object.keys(a)) {
        const va = a[k];
        if (va === undefined) continue;
        countA++;
        if (!present(b, k)) return false;
        left.push(va);
        right.push(b[k]);
      }
      let countB = 0;
      for (const k of Object.keys(b)) if (b[k] !== undefined) countB++;
      if (countA !== countB) return false;
    } else if (!primitiveEqual(a, b)) {
      return false;
    }
  }
  return true;
}

/** Below this depth `sameJson` answers "not known to be equal" and the ordered walk decides. */
const SAME_DEPTH = 64;

/**
 * True only when `a` and `b` are equal under the diff's own semantics (a key whose value is
 * `undefined` is absent; numbers equal by their written text, ruling 26). Allocates nothing
 * (for-in over own keys, no key arrays); false when unsure (too deep), so at worst the ordered
 * walk runs as before. At most one pass over the smaller of the two trees.
 */
function sameJson(a: unknown, b: unknown, depth: number): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || depth > SAME_DEPTH) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      const va = a[i];
      const vb = b[i];
      if (va === vb) {
        if (typeof va === 'number' && numberText(a, i, va) !== numberText(b, i, va)) return false;
      } else if (!sameJson(va, vb, depth + 1)) return false;
    }
    return true;
  }
  if (Array.isArray(b)) return false;
  const oa = a as JsonObject;
  const ob = b as JsonObject;
  let countA = 0;
  for (const k in oa) {
    if (!hasOwn.call(oa, k)) continue;
    const va = oa[k];
    if (va === undefined) continue;
    countA++;
    if (!hasOwn.call(ob, k)) return false;
    const vb = ob[k];
    if (va === vb) {
      if (typeof va === 'number' && numberText(oa, k, va) !== numberText(ob, k, va)) return false;
    } else if (!sameJson(va, vb, depth + 1)) return false;
  }
  let countB = 0;
  for (const k in ob) if (hasOwn.call(ob, k) && ob[k] !== undefined) countB++;
  return countA === countB;
}

/**
 * A repeating primitive with extensions only: FHIR JSON may write its values array as nulls
 * (`"given": [null], "_given": [{…}]`, the XML decoder's form) or leave it out (`"_given": [{…}]`).
 * The two are one element (ruling 21): a values array of nulls on one side only, with the
 * companion on both, is no difference (the companions are compared on their own).
 */
function onlyNullsBesideCompanion(has: JsonObject, lacks: JsonObject, k: string): boolean {
  const v = has[k];
  return Array.isArray(v) && v.every((x) => x === null) && present(has, `_${k}`) && present(lacks, `_${k}`);
}

/** Differences between the stored resource `before` and the submitted `after`. */
export function diffResources(before: unknown, after: unknown, options?: DiffOptions): Difference[] {
  let root = 'Resource';
  try {
    root = rootOf(before, options);
    const max = maxOf(options);
    // Issue 17: a valid cancel has no difference left once the allowed ones are set aside; one
    // walk that allocates nothing says so, and only a resource that differs pays the ordered walk.
    if (sameJson(before, after, 0)) return [];
    const walker = new Walker(root, max, options?.echoKey ?? ANY_KEY);
    walker.walk(before, after, 0, true);
    return walker.out;
  } catch {
    // Unreachable for JSON input; for exotic objects, report the whole resource rather than
    // let a throw (or an empty list) be read as "no difference".
    return [{ path: root, kind: 'changed' }];
  }
}

function rootOf(before: unknown, options: DiffOptions | undefined): string {
  if (options && typeof options.root === 'string') return options.root;
  if (isObject(before)) {
    const rt = before['resourceType'];
    // A non-identifier resourceType would make every path unparseable; the stored resource has
    // passed the provider, but we do not trust it to shape our diagnostics.
    if (typeof rt === 'string' && IDENTIFIER.test(rt)) return rt;
  }
  return 'Resource';
}

function maxOf(options: DiffOptions | undefined): number {
  const m = options?.maxDifferences;
  if (typeof m !== 'number' || Number.isNaN(m)) return DEFAULT_MAX_DIFFERENCES;
  // At least 1: a cap of 0 would turn a real difference into "no difference".
  return Math.max(1, Math.floor(m));
}

function renderSegment(s: Segment, echo: (key: string) => boolean): string {
  if (typeof s === 'number') return '[' + s + ']';
  return ELEMENT_NAME.test(s) && echo(s) ? '.' + s : '.' + UNKNOWN_SEGMENT;
}

/**
 * Depth-first walk in path order (keys by code unit order, indexes ascending; contained entries
 * matched by id in submitted order, then the removed ones), so stopping at `max` keeps the first.
 * The current path lives in one mutable segment stack; strings are built only when reporting.
 */
class Walker {
  readonly out: Difference[] = [];
  private readonly segs: Segment[] = [];

  constructor(
    private readonly root: string,
    private readonly max: number,
    private readonly echo: (key: string) => boolean,
  ) {}

  private full(): boolean {
    return this.out.length >= this.max;
  }

  private report(kind: DiffKind, last?: Segment): void {
    let path = this.root;
    for (const s of this.segs) path += renderSegment(s, this.echo);
    if (last !== undefined) path += renderSegment(last, this.echo);
    // Issue 13 item 6: a path is at most MAX_PATH characters however deep the body nests.
    if (path.length > MAX_PATH) path = path.slice(0, MAX_PATH - 12) + '.<truncated>';
    this.out.push({ path, kind });
  }

  walk(a: unknown, b: unknown, depth: number, isRoot: boolean): void {
    if (a === b) return;
    const aArr = Array.isArray(a);
    const bArr = Array.isArray(b);
    const aObj = !aArr && isObject(a);
    const bObj = !bArr && isObject(b);
    if ((aArr && bArr) || (aObj && bObj)) {
      if (depth >= MAX_DEPTH) {
        if (!jsonEqualIterative(a, b)) this.report('changed');
        return;
      }
      if (aArr) this.walkArray(a as unknown[], b as unknown[], depth);
      else this.walkObject(a as JsonObject, b as JsonObject, depth, isRoot);
      return;
    }
    if (aArr || bArr || aObj || bObj || !primitiveEqual(a, b)) this.report('changed');
  }

  private walkObject(a: JsonObject, b: JsonObject, depth: number, isRoot: boolean): void {
    const keys = Object.keys(a);
    for (const k of Object.keys(b)) if (!hasOwn.call(a, k)) keys.push(k);
    sortKeys(keys);
    for (const k of keys) {
      if (this.full()) return;
      const pa = present(a, k);
      const pb = present(b, k);
      if (pa && pb) {
        const va = a[k];
        const vb = b[k];
        if (va === vb) {
          // Ruling 26: equal doubles may be different decimals as written (1.0 vs 1.00).
          if (typeof va === 'number' && numberText(a, k, va) !== numberText(b, k, vb as number)) this.report('changed', k);
          continue;
        }
        if (isRoot && k === 'contained' && Array.isArray(va) && Array.isArray(vb)) {
          const ia = idIndex(va);
          const ib = ia && idIndex(vb);
          if (ia && ib) {
            this.segs.push(k);
            this.walkContainedById(va, vb, ia, ib, depth + 1);
            this.segs.pop();
            continue;
          }
        }
        this.segs.push(k);
        this.walk(va, vb, depth + 1, false);
        this.segs.pop();
      } else if (pa) {
        if (!onlyNullsBesideCompanion(a, b, k)) this.report('removed', k);
      } else if (pb) {
        if (!onlyNullsBesideCompanion(b, a, k)) this.report('added', k);
      }
    }
  }

  private walkArray(a: unknown[], b: unknown[], depth: number): void {
    const common = Math.min(a.length, b.length);
    for (let i = 0; i < common; i++) {
      if (this.full()) return;
      const va = a[i];
      if (typeof va === 'number' && va === b[i] && numberText(a, i, va) !== numberText(b, i, va)) {
        this.report('changed', i);
        continue;
      }
      this.segs.push(i);
      this.walk(va, b[i], depth + 1, false);
      this.segs.pop();
    }
    for (let i = common; i < a.length; i++) {
      if (this.full()) return;
      this.report('removed', i);
    }
    for (let i = common; i < b.length; i++) {
      if (this.full()) return;
      this.report('added', i);
    }
  }

  /**
   * `contained` matched by id (ruling 9); each entry is reported at its index in the submitted
   * array (`b`), a removed one at its index in the stored one (`a`): submitted entries first, in
   * order, then the removed ones.
   */
  private walkContainedById(av: unknown[], bv: unknown[], a: Map<string, number>, b: Map<string, number>, depth: number): void {
    const ids = [...b.keys()].sort((x, y) => b.get(x)! - b.get(y)!);
    for (const id of [...a.keys()].sort((x, y) => a.get(x)! - a.get(y)!)) if (!b.has(id)) ids.push(id);
    for (const id of ids) {
      if (this.full()) return;
      // Named by its position, never by its id: an id is a body value the client chose (an NHS
      // number, a name), and paths reach answers and the audit trail.
      const seg = b.get(id) ?? a.get(id)!;
      if (a.has(id) && b.has(id)) {
        this.segs.push(seg);
        this.walk(av[a.get(id)!], bv[b.get(id)!], depth + 1, false);
        this.segs.pop();
      } else if (a.has(id)) {
        this.report('removed', seg);
      } else {
        this.report('added', seg);
      }
    }
  }
}

/**
 * `keys.sort()` (code unit order) in place. Element objects are small, and the engine's sort
 * allocates work space on every call: an insertion sort for them cut the diff's garbage per cancel
 * (issue 6 profile). Keys are distinct, so stability does not matter.
 */
function sortKeys(keys: string[]): void {
  if (keys.length > 24) {
    keys.sort();
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
}

/** id → index, or undefined when matching by id is not possible (missing/non-string/duplicate id). */
function idIndex(entries: unknown[]): Map<string, number> | undefined {
  const m = new Map<string, number>();
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (!isObject(e)) return undefined;
    const id = e['id'];
    if (typeof id !== 'string' || m.has(id)) return undefined;
    m.set(id, i);
  }
  return m;
}
