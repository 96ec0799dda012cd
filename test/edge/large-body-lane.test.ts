/**
 * Issue 13 item 3: the lane large bodies wait in — one at a time, in arrival order, each in a
 * later turn of the event loop than the one it asked in, the next only after the last said done.
 */
import t from 'tap';
import { createLane } from '../../src/edge/large-body-lane.js';

const turnOfLoop = () => new Promise<void>((r) => setImmediate(r));

t.test('one at a time, in arrival order; the next after the last is done', async (t) => {
  const lane = createLane({ now: () => 0 }); // every turn "took" 0 ms: the next comes one loop turn later
  const order: string[] = [];
  const a = lane.turn().then((done) => (order.push('a'), done));
  const b = lane.turn().then((done) => (order.push('b'), done));
  t.same(order, [], 'nobody goes in the turn they asked in');
  t.equal(lane.waiting, 2);
  const doneA = await a;
  t.same(order, ['a']);
  for (let i = 0; i < 5; i++) await turnOfLoop();
  t.same(order, ['a'], 'b waits while a is not done');
  doneA();
  doneA(); // twice is once
  const doneB = await b;
  t.same(order, ['a', 'b']);
  doneB();
  t.equal(lane.waiting, 0);
});

t.test('normal work of the same turn runs before a large body', async (t) => {
  const lane = createLane({ now: () => 0 });
  const order: string[] = [];
  const large = lane.turn().then((done) => {
    order.push('large');
    done();
  });
  // I/O callbacks and timers that are due run in this turn; the large body comes in a later one.
  await Promise.resolve();
  order.push('normal');
  await large;
  t.same(order, ['normal', 'large']);
});

t.test('a turn whose holder never says done still ends', async (t) => {
  const lane = createLane({ now: () => 0, maxTurnMs: 1 });
  await lane.turn(); // never done
  const done = await lane.turn(); // the defence-in-depth bound ends the first turn
  t.type(done, 'function');
  done();
});
