import { GatewayError } from '../errors.js';
import type { Check } from './types.js';

/**
 * Ruling 4: a parsed If-Match that is not the stored version -> 409. Without If-Match (allowed by
 * GP Connect) the stored version is the one being cancelled, so there is nothing to compare.
 */
export function createVersionCheck(): Check {
  return {
    name: 'version',
    family: 'version',
    needs: ['current'],
    run(ctx) {
      if (ctx.ifMatchVersion !== undefined && ctx.ifMatchVersion !== ctx.current!.version) {
        throw new GatewayError('VERSION_CONFLICT', { diagnostics: 'If-Match does not name the current version of the appointment', expression: 'http.If-Match' });
      }
    },
  };
}
