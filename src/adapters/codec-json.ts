import { parseStrictJson, stringifyKeepingNumberText } from '../fhir/strict-json.js';
import type { Codec, DecodeResult } from '../ports/codec.js';

// ignoreBOM: true keeps a leading U+FEFF in the text so it is refused, not skipped: RFC 8259 §8.1
// forbids it, and a BOM-unaware provider would read the forwarded bytes as not JSON (ruling 6).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Default bound on the number of JSON values when a caller passes none (each costs memory). */
export const DEFAULT_MAX_NODES = 100_000;

function decode(bytes: Buffer, limits: { maxDepth: number; maxNodes: number }): DecodeResult {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return { ok: false, diagnostics: 'The body starts with a byte order mark' };
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { ok: false, diagnostics: 'The body is not valid UTF-8' };
  }
  const parsed = parseStrictJson(text, limits.maxDepth, limits.maxNodes ?? DEFAULT_MAX_NODES);
  if (!parsed.ok) return { ok: false, diagnostics: `The body is not valid JSON: ${parsed.reason} at offset ${parsed.offset}` };
  const v = parsed.value;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, diagnostics: 'The body is not a JSON object' };
  return { ok: true, resource: v as Record<string, unknown> };
}

/** FHIR JSON through the strict parser (ruling 6: duplicate and prototype keys, depth, node count). */
export const jsonCodec: Codec = Object.freeze({
  format: 'json' as const,
  mediaTypes: Object.freeze(['application/fhir+json', 'application/json+fhir', 'application/json', 'text/json']),
  contentType: 'application/fhir+json; charset=utf-8',
  decode,
  // Numbers as written (a version kept as XML with `1.10` is re-encoded `1.10`, not `1.1`).
  encode: (resource: Record<string, unknown>) => Buffer.from(stringifyKeepingNumberText(resource), 'utf8'),
});
