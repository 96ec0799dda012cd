import { CATALOGUE, type ErrorCode } from './errors.js';
import { mappingFor } from './respond.js';
import { GatewayError } from './errors.js';
import { STANDARDS } from './standards/index.js';

/**
 * The README's error table, generated from the catalogue and the standards' overrides; the test
 * test/errors.test.ts fails when the README's copy differs (style habit 5).
 */
export function catalogueTable(): string {
  const rows = ['| code | nhs-booking | gp-connect | FHIR issue | meaning |', '|---|---|---|---|---|'];
  for (const code of Object.keys(CATALOGUE) as ErrorCode[]) {
    const e = new GatewayError(code, 'x');
    const b = mappingFor(e, STANDARDS['nhs-booking']);
    const g = mappingFor(e, STANDARDS['gp-connect']);
    const issue = b.issue === g.issue ? b.issue : `${b.issue} / ${g.issue}`;
    rows.push(`| \`${code}\` | ${b.status} \`${b.spine}\` | ${g.status} \`${g.spine}\` | ${issue} | ${CATALOGUE[code].meaning} |`);
  }
  return rows.join('\n');
}
