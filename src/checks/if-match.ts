import { header } from '../context.js';
import { GatewayError } from '../errors.js';
import { parseEntityTag } from '../http/entity-tag.js';
import type { Standard } from '../standards/index.js';
import type { Check } from './types.js';

/** Kept for callers of the old name: the one entity-tag grammar is src/http/entity-tag.ts. */
export const parseIfMatch = parseEntityTag;

/** Ruling 4: missing -> 412 (nhs-booking; GP Connect allows it); malformed -> 400. */
export function createIfMatchCheck(standard: Standard): Check {
  return {
    name: 'if-match',
    family: 'ifMatch',
    run(ctx) {
      const raw = ctx.request.headers['if-match'];
      if (Array.isArray(raw) || ctx.request.repeated.has('if-match')) throw new GatewayError('IF_MATCH_INVALID', { diagnostics: 'If-Match appears more than once', expression: 'http.If-Match' });
      const v = header(ctx.request, 'if-match');
      if (v === undefined) {
        if (standard.ifMatchRequired) throw new GatewayError('IF_MATCH_MISSING', { diagnostics: 'If-Match is required on update', expression: 'http.If-Match' });
        return;
      }
      // An empty If-Match is not "no If-Match" (ruling 4: only a missing one is 412): it is
      // malformed, and a provider may read it as a version that matches nothing.
      if (v.trim() === '') throw new GatewayError('IF_MATCH_INVALID', { diagnostics: 'If-Match is empty', expression: 'http.If-Match' });
      const version = parseIfMatch(v);
      if (version === undefined) throw new GatewayError('IF_MATCH_INVALID', { diagnostics: 'If-Match must be W/"<versionId>" or "<versionId>"', expression: 'http.If-Match' });
      ctx.ifMatchVersion = version;
    },
  };
}
