import type { Config } from '../config.js';
import type { Upstream } from '../proxy/upstream.js';
import type { Standard } from '../standards/index.js';
import { createBodyCheck } from './body.js';
import { createCancelDiffCheck } from './cancel-diff.js';
import { createCancelRequestCheck } from './cancel-request.js';
import { createCurrentCheck, type CurrentCheckHooks } from './current.js';
import { createIfMatchCheck } from './if-match.js';
import { createJwtCheck, type Clock } from './jwt.js';
import { createMediaTypeCheck } from './media-type.js';
import { createProfileCheck } from './profile.js';
import { createSpineHeadersCheck } from './spine-headers.js';
import type { Check } from './types.js';
import { createVersionCheck } from './version.js';

export interface CheckPlan {
  /** Every interaction: who is calling and for what (ruling 1, after TLS and route). */
  readonly identity: readonly Check[];
  /** The cancel route, before the provider is contacted at all. */
  readonly cancelBeforeProvider: readonly Check[];
  /** The cancel route, one request per appointment at a time, then forward (ruling 10). */
  readonly cancelWithProvider: readonly Check[];
}

/**
 * The only place the order of checks is written (ruling 1): TLS client certificate -> route ->
 * Spine headers -> JWT -> If-Match -> media type -> body -> profile -> body-only business rules ->
 * current appointment -> version -> diff -> forward. TLS and route are done by the server before
 * these run; forwarding after them.
 */
export function createCheckPlan(config: Readonly<Config>, standard: Standard, deps: { upstream: Upstream; clock: Clock; hooks?: CurrentCheckHooks }): CheckPlan {
  return {
    identity: [createSpineHeadersCheck(config), createJwtCheck(config, standard, deps.clock)],
    cancelBeforeProvider: [
      createIfMatchCheck(standard),
      createMediaTypeCheck(),
      createBodyCheck(config),
      createProfileCheck(standard),
      createCancelRequestCheck(standard, deps.clock),
    ],
    cancelWithProvider: [createCurrentCheck(standard, deps.upstream, deps.hooks), createVersionCheck(), createCancelDiffCheck(standard)],
  };
}

export type { Check, CheckIO } from './types.js';
