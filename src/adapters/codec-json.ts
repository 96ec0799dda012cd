import type { Codec, DecodeResult } from '../ports/codec.js';
import { parseStrictJson } from '../fhir/strict-json.js';

// ignoreBOM keeps a leading U+FEFF in the text so the strict parser refuses it (ruling 6).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** FHIR JSON through the strict parser (duplicate keys, prototype keys, depth refused). */
export const jsonCodec: Codec = {
  format: 'json',
  mediaTypes: ['application/fhir+json', 'application/json+fhir', 'application/json'],
  contentType: 'application/fhir+json; charset=utf-8',
  decode(bytes, limits): DecodeResult {
    if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return { ok: false, diagnostics: 'The body starts with a byte order mark' };
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      return { ok: false, diagnostics: 'The body is not valid UTF-8' };
    }
    const parsed = parseStrictJson(text, limits.maxDepth);
    if (!parsed.ok) return { ok: false, diagnostics: `The body is not valid JSON: ${parsed.reason} at offset ${parsed.offset}` };
    const v = parsed.value;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, diagnostics: 'The body is not a JSON object' };
    return { ok: true, resource: v as Record<string, unknown> };
  },
  encode: (resource) => Buffer.from(JSON.stringify(resource)),
};
