import { GatewayError, type Issue } from '../errors.js';
import { parseInstant } from '../fhir/instant.js';
import { isBlankText } from '../fhir/json.js';
import type { Standard } from '../standards/index.js';
import type { Clock } from '../ports/clock.js';
import type { Check } from './types.js';

type Json = Record<string, unknown>;

/** Extensions of the resource with the given URL. */
export function extensionsWithUrl(resource: Json, url: string): unknown[] {
  const ext = resource.extension;
  return Array.isArray(ext) ? ext.filter((e) => typeof e === 'object' && e !== null && (e as Json).url === url) : [];
}

/**
 * A relative reference as FHIR writes one: `Type/id`, optionally `/_history/vid`, or a local `#id`.
 * Anything else — a URL with a scheme, `//host/…`, `/Type/id` (resolved against the host, not the
 * base) — is refused by GP Connect's relative-references rule before the provider is contacted.
 */
const RELATIVE_REFERENCE = /^(?:#[A-Za-z0-9.-]{0,64}|[A-Z][A-Za-z]{1,63}\/[A-Za-z0-9.-]{1,64}(?:\/_history\/[A-Za-z0-9.-]{1,64})?)$/;

/** Every `reference` string in the resource outside `contained`, with its FHIRPath. */
function* references(node: unknown, path: string): Generator<[string, string]> {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) yield* references(node[i], `${path}[${i}]`);
  } else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'contained' && path === 'Appointment') continue;
      if (k === 'reference' && typeof v === 'string') yield [v, `${path}.reference`];
      else yield* references(v, `${path}.${k}`);
    }
  }
}

/**
 * The business rules that need only the submitted body (the gp-connect rulings: reason extension,
 * forbidden elements, relative references, past start). They run before the provider is
 * contacted, so a request that fails them costs no provider read. The status rule of ruling 9 is
 * not here: ruling 1 puts business rules after the version check (a stale If-Match is 409 first).
 * An amend (ruling 27) meets the two that are not about cancelling — relative references and a
 * start in the past — before the provider is read too; the reason extension and the elements a
 * cancel must not carry are the cancel's own.
 */
export function createCancelRequestCheck(standard: Standard, clock: Clock): Check {
  const rules = standard.cancel;
  return {
    name: 'cancel-request',
    family: 'businessRules',
    needs: ['resource'],
    only: ['cancel', 'amend'],
    run(ctx) {
      const r = ctx.resource!;
      const issues: Issue[] = [];
      const cancel = ctx.interaction.kind === 'cancel';
      if (cancel && rules.reasonRequired) {
        const reasons = extensionsWithUrl(r, rules.reasonExtensionUrl);
        if (reasons.length === 0) issues.push({ diagnostics: 'the cancellation reason extension is required', expression: 'Appointment.extension' });
        else {
          const empty = reasons.find((e) => typeof (e as Json).valueString !== 'string' || isBlankText((e as Json).valueString as string));
          // GP Connect §d: an empty reason is INVALID_PARAMETER (tested by NHS's provider suite).
          if (empty) {
            const at = (r.extension as unknown[]).indexOf(empty);
            throw new GatewayError('PARAMETER_INVALID', { diagnostics: 'the cancellation reason must not be empty', expression: `Appointment.extension[${at}].valueString` });
          }
        }
      }
      for (const el of cancel ? rules.forbiddenElements : []) {
        if (r[el] !== undefined) issues.push({ diagnostics: `${el} must not be present on cancel`, expression: `Appointment.${el}` });
      }
      if (rules.relativeReferencesOnly) {
        for (const [ref, path] of references(r, 'Appointment')) {
          if (!RELATIVE_REFERENCE.test(ref)) issues.push({ diagnostics: 'references must be relative', expression: path });
        }
      }
      if (rules.rejectPastStart && typeof r.start === 'string') {
        const start = parseInstant(r.start);
        if (start !== undefined && start < clock.now()) issues.push({ diagnostics: `an appointment in the past cannot be ${cancel ? 'cancelled' : 'amended'}`, expression: 'Appointment.start' });
      }
      if (issues.length) throw new GatewayError('BUSINESS_RULE', issues);
    },
  };
}
