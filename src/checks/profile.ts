import { GatewayError } from '../errors.js';
import { createProfileValidator } from '../fhir/profile.js';
import type { Standard } from '../standards/index.js';
import type { Check } from './types.js';

/** Ruling 7: the standard's Appointment profile; one issue per violation (422). */
export function createProfileCheck(standard: Standard): Check {
  const validate = createProfileValidator(standard.profile); // compiled once, at start-up
  return {
    name: 'profile',
    family: 'profile',
    needs: ['resource'],
    run(ctx) {
      const issues = validate(ctx.resource);
      if (issues.length) throw new GatewayError('PROFILE_INVALID', issues.map((i) => ({ diagnostics: i.diagnostics, expression: i.expression })));
    },
  };
}
