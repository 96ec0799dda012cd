import { GatewayError, type Issue } from '../errors.js';
import { diffResources } from '../fhir/diff.js';
import type { Standard } from '../standards/index.js';
import type { Check } from './types.js';

type Json = Record<string, unknown>;
const SERVER_META = new Set(['versionId', 'lastUpdated']);

const isReason = (url: string) => (e: unknown) => typeof e === 'object' && e !== null && (e as Json).url === url;

/** A shallow copy without what a cancel may change: status and server-managed meta. */
function withoutAllowed(r: Json, dropExtension: ((e: unknown) => boolean) | undefined): Json {
  const copy: Json = { ...r };
  delete copy.status;
  if (copy.meta && typeof copy.meta === 'object' && !Array.isArray(copy.meta)) {
    const meta: Json = {};
    for (const [k, v] of Object.entries(copy.meta as Json)) if (!SERVER_META.has(k)) meta[k] = v;
    if (Object.keys(meta).length) copy.meta = meta;
    else delete copy.meta;
  }
  if (dropExtension && Array.isArray(copy.extension)) {
    const kept = copy.extension.filter((e) => !dropExtension(e));
    if (kept.length) copy.extension = kept;
    else delete copy.extension;
  }
  return copy;
}

/**
 * Ruling 9: the submitted status must be cancelled, the stored appointment must not be cancelled
 * already, and the submitted one may differ
 * from it only by status, server meta and an *added* cancellation-reason extension; every other
 * difference is one issue with its path (422 business-rule).
 */
export function createCancelDiffCheck(standard: Standard): Check {
  const reasonUrl = standard.cancel.reasonExtensionUrl;
  const reason = isReason(reasonUrl);
  return {
    name: 'diff',
    family: 'businessRules',
    needs: ['resource', 'current'],
    run(ctx) {
      const stored = ctx.current!.resource;
      const submitted = ctx.resource!;
      const issues: Issue[] = [];
      if (submitted.status !== 'cancelled') issues.push({ diagnostics: 'status must be cancelled', expression: 'Appointment.status' });
      if (stored.status === 'cancelled') issues.push({ diagnostics: 'the appointment is already cancelled', expression: 'Appointment.status' });
      // The reason may be added, never changed or removed: when the stored copy has one, it stays
      // in both copies and any change shows in the diff.
      const storedHasReason = Array.isArray(stored.extension) && stored.extension.some(reason);
      const differences = diffResources(withoutAllowed(stored, undefined), withoutAllowed(submitted, storedHasReason ? undefined : reason), { root: 'Appointment' });
      for (const d of differences) issues.push({ diagnostics: `${d.path} was ${d.kind === 'changed' ? 'changed' : d.kind}; only status and the cancellation reason may change`, expression: d.path });
      if (!storedHasReason && Array.isArray(submitted.extension) && submitted.extension.filter(reason).length > 1) {
        issues.push({ diagnostics: 'only one cancellation reason may be added', expression: 'Appointment.extension' });
      }
      if (issues.length) {
        ctx.differingPaths = issues.map((i) => i.expression!).filter(Boolean);
        throw new GatewayError('BUSINESS_RULE', issues);
      }
    },
  };
}
