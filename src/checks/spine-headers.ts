import type { IncomingHttpHeaders } from 'node:http';
import type { Config } from '../config.js';
import type { RequestContext } from '../context.js';
import { GatewayError, type Issue } from '../errors.js';
import type { Check } from './types.js';

/** UUID, either case (TKW's validator wants lowercase; SSP-generated ids are uppercase GUIDs). */
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const ASID = /^[0-9]{1,20}$/;
/**
 * Ruling 19: the decision line and the audit record carry Ssp-TraceID whenever a well-formed one
 * was sent, also for requests refused before the Spine-header check (404, 405, ruling 25's 400s).
 */
export function wellFormedTraceId(headers: IncomingHttpHeaders): string | undefined {
  const v = headers['ssp-traceid'];
  return typeof v === 'string' && UUID.test(v) ? v : undefined;
}

const CANONICAL: Record<string, string> = { 'ssp-traceid': 'Ssp-TraceID', 'ssp-from': 'Ssp-From', 'ssp-to': 'Ssp-To', 'ssp-interactionid': 'Ssp-InteractionID' };

/**
 * Ruling 2: Ssp-TraceID (UUID), Ssp-From/Ssp-To (ASIDs, Ssp-To ours), Ssp-InteractionID naming an
 * enabled interaction of the route. The interaction chosen here decides scope and handling.
 */
export function createSpineHeadersCheck(config: Readonly<Config>): Check {
  const asids = new Set(config.spine.providerAsids);
  const single = (ctx: RequestContext, name: string): string | undefined => {
    const v = ctx.request.headers[name];
    if (Array.isArray(v) || ctx.request.repeated.has(name)) {
      const display = CANONICAL[name] ?? name;
      throw new GatewayError('SPINE_HEADER_INVALID', { issue: 'invalid', diagnostics: `${display} appears more than once`, expression: `http.${display}` });
    }
    return v;
  };
  return {
    name: 'spine-headers',
    family: 'spineHeaders',
    run(ctx) {
      const trace = single(ctx, 'ssp-traceid');
      if (trace && UUID.test(trace)) ctx.traceId = trace;
      // A header that is missing is FHIR's `required`; one present with a wrong value (an empty
      // one included), `invalid`.
      const problems: Issue[] = [];
      const missing = (name: string) => problems.push({ diagnostics: `${name} is missing`, expression: `http.${name}` });
      const wrong = (name: string, why: string) => problems.push({ issue: 'invalid', diagnostics: `${name} ${why}`, expression: `http.${name}` });
      if (trace === undefined) missing('Ssp-TraceID');
      else if (!UUID.test(trace)) wrong('Ssp-TraceID', 'is not a UUID');
      const from = single(ctx, 'ssp-from');
      if (from === undefined) missing('Ssp-From');
      else if (!ASID.test(from)) wrong('Ssp-From', 'is not an ASID');
      const to = single(ctx, 'ssp-to');
      if (to === undefined) missing('Ssp-To');
      else if (!ASID.test(to)) wrong('Ssp-To', 'is not an ASID');
      else if (!asids.has(to)) wrong('Ssp-To', "is not this provider's ASID");
      const interaction = single(ctx, 'ssp-interactionid');
      if (interaction === undefined) missing('Ssp-InteractionID');
      else if (interaction === '') wrong('Ssp-InteractionID', 'is empty');
      // Chosen before any header problem is thrown, so that in report mode a request goes on as
      // the interaction it names (an amend stays an amend).
      const chosen = ctx.candidates.find((i) => i.id === interaction);
      if (chosen) {
        ctx.interaction = chosen;
        ctx.interactionNamed = true;
      }
      if (problems.length) {
        throw new GatewayError('SPINE_HEADER_INVALID', problems);
      }
      if (!chosen) {
        throw new GatewayError('INTERACTION_MISMATCH', { diagnostics: 'Ssp-InteractionID does not match the requested operation', expression: 'http.Ssp-InteractionID' });
      }
    },
  };
}
