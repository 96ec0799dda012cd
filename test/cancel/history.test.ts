/**
 * Ruling 22 / issue 18 item 3: a version read the provider cannot answer is answered from the kept
 * versions — the stored bytes, ETag and Last-Modified; in the format the client asked for by
 * `_format` or `Accept` when that is not the stored one (ruling 21).
 */
import t from 'tap';
import { createHistoryRead } from '../../src/cancel/history.js';
import { jsonCodec } from '../../src/adapters/codec-json.js';
import { xmlCodec } from '../../src/adapters/codec-xml.js';
import type { ProviderPort } from '../../src/ports/provider.js';
import type { KeptVersion, VaultPort } from '../../src/ports/vault.js';

const resource = { resourceType: 'Appointment', id: 'a1', meta: { versionId: '1', lastUpdated: '2029-06-01T10:00:00Z' }, status: 'booked', minutesDuration: 15, participant: [{ status: 'accepted' }] };
const storedJson = Buffer.from(JSON.stringify(resource));

function setup(providerStatus: number, kept: Pick<KeptVersion, 'body' | 'mediaType'> | undefined, now?: () => number) {
  const provider = { read: async () => ({ status: providerStatus, headers: {}, body: Buffer.alloc(0), ms: 1 }) } as unknown as ProviderPort;
  const vault = { version: async () => (kept ? { appointmentId: 'a1', versionId: '1', sha256: '', readAt: 0, lastUpdated: '2029-06-01T10:00:00Z', ...kept } : undefined) } as unknown as VaultPort;
  return createHistoryRead({ provider, vault, codecs: [jsonCodec, xmlCodec], exchange: { deadlineMs: 1000, bodyDeadlineMs: 1000, maxBytes: 1 << 20 }, ...(now ? { now } : {}) });
}

t.test('404 from the provider, kept as JSON: the stored bytes when no format is asked, or JSON is', async (t) => {
  for (const wanted of [undefined, jsonCodec]) {
    const a = await setup(404, { body: storedJson, mediaType: 'application/fhir+json' })('a1', '1', {}, wanted);
    t.equal(a.status, 200);
    t.ok(a.body.equals(storedJson), 'the kept bytes, unchanged');
    t.equal(a.headers['content-type'], 'application/fhir+json');
    t.equal(a.headers.etag, 'W/"1"');
    t.equal(a.headers['last-modified'], new Date('2029-06-01T10:00:00Z').toUTCString());
  }
});

t.test('kept as JSON, XML asked for: the same resource in FHIR XML', async (t) => {
  const a = await setup(501, { body: storedJson, mediaType: 'application/fhir+json' })('a1', '1', {}, xmlCodec);
  t.equal(a.status, 200);
  t.match(String(a.headers['content-type']), /^application\/fhir\+xml/);
  const d = xmlCodec.decode(a.body, { maxDepth: 64, maxNodes: 10_000 });
  t.ok(d.ok, 'FHIR XML');
  if (d.ok) t.same(d.resource, resource, 'the same resource');
  t.equal(a.headers.etag, 'W/"1"');
});

t.test('kept as XML, JSON asked for: the same resource in JSON', async (t) => {
  const xml = xmlCodec.encode(resource);
  const a = await setup(405, { body: xml, mediaType: 'application/fhir+xml' })('a1', '1', {}, jsonCodec);
  t.match(String(a.headers['content-type']), /^application\/fhir\+json/);
  t.same(JSON.parse(a.body.toString()), resource);
});

t.test('kept bytes that do not read cleanly are served as stored', async (t) => {
  const odd = Buffer.from('{"resourceType":"Appointment","id":"a1","id":"a1"}');
  const a = await setup(404, { body: odd, mediaType: 'application/fhir+json' })('a1', '1', {}, xmlCodec);
  t.ok(a.body.equals(odd));
  t.equal(a.headers['content-type'], 'application/fhir+json');
});

t.test('nothing kept: the provider\'s 404 stands', async (t) => {
  const e = await setup(404, undefined)('a1', '1', {}, undefined).then(() => undefined, (x: { code?: string }) => x.code);
  t.ok(e, 'refused with a gateway error');
});

t.test('ruling 22: a provider that cannot answer (404, 405, 410, 501, any 5xx) -> the kept version; other answers stand', async (t) => {
  for (const status of [404, 405, 410, 500, 501, 502, 503, 504]) {
    const a = await setup(status, { body: storedJson, mediaType: 'application/fhir+json' })('a1', '1', {}, undefined);
    t.equal(a.status, 200, `${status}: served from the vault`);
  }
  for (const status of [400, 401, 403, 409]) {
    const got = await setup(status, { body: storedJson, mediaType: 'application/fhir+json' })('a1', '1', {}, undefined).then((a) => a.status, (e: { code?: string }) => e.code);
    t.not(got, 200, `${status}: the provider's refusal stands (${String(got)})`);
  }
});

t.test('the store cannot be read: 500, retryable, never the provider\'s definitive 404', async (t) => {
  const provider = { read: async () => ({ status: 404, headers: {}, body: Buffer.alloc(0), ms: 1 }) } as unknown as ProviderPort;
  const vault = { version: async () => { throw new Error('store down'); } } as unknown as VaultPort;
  const read = createHistoryRead({ provider, vault, codecs: [jsonCodec, xmlCodec], exchange: { deadlineMs: 1000, bodyDeadlineMs: 1000, maxBytes: 1 << 20 } });
  const e = await read('a1', '1', {}, undefined).then(() => undefined, (x: { code?: string }) => x);
  t.equal(e?.code, 'INTERNAL_ERROR', 'INTERNAL_ERROR: 500 INTERNAL_SERVER_ERROR');
  // The provider's own 5xx stands: the store's trouble adds nothing to it.
  const errors: unknown[] = [];
  const failing = { read: async () => ({ status: 503, headers: { 'content-type': 'text/plain' }, body: Buffer.from('busy'), ms: 1 }) } as unknown as ProviderPort;
  const read503 = createHistoryRead({ provider: failing, vault, codecs: [jsonCodec, xmlCodec], exchange: { deadlineMs: 1000, bodyDeadlineMs: 1000, maxBytes: 1 << 20 }, onVaultError: (x) => errors.push(x) });
  const e503 = await read503('a1', '1', {}, undefined).then(() => undefined, (x: { code?: string }) => x);
  t.not(e503?.code, 'INTERNAL_ERROR', `the provider's 503 is answered as the provider's (${e503?.code})`);
  t.equal(errors.length, 1, 'the store error is reported to the caller (logged)');
});

t.test('a redirect or a 2xx that is not the version -> the kept version; each provider failure counted; vault answers marked', async (t) => {
  for (const status of [301, 302, 307, 308, 201, 202, 204]) {
    const kinds: string[] = [];
    const provider = { read: async () => ({ status, headers: {}, body: Buffer.alloc(0), ms: 1 }) } as unknown as ProviderPort;
    const vault = { version: async () => ({ appointmentId: 'a1', versionId: '1', sha256: '', readAt: 0, body: storedJson, mediaType: 'application/fhir+json' }) } as unknown as VaultPort;
    const read = createHistoryRead({ provider, vault, codecs: [jsonCodec, xmlCodec], exchange: { deadlineMs: 1000, bodyDeadlineMs: 1000, maxBytes: 1 << 20 }, onUpstreamError: (k) => kinds.push(k) });
    const a = await read('a1', '1', {}, jsonCodec);
    t.equal(a.status, 200, `${status}: served from the vault`);
    t.equal(a.servedFrom, 'vault');
    t.same(kinds, [status < 300 ? 'status' : 'redirect'], `${status}: counted`);
  }
  // Nothing kept: a redirect is still never followed nor passed on.
  const redirect = setup(307, undefined);
  t.equal(await redirect('a1', '1', {}, jsonCodec).then(() => undefined, (e: { code?: string }) => e.code), 'UPSTREAM_UNAVAILABLE');
});

t.test('the provider unreachable: counted by kind; a store error then is reported, not swallowed', async (t) => {
  const { ProviderFailure } = await import('../../src/ports/provider.js');
  const kinds: string[] = [];
  const errors: unknown[] = [];
  const provider = { read: async () => { throw new ProviderFailure('timeout', 'deadline'); } } as unknown as ProviderPort;
  const down = { version: async () => { throw new Error('store down'); } } as unknown as VaultPort;
  const read = createHistoryRead({ provider, vault: down, codecs: [jsonCodec, xmlCodec], exchange: { deadlineMs: 1000, bodyDeadlineMs: 1000, maxBytes: 1 << 20 }, onUpstreamError: (k) => kinds.push(k), onVaultError: (e) => errors.push(e) });
  t.equal(await read('a1', '1', {}, jsonCodec).then(() => undefined, (e: { code?: string }) => e.code), 'UPSTREAM_UNAVAILABLE');
  t.same(kinds, ['timeout']);
  t.equal(errors.length, 1, 'the store error reported');
  const kept = { version: async () => ({ appointmentId: 'a1', versionId: '1', sha256: '', readAt: 0, body: storedJson, mediaType: 'application/fhir+json' }) } as unknown as VaultPort;
  const served = await createHistoryRead({ provider, vault: kept, codecs: [jsonCodec, xmlCodec], exchange: { deadlineMs: 1000, bodyDeadlineMs: 1000, maxBytes: 1 << 20 } })('a1', '1', {}, jsonCodec);
  t.equal(served.servedFrom, 'vault');
});

t.test('If-None-Match on a version answered from the vault: 304 when it names that version (weak comparison)', async (t) => {
  const read = setup(404, { body: storedJson, mediaType: 'application/fhir+json' });
  for (const [inm, status] of [['W/"1"', 304], ['"1"', 304], ['W/"0", W/"1"', 304], ['*', 304], ['W/"2"', 200], ['garbage', 200]] as const) {
    const a = await read('a1', '1', { 'if-none-match': inm }, jsonCodec);
    t.equal(a.status, status, `If-None-Match: ${inm}`);
    t.equal(a.headers.etag, 'W/"1"');
    if (status === 304) t.equal(a.body.length, 0, 'no body');
  }
});

t.test('a vault answer varies by Accept; If-Modified-Since at or after its Last-Modified is 304 (If-None-Match first)', async (t) => {
  // The kept version is dated 2029: the clock is after it (a date in the future is ignored).
  const read = setup(404, { body: storedJson, mediaType: 'application/fhir+json' }, () => Date.parse('2030-01-01T00:00:00Z'));
  const full = await read('a1', '1', {}, jsonCodec);
  t.equal(full.headers.vary, 'Accept, Content-Type', 'every request header the format follows (RFC 9110 §12.5.5)');
  const lm = String(full.headers['last-modified']);
  t.equal((await read('a1', '1', { 'if-modified-since': lm }, jsonCodec)).status, 304, 'not modified since its own date');
  t.equal((await read('a1', '1', { 'if-modified-since': 'Sat, 01 Jan 2000 00:00:00 GMT' }, jsonCodec)).status, 200, 'modified since an earlier date');
  t.equal((await read('a1', '1', { 'if-modified-since': 'not a date' }, jsonCodec)).status, 200, 'an unreadable date is ignored');
  t.equal((await read('a1', '1', { 'if-none-match': 'W/"9"', 'if-modified-since': lm }, jsonCodec)).status, 200, 'If-None-Match decides when both are sent');
});

t.test('re-encoded kept versions keep numbers as written (no data lost: 1.10 stays 1.10 both ways)', async (t) => {
  const xmlKept = Buffer.from('<Appointment xmlns="http://hl7.org/fhir"><id value="a1"/><meta><versionId value="1"/></meta><extension url="https://example.org/x"><valueDecimal value="1.10"/></extension><status value="booked"/><priority value="5"/><minutesDuration value="15"/><participant><status value="accepted"/></participant></Appointment>');
  const asJson = await setup(404, { body: xmlKept, mediaType: 'application/fhir+xml' })('a1', '1', {}, jsonCodec);
  t.match(asJson.body.toString(), /"valueDecimal":1\.10[,}]/, 'XML kept, JSON asked: 1.10');
  const jsonKept = Buffer.from('{"resourceType":"Appointment","id":"a1","meta":{"versionId":"1"},"extension":[{"url":"https://example.org/x","valueDecimal":1.10}],"status":"booked","participant":[{"status":"accepted"}]}');
  const asXml = await setup(404, { body: jsonKept, mediaType: 'application/fhir+json' })('a1', '1', {}, xmlCodec);
  t.match(asXml.body.toString(), /<valueDecimal value="1\.10"\/>/, 'JSON kept, XML asked: 1.10');
  // And back: what the codecs write reads back to the same text.
  const again = jsonCodec.decode(asJson.body, { maxDepth: 64, maxNodes: 10_000 });
  t.ok(again.ok);
  if (again.ok) t.match(jsonCodec.encode(again.resource).toString(), /"valueDecimal":1\.10[,}]/);
});

t.test('If-Modified-Since: only an HTTP-date, never one in the future; an odd 2xx with the store down is passed on, counted only when replaced', async (t) => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  const provider = { read: async () => ({ status: 404, headers: {}, body: Buffer.alloc(0), ms: 1 }) } as unknown as ProviderPort;
  const vault = { version: async () => ({ appointmentId: 'a1', versionId: '1', sha256: '', readAt: 0, lastUpdated: '2029-06-01T10:00:00Z', body: storedJson, mediaType: 'application/fhir+json' }) } as unknown as VaultPort;
  const read = createHistoryRead({ provider, vault, codecs: [jsonCodec, xmlCodec], exchange: { deadlineMs: 1000, bodyDeadlineMs: 1000, maxBytes: 1 << 20 }, now: () => now });
  for (const [ims, status] of [
    ['Fri, 01 Jun 2029 10:00:00 GMT', 304], ['Friday, 01-Jun-29 10:00:00 GMT', 304], ['Fri Jun  1 10:00:00 2029', 304],
    ['garbage 2030', 200], ['2029-12-01T00:00:00Z', 200], ['Fri, 01 Jun 2029 10:00:00', 200], ['Mon, 01 Jan 2035 00:00:00 GMT', 200],
  ] as const) {
    t.equal((await read('a1', '1', { 'if-modified-since': ims }, jsonCodec)).status, status, `If-Modified-Since: ${ims}`);
  }
  const kinds: string[] = [];
  const accepted = { read: async () => ({ status: 202, headers: {}, body: Buffer.alloc(0), ms: 1 }) } as unknown as ProviderPort;
  const down = { version: async () => { throw new Error('store down'); } } as unknown as VaultPort;
  const a = await createHistoryRead({ provider: accepted, vault: down, codecs: [jsonCodec, xmlCodec], exchange: { deadlineMs: 1000, bodyDeadlineMs: 1000, maxBytes: 1 << 20 }, onUpstreamError: (k) => kinds.push(k) })('a1', '1', {}, jsonCodec);
  t.equal(a.status, 202, 'the provider\'s 202 stands when nothing can replace it');
  t.same(kinds, [], 'and is not counted as a failure');
});

t.test('a refusal whose body is cut or slow is judged by its status as a complete one: 400/403/429 stand over a kept version, 404/5xx fall back to it', async (t) => {
  const { ProviderFailure } = await import('../../src/ports/provider.js');
  const kept = { version: async () => ({ appointmentId: 'a1', versionId: '1', sha256: '', readAt: 0, body: storedJson, mediaType: 'application/fhir+json' }) } as unknown as VaultPort;
  const none = { version: async () => undefined } as unknown as VaultPort;
  const cutAfter = (status: number, headers = {}) => ({ read: async () => { throw new ProviderFailure('reset', 'cut', status, false, headers); } }) as unknown as ProviderPort;
  const read = (provider: ProviderPort, vault: VaultPort) => createHistoryRead({ provider, vault, codecs: [jsonCodec, xmlCodec], exchange: { deadlineMs: 1000, bodyDeadlineMs: 1000, maxBytes: 1 << 20 } })('a1', '1', {}, jsonCodec)
    .then((a) => ({ status: a.status, from: a.servedFrom, headers: a.headers }), (e: { code?: string; statusOverride?: number; headers?: Record<string, string> }) => ({ status: e.statusOverride, code: e.code, headers: e.headers }));
  for (const status of [400, 403, 429]) {
    const r = await read(cutAfter(status, { 'retry-after': '9' }), kept);
    t.equal(r.status, status, `${status} cut: the provider's status stands over the kept version`);
    t.equal((r as { from?: string }).from, undefined);
  }
  t.same((await read(cutAfter(429, { 'retry-after': '9' }), kept)).headers, { 'retry-after': '9' }, 'its Retry-After');
  for (const status of [404, 410, 503]) t.match(await read(cutAfter(status), kept), { status: 200, from: 'vault' }, `${status} cut: the kept version, as when complete`);
  t.match(await read(cutAfter(404), none), { status: 404 }, 'nothing kept: its 404');
});

t.test('kept JSON holding a character XML 1.0 cannot carry, XML asked for: the kept JSON, never unreadable XML (review of stop 34)', async (t) => {
  const odd = Buffer.from(JSON.stringify({ ...resource, comment: 'a\u0001b' }));
  const a = await setup(404, { body: odd, mediaType: 'application/fhir+json' })('a1', '1', {}, xmlCodec);
  t.equal(a.status, 200);
  t.ok(a.body.equals(odd), 'the kept bytes');
  t.equal(a.headers['content-type'], 'application/fhir+json');
});

t.test('a 200 naming another version is no answer for this one: the kept version, else 500 (review of stop 35)', async (t) => {
  const current = Buffer.from(JSON.stringify({ ...resource, meta: { versionId: '3' }, status: 'cancelled' }));
  const make = (etag: string | undefined, kept: boolean) => {
    const provider = { read: async () => ({ status: 200, headers: { 'content-type': 'application/fhir+json', ...(etag ? { etag } : {}) }, body: current, ms: 1 }) } as unknown as ProviderPort;
    const vault = { version: async () => (kept ? { appointmentId: 'a1', versionId: '1', sha256: '', readAt: 0, body: storedJson, mediaType: 'application/fhir+json' } : undefined) } as unknown as VaultPort;
    const errors: string[] = [];
    const read = createHistoryRead({ provider, vault, codecs: [jsonCodec, xmlCodec], exchange: { deadlineMs: 1000, bodyDeadlineMs: 1000, maxBytes: 1 << 20 }, onUpstreamError: (k) => errors.push(k) });
    return { read, errors };
  };
  for (const etag of ['W/"3"', undefined]) {
    const { read, errors } = make(etag, true);
    const a = await read('a1', '1', {});
    t.ok(a.body.equals(storedJson), `ETag ${etag ?? 'none (meta.versionId)'}: the kept version 1, not the provider's 3`);
    t.equal(a.headers.etag, 'W/"1"');
    t.same(errors, ['status'], 'counted as a provider failure');
  }
  const e = await make('W/"3"', false).read('a1', '1', {}).then(() => undefined, (x: { code?: string }) => x.code);
  t.equal(e, 'UPSTREAM_UNAVAILABLE', 'nothing kept: the provider\'s failure, never another version under this one\'s URL');
  const same = await make('W/"1"', false).read('a1', '1', {});
  t.equal(same.status, 200, 'the version asked for: passed on');
});
