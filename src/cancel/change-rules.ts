import type { Issue } from '../errors.js';
import { diffResources } from '../fhir/diff.js';
import { isFhirElementName } from '../fhir/sd/model.js';
import { parseInstant } from '../fhir/instant.js';
import { copyKeepingNumberText } from '../fhir/strict-json.js';
import type { ChangeSet } from '../standards/types.js';
import { isBlankText, isJsonObject as isObject } from '../fhir/json.js';

type Json = Record<string, unknown>;

const hasUrl = (url: string) => (e: unknown) => isObject(e) && e.url === url;

/** A shallow copy without what the change set allows to differ. */
function withoutAllowed(r: Json, set: ChangeSet, dropExtension: ((e: unknown) => boolean) | undefined): Json {
  // The numbers' written text (ruling 26: 1.0 and 1.00 differ) travels with the shallow copy.
  const copy: Json = copyKeepingNumberText(r);
  const metaAllowed: string[] = [];
  for (const name of set.mayChange) {
    if (name.startsWith('meta.')) metaAllowed.push(name.slice(5));
    else delete copy[name];
  }
  if (metaAllowed.length && isObject(copy.meta)) {
    const meta: Json = {};
    for (const [k, v] of Object.entries(copy.meta)) if (!metaAllowed.includes(k)) meta[k] = v;
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
 * Rulings 9 and 27: the submitted resource may differ from the stored one only as the change set
 * allows; every other difference is one issue with its path. The status and stored-state rules
 * of the change set come first. Pure: `now` is the injected clock's time.
 */
export function changeIssues(set: ChangeSet, stored: Json, submitted: Json, now: number, maxIssues = 20): { issues: Issue[]; paths: string[] } {
  const issues: Issue[] = [];
  if (set.submittedStatus === 'cancelled' && submitted.status !== 'cancelled') issues.push({ diagnostics: 'status must be cancelled', expression: 'Appointment.status' });
  if (set.submittedStatus === 'unchanged' && submitted.status !== stored.status) issues.push({ diagnostics: 'status must not change', expression: 'Appointment.status' });
  if (set.storedNotCancelled && stored.status === 'cancelled') issues.push({ diagnostics: 'the appointment is already cancelled', expression: 'Appointment.status' });
  if (set.storedStartInFuture) {
    const start = typeof stored.start === 'string' ? parseInstant(stored.start) : undefined;
    if (start === undefined || start <= now) issues.push({ diagnostics: 'an appointment in the past cannot be changed', expression: 'Appointment.start' });
  }
  for (const [name, max] of Object.entries(set.changedMaxLength ?? {})) {
    const v = submitted[name];
    // Characters as FHIR strings count them: Unicode code points, not UTF-16 units.
    if (typeof v === 'string' && v !== stored[name] && [...v].length > max) issues.push({ diagnostics: `${name} may be at most ${max} characters`, expression: `Appointment.${name}` });
  }
  for (const name of set.changedNotBlank ?? []) {
    const v = submitted[name];
    // Blank as isBlankText reads it (the cancellation reason's check uses the same); a value left out is the profile's to judge.
    if (v !== stored[name] && typeof v === 'string' && isBlankText(v)) issues.push({ diagnostics: `${name} may be changed, not left blank`, expression: `Appointment.${name}` });
  }
  // The extension may be added, never changed or removed: when the stored copy has it, it stays
  // in both copies and any change shows in the diff.
  const ext = set.mayAddExtension ? hasUrl(set.mayAddExtension) : undefined;
  const storedHasExt = ext !== undefined && Array.isArray(stored.extension) && stored.extension.some(ext);
  const storedCopy = withoutAllowed(stored, set, undefined);
  // An element the change set lets the client leave out (with its companion) is compared only when sent.
  for (const name of set.mayOmit ?? []) {
    if (!Object.hasOwn(submitted, name) && !Object.hasOwn(submitted, `_${name}`)) {
      delete storedCopy[name];
      delete storedCopy[`_${name}`];
    }
  }
  const differences = diffResources(storedCopy, withoutAllowed(submitted, set, storedHasExt ? undefined : ext), { root: 'Appointment', maxDifferences: 100, echoKey: isFhirElementName });
  const allowedNames = set.mayChange.filter((n) => !n.startsWith('meta.')).join(', ');
  for (const d of differences) {
    if (set.submittedStatus === 'unchanged' && d.path === 'Appointment.status') continue; // reported above
    issues.push({ diagnostics: `${d.path} was ${d.kind}; only ${allowedNames}${set.mayAddExtension ? ' and the added reason extension' : ''} may change`, expression: d.path });
  }
  if (ext && !storedHasExt && Array.isArray(submitted.extension) && submitted.extension.filter(ext).length > 1) {
    issues.push({ diagnostics: 'only one reason extension may be added', expression: 'Appointment.extension' });
  }
  const paths = issues.map((i) => i.expression!).filter(Boolean);
  if (issues.length > maxIssues) {
    const more = issues.length - (maxIssues - 1);
    issues.length = maxIssues - 1;
    issues.push({ diagnostics: `and ${more} more` });
  }
  return { issues, paths: paths.slice(0, 50) };
}
