import type { CheckMode, ReportFamily } from '../config.js';

/**
 * The families that judge what a family's check reads or provides:
 * - `mediaType`: how the body's bytes are read (format, charset, coding, the update's query);
 * - `body`: the resource the profile, the cancel rules and the diff judge;
 * - `ifMatch`: the version the version check compares with the current one.
 */
const JUDGED_BY: Readonly<Partial<Record<ReportFamily, readonly ReportFamily[]>>> = {
  mediaType: ['body', 'profile', 'businessRules'],
  body: ['profile', 'businessRules'],
  ifMatch: ['version'],
};

/**
 * Whether a failure of `family` is only reported (the request goes on): the family is in report
 * mode, and so is every family that depends on what it checks. Reporting one family never switches
 * another off (fail closed): while the profile or the business rules are enforced, a body the
 * gateway cannot read, or that names another appointment, is refused, since nothing could judge it.
 */
export function reportOnly(report: Readonly<Record<ReportFamily, CheckMode>>, family: ReportFamily): boolean {
  return report[family] === 'report' && (JUDGED_BY[family] ?? []).every((f) => report[f] === 'report');
}
