/**
 * Issue 13 items 8, 14 and 15 (rulings 21, 25): headers and parameters that change what the
 * provider would do are refused before anything is forwarded; a leap-second start is in the past.
 */
import t from 'tap';
import { assertOutcome } from '../helpers/assert.js';
import { cancelRequest, identityHeaders, startHarness } from '../helpers/harness.js';

const h = await startHarness();
t.teardown(() => h.close());
const ids = h.provider.store.ids();
const count = () => h.provider.requests.length;

t.test('item 8: method-override headers on a valid cancel or a read → 400 BAD_REQUEST, nothing forwarded', async (t) => {
  for (const name of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override', 'x-http-method-override']) {
    const cancel = await cancelRequest(h, 'nhs-booking', ids[0]!);
    const before = count();
    const r = await h.request({ ...cancel, headers: { ...cancel.headers, [name]: 'DELETE' } });
    assertOutcome(t, r, 400, 'BAD_REQUEST');
    t.equal(count(), before, `${name} on a cancel: the provider saw nothing`);
    const read = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${ids[1]}`, headers: { ...identityHeaders('nhs-booking', 'read'), [name]: 'PUT' } });
    assertOutcome(t, read, 400, 'BAD_REQUEST');
    // Ruling 14: the expression names the header that was sent.
    const sent = ({ 'x-http-method-override': 'X-HTTP-Method-Override' } as Record<string, string>)[name] ?? name;
    t.same(read.json.issue[0].expression, [`http.${sent}`], `${name}: named in the expression`);
    t.equal(count(), before, `${name} on a read: the provider saw nothing`);
  }
  t.equal(h.provider.store.currentVersion(ids[0]!), '1', 'the appointment is untouched');
});

t.test('item 8: the _method query parameter (method-override as a parameter) on a read or a search → 400, nothing forwarded', async (t) => {
  for (const query of ['_method=DELETE', 'x=1&_method=PUT', '%5Fmethod=DELETE', '_METHOD=DELETE', '_method', '_%6Dethod=DELETE', '%5F%6D%65%74%68%6F%64=PUT', 'x=1;_method=PUT', '+_method=DELETE', '%20_method=DELETE', '.method=DELETE', '_method%20=PUT']) {
    const before = count();
    const read = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${ids[1]}?${query}`, headers: identityHeaders('nhs-booking', 'read') });
    assertOutcome(t, read, 400, 'BAD_REQUEST');
    t.equal(count(), before, `${query}: the provider saw nothing`);
  }
  const ok = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${ids[1]}?_format=json&x_method=1`, headers: identityHeaders('nhs-booking', 'read') });
  t.equal(ok.status, 200, 'another parameter merely ending in _method is not refused');
});

t.test('item 8: a body on GET or DELETE → 400 BAD_REQUEST, nothing forwarded', async (t) => {
  const cancel = await cancelRequest(h, 'nhs-booking', ids[1]!);
  const before = count();
  const read = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${ids[1]}`, headers: { ...identityHeaders('nhs-booking', 'read'), 'Content-Type': 'application/fhir+json', 'Content-Length': String(Buffer.byteLength(String(cancel.body))) }, body: cancel.body });
  assertOutcome(t, read, 400, 'BAD_REQUEST');
  t.match(read.json.issue[0].diagnostics, /must not carry a body/);
  t.equal(count(), before, 'a read with an Appointment body is not forwarded');
  const del = await h.request({ method: 'DELETE', path: `/STU3/1/Appointment/${ids[1]}`, headers: { ...identityHeaders('nhs-booking', 'read'), 'Content-Length': '2' }, body: '{}' });
  // Ruling 25 before the route's 405: the DELETE it names has no route of its own.
  assertOutcome(t, del, 400, 'BAD_REQUEST');
  t.match(del.json.issue[0].diagnostics, /must not carry a body/);
  t.equal(count(), before, 'nor a DELETE with a body');
  const override = await h.request({ method: 'DELETE', path: `/STU3/1/Appointment/${ids[1]}`, headers: { ...identityHeaders('nhs-booking', 'read'), 'X-HTTP-Method-Override': 'PUT' } });
  assertOutcome(t, override, 400, 'BAD_REQUEST');
  const bare = await h.request({ method: 'DELETE', path: `/STU3/1/Appointment/${ids[1]}`, headers: identityHeaders('nhs-booking', 'read') });
  t.equal(bare.status, 405, 'a DELETE without a body is the route\'s 405');
  // A bodiless read still works.
  const ok = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${ids[1]}`, headers: identityHeaders('nhs-booking', 'read') });
  t.equal(ok.status, 200);
});

t.test('item 8: header names equal to a checked header with "_" or "." for "-" → 400, not echoed', async (t) => {
  // `.` as well: CGI, PHP and some proxies fold it like `_` (If.Match, Ssp.To reached the provider).
  for (const name of ['Ssp_TraceID', 'If_Match', 'Ssp_To', 'Content_Type', 'Content_Encoding', 'X_Forwarded_For', 'If.Match', 'Ssp.To', 'Content.Type', 'Ssp.InteractionID', 'If_None_Match', 'If_Modified_Since', 'Authorization_']) {
    const cancel = await cancelRequest(h, 'nhs-booking', ids[2]!);
    const before = count();
    const r = await h.request({ ...cancel, headers: { ...cancel.headers, [name]: 'W/"7"' } });
    if (name === 'Authorization_') {
      t.equal(r.status, 200, 'a name that is not a look-alike passes');
      t.equal(h.provider.requests.at(-1)?.headers['authorization_'], 'W/"7"', 'and is forwarded unchanged, as any end-to-end header (ruling 11)');
      continue;
    }
    assertOutcome(t, r, 400, 'BAD_REQUEST');
    t.notOk(r.body.toString().includes(name), `${name}: the name is not echoed`);
    t.equal(count(), before, `${name}: the provider saw nothing`);
  }
});

t.test('item 15: _format=json=xml and a Content-Encoding on a cancel → 415', async (t) => {
  const cancel = await cancelRequest(h, 'nhs-booking', ids[3]!);
  const before = count();
  for (const q of ['_format=json=xml', '_format=json=', '_format=application/fhir+json=xml']) {
    assertOutcome(t, await h.request({ ...cancel, path: `${cancel.path}?${q}` }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  }
  for (const enc of ['gzip', 'identity', 'deflate, gzip']) {
    assertOutcome(t, await h.request({ ...cancel, headers: { ...cancel.headers, 'Content-Encoding': enc } }), 415, 'UNSUPPORTED_MEDIA_TYPE', { expression: 'http.Content-Encoding' });
  }
  t.equal(count(), before, 'the provider saw nothing');
  t.equal((await h.request({ ...cancel, path: `${cancel.path}?_format=json` })).status, 200, '_format=json alone still passes');
});

t.test('item 14: a GP Connect cancel whose stored start is …T23:59:60Z in the past → 422, nothing forwarded', async (t) => {
  const g = await startHarness({ standard: 'gp-connect' });
  t.teardown(() => g.close());
  const source = g.provider.store.read(g.provider.store.ids()[0]!)!;
  const copy = JSON.parse(JSON.stringify(source.resource));
  const id = 'leap-second';
  copy.id = id;
  copy.start = '2016-12-31T23:59:60Z';
  copy.end = '2017-01-01T00:10:00Z';
  g.provider.store.create(copy, id);
  const cancel = await cancelRequest(g, 'gp-connect', id);
  const before = g.provider.requests.length;
  const r = await g.request(cancel);
  assertOutcome(t, r, 422, 'INVALID_RESOURCE', { expression: 'Appointment.start' });
  t.equal(g.provider.requests.length, before, 'refused before the provider is contacted');
  t.equal(g.provider.store.currentVersion(id), '1', 'the past appointment is not cancelled');
});

t.test('item 8/16: client X-Forwarded-* and Forwarded never reach the provider; the gateway sets its own', async (t) => {
  const id = ids[4]!;
  const r = await h.request({ method: 'GET', path: `/STU3/1/Appointment/${id}`, headers: { ...identityHeaders('nhs-booking', 'read'), 'X-Forwarded-For': '10.9.9.9', Forwarded: 'for=10.9.9.9', 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'http' } });
  t.equal(r.status, 200);
  const seen = h.provider.requests.filter((q) => q.method === 'GET' && q.url.endsWith(id)).at(-1)!;
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For is the client address the gateway saw');
  t.equal(seen.headers['x-forwarded-proto'], 'https');
  t.match(seen.headers['forwarded'], /^for=127\.0\.0\.1;proto=https;host="[^"]+"$/, "the gateway's own Forwarded (RFC 7239), not the client's");
  t.not(seen.headers['x-forwarded-host'], 'evil.example');
});

t.test('ruling 19: refusals before the Spine-header check still carry Ssp-TraceID in the decision line and the audit record', async (t) => {
  const wait = async <T>(find: () => T | undefined): Promise<T | undefined> => {
    for (let i = 0; i < 50; i++) {
      const v = find();
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 10));
    }
    return undefined;
  };
  const decision = (trace: string) => wait(() => h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'decision' && l.traceId === trace));
  const cancel = await cancelRequest(h, 'nhs-booking', ids[2]!);
  const trace = String(cancel.headers!['Ssp-TraceID']);
  const r = await h.request({ ...cancel, headers: { ...cancel.headers, 'X-HTTP-Method-Override': 'DELETE' } });
  assertOutcome(t, r, 400, 'BAD_REQUEST');
  t.ok(await decision(trace), 'the decision line of a ruling-25 refusal carries the trace id');
  t.ok(await wait(() => h.audit.find((a) => a.traceId === trace)), 'and its audit record');
  for (const [method, path] of [['GET', '/STU3/1/Nope/1'], ['DELETE', `/STU3/1/Appointment/${ids[2]}`]] as const) {
    const headers = identityHeaders('nhs-booking', 'read');
    const tr = String(headers['Ssp-TraceID']);
    const x = await h.request({ method, path, headers });
    t.ok(x.status === 404 || x.status === 405, `${method} ${path}: ${x.status}`);
    t.ok(await decision(tr), `${method} ${path}: the decision line carries the trace id`);
  }
});

t.test('ruling 11: a passthrough read carries the client\'s end-to-end headers, never its path overrides or hop-by-hop ones', async (t) => {
  const before = count();
  const r = await h.request({
    method: 'GET', path: `/STU3/1/Appointment/${ids[4]}`,
    headers: { ...identityHeaders('nhs-booking', 'read'), 'X-Custom': 'v', Connection: 'keep-alive, X-Hop', 'X-Hop': '1', 'X-Original-URL': `/Appointment/${ids[5]}`, 'X-Forwarded-For': '10.9.9.9' },
  });
  t.equal(r.status, 200);
  const got = h.provider.requests.slice(before).find((x) => x.method === 'GET')?.headers ?? {};
  t.equal(got['x-custom'], 'v', 'X-Custom as sent');
  t.notOk(got['x-hop'], 'a header named in Connection is not');
  t.notOk(got['x-original-url'], 'nor a path override');
  t.not(got['x-forwarded-for'], '10.9.9.9', 'X-Forwarded-For is the gateway\'s own');
});
