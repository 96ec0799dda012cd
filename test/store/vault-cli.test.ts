/**
 * The `vault` commands (issue 18 item 4) on a real SQLite vault, and `vault restore` against a
 * recording HTTP server standing in for the provider (the default node:http client is used).
 */
import t, { type Test } from 'tap';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { buildConfig, type Config } from '../../src/config.js';
import { ManualClock } from '../../src/ports/clock.js';
import { createSqliteVault } from '../../src/adapters/vault-sqlite.js';
import { runVaultCommand } from '../../src/cli/vault.js';
import { appointment, entry } from '../contracts/vault.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-vault-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function config(upstreamUrl = 'http://127.0.0.1:9'): { config: Readonly<Config>; path: string; auditFile: string } {
  const path = join(dir, `vault${++n}.db`);
  const auditFile = join(dir, `audit${n}.jsonl`);
  const c = buildConfig({
    publicBaseUrl: 'https://gw.example/STU3/1',
    tls: { cert: '/x/cert.pem', key: '/x/key.pem', clientCa: '/x/ca.pem' },
    upstream: { url: upstreamUrl, timeoutMs: 5000 },
    spine: { providerAsids: ['918999198738'] },
    audit: { destination: auditFile },
    store: { kind: 'sqlite', path },
  }, { checkFiles: false });
  return { config: c, path, auditFile };
}

async function run(argv: string[], c: Readonly<Config>, stdin = '', clock = new ManualClock()) {
  let out = Buffer.alloc(0);
  let err = '';
  const code = await runVaultCommand(argv, c, {
    stdout: { write: (s: string | Uint8Array) => (out = Buffer.concat([out, Buffer.from(s)])) },
    stderr: { write: (s: string) => (err += s) },
    stdin: Readable.from([stdin]),
    clock,
  });
  return { code, out: out.toString('utf8'), outBytes: out, err };
}

const clock = new ManualClock();

t.test('history, show, export, purge', async (t) => {
  const { config: c, path } = config();
  const v = createSqliteVault({ path, timeoutMs: 1000, clock });
  const k1 = await v.keep(entry('appt-1', '3', clock.now(), { traceId: 'trace-1' }));
  await v.link(k1, { versionId: '4', at: clock.now(), body: appointment('appt-1', '4'), mediaType: 'application/fhir+json' });
  clock.advance(40 * 86_400_000);
  await v.keep(entry('appt-2', '1', clock.now()));
  await v.close();

  const h = await run(['history', 'appt-1'], c);
  t.equal(h.code, 0);
  t.match(h.out, new RegExp(`^${k1}\\t2026-01-01T00:00:00.000Z\\tcancel\\t3 -> 4\\ttrace-1\\tsha256:[0-9a-f]{12}\\n$`));
  const none = await run(['history', 'nobody'], c);
  t.equal(none.code, 0);
  t.equal(none.out, '');
  t.match(none.err, /nothing kept/);

  const s = await run(['show', 'appt-1', '3'], c);
  t.equal(s.code, 0);
  t.ok(s.outBytes.equals(appointment('appt-1', '3')), 'the exact kept bytes');
  const missing = await run(['show', 'appt-1', '9'], c);
  t.equal(missing.code, 1);
  t.match(missing.err, /no such version/);

  const e = await run(['export'], c);
  t.equal(e.code, 0);
  const lines = e.out.trim().split('\n').map((l) => JSON.parse(l));
  t.equal(lines.length, 2);
  t.match(lines[0], { keptId: k1, appointmentId: 'appt-1', versionBefore: '3', versionAfter: '4', interaction: 'cancel', mediaType: 'application/fhir+json' });
  t.ok(Buffer.from(lines[0].bodyBase64, 'base64').equals(appointment('appt-1', '3')), 'bodies round-trip');
  t.same(lines[0].requester, { odsCode: 'A12345', sdsUserId: 'G13579135', deviceId: 'dev-1' }, 'the requester kept with the decision');
  t.equal(lines[0].after?.versionId, '4', 'the linked new version');
  t.ok(Buffer.from(lines[0].after.bodyBase64, 'base64').equals(appointment('appt-1', '4')), 'and its body: a logical copy');
  t.equal(lines[1].after, undefined, 'nothing linked yet: no after');

  const p = await run(['purge', '--older-than', '30'], c, '', clock);
  t.equal(p.code, 0);
  t.match(p.out, /purged 1 kept entry older than 30 day/);
  t.equal((await run(['history', 'appt-1'], c)).out, '', 'the old entry went');
  t.match((await run(['history', 'appt-2'], c)).out, /\t1 -> \?/, 'the recent one stays');
});

t.test('usage errors exit 2; the memory store has nothing to show', async (t) => {
  const { config: c } = config();
  for (const argv of [[], ['frobnicate'], ['history'], ['show', 'a'], ['purge'], ['purge', '--older-than', 'x'], ['purge', '--older-than', '0'], ['restore', 'a']]) {
    t.equal((await run(argv, c)).code, 2, `vault ${argv.join(' ')}`);
  }
  const mem = buildConfig({ publicBaseUrl: 'https://gw.example', tls: { cert: '/x', key: '/x', clientCa: '/x' }, upstream: { url: 'http://127.0.0.1:9' }, spine: { providerAsids: ['1'] } }, { checkFiles: false });
  const r = await run(['history', 'a'], mem);
  t.equal(r.code, 1);
  t.match(r.err, /memory/);
});

/** A provider holding one appointment at version `current`, recording every request. */
async function recordingProvider(t: Test, startVersion: number) {
  let current = startVersion;
  let body = appointment('appt-9', String(current), { status: 'cancelled' });
  const seen: Array<{ method: string; headers: http.IncomingHttpHeaders; body: Buffer }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const b = Buffer.concat(chunks);
      seen.push({ method: req.method!, headers: req.headers, body: b });
      if (req.method === 'GET') {
        res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: `W/"${current}"` }).end(body);
        return;
      }
      if (req.headers['if-match'] !== `W/"${current}"`) {
        res.writeHead(409, { 'Content-Type': 'application/fhir+json' }).end('{"resourceType":"OperationOutcome"}');
        return;
      }
      current++;
      const r = JSON.parse(b.toString('utf8'));
      r.meta = { versionId: String(current), lastUpdated: '2026-02-01T00:00:00Z' };
      body = Buffer.from(JSON.stringify(r));
      res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: `W/"${current}"` }).end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/STU3/1`, seen, bump: () => current++ };
}

t.test('restore writes the kept version back with the current version as If-Match, and records it', async (t) => {
  const p = await recordingProvider(t, 5);
  const { config: c, path, auditFile } = config(p.url);
  const v = createSqliteVault({ path, timeoutMs: 1000, clock });
  const kept = entry('appt-9', '4', clock.now());
  await v.keep(kept);
  await v.close();

  const declined = await run(['restore', 'appt-9', '--to', '4'], c, 'n\n');
  t.equal(declined.code, 1, 'declined');
  t.match(declined.out, /current version 5/);
  t.match(declined.out, /changed +Appointment\.status/, 'the diff names the element');
  t.notMatch(declined.out, /Zebedee|cancelled|booked/, 'paths only, never values');
  t.same(p.seen.map((s) => s.method), ['GET'], 'nothing written');
  t.notOk(existsSync(auditFile) && readFileSync(auditFile, 'utf8').includes('restore'), 'nothing audited');

  const done = await run(['restore', 'appt-9', '--to', '4'], c, 'y\n');
  t.equal(done.code, 0, done.err);
  t.match(done.out, /restored: .* version 4 as version 6/);
  const put = p.seen.find((s) => s.method === 'PUT')!;
  t.equal(put.headers['if-match'], 'W/"5"', 'If-Match is the version read just before');
  t.ok(put.body.equals(kept.preImage.body), 'the kept bytes, unchanged');
  t.equal(put.headers['content-type'], 'application/fhir+json');
  t.equal(put.headers['ssp-to'], '918999198738');
  t.equal(put.headers['ssp-interactionid'], 'urn:nhs:names:services:careconnect:fhir:rest:update:appointment');
  t.match(put.headers['ssp-traceid'], /^[0-9a-f-]{36}$/);

  const audit = readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.match(audit, [{ interaction: 'restore', appointmentId: 'appt-9', outcome: 'forwarded', status: 200, versionBefore: '5', versionAfter: '6' }]);

  const v2 = createSqliteVault({ path, timeoutMs: 1000, clock });
  const h = await v2.history('appt-9');
  t.match(h[1], { interaction: 'restore', versionBefore: '5', versionAfter: '6', traceId: audit[0].traceId });
  t.ok((await v2.version('appt-9', '5'))!.body.equals(appointment('appt-9', '5', { status: 'cancelled' })), 'the overwritten version is kept too');
  t.ok(await v2.version('appt-9', '6'), 'and the new one is linked with its body');
  await v2.close();
});

t.test('restore --yes against a provider that moved on: 409, nothing restored, audited as an error', async (t) => {
  const p = await recordingProvider(t, 7);
  const { config: c, path, auditFile } = config(p.url);
  const v = createSqliteVault({ path, timeoutMs: 1000, clock });
  await v.keep(entry('appt-9', '6', clock.now()));
  await v.close();
  // The provider changes between our last read (under the lock) and our write.
  const stdin = new PassThrough();
  let reads = 0;
  const r = runVaultCommand(['restore', 'appt-9', '--to', '6', '--yes'], c, {
    stdout: { write: () => true }, stderr: { write: () => true }, stdin, clock,
    provider: {
      read: async (id) => {
        const { createRestoreProvider } = await import('../../src/cli/restore-provider.js');
        const answer = await createRestoreProvider(c).read(id);
        if (++reads === 2) p.bump();
        return answer;
      },
      write: async (id, body, o) => (await import('../../src/cli/restore-provider.js')).createRestoreProvider(c).write(id, body, o),
    },
  });
  t.equal(await r, 1);
  t.equal(p.seen.filter((s) => s.method === 'PUT')[0]?.headers['if-match'], 'W/"7"');
  const audit = readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.match(audit, [{ interaction: 'restore', outcome: 'error', status: 409, versionBefore: '7' }]);
});

t.test('restore reads the current version again under the lock: moved since the confirmation -> nothing kept, nothing written', async (t) => {
  const p = await recordingProvider(t, 7);
  const { config: c, path } = config(p.url);
  const v = createSqliteVault({ path, timeoutMs: 1000, clock });
  await v.keep(entry('appt-9', '6', clock.now()));
  await v.close();
  let reads = 0;
  let err = '';
  const code = await runVaultCommand(['restore', 'appt-9', '--to', '6', '--yes'], c, {
    stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) }, stdin: new PassThrough(), clock,
    provider: {
      read: async (id) => {
        const { createRestoreProvider } = await import('../../src/cli/restore-provider.js');
        const answer = await createRestoreProvider(c).read(id);
        if (++reads === 1) p.bump(); // a cancel went through while the operator was deciding
        return answer;
      },
      write: async (id, body, o) => (await import('../../src/cli/restore-provider.js')).createRestoreProvider(c).write(id, body, o),
    },
  });
  t.equal(code, 1);
  t.match(err, /changed meanwhile \(version 8, not 7\)/);
  t.equal(p.seen.filter((s) => s.method === 'PUT').length, 0, 'nothing written');
  const after = createSqliteVault({ path, timeoutMs: 1000, clock });
  t.equal((await after.history('appt-9')).length, 1, 'no restore pre-image kept');
  await after.close();
});

t.test('restore of a version that is not kept: refused before the provider is contacted', async (t) => {
  const p = await recordingProvider(t, 2);
  const { config: c, path } = config(p.url);
  await createSqliteVault({ path, timeoutMs: 1000, clock }).close();
  const r = await run(['restore', 'appt-9', '--to', '1', '--yes'], c);
  t.equal(r.code, 1);
  t.match(r.err, /no such version kept/);
  t.same(p.seen, [], 'the provider was not contacted');
});

t.test('restore under gp-connect writes with the update (amend) interaction, not cancel', async (t) => {
  const { createRestoreProvider } = await import('../../src/cli/restore-provider.js');
  const p = await recordingProvider(t, 2);
  const c = buildConfig({
    standard: 'gp-connect',
    publicBaseUrl: 'https://gw.example/STU3/1',
    tls: { cert: '/x/cert.pem', key: '/x/key.pem', clientCa: '/x/ca.pem' },
    upstream: { url: p.url, timeoutMs: 5000 },
    spine: { providerAsids: ['918999198738'] },
    store: { kind: 'memory' },
  }, { checkFiles: false });
  const provider = createRestoreProvider(c);
  const r = await provider.write('appt-9', appointment('appt-9', '1'), { contentType: 'application/fhir+json', ifMatch: 'W/"2"' });
  t.equal(r.status, 200);
  const put = p.seen.find((s) => s.method === 'PUT')!;
  t.equal(put.headers['ssp-interactionid'], 'urn:nhs:names:services:gpconnect:fhir:rest:update:appointment-1');
  t.equal(put.headers.accept, 'application/fhir+json', 'Accept follows the kept media type');
});

t.test('restore whose write is cut short: exit 1, "may or may not", audited as an error', async (t) => {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'GET') res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"3"' }).end(appointment('appt-9', '3', { status: 'cancelled' }));
      else req.socket.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => server.close(r)));
  const { config: c, path, auditFile } = config(`http://127.0.0.1:${(server.address() as { port: number }).port}/STU3/1`);
  const v = createSqliteVault({ path, timeoutMs: 1000, clock });
  await v.keep(entry('appt-9', '2', clock.now()));
  await v.close();
  const r = await run(['restore', 'appt-9', '--to', '2', '--yes'], c);
  t.equal(r.code, 1);
  t.match(r.err, /may or may not have been applied/);
  const audit = readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.match(audit, [{ interaction: 'restore', appointmentId: 'appt-9', outcome: 'error', status: 0, versionBefore: '3', inDoubt: true }]);
});

t.test('restore whose write could not even be sent (the provider refused the connection): exit 1, nothing written, not in doubt', async (t) => {
  let gets = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      gets += 1;
      res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"3"', Connection: 'close' }).end(appointment('appt-9', '3', { status: 'cancelled' }));
      // Gone after the reads: the PUT's connection is refused.
      if (gets >= 2) server.close();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => (server.listening ? server.close(r) : r(undefined))));
  const { config: c, path, auditFile } = config(`http://127.0.0.1:${(server.address() as { port: number }).port}/STU3/1`);
  const v = createSqliteVault({ path, timeoutMs: 1000, clock });
  await v.keep(entry('appt-9', '2', clock.now()));
  await v.close();
  const r = await run(['restore', 'appt-9', '--to', '2', '--yes'], c);
  t.equal(r.code, 1);
  t.match(r.err, /could not be reached .*nothing was written/);
  const audit = readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.match(audit, [{ interaction: 'restore', outcome: 'error', status: 0 }]);
  t.equal(audit[0].inDoubt, undefined, 'not in doubt: the write never went out');
});

/** A provider whose GET and PUT answers are scripted; it records the PUTs it saw. */
async function scripted(t: Test, read: (res: http.ServerResponse) => void, write: (res: http.ServerResponse) => void): Promise<{ url: string; puts: number }> {
  const seen = { url: '', puts: 0 };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'GET') read(res);
      else {
        seen.puts++;
        write(res);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => server.close(r)));
  seen.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/STU3/1`;
  return seen;
}

t.test('restore refuses when the provider\'s read names another appointment: nothing written, nothing kept', async (t) => {
  const p = await scripted(t, (res) => res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"3"' }).end(appointment('someone-else', '3')), (res) => res.writeHead(200).end());
  const { config: c, path } = config(p.url);
  const v = createSqliteVault({ path, timeoutMs: 1000, clock });
  await v.keep(entry('appt-9', '2', clock.now()));
  await v.close();
  const r = await run(['restore', 'appt-9', '--to', '2', '--yes'], c);
  t.equal(r.code, 1);
  t.match(r.err, /not this Appointment/);
  t.equal(p.puts, 0, 'no PUT');
  const v2 = createSqliteVault({ path, timeoutMs: 1000, clock });
  t.equal(await v2.version('appt-9', '3'), undefined, 'the other resource is not kept under this id');
  await v2.close();
});

t.test('restore answered 204 (or any 2xx): done, exit 0, linked without a body', async (t) => {
  const p = await scripted(t, (res) => res.writeHead(200, { 'Content-Type': 'application/fhir+json', ETag: 'W/"3"' }).end(appointment('appt-9', '3', { status: 'cancelled' })), (res) => res.writeHead(204, { ETag: 'W/"4"' }).end());
  const { config: c, path, auditFile } = config(p.url);
  const v = createSqliteVault({ path, timeoutMs: 1000, clock });
  await v.keep(entry('appt-9', '2', clock.now()));
  await v.close();
  const r = await run(['restore', 'appt-9', '--to', '2', '--yes'], c);
  t.equal(r.code, 0, r.err);
  t.match(r.out.toString(), /restored: .* as version 4/);
  t.equal(p.puts, 1);
  const audit = readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.match(audit, [{ interaction: 'restore', outcome: 'forwarded', status: 204, versionBefore: '3', versionAfter: '4' }]);
  const v2 = createSqliteVault({ path, timeoutMs: 1000, clock });
  t.equal(await v2.version('appt-9', '4'), undefined, 'an empty answer is never kept as version 4');
  t.match((await v2.history('appt-9')).at(-1), { versionAfter: '4' });
  await v2.close();
});

t.test('restore reads versions as the gateway does, and a redirect or another resource answering its write is "may or may not" (review of stop 35)', async (t) => {
  const seen: string[] = [];
  let read: (res: http.ServerResponse) => void = () => {};
  let write: (res: http.ServerResponse) => void = () => {};
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'GET') return read(res);
      seen.push(String(req.headers['if-match']));
      write(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => server.close(r)));
  const { config: c, path, auditFile } = config(`http://127.0.0.1:${(server.address() as { port: number }).port}/STU3/1`);
  const v = createSqliteVault({ path, timeoutMs: 1000, clock });
  await v.keep(entry('appt-9', '1', clock.now()));
  await v.close();
  const json = { 'Content-Type': 'application/fhir+json' };
  // A bare ETag names its version (README, ruling 8), over the body's meta.versionId.
  read = (res) => res.writeHead(200, { ...json, ETag: '3' }).end(appointment('appt-9', '2', { status: 'cancelled' }));
  write = (res) => res.writeHead(307, { Location: '/elsewhere' }).end();
  const redirected = await run(['restore', 'appt-9', '--to', '1', '--yes'], c);
  t.same(seen, ['W/"3"'], 'If-Match from the bare ETag');
  t.equal(redirected.code, 1);
  t.match(redirected.err, /307 \(a redirect\); the restore may or may not have been applied/);
  write = (res) => res.writeHead(200, json).end(JSON.stringify({ resourceType: 'Patient', id: 'p1' }));
  const other = await run(['restore', 'appt-9', '--to', '1', '--yes'], c);
  t.equal(other.code, 1, 'another resource is no proof of the restore');
  t.match(other.err, /with another resource; the restore may or may not have been applied/);
  const audit = readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.match(audit, [{ outcome: 'error', status: 307, inDoubt: true }, { outcome: 'error', status: 200, inDoubt: true }]);
  // An ETag naming no version: refused, as the gateway's read refuses it.
  read = (res) => res.writeHead(200, { ...json, ETag: '*' }).end(appointment('appt-9', '2', { status: 'cancelled' }));
  const star = await run(['restore', 'appt-9', '--to', '1', '--yes'], c);
  t.equal(star.code, 1);
  t.match(star.err, /ETag for the current appointment names no version/);
  t.equal(seen.length, 2, 'nothing written');
});

t.test('restore between XML versions shows the element diff and keeps the new version\'s lastUpdated (review of stop 33)', async (t) => {
  const { xmlCodec } = await import('../../src/adapters/codec-xml.js');
  const xml = (b: Buffer) => xmlCodec.encode(JSON.parse(b.toString('utf8')));
  const currentXml = xml(appointment('appt-9', '3', { status: 'cancelled' }));
  const newXml = xml(appointment('appt-9', '4', { meta: { versionId: '4', lastUpdated: '2026-02-02T10:00:00Z' } }));
  const p = await scripted(t, (res) => res.writeHead(200, { 'Content-Type': 'application/fhir+xml' }).end(currentXml), (res) => res.writeHead(200, { 'Content-Type': 'application/fhir+xml' }).end(newXml));
  const { config: c, path } = config(p.url);
  const v = createSqliteVault({ path, timeoutMs: 1000, clock });
  const kept = entry('appt-9', '2', clock.now(), { body: xml(appointment('appt-9', '2')) });
  await v.keep({ ...kept, preImage: { ...kept.preImage, mediaType: 'application/fhir+xml' } });
  await v.close();
  const asked = await run(['restore', 'appt-9', '--to', '2'], c, 'n\n');
  t.equal(asked.code, 1, 'not confirmed');
  t.match(asked.out, /current version 3/, 'the version read from the XML body (no ETag)');
  t.match(asked.out, /changes 1 element\(s\):\n\s+changed\s+Appointment\.status/, 'the element diff of two XML versions');
  t.equal(p.puts, 0);
  const done = await run(['restore', 'appt-9', '--to', '2', '--yes'], c);
  t.equal(done.code, 0, done.err);
  t.match(done.out, /as version 4/);
  const v2 = createSqliteVault({ path, timeoutMs: 1000, clock });
  t.equal((await v2.version('appt-9', '4'))?.lastUpdated, '2026-02-02T10:00:00Z', 'Last-Modified can be answered for the restored version');
  t.equal((await v2.version('appt-9', '3'))?.lastUpdated, '2026-01-01T09:00:00Z', 'and for the version it replaced');
  await v2.close();
});

t.test('a vault command on a store path that does not exist: exit 1, nothing created', async (t) => {
  const { config: c, path } = config();
  const missing = { ...c, store: { ...c.store, path: join(path, 'no-such-folder', 'vault.db') } };
  for (const argv of [['history', 'appt-1'], ['export'], ['purge', '--older-than', '3']]) {
    const r = await run(argv, missing);
    t.equal(r.code, 1, `vault ${argv.join(' ')}`);
    t.match(r.err, /no store at .*vault\.db/);
  }
  t.notOk(existsSync(join(path, 'no-such-folder')), 'no folder or file made');
});
