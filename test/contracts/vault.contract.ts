import type { Test } from 'tap';
import { createHash } from 'node:crypto';
import { VaultUnavailable, type KeepEntry, type VaultPort } from '../../src/ports/vault.js';
import type { ManualClock } from '../../src/ports/clock.js';
import { createSealer, keyId, type Sealer } from '../../src/store/seal.js';

/**
 * The VaultPort contract (src/ports/vault.ts), one suite for every adapter that keeps versions.
 * Each `open` is a fresh, empty store unless `reopen` is used (same storage, new adapter: what a
 * restarted gateway sees).
 */
export interface VaultSubject {
  clock: ManualClock;
  /** A new empty store. */
  open(sealer?: Sealer): Promise<OpenedVault>;
  /** A vault whose store cannot be reached. */
  down(): Promise<VaultPort>;
  downWithinMs: number;
}

export interface OpenedVault {
  vault: VaultPort;
  /** The same storage through a new adapter. */
  reopen(sealer?: Sealer): Promise<VaultPort>;
  /** The raw version rows, as stored. */
  rawVersions(): Promise<Array<{ body: Buffer; key_id: string | null }>>;
  /** Holds the tables locked (another writer) until the returned function is called. */
  block(): Promise<() => Promise<void>>;
  /** Each operation's timeout, ms (the subject opened the vault with it). */
  timeoutMs: number;
}

const MARKER = 'Zebedee-Unlikely-Surname';

export function appointment(id: string, version: string, extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({ resourceType: 'Appointment', id, meta: { versionId: version, lastUpdated: '2026-01-01T09:00:00Z' }, status: 'booked', description: MARKER, ...extra }));
}

export function entry(id: string, version: string, readAt: number, o: { traceId?: string; interaction?: string; body?: Buffer } = {}): KeepEntry {
  const body = o.body ?? appointment(id, version);
  return {
    preImage: { appointmentId: id, versionId: version, body, mediaType: 'application/fhir+json', sha256: createHash('sha256').update(body).digest('hex'), readAt, lastUpdated: '2026-01-01T09:00:00Z' },
    decision: { traceId: o.traceId ?? `trace-${id}-${version}`, interaction: o.interaction ?? 'cancel', requester: { odsCode: 'A12345', sdsUserId: 'G13579135', deviceId: 'dev-1' } },
  };
}

const key = (n: number): { id: string; key: Buffer } => {
  const k = Buffer.alloc(32, n);
  return { id: keyId(k), key: k };
};

export function vaultContract(t: Test, s: VaultSubject): void {
  t.test('keep, then version and history give it back', async (t) => {
    const { vault } = await s.open();
    const e = entry('a1', '3', s.clock.now());
    const kept = await vault.keep(e);
    t.type(kept, 'string');
    t.ok(kept.length > 0, 'an id');
    const v = await vault.version('a1', '3');
    t.ok(v, 'the version is there');
    t.ok(v!.body.equals(e.preImage.body), 'the same bytes');
    t.match(v, { appointmentId: 'a1', versionId: '3', mediaType: 'application/fhir+json', sha256: e.preImage.sha256, readAt: e.preImage.readAt, lastUpdated: '2026-01-01T09:00:00Z' });
    t.same(await vault.history('a1'), [{ keptId: kept, appointmentId: 'a1', versionBefore: '3', interaction: 'cancel', traceId: 'trace-a1-3', requester: { odsCode: 'A12345', sdsUserId: 'G13579135', deviceId: 'dev-1' }, at: s.clock.now(), sha256: e.preImage.sha256 }]);
    t.equal(await vault.version('a1', '4'), undefined, 'an unknown version');
    t.same(await vault.history('nobody'), [], 'an unknown appointment');
    await vault.ping();
    await vault.close();
  });

  t.test('the same version kept twice: two decisions, one copy of the body', async (t) => {
    const o = await s.open();
    const one = await o.vault.keep(entry('a2', '1', s.clock.now(), { traceId: 't1' }));
    s.clock.advance(1000);
    const two = await o.vault.keep(entry('a2', '1', s.clock.now(), { traceId: 't2' }));
    t.not(one, two);
    const h = await o.vault.history('a2');
    t.same(h.map((r) => [r.keptId, r.traceId]), [[one, 't1'], [two, 't2']], 'both decisions, oldest first');
    t.equal((await o.rawVersions()).length, 1, 'one body row');
    await o.vault.close();
  });

  t.test('concurrent keeps of one version: every decision kept, one body', async (t) => {
    const o = await s.open();
    const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => o.vault.keep(entry('a9', '1', s.clock.now(), { traceId: `c${i}` }))));
    t.equal(new Set(ids).size, 12, 'twelve distinct kept ids');
    t.equal((await o.vault.history('a9')).length, 12);
    t.equal((await o.rawVersions()).length, 1);
    await o.vault.close();
  });

  t.test('link records the new version, and its body when given', async (t) => {
    const { vault } = await s.open();
    const k1 = await vault.keep(entry('a3', '1', s.clock.now()));
    const after = appointment('a3', '2', { status: 'cancelled' });
    await vault.link(k1, { versionId: '2', body: after, mediaType: 'application/fhir+json', lastUpdated: '2026-01-01T10:00:00Z', at: s.clock.now() });
    const k2 = await vault.keep(entry('a3', '2', s.clock.now()));
    await vault.link(k2, { versionId: '3', at: s.clock.now() });
    const h = await vault.history('a3');
    t.same(h.map((r) => [r.versionBefore, r.versionAfter]), [['1', '2'], ['2', '3']]);
    const v2 = await vault.version('a3', '2');
    t.ok(v2?.body.equals(after) || v2?.body.equals(appointment('a3', '2')), 'version 2 is served');
    t.equal(await vault.version('a3', '3'), undefined, 'a linked version without a body is not served');
    await vault.close();
  });

  t.test('a kept pre-image is never shadowed by a later answer linked under its version id (review of stop 35)', async (t) => {
    const { vault } = await s.open();
    const read1 = appointment('a4', '1');
    const k1 = await vault.keep(entry('a4', '1', s.clock.now(), { body: read1 }));
    s.clock.advance(10);
    const k2 = await vault.keep(entry('a4', '2', s.clock.now()));
    // The provider answered the second write naming version 1 again, with a body of its own.
    await vault.link(k2, { versionId: '1', body: appointment('a4', '1', { status: 'cancelled' }), mediaType: 'application/fhir+json', at: s.clock.now() });
    t.ok((await vault.version('a4', '1'))?.body.equals(read1), 'version 1 as it was read');
    t.ok(k1);
    await vault.close();
  });

  t.test('history keeps appointments apart; all() lists every row with its pre-image, oldest first', async (t) => {
    const { vault } = await s.open();
    const ids: string[] = [];
    for (const [id, v] of [['b1', '1'], ['b2', '7'], ['b1', '2']] as const) {
      ids.push(await vault.keep(entry(id, v, s.clock.now())));
      s.clock.advance(10);
    }
    t.same((await vault.history('b1')).map((r) => r.versionBefore), ['1', '2']);
    t.same((await vault.history('b2')).map((r) => r.versionBefore), ['7']);
    const all = [];
    for await (const r of vault.all()) all.push(r);
    t.same(all.map((r) => r.keptId), ids);
    t.ok(all[1]!.preImage.body.equals(appointment('b2', '7')), 'with the bytes');
    await vault.close();
  });

  t.test('purge removes what was kept before the cut, and bodies nothing points at', async (t) => {
    const o = await s.open();
    const t0 = s.clock.now();
    await o.vault.keep(entry('c1', '1', t0));
    await o.vault.keep(entry('c2', '1', t0));
    s.clock.advance(10 * 86_400_000);
    await o.vault.keep(entry('c1', '2', s.clock.now()));
    t.equal(await o.vault.purge(t0 + 1), 2, 'two decisions went');
    t.same((await o.vault.history('c1')).map((r) => r.versionBefore), ['2']);
    t.same(await o.vault.history('c2'), []);
    t.equal(await o.vault.version('c1', '1'), undefined);
    t.equal((await o.rawVersions()).length, 1, 'orphan bodies removed');
    t.equal(await o.vault.purge(t0 + 1), 0, 'nothing more');
    await o.vault.close();
  });

  t.test('what keep resolved is still there after a restart', async (t) => {
    const o = await s.open();
    const kept = await o.vault.keep(entry('d1', '5', s.clock.now()));
    await o.vault.close();
    const again = await o.reopen();
    t.same((await again.history('d1')).map((r) => r.keptId), [kept]);
    await again.close();
  });

  t.test('sealed at rest: the body is not in the table, and keys rotate', async (t) => {
    const k1 = key(1);
    const k2 = key(2);
    const o = await s.open(createSealer(k1));
    await o.vault.keep(entry('e1', '1', s.clock.now()));
    let raw = await o.rawVersions();
    t.equal(raw.length, 1);
    t.notOk(raw[0]!.body.includes(MARKER), 'the plain text is not in the stored bytes');
    t.equal(raw[0]!.key_id, k1.id, 'the key id is kept with the row');
    t.ok((await o.vault.version('e1', '1'))!.body.equals(appointment('e1', '1')), 'read back in the clear');
    await o.vault.close();

    const rotated = await o.reopen(createSealer(k2, [k1]));
    await rotated.keep(entry('e1', '2', s.clock.now()));
    raw = await o.rawVersions();
    t.same(raw.map((r) => r.key_id).sort(), [k1.id, k2.id].sort(), 'new rows use the new key');
    t.ok((await rotated.version('e1', '1'))!.body.equals(appointment('e1', '1')), 'old rows open with the old key');
    await rotated.close();

    const withoutOld = await o.reopen(createSealer(k2));
    await t.rejects(withoutOld.version('e1', '1'), VaultUnavailable, 'an old row without its key: VaultUnavailable');
    t.ok((await withoutOld.version('e1', '2'))!.body.equals(appointment('e1', '2')));
    await withoutOld.close();
  });

  t.test('a version kept again after a key rotation is sealed again with the current key', async (t) => {
    const k1 = key(1);
    const k2 = key(2);
    const o = await s.open(createSealer(k1));
    await o.vault.keep(entry('r1', '1', s.clock.now()));
    await o.vault.close();
    const rotated = await o.reopen(createSealer(k2, [k1]));
    await rotated.keep(entry('r1', '1', s.clock.now()));
    await rotated.close();
    const raw = (await o.rawVersions()).filter((r) => r.key_id !== null);
    t.same(raw.map((r) => r.key_id), [k2.id], 'one row, now under the new key');
    const withoutOld = await o.reopen(createSealer(k2));
    t.ok((await withoutOld.version('r1', '1'))!.body.equals(appointment('r1', '1')), 'readable without the old key');
    await withoutOld.close();
  });

  t.test('a process without the key never unseals a row: the same version kept again stays sealed (review of stop 36)', async (t) => {
    const k1 = key(1);
    const o = await s.open(createSealer(k1));
    await o.vault.keep(entry('u1', '1', s.clock.now()));
    await o.vault.close();
    const keyless = await o.reopen();
    await keyless.keep(entry('u1', '1', s.clock.now(), { traceId: 'keyless' }));
    await keyless.close();
    const raw = await o.rawVersions();
    t.same(raw.map((r) => r.key_id), [k1.id], 'still one row, under its key');
    t.notOk(raw[0]!.body.includes(MARKER), 'never written back in the clear');
    const keyed = await o.reopen(createSealer(k1));
    t.ok((await keyed.version('u1', '1'))!.body.equals(appointment('u1', '1')), 'and it opens with its key');
    t.equal((await keyed.history('u1')).length, 2, 'both decisions kept');
    await keyed.close();
  });

  t.test('a row kept in the clear is sealed when a process with a key keeps it again', async (t) => {
    const k1 = key(1);
    const o = await s.open();
    await o.vault.keep(entry('c1', '1', s.clock.now()));
    await o.vault.close();
    const keyed = await o.reopen(createSealer(k1));
    await keyed.keep(entry('c1', '1', s.clock.now()));
    const raw = await o.rawVersions();
    t.same(raw.map((r) => r.key_id), [k1.id], 'sealed now');
    t.notOk(raw[0]!.body.includes(MARKER), 'no longer in the clear');
    await keyed.close();
  });

  t.test('store down: VaultUnavailable quickly', async (t) => {
    const vault = await s.down().catch((e: unknown) => e);
    if (vault instanceof VaultUnavailable) {
      t.pass('refused at open');
      return;
    }
    const v = vault as VaultPort;
    const started = Date.now();
    await t.rejects(v.keep(entry('f1', '1', s.clock.now())), VaultUnavailable);
    t.ok(Date.now() - started < s.downWithinMs, `within ${s.downWithinMs} ms`);
    await t.rejects(v.ping(), VaultUnavailable);
    await v.close().catch(() => {});
  });

  t.test('a store slower than its timeout: VaultUnavailable, nothing kept', async (t) => {
    const o = await s.open();
    const unblock = await o.block();
    const started = Date.now();
    await t.rejects(o.vault.keep(entry('g1', '1', s.clock.now())), VaultUnavailable);
    const took = Date.now() - started;
    t.ok(took < o.timeoutMs * 4 + 500, `gave up after ${took} ms (timeout ${o.timeoutMs} ms)`);
    await unblock();
    t.same(await o.vault.history('g1'), [], 'nothing half-kept');
    await o.vault.keep(entry('g1', '1', s.clock.now()));
    t.equal((await o.vault.history('g1')).length, 1, 'works again once the store answers');
    await o.vault.close();
  });
}
