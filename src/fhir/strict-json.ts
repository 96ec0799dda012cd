/**
 * A strict JSON parser for request bodies (ruling 6). JSON.parse silently keeps the last of
 * duplicate keys and accepts `__proto__`, so two readers (the gateway and the provider) could see
 * different resources in the same bytes; here both are refused, as is nesting deeper than the limit
 * and a non-finite number. Iterative, so hostile depth cannot overflow the stack.
 */

/**
 * Issue 13 item 11 (ruling 26): numbers are compared by their exact decimal text (`1.0` and `1.00`
 * differ; integers beyond 2^53 differ). A container holding a number whose text is not
 * `String(Number(text))` carries, under this non-enumerable symbol, a Map from key (object key or
 * array index as a string) to the text as written. Absent when every number is canonical (cheap).
 */
export const RAW_NUMBERS: unique symbol = Symbol('cancel-gateway.rawNumbers');

/** The number at `container[key]` as written in the JSON text. */
export function numberText(container: object, key: string | number, value: number): string {
  return writtenNumber(container, key) ?? String(value);
}

/** A shallow copy of `o` that keeps the written text of its numbers (RAW_NUMBERS, non-enumerable, which a spread drops). */
export function copyKeepingNumberText<T extends object>(o: T): T {
  const copy = { ...o };
  const raw = (o as { [RAW_NUMBERS]?: unknown })[RAW_NUMBERS];
  if (raw) Object.defineProperty(copy, RAW_NUMBERS, { value: raw, enumerable: false });
  return copy;
}

/**
 * JSON text of a parsed resource with every number as it was written (RAW_NUMBERS, ruling 26):
 * `1.10` stays `1.10` where JSON.stringify would write `1.1`. Otherwise as JSON.stringify.
 */
export function stringifyKeepingNumberText(v: unknown, written?: string): string {
  if (typeof v === 'number') return written ?? JSON.stringify(v);
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  const texts = (v as { [RAW_NUMBERS]?: Map<string, string> })[RAW_NUMBERS];
  if (Array.isArray(v)) {
    const items: string[] = [];
    // By index, as JSON.stringify: a hole is written null.
    for (let i = 0; i < v.length; i++) items.push(v[i] === undefined || typeof v[i] === 'function' ? 'null' : stringifyKeepingNumberText(v[i], texts?.get(String(i))));
    return `[${items.join(',')}]`;
  }
  const parts: string[] = [];
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k];
    if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
    parts.push(`${JSON.stringify(k)}:${stringifyKeepingNumberText(x, texts?.get(k))}`);
  }
  return `{${parts.join(',')}}`;
}

/** The number at `container[key]` as written, when that is not its canonical form. */
export function writtenNumber(container: object, key: string | number): string | undefined {
  return (container as { [RAW_NUMBERS]?: Map<string, string> })[RAW_NUMBERS]?.get(String(key));
}

export type StrictJsonResult = { ok: true; value: unknown } | { ok: false; reason: string; offset: number };

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

class Fail {
  constructor(readonly reason: string, readonly offset: number) {}
}

/**
 * `maxNodes` bounds the number of values (objects, arrays, strings, numbers, literals) so that the
 * cost of refusing a body stays close to that of a normal one (issue 13 item 3).
 */
export function parseStrictJson(text: string, maxDepth: number, maxNodes = Number.POSITIVE_INFINITY): StrictJsonResult {
  const fast = nativeWhenPlain(text, maxDepth, maxNodes);
  if (fast !== NOT_PLAIN) return { ok: true, value: fast };
  return parseStrictJsonScanning(text, maxDepth, maxNodes);
}

/** The strict parser alone (what the native fast path must always agree with; tests compare them). */
export function parseStrictJsonScanning(text: string, maxDepth: number, maxNodes = Number.POSITIVE_INFINITY): StrictJsonResult {
  try {
    return { ok: true, value: parse(text, maxDepth, maxNodes) };
  } catch (e) {
    if (e instanceof Fail) return { ok: false, reason: e.reason, offset: e.offset };
    throw e;
  }
}

const NOT_PLAIN: unique symbol = Symbol('not plain');

/**
 * Issue 17: the common body, parsed natively, with the same result the strict parser would give.
 * Strings are skipped quote to quote (a quote after an odd run of backslashes is inside the
 * string), so what lies between them is exactly the JSON structure. Taken only for a text whose
 * members (':' outside strings) number as many as
 * the keys JSON.parse kept (no duplicates), whose numbers are all canonical, and whose keys, depth
 * and node count the strict parser would accept. Anything else — including every refusal — goes
 * to the strict parser, which alone decides and explains.
 */
function nativeWhenPlain(text: string, maxDepth: number, maxNodes: number): unknown {
  const members = structureOutsideStrings(text);
  if (members < 0) return NOT_PLAIN;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return NOT_PLAIN;
  }
  const count = { keys: 0, nodes: 0 };
  if (!plainValue(value, 1, maxDepth, maxNodes, count) || count.keys !== members) return NOT_PLAIN;
  return value;
}

/**
 * Members (':' outside strings) of a JSON text, or -1 when a number is not written
 * canonically (the strict parser keeps its text, RAW_NUMBERS) or a string is not closed.
 */
function structureOutsideStrings(s: string): number {
  let colons = 0;
  let i = 0;
  const n = s.length;
  while (i < n) {
    const q = s.indexOf('"', i);
    const end = q === -1 ? n : q;
    for (let j = i; j < end; j++) {
      const c = s.charCodeAt(j);
      if (c === 0x3a) colons++;
      else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
        let k = j + 1;
        while (k < end) {
          const d = s.charCodeAt(k);
          if (d === 0x2c || d === 0x5d || d === 0x7d || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09) break;
          k++;
        }
        const token = s.slice(j, k);
        if (String(Number(token)) !== token) return -1;
        j = k - 1;
      }
    }
    if (q === -1) break;
    const close = closingQuote(s, q);
    if (close === -1) return -1;
    i = close + 1;
  }
  return colons;
}

const FAST_PATH_DEPTH = 256;

/** The quote that closes the string opened at `open`: the next one not escaped by an odd run of backslashes. */
function closingQuote(s: string, open: number): number {
  let at = open;
  for (;;) {
    at = s.indexOf('"', at + 1);
    if (at === -1) return -1;
    let backslashes = 0;
    while (s.charCodeAt(at - 1 - backslashes) === 0x5c) backslashes++;
    if ((backslashes & 1) === 0) return at;
  }
}

/** Depth, node count, forbidden keys and finite numbers, as the strict parser checks them. */
function plainValue(v: unknown, depth: number, maxDepth: number, maxNodes: number, count: { keys: number; nodes: number }): boolean {
  if (++count.nodes > maxNodes) return false;
  if (typeof v !== 'object' || v === null) return typeof v !== 'number' || (Number.isFinite(v) && !Object.is(v, -0));
  // Deeper than the fast path recurses: the iterative strict parser decides.
  if (depth > maxDepth || depth > FAST_PATH_DEPTH) return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!plainValue(v[i], depth + 1, maxDepth, maxNodes, count)) return false;
    return true;
  }
  for (const key in v) {
    const c = key.charCodeAt(0);
    // '_', 'c', 'p': only then can the key be one of FORBIDDEN_KEYS (a Set lookup per key costs)
    if ((c === 0x5f || c === 0x63 || c === 0x70) && FORBIDDEN_KEYS.has(key)) return false;
    count.keys++;
    if (!plainValue((v as Record<string, unknown>)[key], depth + 1, maxDepth, maxNodes, count)) return false;
  }
  return true;
}

type Frame =
  | { kind: 'array'; value: unknown[] }
  | { kind: 'object'; value: Record<string, unknown>; key: string };

function parse(s: string, maxDepth: number, maxNodes: number): unknown {
  let i = 0;
  let nodes = 0;
  /** Text of the number just read when it is not canonical, else undefined. */
  let rawText: string | undefined;
  const n = s.length;
  const stack: Frame[] = [];

  const ws = () => {
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };

  const readString = (): string => {
    // s[i] is the opening quote.
    const start = ++i;
    let escaped = false;
    for (;;) {
      if (i >= n) throw new Fail('unterminated string', start - 1);
      const c = s.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) throw new Fail('control character in string', i);
      if (c === 0x5c) {
        escaped = true;
        i += 2;
        continue;
      }
      i++;
    }
    const raw = s.slice(start, i);
    i++;
    if (!escaped) return raw;
    try {
      return JSON.parse(`"${raw}"`) as string;
    } catch {
      throw new Fail('invalid escape in string', start);
    }
  };

  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const readNumber = (): number => {
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(s);
    if (!m) throw new Fail('invalid number', i);
    const v = Number(m[0]);
    if (!Number.isFinite(v)) throw new Fail('number out of range', i);
    i += m[0].length;
    if (String(v) !== m[0]) rawText = m[0];
    return v;
  };

  const readLiteral = (word: string, value: unknown): unknown => {
    if (s.startsWith(word, i)) {
      i += word.length;
      return value;
    }
    throw new Fail('unexpected character', i);
  };

  let result: unknown;
  let haveResult = false;

  // Attach a finished value to the parent frame, or make it the result.
  const emit = (v: unknown) => {
    const top = stack[stack.length - 1];
    if (!top) {
      result = v;
      haveResult = true;
      return;
    }
    const key = top.kind === 'array' ? String(top.value.length) : top.key;
    if (top.kind === 'array') top.value.push(v);
    else top.value[top.key] = v;
    if (rawText !== undefined) {
      keepRaw(top.value, key, rawText);
      rawText = undefined;
    }
  };

  // Parse one value start; containers push a frame, primitives are emitted.
  const valueStart = () => {
    ws();
    if (i >= n) throw new Fail('unexpected end', i);
    if (++nodes > maxNodes) throw new Fail(`more than ${maxNodes} JSON values`, i);
    const c = s[i];
    if (c === '{' || c === '[') {
      if (stack.length >= maxDepth) throw new Fail(`nesting deeper than ${maxDepth}`, i);
      i++;
      if (c === '{') stack.push({ kind: 'object', value: {}, key: '' });
      else stack.push({ kind: 'array', value: [] });
      return true;
    }
    if (c === '"') emit(readString());
    else if (c === 't') emit(readLiteral('true', true));
    else if (c === 'f') emit(readLiteral('false', false));
    else if (c === 'n') emit(readLiteral('null', null));
    else if (c === '-' || (c! >= '0' && c! <= '9')) emit(readNumber());
    else throw new Fail('unexpected character', i);
    return false;
  };

  // Read a key (and colon) for an object frame; returns false if the object closed.
  const objectKey = (top: Extract<Frame, { kind: 'object' }>, first: boolean): boolean => {
    ws();
    if (first && s[i] === '}') {
      i++;
      return false;
    }
    if (s[i] !== '"') throw new Fail('expected a key', i);
    const keyAt = i;
    const key = readString();
    if (FORBIDDEN_KEYS.has(key)) throw new Fail(`forbidden key '${key}'`, keyAt);
    // Every earlier member is already an own property of the object being built (a value is
    // emitted before the next key is read), so the object itself is the set of keys seen: no Set
    // per object (issue 6 profile). Forbidden keys never get here, so no prototype setter runs.
    if (Object.prototype.hasOwnProperty.call(top.value, key)) throw new Fail('duplicate key', keyAt); // the key itself is body data: not echoed (ruling 14)
    top.key = key;
    ws();
    if (s[i] !== ':') throw new Fail("expected ':'", i);
    i++;
    return true;
  };

  // Start: one value.
  let opened = valueStart();
  for (;;) {
    const top = stack[stack.length - 1];
    if (!top) break;
    if (opened) {
      // A container was just opened: read its first member or close it.
      opened = false;
      if (top.kind === 'object') {
        if (!objectKey(top, true)) {
          stack.pop();
          emit(top.value);
          continue;
        }
      } else {
        ws();
        if (s[i] === ']') {
          i++;
          stack.pop();
          emit(top.value);
          continue;
        }
      }
      opened = valueStart();
      continue;
    }
    // After a member value: ',' or close.
    ws();
    const c = s[i];
    if (c === ',') {
      i++;
      if (top.kind === 'object') objectKey(top, false);
      opened = valueStart();
      continue;
    }
    if ((c === '}' && top.kind === 'object') || (c === ']' && top.kind === 'array')) {
      i++;
      stack.pop();
      emit(top.value);
      continue;
    }
    throw new Fail(i >= n ? 'unexpected end' : "expected ',' or a closing bracket", i);
  }
  if (!haveResult) throw new Fail('no value', i);
  ws();
  if (i < n) throw new Fail('trailing data after the JSON value', i);
  return result;
}

/** Remember `text` as the written form of the number at `container[key]` (see RAW_NUMBERS). */
export function keepRaw(container: object, key: string, text: string): void {
  const holder = container as { [RAW_NUMBERS]?: Map<string, string> };
  let m = holder[RAW_NUMBERS];
  if (!m) {
    m = new Map();
    Object.defineProperty(container, RAW_NUMBERS, { value: m, enumerable: false });
  }
  m.set(key, text);
}
