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
