import type { Reply } from './harness.js';

type T = { equal: Function; ok: Function; match: Function; same: Function };

/** An answer is a gateway OperationOutcome with this status and Spine code (ruling 14). */
export function assertOutcome(t: T, r: Reply, status: number, spine: string, opts: { issue?: string; profile?: string; expression?: string | RegExp } = {}): void {
  t.equal(r.status, status, `status ${status}`);
  t.match(String(r.headers['content-type']), /^application\/fhir\+json; charset=utf-8$/, 'FHIR JSON content type');
  t.equal(r.headers['cache-control'], 'no-store', 'Cache-Control: no-store');
  const oo = r.json;
  t.equal(oo?.resourceType, 'OperationOutcome', 'an OperationOutcome');
  t.ok(typeof oo?.id === 'string' && oo.id.length > 0, 'with an id');
  t.ok(Array.isArray(oo?.issue) && oo.issue.length > 0, 'with issues');
  for (const i of oo?.issue ?? []) {
    t.equal(i.severity, 'error');
    t.equal(i.details?.coding?.length, 1, 'exactly one coding');
    t.equal(i.details?.coding?.[0]?.system, 'https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1');
    t.equal(i.details?.coding?.[0]?.code, spine, `Spine code ${spine}`);
    t.ok(i.details?.coding?.[0]?.display, 'a display');
    t.ok(typeof i.diagnostics === 'string' && i.diagnostics.length > 0, 'diagnostics');
  }
  if (opts.issue) t.equal(oo?.issue?.[0]?.code, opts.issue, `issue code ${opts.issue}`);
  if (opts.profile) t.same(oo?.meta?.profile, [opts.profile]);
  if (opts.expression) {
    const exprs: string[] = (oo?.issue ?? []).flatMap((i: { expression?: string[] }) => i.expression ?? []);
    t.ok(exprs.some((e) => (typeof opts.expression === 'string' ? e === opts.expression : opts.expression!.test(e))), `an issue at ${opts.expression} (got ${exprs.join(', ')})`);
  }
}
