import t from 'tap';
import fc from 'fast-check';
import { boundAuditRecord, upperBoundBytes, MAX_AUDIT_RECORD_BYTES, type AuditRecord } from '../../src/ops/audit.js';

const text = fc.oneof(fc.string({ maxLength: 140 }), fc.string({ unit: 'binary', maxLength: 140 }), fc.constantFrom('\u0000\u001f"\\', '\ud800', '😀'.repeat(40)));
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const record: fc.Arbitrary<AuditRecord> = fc.record({
  time: fc.constant(new Date(0).toISOString()),
  traceId: maybe(text), requestId: maybe(text), appointmentId: maybe(text),
  interaction: text, outcome: fc.constantFrom('forwarded', 'rejected', 'error'), status: fc.integer({ min: 100, max: 599 }),
  code: maybe(text),
  requester: maybe(fc.record({ odsCode: maybe(text), sdsUserId: maybe(text), practitionerId: maybe(text), deviceId: maybe(text) })),
  versionBefore: maybe(text), versionAfter: maybe(text),
  differingPaths: maybe(fc.array(text, { maxLength: 25 })),
  wouldReject: maybe(fc.array(fc.record({ family: text, code: text }), { maxLength: 25 })),
});

t.test('issue 17: the audit record size bound is never below the real size, so skipping the exact check is safe', async (t) => {
  fc.assert(fc.property(record, (r) => upperBoundBytes(r) >= Buffer.byteLength(JSON.stringify(r))), { seed: 17, numRuns: 3000 });
  fc.assert(fc.property(record, (r) => Buffer.byteLength(JSON.stringify(boundAuditRecord(r))) <= MAX_AUDIT_RECORD_BYTES), { seed: 18, numRuns: 3000 });
  const usual: AuditRecord = { time: new Date(0).toISOString(), interaction: 'urn:nhs:names:services:appointment:cancel', outcome: 'rejected', status: 422, code: 'BUSINESS_RULE', differingPaths: ['Appointment.description'] };
  t.ok(upperBoundBytes(usual) <= MAX_AUDIT_RECORD_BYTES, 'a usual refusal fits without serialising it twice');
  t.equal(boundAuditRecord(usual), usual, 'and is written as it is');
});

t.test('clip: at most 128 characters, marked as cut, never half a surrogate pair', async (t) => {
  const { clip } = await import('../../src/ops/audit.js');
  t.equal(clip('short'), 'short');
  t.equal(clip('x'.repeat(128)), 'x'.repeat(128), 'exactly the limit: kept');
  t.equal(clip('x'.repeat(200)), 'x'.repeat(127) + '…');
  for (let pad = 120; pad < 130; pad++) {
    const cut = clip('a'.repeat(pad) + '😀'.repeat(20))!;
    t.ok(cut.length <= 128, `${pad}: within the limit`);
    t.ok(cut.endsWith('…'));
    t.notOk(/[\ud800-\udbff](?![\udc00-\udfff])/.test(cut), `${pad}: no high surrogate without its pair`);
  }
});
