/**
 * Issue 13 items 3, 6 and 11 (rulings 20, 26): what a hostile body can make the gateway do — spend
 * the event loop on a node flood, echo its keys into answers and audit records, or hide a change
 * of decimal precision behind equal doubles.
 */
import t from 'tap';
import { assertOutcome } from '../helpers/assert.js';
import { cancelRequest, startHarness, type Harness } from '../helpers/harness.js';
import { boundAuditRecord, MAX_AUDIT_RECORD_BYTES } from '../../src/ops/audit.js';

const h = await startHarness();
t.teardown(() => h.close());

/** A copy of a seeded appointment stored under `id`, shaped by `mutate`. */
function store(g: Harness, id: string, mutate: (r: any) => void): string {
  const source = g.provider.store.read(g.provider.store.ids()[0]!)!;
  const copy = JSON.parse(JSON.stringify(source.resource));
  copy.id = id;
  mutate(copy);
  g.provider.store.create(copy, id);
  return id;
}

t.test('item 3: a body with more JSON values than limits.maxJsonNodes → 400 BAD_REQUEST before the provider', async (t) => {
  const cancel = await cancelRequest(h, 'nhs-booking', h.provider.store.ids()[0]!);
  const resource = JSON.parse(String(cancel.body));
  // 40,000 small objects inside a contained resource: about 0.6 MiB (the issue's body), within the 1 MiB limit.
  resource.contained = [{ resourceType: 'Basic', id: 'flood', extension: Array.from({ length: 40_000 }, () => ({})) }];
  const body = JSON.stringify(resource);
  t.ok(body.length < 1024 * 1024, `the body is within the size limit (${body.length} bytes)`);
  const before = h.provider.requests.length;
  const started = performance.now();
  const r = await h.request({ ...cancel, body });
  const ms = performance.now() - started;
  assertOutcome(t, r, 400, 'BAD_REQUEST');
  t.match(r.json.issue[0].diagnostics, /more than 5000 JSON values/);
  t.equal(h.provider.requests.length, before, 'the provider saw nothing');
  t.ok(ms < 1000, `refused quickly (${ms.toFixed(0)} ms)`);
});

t.test('item 6: body keys are not echoed into the 422 or the audit record; both stay small', async (t) => {
  const id = store(h, 'echo-target', () => {});
  const secret = 'NHS 943 476 5919 - Peter Chalmers, 123 High Street, Leeds';
  const cancel = await cancelRequest(h, 'nhs-booking', id, (r) => {
    // Inside an element the profile accepts as open JSON (an extension value of a known type is
    // not open, so use the diff's view: keys added under `meta`, which the profile leaves alone).
    r.meta = { ...r.meta, [secret]: 1 };
    for (let i = 0; i < 99; i++) r.meta[`k${i}-${'x'.repeat(2000)}`] = i;
  });
  const r = await h.request(cancel);
  t.ok(r.status === 422 || r.status === 400, `refused (${r.status})`);
  const text = r.body.toString();
  // Unknown keys fail the profile, whose paths are rendered safely (ruling 20: `<unknown>`, capped);
  // the diff's own paths are covered in test/fhir/diff.test.ts.
  t.notOk(text.includes('Chalmers'), 'the key is not echoed in the answer');
  t.notOk(text.includes('xxxxxxxx'), 'nor the 2 KB keys');
  t.ok(r.body.length < 16 * 1024, `the answer is small (${r.body.length} bytes)`);
  const record = h.audit.at(-1)!;
  const json = JSON.stringify(record);
  t.ok(Buffer.byteLength(json) <= MAX_AUDIT_RECORD_BYTES, `the audit record is at most ${MAX_AUDIT_RECORD_BYTES} bytes (${json.length})`);
  t.notOk(json.includes('Chalmers'), 'the audit record does not hold the key');
});

t.test('item 6: boundAuditRecord caps paths ("and N more") and every string', async (t) => {
  const r = boundAuditRecord({
    time: new Date().toISOString(), interaction: 'x'.repeat(5000), outcome: 'rejected', status: 422,
    requester: { odsCode: 'o'.repeat(5000) }, differingPaths: Array.from({ length: 500 }, (_, i) => `Appointment.p${i}${'y'.repeat(300)}`),
  });
  t.ok(Buffer.byteLength(JSON.stringify(r)) <= MAX_AUDIT_RECORD_BYTES);
  t.equal(r.interaction?.length, 128);
  t.equal(r.requester?.odsCode?.length, 128);
  t.equal(r.differingPaths?.at(-1), 'and 480 more');
});

t.test('item 11: a cancel that changes a decimal\'s precision or a big integer is refused (422)', async (t) => {
  const url = 'https://example.org/fhir/StructureDefinition/test-measure';
  for (const [name, stored, submitted] of [
    ['1.5 -> 1.50', '1.5', '1.50'],
    ['big integer 9007199254740993 (stored as 9007199254740992)', '9007199254740992', '9007199254740993'],
    ['1 -> 1.0', '1', '1.0'],
  ] as const) {
    const id = store(h, `decimal-${stored}-${submitted}`.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 60), (r) => {
      r.extension = [...(r.extension ?? []), { url, valueDecimal: Number(stored) }];
    });
    const cancel = await cancelRequest(h, 'nhs-booking', id);
    // Re-write the number's text in the submitted bytes; the doubles stay equal.
    const body = String(cancel.body).replace(`"valueDecimal":${stored}`, `"valueDecimal":${submitted}`);
    t.not(body, String(cancel.body), `${name}: the submitted text differs`);
    const r = await h.request({ ...cancel, body });
    assertOutcome(t, r, 422, 'INVALID_RESOURCE');
    t.equal(h.provider.store.currentVersion(id), '1', `${name}: not forwarded`);
  }
  // The same number as written is not a difference.
  const id = store(h, 'decimal-same', (r) => { r.extension = [...(r.extension ?? []), { url, valueDecimal: 2.25 }]; });
  const same = await h.request(await cancelRequest(h, 'nhs-booking', id));
  t.equal(same.status, 200, 'an unchanged decimal passes');
});
