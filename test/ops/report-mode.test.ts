import t from 'tap';
import { buildConfig, ConfigError } from '../../src/config.js';
import { assertOutcome } from '../helpers/assert.js';
import { adminGet, sample } from '../helpers/admin.js';
import { cancelRequest, identityHeaders, pki, seen, startHarness } from '../helpers/harness.js';

const allReport = { spineHeaders: 'report', ifMatch: 'report', mediaType: 'report', body: 'report', profile: 'report', version: 'report', businessRules: 'report' };
const h = await startHarness({ config: { report: allReport, limits: { maxBodyBytes: 8192 } } });
t.teardown(() => h.close());

/** A fresh booked appointment, copied from a seeded one. */
function fresh(id: string): string {
  const r = structuredClone(h.provider.store.read('appt-1')!.resource);
  r.id = id;
  h.provider.store.create(r, id);
  return id;
}

t.test('a failing check in report mode is logged and counted as would-reject, and the request is forwarded', async (t) => {
  const req = await cancelRequest(h, 'nhs-booking', 'appt-1', (r) => (r.description = 'changed by the consumer'));
  const puts = seen(h.provider, 'PUT', 'appt-1');
  const r = await h.request(req);
  t.equal(r.status, 200, 'the provider answered');
  t.equal(seen(h.provider, 'PUT', 'appt-1'), puts + 1, 'forwarded');
  const text = (await adminGet(h, '/metrics')).body;
  t.equal(sample(text, 'cancel_gateway_would_reject_total', { family: 'businessRules', code: 'BUSINESS_RULE' }), 1);
  t.ok(h.logs.some((l) => l.includes('would reject') && l.includes('BUSINESS_RULE')), 'logged');
  const audit = h.audit.at(-1)!;
  t.equal(audit.outcome, 'forwarded');
  t.same(audit.wouldReject, [{ family: 'businessRules', code: 'BUSINESS_RULE' }]);
});

t.test('every reportable family lets the request through', async (t) => {
  const cases: Array<[string, (o: Awaited<ReturnType<typeof cancelRequest>>) => void, string]> = [
    ['spineHeaders', (o) => (o.headers!['Ssp-To'] = '1'), 'SPINE_HEADER_INVALID'],
    ['ifMatch', (o) => delete o.headers!['If-Match'], 'IF_MATCH_MISSING'],
    ['mediaType', (o) => (o.headers!['Content-Type'] = 'text/plain'), 'UNSUPPORTED_MEDIA_TYPE'],
    ['profile', (o) => (o.body = String(o.body).replace('"description"', '"descriptionX"')), 'PROFILE_INVALID'],
    ['version', (o) => (o.headers!['If-Match'] = 'W/"99"'), 'VERSION_CONFLICT'],
  ];
  for (const [family, mutate, code] of cases) {
    const id = fresh(`report-${family}`);
    const o = await cancelRequest(h, 'nhs-booking', id);
    mutate(o);
    const before = seen(h.provider, 'PUT', id);
    const r = await h.request(o);
    t.equal(seen(h.provider, 'PUT', id), before + 1, `${family}: forwarded`);
    t.ok(r.status === 200 || r.status === 409, `${family}: the provider's answer (${r.status})`);
    const text = (await adminGet(h, '/metrics')).body;
    t.ok((sample(text, 'cancel_gateway_would_reject_total', { family, code }) ?? 0) >= 1, `${family}: counted as ${code}`);
  }
});

t.test('JWT, body size and TLS are never report-only', async (t) => {
  const o = await cancelRequest(h, 'nhs-booking', fresh('report-never'));
  const before = h.provider.requests.length;
  const bad = await h.request({ ...o, headers: { ...o.headers, Authorization: identityHeaders('nhs-booking', 'read').Authorization } });
  assertOutcome(t, bad, 403, 'ACCESS DENIED');
  const big = await h.request({ ...o, body: String(o.body).replace('"description":"', `"description":"${'x'.repeat(9000)}`) });
  assertOutcome(t, big, 413, 'BAD_REQUEST');
  t.equal(h.provider.requests.length, before, 'nothing reached the provider');
  const p = pki();
  const e = t.throws(() => buildConfig({
    publicBaseUrl: 'https://x', tls: { cert: p.files.serverCert, key: p.files.serverKey, clientCa: p.files.ca },
    upstream: { url: 'http://127.0.0.1:1' }, spine: { providerAsids: ['1'] }, report: { jwt: 'report' },
  })) as unknown as ConfigError;
  t.match(e.problems.join(), /report.*jwt/, 'the configuration refuses report mode for the JWT check');
});

t.test('reporting one family never switches another off: a failure the enforced families depend on is refused', async (t) => {
  // Only the body, the If-Match and the media type reported: the profile, the business rules and
  // the version check are enforced, and cannot judge what those checks let through.
  const g = await startHarness({ config: { report: { body: 'report', ifMatch: 'report', mediaType: 'report' } } });
  t.teardown(() => g.close());
  const base = g.provider.store.read('appt-1')!.resource;
  const make = (id: string): string => {
    const r = structuredClone(base);
    r.id = id;
    g.provider.store.create(r, id);
    return id;
  };
  const cases: Array<[string, (o: Awaited<ReturnType<typeof cancelRequest>>) => void, number, string]> = [
    // Last key wins at the provider: the gateway would have judged nothing of what it stores.
    ['duplicate keys', (o) => (o.body = String(o.body).replace('{', '{"description":"SMUGGLED",').replace(/"description":"(?!SMUGGLED)[^"]*"/, '"description":"x","description":"SMUGGLED"')), 400, 'BAD_REQUEST'],
    ['another appointment\'s id', (o) => (o.body = String(o.body).replace(/"id":"[^"]+"/, '"id":"appt-2"')), 400, 'BAD_REQUEST'],
    ['not JSON', (o) => (o.body = 'status=cancelled'), 400, 'BAD_REQUEST'],
    ['a prototype key', (o) => (o.body = String(o.body).replace('{', '{"__proto__":{"status":"booked"},')), 400, 'BAD_REQUEST'],
    ['no If-Match (the version check needs it)', (o) => delete o.headers!['If-Match'], 412, 'MISSING_OR_INVALID_HEADER'],
    ['a charset the gateway would read differently', (o) => (o.headers!['Content-Type'] = 'application/fhir+json; charset=iso-8859-1'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ];
  for (const [name, mutate, status, code] of cases) {
    const id = make(`dep-${name.replace(/\W+/g, '-')}`);
    const o = await cancelRequest(g, 'nhs-booking', id);
    mutate(o);
    const before = g.provider.requests.length;
    const r = await g.request(o);
    t.equal(r.status, status, `${name}: refused (${r.status})`);
    t.match(String(r.json?.issue?.[0]?.details?.coding?.[0]?.code), code, `${name}: ${code}`);
    t.equal(g.provider.requests.length, before, `${name}: nothing reached the provider`);
    t.equal(g.audit.at(-1)?.outcome, 'rejected', `${name}: audited as rejected`);
  }
  // A reported failure that nothing enforced depends on still goes on (the media type alone would
  // not: here, a body reported, a profile enforced, a valid body).
  const sg = await startHarness({ config: { report: { spineHeaders: 'report' } } });
  t.teardown(() => sg.close());
  const o = await cancelRequest(sg, 'nhs-booking', 'appt-1');
  o.headers!['Ssp-To'] = '1';
  const puts = seen(sg.provider, 'PUT', 'appt-1');
  t.equal((await sg.request(o)).status, 200, 'a reported Spine header failure is forwarded');
  t.equal(seen(sg.provider, 'PUT', 'appt-1'), puts + 1);
  t.ok(sg.logs.some((l) => l.includes('would reject') && l.includes('"family":"spineHeaders"')), 'the log line names the family, as the metric and the audit record do');
});

t.test('a passthrough body that is not FHIR is refused in report mode too (ruling 25: a form body can carry _method)', async (t) => {
  const before = h.provider.requests.length;
  const r = await h.request({
    method: 'POST', path: '/STU3/1/Appointment', body: '_method=DELETE',
    headers: { ...identityHeaders('nhs-booking', 'book'), 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  assertOutcome(t, r, 415, 'UNSUPPORTED_MEDIA_TYPE');
  t.equal(h.provider.requests.length, before, 'nothing reached the provider');
});
