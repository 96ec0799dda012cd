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
  const m = (container as { [RAW_NUMBERS]?: Map<string, string> })[RAW_NUMBERS];
  return m?.get(String(key)) ?? String(value);
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
  try {
    return { ok: true, value: parse(text, maxDepth, maxNodes) };
  } catch (e) {
    if (e instanceof Fail) return { ok: false, reason: e.reason, offset: e.offset };
    throw e;
  }
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

function keepRaw(container: object, key: string, text: string): void {
  const holder = container as { [RAW_NUMBERS]?: Map<string, string> };
  let m = holder[RAW_NUMBERS];
  if (!m) {
    m = new Map();
    Object.defineProperty(container, RAW_NUMBERS, { value: m, enumerable: false });
  }
  m.set(key, text);
}
