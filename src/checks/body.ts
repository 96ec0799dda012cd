import type { Config } from '../config.js';
import { GatewayError } from '../errors.js';
import { parseStrictJson } from '../fhir/strict-json.js';
import type { Check } from './types.js';

// ignoreBOM: true keeps a leading U+FEFF in the text, so the strict parser refuses it (400): a
// decoder that silently skipped it would forward bytes a BOM-unaware provider reads as not JSON
// (ruling 6: not JSON -> 400; the gateway and the provider must see the same document).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Ruling 6: size (413), strict JSON (400: duplicate keys, prototype keys, depth), an object with
 * resourceType Appointment and the URL's id (400). The raw bytes are kept to forward unchanged.
 */
export function createBodyCheck(config: Readonly<Config>): Check {
  const { maxBodyBytes, maxJsonDepth, maxJsonNodes } = config.limits;
  return {
    name: 'body',
    family: 'body',
    async run(ctx, io) {
      const raw = await io.readBody(maxBodyBytes);
      ctx.rawBody = raw;
      // RFC 8259 §8.1: no byte order mark. Refused rather than skipped, so the gateway and the
      // provider cannot read the same bytes differently (ruling 6).
      if (raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) throw new GatewayError('BODY_INVALID', 'The body starts with a byte order mark');
      let text: string;
      try {
        text = utf8.decode(raw);
      } catch {
        throw new GatewayError('BODY_INVALID', 'The body is not valid UTF-8');
      }
      const parsed = parseStrictJson(text, maxJsonDepth, maxJsonNodes);
      if (!parsed.ok) throw new GatewayError('BODY_INVALID', `The body is not valid JSON: ${parsed.reason} at offset ${parsed.offset}`);
      const v = parsed.value;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new GatewayError('BODY_INVALID', 'The body is not a JSON object');
      const r = v as Record<string, unknown>;
      if (r.resourceType !== 'Appointment') throw new GatewayError('BODY_INVALID', { diagnostics: 'resourceType must be Appointment', expression: 'resourceType' });
      if (typeof r.id !== 'string' || r.id === '') throw new GatewayError('BODY_INVALID', { diagnostics: 'The Appointment has no id', expression: 'Appointment.id' });
      if (r.id !== ctx.resourceId) throw new GatewayError('BODY_INVALID', { diagnostics: 'The Appointment id differs from the id in the URL', expression: 'Appointment.id' });
      ctx.resource = r;
    },
  };
}
