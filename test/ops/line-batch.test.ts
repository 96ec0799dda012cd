/** Log and audit lines of one event-loop turn go out in one write, in order (issue 17). */
import t from 'tap';
import { batchedLines, linesTo } from '../../src/ops/line-batch.js';

t.test('lines of one turn are written together, in order, after the turn', async (t) => {
  const writes: string[] = [];
  const out = { write: (s: string) => writes.push(s) };
  const b = batchedLines(out);
  t.equal(batchedLines(out), b, 'one batch per sink');
  b.write('a\n');
  b.write('b\n');
  t.same(writes, [], 'nothing before the turn ends');
  await new Promise((r) => setImmediate(r));
  t.same(writes, ['a\nb\n']);
  b.write('x'.repeat(70 * 1024));
  t.equal(writes.length, 2, 'over 64 KiB: written at once');
});

t.test('only the process streams are batched', async (t) => {
  const other = { write: () => true };
  t.equal(linesTo(other), other);
  t.not(linesTo(process.stdout), process.stdout);
});
