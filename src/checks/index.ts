import type { Logger } from '../log.js';
import type { Config } from '../config.js';
import type { Standard } from '../standards/index.js';
import { createBodyCheck } from './body.js';
import { createCancelRequestCheck } from './cancel-request.js';
import { createIfMatchCheck } from './if-match.js';
import { createJwtCheck } from './jwt.js';
import type { Clock } from '../ports/clock.js';
import type { Codec } from '../ports/codec.js';
import { createMediaTypeCheck } from './media-type.js';
import { createProfileCheck } from './profile.js';
import { createRequestSemanticsCheck } from './request-semantics.js';
import { createSpineHeadersCheck } from './spine-headers.js';
import type { Check } from './types.js';

export interface CheckPlan {
  /** Every interaction: who is calling and for what (ruling 1, after TLS and route). */
  readonly identity: readonly Check[];
  /** Cancel and amend, before the provider is contacted at all; then the write transaction. */
  readonly beforeProvider: readonly Check[];
}

/**
 * The only place the order of checks is written (ruling 1): TLS client certificate -> route ->
 * Spine headers -> JWT -> If-Match -> media type -> body -> profile -> body-only business rules ->
 * current appointment -> version -> diff -> forward. TLS and route are done by the edge before
 * these run; a request whose headers could change its meaning
 * (method overrides, look-alike names, a body on a read) is refused first of all (ruling 25); the provider half (current appointment onwards) is src/cancel/transaction.ts.
 */
export function createCheckPlan(config: Readonly<Config>, standard: Standard, deps: { clock: Clock; codecs: readonly Codec[]; logger?: Logger }): CheckPlan {
  return {
    identity: [createRequestSemanticsCheck(), createSpineHeadersCheck(config), createJwtCheck(config, standard, deps.clock, deps.logger)],
    beforeProvider: [
      createIfMatchCheck(standard),
      createMediaTypeCheck(standard),
      createBodyCheck(config, deps.codecs),
      createProfileCheck(standard),
      createCancelRequestCheck(standard, deps.clock),
    ],
  };
}

export type { Check, CheckIO } from './types.js';
