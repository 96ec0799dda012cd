import http from 'node:http';
import t from 'tap';
import { shiftInstant } from '../../demo/provider/seed/index.js';
import { SEED_IDS, startDemoProvider, type DemoProvider, type Fault } from '../../demo/provider/server.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request on a fresh connection (agent: false), so faults never leak between requests. */
function request(
  base: string,
  method: string,
  path: string,
  opts: { body?: Buffer | string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body, 'utf8');
    const req = http.request(`${base}${path}`, {
      method,
      agent: false,
      headers: { ...(body ? { 'Content-Type': 'application/fhir+json', 'Content-Length': String(body.length) } : {}), ...opts.headers },
    });
    if (opts.timeoutMs !== undefined) {
      req.setTimeout(opts.timeoutMs, () => req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
    }
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('aborted', () => reject(Object.assign(new Error('response aborted'), { code: 'ABORTED' })));
      res.on('end', () => {
        if (!res.complete) reject(Object.assign(new Error('incomplete response'), { code: 'INCOMPLETE' }));
        else resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
    req.end(body);
  });
}

const json = (a: Answer): Record<string, any> => JSON.parse(a.body.toString('utf8')) as Record<string, any>;

let provider: DemoProvider;
t.before(async () => {
  provider = await startDemoProvider({ seed: 'both' });
});
t.teardown(() => provider.close());

t.test('seed: five booked future appointments per standard, version 1, instants shifted consistently', async (t) => {
  t.same(provider.store.ids(), [...SEED_IDS['nhs-booking'], ...SEED_IDS['gp-connect']]);
  for (const id of provider.store.ids()) {
    const v = provider.store.read(id)!;
    const r = v.resource as Record<string, any>;
    t.equal(v.versionId, '1', `${id} version 1`);
    t.equal(r['status'], 'booked');
    t.equal(r['id'], id);
    t.ok(Date.parse(r['start']) > Date.now(), `${id} starts in the future`);
    t.ok(Date.parse(r['end']) > Date.parse(r['start']));
    t.ok(!Number.isNaN(Date.parse(r['meta'].lastUpdated)));
  }
  const nhs = provider.store.read('appt-1')!.resource as Record<string, any>;
  const slot = (nhs['contained'] as Array<Record<string, any>>).find((c) => c['resourceType'] === 'Slot')!;
  t.equal(slot['start'], nhs['start'], 'contained Slot start moved with the appointment');
  t.match(nhs['start'], /T15:00:00\.000Z$/, 'format kept (.000Z)');
  t.match(nhs['created'], /T14:32:22\.579\+00:00$/, 'format kept (+00:00)');
  t.equal((nhs['contained'] as Array<Record<string, any>>).find((c) => c['resourceType'] === 'Patient')!['birthDate'], '1974-12-25', 'plain dates untouched');
  const gpc = provider.store.read('1001')!.resource as Record<string, any>;
  t.match(gpc['start'], /T10:20:00\+01:00$/);
  t.equal(shiftInstant('2019-12-31T23:59:59.9+11:00', 1), '2020-01-01T23:59:59.9+11:00');
  t.equal(shiftInstant('2020-02-28T00:00:00Z', 1), '2020-02-29T00:00:00Z');
  t.equal(shiftInstant('1974-12-25', 3), '1974-12-25');
});

t.test('read: 200 fhir+json with ETag and Last-Modified; unknown id 404 OperationOutcome', async (t) => {
  const a = await request(provider.url, 'GET', '/Appointment/appt-1');
  t.equal(a.status, 200);
  t.equal(a.headers['content-type'], 'application/fhir+json;charset=utf-8');
  t.equal(a.headers['etag'], 'W/"1"');
  const body = json(a);
  t.equal(body['id'], 'appt-1');
  t.equal(a.headers['last-modified'], new Date(body['meta'].lastUpdated).toUTCString());

  const missing = await request(provider.url, 'GET', '/Appointment/nope');
  t.equal(missing.status, 404);
  t.equal(json(missing)['resourceType'], 'OperationOutcome');
  const missingPut = await request(provider.url, 'PUT', '/Appointment/nope', { body: JSON.stringify({ resourceType: 'Appointment', id: 'nope' }) });
  t.equal(missingPut.status, 404);
  t.equal(json(missingPut)['resourceType'], 'OperationOutcome');
  const missingVersion = await request(provider.url, 'GET', '/Appointment/appt-1/_history/99');
  t.equal(missingVersion.status, 404);
});

t.test('update: bumps the version, keeps the previous one (vread), stale If-Match 409, bad JSON 400', async (t) => {
  const before = json(await request(provider.url, 'GET', '/Appointment/appt-2'));
  const cancelled = { ...before, status: 'cancelled' };
  const sent = Buffer.from(JSON.stringify(cancelled, null, 1), 'utf8');
  const put = await request(provider.url, 'PUT', '/Appointment/appt-2', { body: sent, headers: { 'If-Match': 'W/"1"' } });
  t.equal(put.status, 200);
  t.equal(put.headers['etag'], 'W/"2"');
  t.equal(put.headers['location'], '/Appointment/appt-2/_history/2');
  t.ok(put.headers['last-modified']);
  const stored = json(put);
  t.equal(stored['meta'].versionId, '2');
  t.equal(stored['status'], 'cancelled');
  t.same(stored['meta'].profile, before['meta'].profile, 'other meta kept');

  const old = await request(provider.url, 'GET', '/Appointment/appt-2/_history/1');
  t.equal(old.status, 200);
  t.equal(json(old)['status'], 'booked', 'the previous version is kept');
  t.equal(old.headers['etag'], 'W/"1"');
  t.equal(json(await request(provider.url, 'GET', '/Appointment/appt-2'))['status'], 'cancelled');
  t.equal(provider.store.history('appt-2').length, 2);

  const stale = await request(provider.url, 'PUT', '/Appointment/appt-2', { body: sent, headers: { 'If-Match': 'W/"1"' } });
  t.equal(stale.status, 409);
  t.equal(json(stale)['resourceType'], 'OperationOutcome');
  t.equal(provider.store.currentVersion('appt-2'), '2', 'a conflict stores nothing');

  const strong = await request(provider.url, 'PUT', '/Appointment/appt-2', { body: sent, headers: { 'If-Match': '"2"' } });
  t.equal(strong.status, 200, 'strong ETag form accepted too');
  t.equal(strong.headers['etag'], 'W/"3"');

  const noIfMatch = await request(provider.url, 'PUT', '/Appointment/appt-2', { body: sent });
  t.equal(noIfMatch.status, 200, 'no If-Match: the legacy provider just updates');

  const bad = await request(provider.url, 'PUT', '/Appointment/appt-2', { body: '{not json' });
  t.equal(bad.status, 400);
  t.equal(json(bad)['resourceType'], 'OperationOutcome');
});

t.test('recorded requests carry the exact body bytes, method, url and headers', async (t) => {
  const from = provider.requests.length;
  const current = json(await request(provider.url, 'GET', '/Appointment/1001'));
  // Odd-but-valid JSON bytes (key order, spacing, non-ASCII, escaped slash) must survive byte for byte.
  const raw = Buffer.from(`{ "resourceType":"Appointment",  "id":"1001","status":"cancelled","comment":"caf\u00e9 \\/ \u2713","meta":${JSON.stringify(current['meta'])} }`, 'utf8');
  const put = await request(provider.url, 'PUT', '/Appointment/1001?x=1', { body: raw, headers: { 'If-Match': 'W/"1"', 'X-Test': 'yes' } });
  t.equal(put.status, 200);
  const recorded = provider.requests.slice(from);
  t.equal(recorded.length, 2);
  t.equal(recorded[0]!.method, 'GET');
  t.equal(recorded[0]!.body.length, 0);
  const r = recorded[1]!;
  t.equal(r.method, 'PUT');
  t.equal(r.url, '/Appointment/1001?x=1');
  t.equal(r.headers['if-match'], 'W/"1"');
  t.equal(r.headers['x-test'], 'yes');
  t.ok(r.body.equals(raw), 'byte-identical body');
});

t.test('create, search, metadata, Slot, unknown path', async (t) => {
  const template = json(await request(provider.url, 'GET', '/Appointment/appt-3'));
  delete template['id'];
  const created = await request(provider.url, 'POST', '/Appointment', { body: JSON.stringify(template) });
  t.equal(created.status, 201);
  const c = json(created);
  t.equal(c['meta'].versionId, '1');
  t.equal(created.headers['location'], `/Appointment/${c['id']}/_history/1`);
  t.equal(created.headers['etag'], 'W/"1"');

  const search = json(await request(provider.url, 'GET', '/Appointment?patient.identifier=x'));
  t.equal(search['resourceType'], 'Bundle');
  t.equal(search['type'], 'searchset');
  t.equal(search['total'], provider.store.ids().length);
  t.equal(search['entry'][0].fullUrl, `${provider.url}/Appointment/appt-1`);
  const byPatient = json(await request(provider.url, 'GET', '/Patient/2/Appointment'));
  t.equal(byPatient['total'], provider.store.ids().length);
  const meta = await request(provider.url, 'GET', '/metadata');
  t.equal(meta.status, 200);
  t.equal(json(meta)['resourceType'], 'CapabilityStatement');
  const slots = json(await request(provider.url, 'GET', '/Slot?start=ge2030-01-01'));
  t.same([slots['type'], slots['total']], ['searchset', 0]);
  t.equal((await request(provider.url, 'GET', '/Nothing/here')).status, 404);
  t.equal((await request(provider.url, 'DELETE', '/Appointment/appt-1')).status, 405);
});

t.test('faults', async (t) => {
  const errorCode = async (p: Promise<Answer>): Promise<string> => {
    try {
      const a = await p;
      return `answered ${a.status}`;
    } catch (err) {
      return String((err as NodeJS.ErrnoException).code ?? (err as Error).message);
    }
  };

  t.test('refuse: socket closed without an answer, and the request is still recorded', async (t) => {
    const from = provider.requests.length;
    const off = provider.fault('refuse', { method: 'PUT' });
    const code = await errorCode(request(provider.url, 'PUT', '/Appointment/appt-4', { body: 'recorded anyway', headers: { 'If-Match': 'W/"1"' } }));
    t.equal(code, 'ECONNRESET');
    t.equal(provider.requests.length, from + 1);
    t.equal(provider.requests[from]!.body.toString('utf8'), 'recorded anyway');
    t.equal((await request(provider.url, 'GET', '/Appointment/appt-4')).status, 200, 'other methods unaffected');
    off();
    t.equal(provider.store.currentVersion('appt-4'), '1', 'nothing stored');
  });

  t.test('hang: never answers (client timeout)', async (t) => {
    const off = provider.fault('hang', { path: /^\/Appointment\/appt-1$/ });
    const started = Date.now();
    t.equal(await errorCode(request(provider.url, 'GET', '/Appointment/appt-1', { timeoutMs: 200 })), 'CLIENT_TIMEOUT');
    t.ok(Date.now() - started >= 190);
    t.equal((await request(provider.url, 'GET', '/Appointment/appt-5')).status, 200, 'other paths unaffected');
    off();
    t.equal((await request(provider.url, 'GET', '/Appointment/appt-1')).status, 200, 'removed');
  });

  t.test('reset-mid-response: headers then a cut-short body', async (t) => {
    const off = provider.fault('reset-mid-response');
    const code = await errorCode(request(provider.url, 'GET', '/Appointment/appt-1'));
    t.match(code, /^(ECONNRESET|ABORTED|INCOMPLETE)$/, `client sees a broken response (${code})`);
    off();
  });

  t.test('garbage: non-HTTP bytes give a parse error', async (t) => {
    const off = provider.fault('garbage');
    const code = await errorCode(request(provider.url, 'GET', '/Appointment/appt-1'));
    t.match(code, /^HPE_/, `parse error (${code})`);
    off();
  });

  type Asserts = Pick<typeof t, 'equal' | 'match' | 'ok'>;
  const statusCases: Array<[Fault, number, RegExp, (tt: Asserts, a: Answer) => void]> = [
    ['status-500', 500, /^application\/fhir\+json/, (tt, a) => tt.equal(json(a)['resourceType'], 'OperationOutcome')],
    ['status-503-html', 503, /^text\/html/, (tt, a) => tt.match(a.body.toString('utf8'), /<html>/)],
    ['status-504', 504, /^text\/plain/, (tt, a) => tt.ok(a.body.length > 0)],
    ['empty-200', 200, /^application\/fhir\+json/, (tt, a) => tt.equal(a.body.length, 0)],
  ];
  for (const [fault, status, type, check] of statusCases) {
    t.test(fault, async (t) => {
      const off = provider.fault(fault, { method: 'GET', path: /\/Appointment\// });
      const a = await request(provider.url, 'GET', '/Appointment/appt-1');
      t.equal(a.status, status);
      t.match(a.headers['content-type'] ?? '', type);
      check(t, a);
      off();
      t.equal((await request(provider.url, 'GET', '/Appointment/appt-1')).status, 200, 'removed');
    });
  }

  t.test('redirect: 307 to an absolute URL, not followed', async (t) => {
    const off = provider.fault('redirect');
    const a = await request(provider.url, 'GET', '/Appointment/appt-1');
    t.equal(a.status, 307);
    t.equal(a.headers['location'], `${provider.url}/moved/Appointment/appt-1`);
    off();
  });

  t.test('slow: answers normally after delayMs', async (t) => {
    const off = provider.fault('slow', { delayMs: 300 });
    const started = Date.now();
    const a = await request(provider.url, 'GET', '/Appointment/appt-1');
    t.equal(a.status, 200);
    t.ok(Date.now() - started >= 290, 'delayed');
    t.equal(await errorCode(request(provider.url, 'GET', '/Appointment/appt-1', { timeoutMs: 100 })), 'CLIENT_TIMEOUT', 'a short client timeout fires first');
    off();
  });

  t.test('the latest matching fault wins; none overrides', async (t) => {
    const offAll = provider.fault('status-500');
    const offNone = provider.fault('none', { path: /appt-5$/ });
    t.equal((await request(provider.url, 'GET', '/Appointment/appt-5')).status, 200);
    t.equal((await request(provider.url, 'GET', '/Appointment/appt-1')).status, 500);
    offNone();
    offAll();
  });
});

t.test('options: basePath, absolute Location, omitEtag, seed', async (t) => {
  const p = await startDemoProvider({ basePath: '/fhir/', seed: 'gp-connect', omitEtag: true, relativeLocation: false });
  t.teardown(() => p.close());
  t.same(p.store.ids(), [...SEED_IDS['gp-connect']]);
  t.equal((await request(p.url, 'GET', '/Appointment/1001')).status, 404, 'nothing outside the base path');
  const read = await request(p.url, 'GET', '/fhir/Appointment/1001');
  t.equal(read.status, 200);
  t.equal(read.headers['etag'], undefined);
  t.ok(read.headers['last-modified']);
  const put = await request(p.url, 'PUT', '/fhir/Appointment/1001', { body: read.body, headers: { 'If-Match': 'W/"1"' } });
  t.equal(put.status, 200);
  t.equal(put.headers['etag'], undefined);
  t.equal(put.headers['location'], `${p.url}/fhir/Appointment/1001/_history/2`);
  t.match(p.url, /^http:\/\/127\.0\.0\.1:\d+$/);

  const none = await startDemoProvider({ seed: 'none' });
  t.teardown(() => none.close());
  t.same(none.store.ids(), []);
  // close() must not wait for a hanging request
  none.fault('hang');
  const hanging = request(none.url, 'GET', '/metadata').catch(() => 'closed');
  await new Promise((r) => setTimeout(r, 50));
  await none.close();
  t.equal(await hanging, 'closed');
});
