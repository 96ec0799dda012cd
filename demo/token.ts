#!/usr/bin/env node
import { STANDARDS } from '../src/standards/index.js';
import { demoClaims, unsignedToken } from './claims.js';

/**
 * Prints a fresh unsigned JWT (alg none, as both standards define) for the demo's curl commands:
 *   node dist/demo/token.js read|write [nhs-booking|gp-connect]
 * The claims follow the UEC/GP Connect examples; iat is now and exp = iat + 300.
 */
const [kind = 'read', standardName = 'nhs-booking'] = process.argv.slice(2);
// A typo must not silently mint a token for the other standard or scope.
if (!(standardName in STANDARDS) || (kind !== 'read' && kind !== 'write')) {
  process.stderr.write(`usage: node dist/demo/token.js read|write [${Object.keys(STANDARDS).join('|')}]\n`);
  process.exit(2);
}
const standard = STANDARDS[standardName as keyof typeof STANDARDS];
const interaction = standard.interactions.find((i) => i.name === (kind === 'write' ? 'cancel' : 'read'))!;
const now = Math.floor(Date.now() / 1000);
process.stdout.write(unsignedToken(demoClaims(interaction.scope, now)) + '\n');
