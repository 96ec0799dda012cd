/**
 * The one bounded body reader: the bytes exactly as sent however they were cut, one buffer (not
 * one object per piece), 413 over the limit, and a body in too many tiny pieces refused (a body of
 * 1-byte chunks held ~380 bytes of memory per byte: hostile review, round three).
 */
import t from 'tap';
import { PassThrough } from 'node:stream';
import { readBounded } from '../../src/edge/read-body.js';

function feed(pieces: Buffer[], limit: number, opts?: { clientBody?: boolean }): Promise<Buffer> {
  const s = new PassThrough();
  const p = readBounded(s, limit, opts);
  for (const c of pieces) s.write(c);
  s.end();
  return p;
}

t.test('the bytes as sent, whatever the pieces', async (t) => {
  const body = Buffer.from(JSON.stringify({ resourceType: 'Appointment', description: 'x'.repeat(10_000) }));
  t.same(await feed([body], 1 << 20), body, 'one piece');
  const cuts = [0, 1, 7, 4096, 4097, 9000, body.length];
  const pieces = cuts.slice(1).map((end, i) => body.subarray(cuts[i], end));
  t.same(await feed(pieces, 1 << 20), body, 'several pieces of odd sizes');
  t.same(await feed([], 10), Buffer.alloc(0), 'no body');
  t.same(await feed(Array.from({ length: 5000 }, () => Buffer.from('a'.repeat(64))), 1 << 20), Buffer.from('a'.repeat(64 * 5000)), '5000 pieces of 64 bytes are fine');
});

t.test('over the limit: 413; in too many tiny pieces: 400', async (t) => {
  await t.rejects(feed([Buffer.alloc(6), Buffer.alloc(6)], 10), { code: 'BODY_TOO_LARGE' });
  await t.rejects(feed(Array.from({ length: 20_000 }, () => Buffer.from('a')), 1 << 20), { code: 'REQUEST_MALFORMED' });
});

t.test('empty pieces do not count; a provider answer is bounded by size only', async (t) => {
  const body = Buffer.from('x'.repeat(300_000));
  t.same(await feed([...Array.from({ length: 5000 }, () => Buffer.alloc(0)), body], 1 << 20), body, '5000 empty pieces, then the body');
  const tiny = Array.from({ length: 20_000 }, () => Buffer.from('a'));
  t.same(await feed(tiny, 1 << 20, { clientBody: false }), Buffer.from('a'.repeat(20_000)), 'a provider\'s answer in tiny pieces is read');
});

t.test('a stream already gone, or closed before its end, is cut short (never a read that waits forever)', async (t) => {
  const gone = new PassThrough();
  gone.write(Buffer.from('{"resourceType"'));
  gone.destroy();
  await new Promise((r) => gone.once('close', r));
  await t.rejects(readBounded(gone, 1024), { code: 'REQUEST_MALFORMED' }, 'destroyed before the read began');
  const closing = new PassThrough();
  const read = readBounded(closing, 1024);
  closing.write(Buffer.from('{"resourceType"'));
  closing.destroy();
  await t.rejects(read, { code: 'REQUEST_MALFORMED' }, "destroyed without an error or 'aborted' during the read");
  const whole = new PassThrough();
  const done = readBounded(whole, 1024);
  whole.end(Buffer.from('{}'));
  t.equal((await done).toString(), '{}', "a stream that ends and then closes is whole");
});
