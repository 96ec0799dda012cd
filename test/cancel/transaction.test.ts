/**
 * The provider half of a guarded write (src/cancel/transaction.ts) on in-memory adapters, no
 * sockets: every outcome (200, 404, 409, 422, 500), report mode, the vault's keep and link, and the
 * race of two writes with the same If-Match (ruling 10/23).
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { jsonCodec } from '../../src/adapters/codec-json.js';
import { xmlCodec } from '../../src/adapters/codec-xml.js';
import type { Codec } from '../../src/ports/codec.js';
import { createMemoryLock } from '../../src/adapters/lock-memory.js';
import { createNoVault } from '../../src/adapters/vault-none.js';
import { createWriteTransaction, type WriteRequest, type WriteTrail } from '../../src/cancel/transaction.js';
import { buildConfig } from '../../src/config.js';
import { GatewayError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { ManualClock } from '../../src/ports/clock.js';
import { ProviderFailure, type ProviderAnswer, type ProviderPort } from '../../src/ports/provider.js';
import type { KeepEntry, VaultPort } from '../../src/ports/vault.js';
import { STANDARDS } from '../../src/standards/index.js';

type Json = Record<string, any>;
const NHS = STANDARDS['nhs-booking'];
const GPC = STANDARDS['gp-connect'];
const fixture: Json = JSON.parse(readFileSync(new URL('../fixtures/nhs-booking/appointment.json', import.meta.url), 'utf8'));
const ID = 'appt-1';

function storedAppointment(): Json {
  const r = structuredClone(fixture);
  r.id = ID;
  r.status = 'booked';
  r.start = '2030-01-01T10:00:00Z';
  r.end = '2030-01-01T10:30:00Z';
  r.meta = { ...r.meta, versionId: '1', lastUpdated: '2029-01-01T10:00:00.000Z' };
  return r;
}

/** A provider in memory: version-aware like the demo, recording every call. */
function memoryProvider(opts: { readStatus?: number; writeAnswer?: (body: Json) => ProviderAnswer | Promise<ProviderAnswer>; readFailure?: ProviderFailure; writeFailure?: ProviderFailure } = {}) {
  let current = storedAppointment();
  const calls: Array<{ op: 'read' | 'write'; body?: Buffer }> = [];
  const json = (status: number, body: unknown, headers: Record<string, string> = {}): ProviderAnswer => ({ status, headers: { 'content-type': 'application/fhir+json', ...headers }, body: Buffer.from(JSON.stringify(body)), ms: 1 });
  const port: ProviderPort = {
    async read() {
      calls.push({ op: 'read' });
      if (opts.readFailure) throw opts.readFailure;
      if (opts.readStatus && opts.readStatus !== 200) return json(opts.readStatus, { resourceType: 'OperationOutcome' });
      return json(200, current, { etag: `W/"${current.meta.versionId}"` });
    },
    async write(_path, body) {
      calls.push({ op: 'write', body });
      if (opts.writeFailure) throw opts.writeFailure;
      const next = JSON.parse(body.toString());
      next.meta = { ...next.meta, versionId: String(Number(current.meta.versionId) + 1), lastUpdated: '2029-06-01T10:00:00.000Z' };
      if (opts.writeAnswer) return opts.writeAnswer(next);
      current = next;
      return json(200, next, { location: `http://provider.internal/Appointment/${ID}/_history/${next.meta.versionId}` });
    },
    ping: async () => {},
    close: async () => {},
  };
  return { port, calls, get current() { return current; } };
}

function recordingVault(fail?: { keep?: boolean; link?: boolean }): VaultPort & { kept: KeepEntry[]; links: string[]; bodies: Buffer[] } {
  const base = createNoVault();
  const kept: KeepEntry[] = [];
  const links: string[] = [];
  const bodies: Buffer[] = [];
  return {
    ...base, kept, links, bodies,
    async keep(e) {
      if (fail?.keep) throw new Error('disk full');
      kept.push(e);
      return `k${kept.length}`;
    },
    async link(id, after) {
      if (fail?.link) throw new Error('gone');
      links.push(`${id}->${after.versionId}${after.body ? '' : ' (no body)'}`);
      if (after.body) bodies.push(after.body);
    },
  };
}

function setup(o: { standard?: typeof NHS; provider?: ReturnType<typeof memoryProvider>; vault?: ReturnType<typeof recordingVault>; report?: Partial<Record<string, 'report' | 'enforce'>>; codecs?: Codec[] } = {}) {
  const standard = o.standard ?? NHS;
  const provider = o.provider ?? memoryProvider();
  const vault = o.vault ?? recordingVault();
  const clock = new ManualClock(Date.UTC(2029, 5, 1));
  const config = buildConfig({ publicBaseUrl: 'https://gw.example/STU3/1', tls: { cert: 'x', key: 'x', clientCa: 'x' }, upstream: { url: 'http://127.0.0.1:9' }, spine: { providerAsids: ['1'] }, report: o.report ?? {} }, { checkFiles: false });
  const metrics = createMetrics();
  const tx = createWriteTransaction({
    provider: provider.port, lock: createMemoryLock({ clock }), vault, clock, codecs: o.codecs ?? [jsonCodec], changeSets: standard.changeSets,
    logger: createLogger('silent'), metrics, publicBaseUrl: 'https://gw.example/STU3/1', report: config.report,
    timeouts: { upstreamMs: 1000, bodyMs: 1000, lockWaitMs: 5000, maxAnswerBytes: 1 << 20 },
  });
  return { tx, provider, vault, metrics, clock };
}

function request(mutate?: (r: Json) => void, over: Partial<WriteRequest> = {}): WriteRequest {
  const r = storedAppointment();
  r.status = 'cancelled';
  mutate?.(r);
  const body = Buffer.from(JSON.stringify(r));
  return { id: ID, kind: 'cancel', ifMatch: '1', submitted: r, body, readHeaders: {}, writeHeaders: {}, preferMinimal: false, decision: { interaction: 'cancel', traceId: 't' }, ...over };
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof GatewayError ? e.code : `thrown ${String(e)}`;
  }
}

const trail = (): WriteTrail => ({ wouldReject: [], timings: {} });

t.test('200: read, keep the pre-image, write the exact bytes, link, answer with Location/ETag/Last-Modified', async (t) => {
  const s = setup();
  const req = request();
  const tr = trail();
  const a = await s.tx.run(req, tr);
  t.equal(a.status, 200);
  t.equal(a.headers.location, `https://gw.example/STU3/1/Appointment/${ID}/_history/2`, 'the provider Location made public');
  t.equal(a.headers['content-location'], `https://gw.example/STU3/1/Appointment/${ID}/_history/2`, 'Content-Location: the new version on the gateway');
  t.equal(a.headers.etag, 'W/"2"');
  t.equal(a.headers['last-modified'], new Date('2029-06-01T10:00:00.000Z').toUTCString());
  t.same(s.provider.calls.map((c) => c.op), ['read', 'write'], 'one read, then one write');
  t.ok(s.provider.calls[1]!.body!.equals(req.body), 'the bytes received are the bytes written');
  t.equal(s.vault.kept.length, 1, 'the pre-image was kept before the write');
  t.equal(s.vault.kept[0]!.preImage.versionId, '1');
  t.match(s.vault.kept[0]!.preImage.sha256, /^[0-9a-f]{64}$/);
  t.same(s.vault.links, ['k1->2'], 'the new version is linked to it');
  t.equal(tr.versionBefore, '1');
  t.equal(tr.versionAfter, '2');
  for (const stage of ['current', 'version', 'diff', 'keep']) t.type(tr.timings![stage], 'number', `stage ${stage} timed`);
});

t.test('404 from the provider read -> RECORD_NOT_FOUND, nothing written', async (t) => {
  const s = setup({ provider: memoryProvider({ readStatus: 404 }) });
  t.equal(await outcome(s.tx.run(request(), trail())), 'RECORD_NOT_FOUND');
  t.same(s.provider.calls.map((c) => c.op), ['read']);
  t.equal(s.vault.kept.length, 0);
});

t.test('stale If-Match -> VERSION_CONFLICT before any rule; nothing kept or written', async (t) => {
  const s = setup();
  t.equal(await outcome(s.tx.run(request((r) => (r.comment = 'changed'), { ifMatch: '0' }), trail())), 'VERSION_CONFLICT');
  t.same(s.provider.calls.map((c) => c.op), ['read']);
  t.equal(s.vault.kept.length, 0);
});

t.test('a difference beyond the cancellation -> BUSINESS_RULE with its path recorded', async (t) => {
  const s = setup();
  const tr = trail();
  t.equal(await outcome(s.tx.run(request((r) => (r.description = 'other')), tr)), 'BUSINESS_RULE');
  t.same(tr.differingPaths, ['Appointment.description']);
  t.same(s.provider.calls.map((c) => c.op), ['read']);
});

t.test('500s: read failure, keep failure (nothing forwarded), write failure (may have been applied), redirect', async (t) => {
  const r1 = setup({ provider: memoryProvider({ readFailure: new ProviderFailure('timeout', 'deadline') }) });
  t.equal(await outcome(r1.tx.run(request(), trail())), 'UPSTREAM_UNAVAILABLE', 'read timeout');

  const r2 = setup({ vault: recordingVault({ keep: true }) });
  t.equal(await outcome(r2.tx.run(request(), trail())), 'INTERNAL_ERROR', 'keep failed');
  t.same(r2.provider.calls.map((c) => c.op), ['read'], 'no pre-image, no write (ruling 22)');

  const r3 = setup({ provider: memoryProvider({ writeFailure: new ProviderFailure('slow-body', 'late', 200, true) }) });
  const e3 = (await r3.tx.run(request(), trail()).catch((e) => e)) as GatewayError;
  t.equal(e3.code, 'UPSTREAM_UNAVAILABLE');
  t.match(e3.issues[0]!.diagnostics, /may have been applied/, 'a slow 200 says the write may have been applied (ruling 24)');

  const r4 = setup({ provider: memoryProvider({ writeAnswer: () => ({ status: 302, headers: { location: 'http://x/' }, body: Buffer.alloc(0), ms: 1 }) }) });
  t.equal(await outcome(r4.tx.run(request(), trail())), 'UPSTREAM_UNAVAILABLE', 'redirect never passed on');
});

t.test('a provider 200 naming another appointment is never passed on (ruling 26)', async (t) => {
  const s = setup({ provider: memoryProvider({ writeAnswer: (next) => ({ status: 200, headers: {}, body: Buffer.from(JSON.stringify({ ...next, id: 'someone-else' })), ms: 1 }) }) });
  const tr = trail();
  const e = (await s.tx.run(request(), tr).catch((x) => x)) as GatewayError;
  t.equal(e.code, 'UPSTREAM_UNAVAILABLE');
  t.match(e.issues[0]!.diagnostics, /may have been applied/);
  t.same(tr.breaches, ['other-resource'], 'the breach is on the trail, for the audit record');
  const text = await s.metrics.registry.metrics();
  t.match(text, /provider_contract_breaches_total\{reason="other-resource"\} 1/);
});

t.test('ruling 26: a success body the strict reader refuses is still checked for another resource', async (t) => {
  const bodies: Array<[string, (next: Record<string, unknown>) => string, boolean]> = [
    ['a duplicate id, the last naming another', (next) => JSON.stringify(next).replace(/}$/, ',"id":"other"}'), true],
    ['a duplicate id, the first naming another', (next) => '{"id":"other",' + JSON.stringify(next).slice(1), true],
    ['a duplicate id, the first naming another and written with an escape', (next) => '{"\\u0069d":"other",' + JSON.stringify(next).slice(1), true],
    ['a byte order mark before another resource', (next) => '\uFEFF' + JSON.stringify({ ...next, id: 'other' }), true],
    ['a byte order mark before this appointment', (next) => '\uFEFF' + JSON.stringify(next), false],
    ['not JSON at all', () => 'not json', false],
    ['XML naming a Patient (another type)', () => '<Patient xmlns="http://hl7.org/fhir"><id value="pat-9"/><name><family value="Chalmers"/></name><foo/></Patient>', true],
    ['XML naming another appointment, an unknown element after it', () => '<Appointment xmlns="http://hl7.org/fhir"><id value="other"/><bogusElement/></Appointment>', true],
    ['XML with two ids', () => `<Appointment xmlns="http://hl7.org/fhir"><id value="${ID}"/><id value="other"/></Appointment>`, true],
    ['XML, broken after the root names a Patient', () => '<?xml version="1.0"?><Patient><id value="p"/><oops', true],
    ['XML of this appointment the strict reader refuses', (next) => `<Appointment xmlns="http://hl7.org/fhir"><id value="${String(next.id)}"/><bogusElement/></Appointment>`, false],
    ['an HTML page names no resource: passed on, a logged breach', () => '<html><body>provider error page</body></html>', false],
    ['an HTML page with its DOCTYPE names no resource either', () => '<!DOCTYPE html><html><body>provider error page</body></html>', false],
    ['XML of an Appointment without an id', () => '<Appointment xmlns="http://hl7.org/fhir"><status value="cancelled"/><bogusElement/></Appointment>', true],
    ['XML broken before the id is read', () => '<Appointment xmlns="http://hl7.org/fhir"><meta><oops', true],
    ['XML with a DOCTYPE whose entity could name another id', () => `<!DOCTYPE Appointment [<!ENTITY i "other">]><Appointment xmlns="http://hl7.org/fhir"><id value="&i;"/></Appointment>`, true],
    ['XML with a DOCTYPE before this appointment', () => `<!DOCTYPE Appointment><Appointment xmlns="http://hl7.org/fhir"><id value="${ID}"/></Appointment>`, true],
    // Not one JSON value, or not an object: a lenient reader may see any resource it shows.
    ['a JSON array holding another appointment', (next) => JSON.stringify([{ ...next, id: 'someone-else' }]), true],
    ['a JSON array holding this appointment and another', (next) => JSON.stringify([next, { ...next, id: 'someone-else' }]), true],
    ['this appointment, then another', (next) => JSON.stringify(next) + JSON.stringify({ ...next, id: 'someone-else' }), true],
    ['this appointment, a newline, then another', (next) => JSON.stringify(next) + '\n' + JSON.stringify({ ...next, id: 'someone-else' }), true],
    ['this appointment with a trailing comma, then another', (next) => JSON.stringify(next) + ',' + JSON.stringify({ ...next, id: 'someone-else' }), true],
    ['a JSON string holding another appointment', (next) => JSON.stringify(JSON.stringify({ ...next, id: 'someone-else' })), true],
    ['this XML appointment, then a second root naming another', (next) => `<Appointment xmlns="http://hl7.org/fhir"><id value="${String(next.id)}"/></Appointment><Appointment xmlns="http://hl7.org/fhir"><id value="someone-else"/></Appointment>`, true],
    ['this XML appointment, then a second root without a namespace', (next) => `<Appointment xmlns="http://hl7.org/fhir"><id value="${String(next.id)}"/></Appointment><Appointment><id value="someone-else"/></Appointment>`, true],
    ['an HTML page carrying another appointment as JSON', (next) => `<html><body><pre>${JSON.stringify({ ...next, id: 'someone-else' })}</pre></body></html>`, true],
    ['an HTML page carrying another appointment as FHIR XML', () => '<html><body><Appointment xmlns="http://hl7.org/fhir"><id value="someone-else"/></Appointment></body></html>', true],
    ['a JSON number (no resource shown): passed on, a logged breach', () => '42', false],
    ['an array naming a Patient with an escaped key', () => '[{"resource\\u0054ype":"Patient","id":"pat-9"}]', true],
    ['a JSON string holding a Patient with an escaped key', () => JSON.stringify('{"resource\\u0054ype":"Patient","id":"pat-9"}'), true],
    ['a Patient encoded twice inside a JSON string', () => JSON.stringify(JSON.stringify(JSON.stringify({ resourceType: 'Patient', id: 'pat-9' }))), true],
    ['an escaped duplicate resourceType before this appointment\'s', (next) => '{"resource\\u0054ype":"Patient",' + JSON.stringify(next).slice(1), true],
    // Nothing but this appointment, or no resource at all: passed on, a logged breach (ruling 12).
    ['plain text naming the FHIR site', () => 'Cancelled OK. See http://hl7.org/fhir/STU3/appointment.html', false],
    ['an HTML page linking to the FHIR site', () => '<html><body><a href="http://hl7.org/fhir/">FHIR</a> cancelled</body></html>', false],
    ['this appointment, then a NUL', (next) => JSON.stringify(next) + '\u0000', false],
    ['this appointment written twice', (next) => JSON.stringify(next) + JSON.stringify(next), false],
    ['an array holding only this appointment', (next) => JSON.stringify([next]), false],
    ['this XML appointment the strict reader refuses, then trailing text', (next) => `<Appointment xmlns="http://hl7.org/fhir"><id value="${String(next.id)}"/><bogusElement/></Appointment>\n-- end --`, false],
    // The eighth review of the lenient reading: keys written twice inside arrays, stray quotes,
    // inherited and prefixed namespaces, escapes in unreadable pieces, UTF-16.
    ['an array whose object writes resourceType twice, a Patient first', (next) => `[{"resourceType":"Patient","resourceType":"Appointment","id":"${String(next.id)}"}]`, true],
    ['an array whose object writes id twice, another first', (next) => `[{"resourceType":"Appointment","id":"other","id":"${String(next.id)}"}]`, true],
    ['prose with a stray quote before a Patient', () => 'OK" {"resourceType":"Patient","id":"p"}', true],
    ['a page declaring the FHIR namespace with a prefix', () => '<html xmlns:f="http://hl7.org/fhir"><body><f:Patient><f:id value="p"/></f:Patient></body></html>', true],
    ['a page inheriting the FHIR namespace', () => '<div xmlns="http://hl7.org/fhir"><Patient><id value="p"/></Patient></div>', true],
    ['an unreadable piece naming a Patient with an escaped key', () => '{"resource\\u0054ype":"Patient","id":"p",}', true],
    ['an HTML page with a character reference in the key', () => '<html><pre>{"resource&#84;ype":"Patient","id":"p"}</pre></html>', true],
    // Too deep for the strict reader, read by a lenient one as this appointment: passed on (never a crash).
    ['JSON nested 20,000 deep after this appointment\'s members', (next) => JSON.stringify(next).slice(0, -1) + ',"a":' + '{"a":'.repeat(20000) + '1' + '}'.repeat(20000) + '}', false],
    ['an object without a resource: no resource shown', () => '{"error":"x"}', false],
    // A serializer repeating the FHIR namespace on each contained resource (legal, redundant): they are the appointment's.
    ['this XML appointment the strict reader refuses, its contained resources redeclaring the namespace', (next) => `<?xml version="1.0"?><?xml-stylesheet href="/x.xsl"?><Appointment xmlns="http://hl7.org/fhir"><id value="${String(next.id)}"/><contained><Patient xmlns="http://hl7.org/fhir"><id value="p"/></Patient></contained><contained><Slot xmlns="http://hl7.org/fhir"><id value="s"/></Slot></contained><status value="cancelled"/></Appointment>`, false],
    ['a Patient after this XML appointment, declaring the namespace', (next) => `<Appointment xmlns="http://hl7.org/fhir"><id value="${String(next.id)}"/><futureElement/></Appointment><Patient xmlns="http://hl7.org/fhir"><id value="p"/></Patient>`, true],
  ];
  for (const [name, body, refused] of bodies) {
    const s = setup({ provider: memoryProvider({ writeAnswer: (next) => ({ status: 200, headers: {}, body: Buffer.from(body(next)), ms: 1 }) }) });
    const tr = trail();
    const r = await s.tx.run(request(), tr).then(() => 'passed on', (e: GatewayError) => e.code);
    t.equal(r, refused ? 'UPSTREAM_UNAVAILABLE' : 'passed on', name);
    if (refused) t.same(tr.breaches, ['other-resource'], `${name}: the breach is on the trail`);
  }
});

t.test('ruling 26: the lenient reading of a hostile success body is linear (a provider sends up to upstream.maxAnswerBytes)', async (t) => {
  const { namesAnotherResource } = await import('../../src/cancel/lenient-body.js');
  const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(JSON.stringify({ resourceType: 'Patient', id: 'p' }), 'utf16le')]);
  t.ok(namesAnotherResource(utf16, ID), 'UTF-16 with a byte order mark is read as such');
  const hostile = [
    '<html>' + `<Appointment xmlns="http://hl7.org/fhir"><id value="${ID}"/></Appointment><b>x</b>`.repeat(12_000),
    '<html>' + '<Patient xmlns="http://hl7.org/fhir">'.repeat(25_000),
    `{"resourceType":"Appointment","id":"${ID}","comment":"${'\\"'.repeat(300_000)}","comment":"x"}`,
    '<Ab'.repeat(250_000),
    '{'.repeat(500_000),
  ];
  for (const body of hostile) {
    const started = performance.now();
    namesAnotherResource(Buffer.from(body), ID);
    const ms = performance.now() - started;
    // Quadratic readings took seconds at 16 KB and hours at this size; linear ones take milliseconds.
    t.ok(ms < 5000, `${body.slice(0, 24)}… (${Math.round(body.length / 1024)} KiB): ${Math.round(ms)} ms`);
  }
});

t.test('a link failure after the provider accepted is logged and counted, never a failure', async (t) => {
  const s = setup({ vault: recordingVault({ link: true }) });
  const a = await s.tx.run(request(), trail());
  t.equal(a.status, 200);
  t.match(await s.metrics.registry.metrics(), /store_errors_total\{kind="link"\} 1/);
});

t.test('report mode: version and business rules reported, the write goes on', async (t) => {
  const s = setup({ report: { version: 'report', businessRules: 'report' } });
  const tr = trail();
  const a = await s.tx.run(request((r) => (r.description = 'other'), { ifMatch: '0' }), tr);
  t.equal(a.status, 200);
  t.same(tr.wouldReject.map((w) => w.code), ['VERSION_CONFLICT', 'BUSINESS_RULE']);
});

t.test('race: two writes with the same If-Match -> one forwarded, the other 409 (ruling 10)', async (t) => {
  const s = setup();
  const results = await Promise.all([outcome(s.tx.run(request(), trail())), outcome(s.tx.run(request(), trail()))]);
  t.same(results.sort(), ['VERSION_CONFLICT', 'ok']);
  t.equal(s.provider.calls.filter((c) => c.op === 'write').length, 1);
});

t.test('amend (GP Connect, ruling 27): description/comment only, stored not cancelled, in the future, status unchanged', async (t) => {
  const amend = (mutate: (r: Json) => void) => {
    const r = storedAppointment();
    mutate(r);
    return request(undefined, { kind: 'amend', submitted: r, body: Buffer.from(JSON.stringify(r)), decision: { interaction: 'amend' } });
  };
  const ok = setup({ standard: GPC });
  t.equal((await ok.tx.run(amend((r) => { r.comment = 'new'; r.description = 'new'; }), trail())).status, 200, 'comment and description amended');
  const bad = setup({ standard: GPC });
  const tr = trail();
  t.equal(await outcome(bad.tx.run(amend((r) => { r.comment = 'x'; r.minutesDuration = 5; r.status = 'cancelled'; }), tr)), 'BUSINESS_RULE');
  t.same(tr.differingPaths, ['Appointment.status', 'Appointment.minutesDuration'], 'status and every other change refused with its path');
  const past = setup({ standard: GPC });
  past.clock.advance(10 * 365 * 86400_000);
  t.equal(await outcome(past.tx.run(amend((r) => (r.comment = 'x')), trail())), 'BUSINESS_RULE', 'an appointment in the past cannot be amended');
  const nhs = setup();
  t.equal(await outcome(nhs.tx.run(amend((r) => (r.comment = 'x')), trail())), 'INTERACTION_MISMATCH', 'no amend change set under nhs-booking');
});

t.test('numbers are compared by their written text, on the Appointment itself too (ruling 26)', async (t) => {
  const { parseStrictJson } = await import('../../src/fhir/strict-json.js');
  const { changeIssues } = await import('../../src/cancel/change-rules.js');
  const parse = (text: string) => { const r = parseStrictJson(text, 64); if (!r.ok) throw new Error(r.reason); return r.value as Record<string, unknown>; };
  const before = parse('{"resourceType":"Appointment","id":"a","status":"booked","priority":12345678901234567890}');
  const after = parse('{"resourceType":"Appointment","id":"a","status":"cancelled","priority":12345678901234567891}');
  const { paths } = changeIssues(STANDARDS['nhs-booking'].changeSets.cancel, before, after, Date.now());
  t.same(paths, ['Appointment.priority'], 'a big integer changed in its last digit is a difference');
});

/**
 * A transaction whose first write goes out, times out at the gateway, and is applied by the
 * provider `appliedAfterMs` later; `writes` counts what reached the provider.
 */
function inDoubtSetup(appliedAfterMs: number, upstream: Record<string, unknown> = {}) {
  const provider = memoryProvider();
  const state = { writes: 0 };
  const clock = new ManualClock(Date.UTC(2029, 5, 1));
  const port: ProviderPort = {
    ...provider.port,
    async write(path, body, headers, opts) {
      state.writes++;
      if (state.writes === 1) {
        clock.setTimer(() => void provider.port.write(path, body, headers, opts), appliedAfterMs);
        throw new ProviderFailure('timeout', 'no answer in time', undefined, true);
      }
      return provider.port.write(path, body, headers, opts);
    },
  };
  const config = buildConfig({ publicBaseUrl: 'https://gw.example/STU3/1', tls: { cert: 'x', key: 'x', clientCa: 'x' }, upstream: { url: 'http://127.0.0.1:9', ...upstream }, spine: { providerAsids: ['1'] } }, { checkFiles: false });
  const tx = createWriteTransaction({
    provider: port, lock: createMemoryLock({ clock }), vault: recordingVault(), clock, codecs: [jsonCodec], changeSets: NHS.changeSets,
    logger: createLogger('silent'), metrics: createMetrics(), publicBaseUrl: 'https://gw.example/STU3/1', report: config.report,
    timeouts: { upstreamMs: 1000, bodyMs: 1000, inDoubtHoldMs: config.upstream.inDoubtHoldMs, lockWaitMs: 60_000, maxAnswerBytes: 1 << 20 },
  });
  return { tx, clock, config, state };
}

t.test('rulings 10/23: a write in doubt keeps the appointment locked; a second write of the same version never overtakes it', async (t) => {
  // The first write goes out, the gateway's deadline passes, and the provider applies it 500 ms later.
  const { tx, clock, state } = inDoubtSetup(500);
  const first = outcome(tx.run(request(), trail()));
  const second = outcome(tx.run(request(), trail()));
  t.equal(await first, 'UPSTREAM_UNAVAILABLE', 'the first answered at once: may have been applied');
  for (let i = 0; i < 20; i++) await Promise.resolve();
  t.equal(state.writes, 1, 'the second waits: the appointment is still locked');
  clock.advance(600); // the provider applies the first write meanwhile
  for (let i = 0; i < 20; i++) await Promise.resolve();
  t.equal(state.writes, 1, 'still locked within upstream.timeoutMs after the doubt');
  clock.advance(500);
  t.equal(await second, 'VERSION_CONFLICT', 'then it reads the version the first write made: 409, not a second PUT');
  t.equal(state.writes, 1, 'exactly one write of version 1 reached the provider');
});

t.test('a success body that is not the Appointment (an HTML page) is linked as a version without its bytes', async (t) => {
  for (const [name, body, type, link] of [
    ['an HTML page', '<html>saved</html>', 'text/html', 'k1->2 (no body)'],
    ['the cancelled appointment', undefined, 'application/fhir+json', 'k1->2'],
  ] as const) {
    const vault = recordingVault();
    const s = setup({ vault, provider: memoryProvider({ writeAnswer: (next) => ({ status: 200, headers: { etag: 'W/"2"', 'content-type': type }, body: Buffer.from(body ?? JSON.stringify(next)), ms: 1 }) }) });
    const a = await s.tx.run(request(), trail());
    t.equal(a.status, 200, `${name}: the provider's success reaches the client`);
    t.same(vault.links, [link], name);
  }
});

t.test('a content-coded success answer is judged decoded; one that cannot be decoded is never passed on (ruling 26)', async (t) => {
  const { gzipSync, brotliCompressSync } = await import('node:zlib');
  const cases: Array<[string, Record<string, string>, (next: Json) => Buffer, string]> = [
    ['gzip naming another appointment', { 'content-encoding': 'gzip' }, (next) => gzipSync(JSON.stringify({ ...next, id: 'someone-else' })), 'UPSTREAM_UNAVAILABLE other-resource'],
    ['br naming a Patient', { 'content-encoding': 'br' }, () => brotliCompressSync(JSON.stringify({ resourceType: 'Patient', id: 'p1' })), 'UPSTREAM_UNAVAILABLE other-resource'],
    ['gzip of this appointment', { 'content-encoding': 'gzip', etag: 'W/"2"' }, (next) => gzipSync(JSON.stringify(next)), '200'],
    ['an unknown coding', { 'content-encoding': 'zstd' }, (next) => Buffer.from(JSON.stringify(next)), 'UPSTREAM_UNAVAILABLE content-coding'],
    ['a corrupt gzip stream', { 'content-encoding': 'gzip' }, () => Buffer.from('not gzip at all'), 'UPSTREAM_UNAVAILABLE content-coding'],
  ];
  for (const [name, headers, body, expected] of cases) {
    const vault = recordingVault();
    const s = setup({ vault, provider: memoryProvider({ writeAnswer: (next) => ({ status: 200, headers: { 'content-type': 'application/fhir+json', ...headers }, body: body(next), ms: 1 }) }) });
    const tr = trail();
    const got = await s.tx.run(request(), tr).then((a) => String(a.status), (e: GatewayError) => `${e.code} ${tr.breaches?.join(',')}`);
    t.equal(got, expected, name);
    if (expected === '200') {
      t.same(tr.breaches ?? [], [], `${name}: no breach`);
      t.same(vault.links, ['k1->2'], `${name}: linked with its body`);
      t.ok(JSON.parse(String(vault.bodies[0])).id === ID, `${name}: the version kept decoded (the vault serves bytes by media type alone)`);
    }
  }
});

t.test('ruling 17: a content-coded read is read decoded (and kept decoded); one that cannot be decoded is a 500, nothing written', async (t) => {
  const { gzipSync } = await import('node:zlib');
  for (const [name, coding, encode, expected] of [
    ['gzip', 'gzip', (b: Buffer) => gzipSync(b), 'ok'],
    ['gzip, then identity', 'gzip, identity', (b: Buffer) => gzipSync(b), 'ok'],
    ['a corrupt stream', 'gzip', () => Buffer.from('not gzip'), 'UPSTREAM_UNAVAILABLE'],
    ['an unknown coding', 'zstd', (b: Buffer) => b, 'UPSTREAM_UNAVAILABLE'],
  ] as const) {
    const provider = memoryProvider();
    const read = provider.port.read;
    provider.port.read = async (...args) => {
      const a = await read(...args);
      return { ...a, headers: { ...a.headers, 'content-encoding': coding }, body: encode(a.body) };
    };
    const vault = recordingVault();
    const s = setup({ provider, vault });
    t.equal(await outcome(s.tx.run(request(), trail())), expected, name);
    t.same(provider.calls.map((c) => c.op), expected === 'ok' ? ['read', 'write'] : ['read'], `${name}: what reached the provider`);
    if (expected === 'ok') t.equal(JSON.parse(String(vault.kept[0]!.preImage.body)).id, ID, `${name}: the pre-image kept decoded`);
  }
});

t.test('ruling 22: an answer naming a version that is not new never shadows the kept pre-image', async (t) => {
  for (const [name, version, link] of [
    ['the same version', '1', 'k1->1 (no body)'],
    ['a lower number', '0', 'k1->0 (no body)'],
    ['the next version', '2', 'k1->2'],
  ] as const) {
    const vault = recordingVault();
    const s = setup({ vault, provider: memoryProvider({ writeAnswer: (next) => ({ status: 200, headers: { 'content-type': 'application/fhir+json' }, body: Buffer.from(JSON.stringify({ ...next, meta: { ...next.meta, versionId: version } })), ms: 1 }) }) });
    const a = await s.tx.run(request(), trail());
    t.equal(a.status, 200, `${name}: the provider's success reaches the client`);
    t.same(vault.links, [link], name);
  }
});

t.test('the write answer: ETag before meta.versionId (as for the read), a disagreement a breach; a leap second has a Last-Modified', async (t) => {
  const s = setup({ provider: memoryProvider({ writeAnswer: (next) => ({ status: 200, headers: { 'content-type': 'application/fhir+json', etag: 'W/"7"' }, body: Buffer.from(JSON.stringify({ ...next, meta: { versionId: '2', lastUpdated: '2016-12-31T23:59:60Z' } })), ms: 1 }) }) });
  const tr = trail();
  const a = await s.tx.run(request(), tr);
  t.equal(a.status, 200);
  t.equal(a.headers.etag, 'W/"7"', "the provider's ETag is kept");
  t.equal(a.versionAfter, '7', 'the version the ETag names');
  t.equal(a.headers['content-location'], `https://gw.example/STU3/1/Appointment/${ID}/_history/7`);
  t.same(tr.breaches, ['etag-disagrees']);
  t.equal(a.headers['last-modified'], 'Sun, 01 Jan 2017 00:00:00 GMT', 'a leap second is a valid instant (ruling 20)');
});

t.test('ruling 11: a provider 4xx without an OperationOutcome is its refusal, status and Retry-After kept, marked as forwarded', async (t) => {
  for (const status of [403, 429, 404]) {
    const s = setup({ provider: memoryProvider({ writeAnswer: () => ({ status, headers: { 'content-type': 'text/plain', 'retry-after': '30' }, body: Buffer.from('nope'), ms: 1 }) }) });
    const e = (await s.tx.run(request(), trail()).catch((x) => x)) as GatewayError & { forwarded?: boolean };
    t.equal(e.code, 'UPSTREAM_REFUSED', `${status}`);
    t.equal(e.statusOverride, status);
    t.same(e.headers, { 'retry-after': '30' });
    t.equal(e.forwarded, true);
  }
});

t.test('ruling 8: a read answered with two different ETags cannot say its version: 500, nothing written', async (t) => {
  for (const [name, etags, expected] of [
    ['two different', ['W/"1"', 'W/"5"'], 'UPSTREAM_UNAVAILABLE'],
    ['the same twice', ['W/"1"', 'W/"1"'], 'ok'],
  ] as const) {
    const provider = memoryProvider();
    const read = provider.port.read;
    provider.port.read = async (...args) => {
      const a = await read(...args);
      return { ...a, headers: { ...a.headers, etag: [...etags] as unknown as string } };
    };
    const s = setup({ provider });
    t.equal(await outcome(s.tx.run(request(), trail())), expected, name);
    t.same(provider.calls.map((c) => c.op), expected === 'ok' ? ['read', 'write'] : ['read'], `${name}: what reached the provider`);
  }
});

t.test("ruling 8: the read's version is its ETag's, quoted or bare; an ETag that names none is a 500, never overruled by the body", async (t) => {
  // The stored meta.versionId is 1; the ETag says otherwise.
  for (const [name, etag, ifMatch, expected] of [
    ['a bare ETag is the version', '5', '5', 'ok'],
    ['the body does not overrule a bare ETag', '5', '1', 'VERSION_CONFLICT'],
    ['a blank ETag is none: meta.versionId', ' ', '1', 'ok'],
    ['an ETag naming no version', '*', '1', 'UPSTREAM_UNAVAILABLE'],
    ['an empty entity tag', 'W/""', '1', 'UPSTREAM_UNAVAILABLE'],
    ['an ETag too long to be a version', `"${'9'.repeat(65)}"`, '1', 'UPSTREAM_UNAVAILABLE'],
  ] as const) {
    const provider = memoryProvider();
    const read = provider.port.read;
    provider.port.read = async (...args) => {
      const a = await read(...args);
      return { ...a, headers: { ...a.headers, etag } };
    };
    const s = setup({ provider });
    t.equal(await outcome(s.tx.run(request(undefined, { ifMatch }), trail())), expected, name);
    t.same(provider.calls.map((c) => c.op), expected === 'ok' ? ['read', 'write'] : ['read'], `${name}: what reached the provider`);
  }
});

t.test("ruling 12: the client's ETag on a cancel's 200 is an entity tag whatever the provider wrote", async (t) => {
  for (const [etag, want] of [['', 'W/"2"'], ['*', 'W/"2"'], ['garbage!', 'W/"2"'], ['W/""', 'W/"2"'], ['2', 'W/"2"'], ['"2"', '"2"']] as const) {
    const s = setup({ provider: memoryProvider({ writeAnswer: (next) => ({ status: 200, headers: { 'content-type': 'application/fhir+json', etag }, body: Buffer.from(JSON.stringify(next)), ms: 1 }) }) });
    const a = await s.tx.run(request(), trail());
    t.equal(a.headers.etag, want, JSON.stringify(etag));
  }
});

t.test("a write answer's meta.versionId that is no FHIR id is no version: no ETag made of it (a line break would be a header Node refuses)", async (t) => {
  for (const bad of ['2\n3', '2"3', 'x'.repeat(65), '2/../x']) {
    const s = setup({ provider: memoryProvider({ writeAnswer: (next) => ({ status: 200, headers: { 'content-type': 'application/fhir+json' }, body: Buffer.from(JSON.stringify({ ...next, meta: { versionId: bad } })), ms: 1 }) }) });
    const tr = trail();
    const a = await s.tx.run(request(), tr);
    t.equal(a.status, 200, JSON.stringify(bad));
    t.equal(a.headers.etag, undefined, 'no ETag made of it');
    t.equal(a.versionAfter, undefined);
    t.same(tr.breaches, ['no-version']);
  }
});

t.test('ruling 21: a narrative the provider read in XML is compared with a JSON body in the same canonical form', async (t) => {
  const div = '<div xmlns="http://www.w3.org/1999/xhtml">a<br />b &quot;x&quot;</div>';
  const xmlProvider = (stored: Json) => {
    const base = memoryProvider();
    const port: ProviderPort = {
      ...base.port,
      async read(path, headers, exchange) {
        await base.port.read(path, headers, exchange);
        return { status: 200, headers: { 'content-type': 'application/fhir+xml', etag: 'W/"1"' }, body: Buffer.from(xmlCodec.encode(stored)), ms: 1 };
      },
    };
    return { ...base, port };
  };
  const stored = { ...storedAppointment(), text: { status: 'generated', div } };
  for (const [label, submittedDiv, expected] of [['the same narrative', div, 'ok'], ['a changed narrative', div.replace('a<br />b', 'a<br />c'), 'BUSINESS_RULE']] as const) {
    const s = setup({ provider: xmlProvider(stored), codecs: [jsonCodec, xmlCodec] });
    const req = request((r) => (r.text = { status: 'generated', div: submittedDiv }), { writeHeaders: { 'content-type': 'application/fhir+json' } });
    t.equal(await outcome(s.tx.run(req, trail())), expected, label);
  }
});

t.test('rulings 10/23: upstream.inDoubtHoldMs sets how long a write in doubt keeps the appointment locked', async (t) => {
  // A provider that applies a write 5 s after the gateway gave up on it (five deadlines).
  const { tx, clock, config, state } = inDoubtSetup(5000, { inDoubtHoldMs: 6000 });
  t.equal(config.upstream.inDoubtHoldMs, 6000, 'the key is in the schema');
  const first = outcome(tx.run(request(), trail()));
  const second = outcome(tx.run(request(), trail()));
  t.equal(await first, 'UPSTREAM_UNAVAILABLE');
  clock.advance(5500); // past upstream.timeoutMs, within the hold; the provider applied the first
  for (let i = 0; i < 20; i++) await Promise.resolve();
  t.equal(state.writes, 1, 'still held after the default would have let go');
  clock.advance(600);
  t.equal(await second, 'VERSION_CONFLICT', 'then 409: the first write is seen');
  t.equal(state.writes, 1, 'exactly one write of version 1');
});

t.test('past the shutdown deadline (abortWaiting): a write waiting for its lock, and any after, is refused with nothing read or forwarded (review of stop 34)', async (t) => {
  let release!: () => void;
  const blocking = new Promise<void>((r) => (release = r));
  const s = setup({ provider: memoryProvider({ writeAnswer: async (body) => (await blocking, { status: 200, headers: { 'content-type': 'application/fhir+json', etag: 'W/"2"' }, body: Buffer.from(JSON.stringify({ ...body, meta: { versionId: '2' } })), ms: 1 }) }) });
  const first = s.tx.run(request(), trail());
  while (!s.provider.calls.some((c) => c.op === 'write')) await new Promise((r) => setImmediate(r));
  const queued = s.tx.run(request(), trail());
  s.tx.abortWaiting();
  t.equal(await outcome(queued), 'UPSTREAM_UNAVAILABLE', 'the queued write: 500, refused');
  t.equal(await outcome(s.tx.run(request(), trail())), 'UPSTREAM_UNAVAILABLE', 'a write arriving later: refused at once');
  release();
  await first;
  t.equal(s.provider.calls.filter((c) => c.op === 'write').length, 1, 'only the first write reached the provider');
  t.equal(s.provider.calls.filter((c) => c.op === 'read').length, 1, 'and only its read');
});
