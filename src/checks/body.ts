import type { Config } from '../config.js';
import { header } from '../context.js';
import { GatewayError } from '../errors.js';
import { codecFor } from '../edge/negotiate.js';
import type { Codec } from '../ports/codec.js';
import type { Check } from './types.js';


/**
 * Ruling 6 and 21: size (413); the body read by its codec — strict JSON (duplicate and prototype
 * keys, depth, node count) or FHIR XML (no DOCTYPE or entities, FHIR namespace, known elements) —
 * else 400; an object with resourceType Appointment and the URL's id (400). The raw bytes are kept
 * to forward unchanged.
 */
export function createBodyCheck(config: Readonly<Config>, codecs: readonly Codec[]): Check {
  const { maxBodyBytes, maxJsonDepth } = config.limits;
  const limits = { maxDepth: maxJsonDepth, maxNodes: config.limits.maxJsonNodes };
  return {
    name: 'body',
    family: 'body',
    async run(ctx, io) {
      const raw = await io.readBody(maxBodyBytes);
      ctx.rawBody = raw;
      const codec = codecFor(header(ctx.request, 'content-type'), codecs);
      const decoded = codec.decode(raw, limits);
      if (!decoded.ok) throw new GatewayError('BODY_INVALID', decoded.diagnostics);
      const r = decoded.resource;
      if (r.resourceType !== 'Appointment') throw new GatewayError('BODY_INVALID', { diagnostics: 'resourceType must be Appointment', expression: 'resourceType' });
      if (typeof r.id !== 'string' || r.id === '') throw new GatewayError('BODY_INVALID', { diagnostics: 'The Appointment has no id', expression: 'Appointment.id' });
      if (r.id !== ctx.resourceId) throw new GatewayError('BODY_INVALID', { diagnostics: 'The Appointment id differs from the id in the URL', expression: 'Appointment.id' });
      ctx.resource = r;
    },
  };
}
