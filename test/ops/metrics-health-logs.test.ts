import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STANDARDS } from '../../src/standards/index.js';
import { assertOutcome } from '../helpers/assert.js';
import { cancelRequest, identityHeaders, pki, startHarness } from '../helpers/harness.js';
import { validClaims } from '../helpers/tokens.js';

const validClaimsFor = () => validClaims({ standard: 'nhs-booking', scope: 'patient/appointment.write', nowSeconds: Math.floor(Date.now() / 1000) });
import { adminGet, sample } from '../helpers/admin.js';

const auditDir = mkdtempSync(join(tmpdir(), 'gw-audit-'));
const h = await startHarness({ upstreamProbeIntervalMs: 200 });
t.teardown(() => h.close());

t.test('metrics are scraped after real requests', async (t) => {
  const ok = await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: identityHeaders('nhs-booking', 'read') });
  t.equal(ok.status, 200);
  const bad = await h.request({ method: 'GET', path: '/STU3/1/Appointment/appt-1', headers: { ...identityHeaders('nhs-booking', 'read'), 'Ssp-To': '1' } });
  t.equal(bad.status, 400);
  const cancel = await h.request(await cancelRequest(h, 'nhs-booking', 'appt-2'));
  t.equal(cancel.status, 200);

  const m = await adminGet(h, '/metrics');
  t.equal(m.status, 200);
  t.match(String(m.headers['content-type']), /text\/plain/);
  const text = m.body;
  t.equal(sample(text, 'cancel_gateway_requests_total', { route: 'passthrough', interaction: 'read', outcome: 'forwarded', status: '200' }), 2, 'reads forwarded (one by cancelRequest + one)');
  t.equal(sample(text, 'cancel_gateway_requests_total', { route: 'cancel', interaction: 'cancel', outcome: 'forwarded', status: '200' }), 1);
  t.equal(sample(text, 'cancel_gateway_requests_total', { outcome: 'rejected', status: '400' }), 1);
  t.equal(sample(text, 'cancel_gateway_rejections_total', { code: 'SPINE_HEADER_INVALID' }), 1);
  t.ok((sample(text, 'cancel_gateway_gateway_duration_seconds_count', { route: 'cancel' }) ?? 0) >= 1, 'gateway time histogram');
  t.ok((sample(text, 'cancel_gateway_upstream_duration_seconds_count', { call: 'read' }) ?? 0) >= 1, 'upstream read time histogram');
  t.ok((sample(text, 'cancel_gateway_upstream_duration_seconds_count', { call: 'forward' }) ?? 0) >= 1, 'upstream forward time histogram');
  for (const stage of ['spine-headers', 'jwt', 'if-match', 'media-type', 'body', 'profile', 'cancel-request', 'current', 'version', 'diff']) {
    t.ok((sample(text, 'cancel_gateway_stage_duration_seconds_count', { stage }) ?? 0) >= 1, `stage ${stage} timed`);
  }
  t.equal(sample(text, 'cancel_gateway_in_flight_requests'), 0);
  t.ok((sample(text, 'cancel_gateway_certificate_expiry_seconds', { role: 'server' }) ?? 0) > 86400, 'server certificate expiry');
  t.ok((sample(text, 'cancel_gateway_certificate_expiry_seconds', { role: 'client-ca' }) ?? 0) > 86400, 'client CA expiry');
  t.ok(sample(text, 'cancel_gateway_process_cpu_seconds_total') !== undefined, 'default process metrics, prefixed');
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.trim()) continue;
    t.ok(line.startsWith('cancel_gateway_'), `one prefix: ${line.split(/[{ ]/)[0]}`);
  }
});

t.test('upstream errors are counted by kind', async (t) => {
  const undo = h.provider.fault('status-500', { method: 'GET', path: /appt-3/ });
  const r = await h.request(await cancelRequest(h, 'nhs-booking', 'appt-4').then((c) => ({ ...c, path: '/STU3/1/Appointment/appt-3', body: String(c.body).replace(/"id":"appt-4"/, '"id":"appt-3"') })));
  undo();
  assertOutcome(t, r, 500, 'INTERNAL_SERVER_ERROR');
  const text = (await adminGet(h, '/metrics')).body;
  t.ok((sample(text, 'cancel_gateway_upstream_errors_total', { kind: 'status' }) ?? 0) >= 1);
});

t.test('healthz and readyz', async (t) => {
  t.equal((await adminGet(h, '/healthz')).status, 200);
  const ready = await adminGet(h, '/readyz');
  t.equal(ready.status, 200, ready.body);
  t.same(JSON.parse(ready.body), { ready: true, draining: false, tls: true, config: true, upstream: true, store: true });
  t.equal((await adminGet(h, '/nope')).status, 404);
  // GP Connect §a: no-store on every response; the admin listener's answers too.
  for (const path of ['/healthz', '/readyz', '/metrics', '/nope']) t.equal((await adminGet(h, path)).headers['cache-control'], 'no-store', `${path}: Cache-Control`);

  // Issue 19 item 5: the provider down is reported (field, metric), not a readiness failure...
  const h2 = await startHarness();
  t.equal((await adminGet(h2, '/readyz')).status, 200);
  await h2.provider.close();
  await h2.gateway.probeNow();
  const down = await adminGet(h2, '/readyz');
  t.equal(down.status, 200, 'still ready: a provider redeploy must not empty the Service');
  t.equal(JSON.parse(down.body).upstream, false, 'reported in the body');
  t.match(await (await adminGet(h2, '/metrics')).body, /cancel_gateway_provider_up 0/, 'and as a metric');
  await h2.gateway.close();

  // ...unless configured to count.
  const h3 = await startHarness({ config: { readiness: { requireProvider: true } } });
  t.equal((await adminGet(h3, '/readyz')).status, 200);
  await h3.provider.close();
  await h3.gateway.probeNow();
  const down3 = await adminGet(h3, '/readyz');
  t.equal(down3.status, 503, 'readiness.requireProvider: not ready while the provider refuses connections');
  await h3.gateway.close();
});

t.test('logs and audit never carry patient data, bodies or tokens', async (t) => {
  const nhsNumber = '9434765919';
  const family = 'Quixotic-Zebedee';
  // Put a known NHS number and name in the stored appointment, then send cancels carrying them.
  const stored = h.provider.store.read('appt-5')!.resource as any;
  const patient = stored.contained.find((c: any) => c.resourceType === 'Patient');
  patient.identifier[0].value = nhsNumber;
  patient.name[0].family = family;
  stored.participant[0].actor.identifier.value = nhsNumber;
  h.provider.store.update('appt-5', stored);
  const headers = identityHeaders('nhs-booking', 'cancel');
  const token = headers.Authorization!.slice('Bearer '.length);
  // A rejected one (a changed name: 422) and an accepted one.
  const bad = await cancelRequest(h, 'nhs-booking', 'appt-5', (r) => {
    r.contained.find((c: any) => c.resourceType === 'Patient').name[0].family = family + 'x';
  });
  t.equal((await h.request(bad)).status, 422);
  const good = await cancelRequest(h, 'nhs-booking', 'appt-5');
  good.headers = { ...good.headers, Authorization: headers.Authorization };
  t.equal((await h.request(good)).status, 200);
  const all = h.logs.join('') + JSON.stringify(h.audit);
  t.notOk(all.includes(nhsNumber), 'no NHS number in logs or audit');
  t.notOk(all.includes(family), 'no patient name in logs or audit');
  t.notOk(all.includes(token), 'no token in logs or audit');
  t.notOk(all.includes(token.split('.')[1]!), 'not even the token payload');
  const decisions = h.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'decision');
  const last = decisions.at(-1);
  t.equal(last.appointmentId, 'appt-5');
  t.equal(last.status, 200);
  t.equal(last.outcome, 'forwarded');
  t.equal(last.ods, 'A1001');
  t.match(last.traceId, /^[0-9a-f-]{36}$/, 'the decision line carries Ssp-TraceID');
  t.ok(last.stages && typeof last.stages.diff === 'number', 'stage durations');
});

t.test('audit trail: one append-only JSON line per cancel decision, in a file', async (t) => {
  const file = join(auditDir, 'audit.jsonl');
  const h3 = await startHarness({ config: { audit: { destination: file } } });
  // The harness injects an in-memory sink; build one from the config to prove the file sink.
  await h3.close();
  const { createAuditSink } = await import('../../src/ops/audit.js');
  const sink = createAuditSink(file);
  sink.write({ time: 't1', interaction: 'i', outcome: 'rejected', status: 412, code: 'IF_MATCH_MISSING' });
  sink.write({ time: 't2', interaction: 'i', outcome: 'forwarded', status: 200, versionBefore: '1', versionAfter: '2' });
  await sink.close();
  const again = createAuditSink(file);
  again.write({ time: 't3', interaction: 'i', outcome: 'rejected', status: 409 });
  // flushed(): every record written so far is in the file, the sink still open.
  await again.flushed!();
  t.equal(readFileSync(file, 'utf8').trim().split('\n').length, 3, 'flushed: the record is in the file before close');
  await again.close();
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.same(lines.map((l) => l.time), ['t1', 't2', 't3'], 'appended, never truncated');

  // And the in-memory audit of the main harness: one record per cancel-route request.
  const cancels = h.audit;
  t.ok(cancels.length >= 4);
  for (const r of cancels) {
    t.ok(r.time && r.interaction === STANDARDS['nhs-booking'].interactions[0]!.id && typeof r.status === 'number', 'complete record');
  }
  const rejected = cancels.find((r) => r.status === 422)!;
  t.equal(rejected.outcome, 'rejected');
  t.equal(rejected.code, 'BUSINESS_RULE');
  t.ok(rejected.differingPaths?.some((p) => p.includes("contained[1].name[0].family")), 'differing paths recorded');
  t.same(rejected.requester?.odsCode, 'A1001');
  const accepted = cancels.filter((r) => r.status === 200).at(-1)!;
  t.equal(accepted.versionBefore, '2');
  t.equal(accepted.versionAfter, '3');
});

void pki;

t.test('README documents every metric the gateway registers', async (t) => {
  const { readFileSync: read } = await import('node:fs');
  const { packageRoot } = await import('../../src/paths.js');
  const readme = read(join(packageRoot, 'README.md'), 'utf8');
  const names = (await h.gateway.metrics.registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => !/_(process|nodejs)_/.test(n));
  t.ok(names.length >= 12);
  for (const n of names) t.ok(readme.includes(`\`${n}\``), `README documents ${n}`);
});

t.test('a long ODS code from the token is cut to 128 characters in the decision line and the audit record', async (t) => {
  const org = (validClaimsFor() as { requesting_organization: { identifier: Array<{ system: string; value: string }> } }).requesting_organization;
  const long = 'ODSX' + 'O'.repeat(2500);
  for (const id of org.identifier) if (id.system === 'https://fhir.nhs.uk/Id/ods-organization-code') id.value = long;
  const req = await cancelRequest(h, 'nhs-booking', 'appt-4');
  req.headers = { ...req.headers, Authorization: identityHeaders('nhs-booking', 'cancel', { claims: { requesting_organization: org } }).Authorization };
  const before = h.logs.length;
  t.equal((await h.request(req)).status, 200, 'the token is valid: the ODS code is not judged by length');
  const line = h.logs.slice(before).map((l) => JSON.parse(l)).find((l) => l.msg === 'decision' && l.appointmentId === 'appt-4');
  t.ok(line, 'a decision line');
  t.equal(line.ods.length, 128, 'the decision line holds at most 128 characters of it');
  t.ok(line.ods.startsWith('ODSXOOO') && line.ods.endsWith('…'), 'cut, and marked as cut');
  const record = h.audit.filter((r) => r.appointmentId === 'appt-4').at(-1)!;
  t.equal(record.requester?.odsCode?.length, 128, 'the audit record too');
});

t.test('a write refused at the route under /Appointment/ (405, 404) has its audit record; reads and other paths none', async (t) => {
  const headers = identityHeaders('nhs-booking', 'cancel');
  const trace = String(headers['Ssp-TraceID']);
  const before = h.audit.length;
  const del = await h.request({ method: 'DELETE', path: '/STU3/1/Appointment/appt-9', headers });
  assertOutcome(t, del, 405, 'BAD_REQUEST', { issue: 'not-supported' });
  const records = h.audit.slice(before);
  t.equal(records.length, 1, 'one record');
  t.match(records[0], { appointmentId: 'appt-9', traceId: trace, outcome: 'rejected', status: 405, code: 'METHOD_NOT_ALLOWED', interaction: STANDARDS['nhs-booking'].interactions.find((i) => i.kind === 'cancel')!.id });
  t.equal(h.provider.requests.filter((r) => r.url.includes('/appt-9')).length, 0, 'nothing reached the provider');
  const line = h.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'decision' && l.traceId === trace).at(-1);
  t.equal(line?.appointmentId, 'appt-9', 'the decision line names the appointment');
  // Near misses of the cancel route: a change attempted on an appointment, audited (with the id the path names).
  for (const [method, path, appointmentId, status] of [
    ['PUT', '/STU3/1/Appointment/appt-9/', 'appt-9', 404],
    ['PUT', '/STU3/1//Appointment/appt-9', 'appt-9', 404],
    ['PATCH', '/STU3/1/Appointment/appt-9', 'appt-9', 405],
    ['DELETE', '/STU3/1/Appointment/appt-9/_history/1', 'appt-9', 405],
    ['PUT', '/STU3/1/Appointment', undefined, 405],
    ['DELETE', '/STU3/1/Appointment?x=1', undefined, 405],
  ] as const) {
    const n = h.audit.length;
    t.equal((await h.request({ method, path, headers })).status, status, `${method} ${path}: ${status}`);
    t.equal(h.audit.length, n + 1, `${method} ${path}: one record`);
    t.match(h.audit.at(-1), { appointmentId, outcome: 'rejected', status }, `${method} ${path}: the record`);
  }
  const quiet = h.audit.length;
  t.equal((await h.request({ method: 'POST', path: '/STU3/1/metadata', headers })).status, 405);
  t.equal((await h.request({ method: 'PUT', path: '/STU3/1/Slot/s1', headers })).status, 404);
  t.equal((await h.request({ method: 'OPTIONS', path: '/STU3/1/Appointment/appt-9', headers })).status, 405);
  t.equal(h.audit.length, quiet, 'reads refused at an appointment, and writes elsewhere: no record');
});
