import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { adminGet } from '../helpers/admin.js';
import { identityHeaders, startHarness } from '../helpers/harness.js';
import { chartDir, parseManifests, template, type Manifest } from './render.js';

/**
 * The chart's dashboard and alert rules name only metrics the gateway exports: every
 * cancel_gateway_* name in the dashboard JSON and in the rendered PrometheusRule must be a metric
 * family of a running gateway's /metrics (histogram series by their family).
 */

/**
 * Metrics another change adds; listed so the rules can ship with them. Remove an entry once the
 * gateway exports it (the test fails until then, so the list cannot go stale).
 */
const PENDING: Record<string, string> = {
};

const h = await startHarness();
t.teardown(() => h.close());

function metricNames(exprs: string[]): Set<string> {
  const names = new Set<string>();
  for (const e of exprs) for (const m of e.matchAll(/\bcancel_gateway_[a-z0-9_]+/g)) names.add(m[0]);
  return names;
}

/** Metric families of the scrape; a histogram's _bucket/_sum/_count series belong to its family. */
function exported(text: string): { has(name: string): boolean; families: Set<string> } {
  const families = new Set<string>();
  const histograms = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    families.add(m[1]!);
    if (m[2] === 'histogram' || m[2] === 'summary') histograms.add(m[1]!);
  }
  return {
    families,
    has: (n) => families.has(n) || [...histograms].some((f) => [`${f}_bucket`, `${f}_sum`, `${f}_count`].includes(n)),
  };
}

t.test('every metric of the dashboard and the alert rules exists in /metrics', async (t) => {
  // One request so the labelled counters have a sample too (not needed for TYPE, but realistic).
  await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: identityHeaders('nhs-booking', 'read') });
  const scrape = await adminGet(h, '/metrics');
  t.equal(scrape.status, 200);
  const have = exported(scrape.body);

  const dashboard = JSON.parse(readFileSync(join(chartDir, 'dashboards', 'cancel-gateway.json'), 'utf8'));
  const dashExprs: string[] = dashboard.panels.flatMap((p: Manifest) => (p.targets ?? []).map((x: Manifest) => String(x.expr)));
  dashExprs.push(...dashboard.templating.list.map((v: Manifest) => String(v.query ?? '')));
  t.ok(dashExprs.length >= 15, `dashboard queries: ${dashExprs.length}`);

  const r = template(chartDir, { values: [join(chartDir, 'ci', 'standalone-values.yaml')], set: ['monitoring.prometheusRule.enabled=true'] });
  t.ok(r.ok, r.stderr);
  const rule = parseManifests(r.stdout).find((d) => d.kind === 'PrometheusRule');
  const ruleExprs: string[] = rule?.spec.groups.flatMap((g: Manifest) => g.rules.map((x: Manifest) => String(x.expr))) ?? [];
  t.ok(ruleExprs.length >= 8, `alert expressions: ${ruleExprs.length}`);

  for (const [where, exprs] of [['dashboard', dashExprs], ['alert rules', ruleExprs]] as const) {
    const names = metricNames(exprs);
    t.ok(names.size > 3, `${where}: ${names.size} metric names`);
    for (const n of names) {
      if (n in PENDING) continue;
      t.ok(have.has(n), `${where}: ${n} is exported`);
    }
  }
  for (const [n, why] of Object.entries(PENDING)) {
    t.notOk(have.has(n), `${n} (${why}) is still pending: once exported, remove it from PENDING`);
  }
  for (const n of ['cancel_gateway_crl_next_update_seconds', 'cancel_gateway_certificate_expiry_seconds', 'cancel_gateway_rejections_total', 'cancel_gateway_upstream_errors_total', 'cancel_gateway_nodejs_eventloop_lag_p99_seconds']) {
    t.ok(metricNames(ruleExprs).has(n), `the rules watch ${n}`);
  }
});
