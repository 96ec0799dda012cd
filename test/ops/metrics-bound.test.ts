/**
 * The request path's bound metrics (issue 17) render exactly as prom-client's own classes would:
 * the same lines, labels and values, for histograms with and without labels and for counters.
 */
import t from 'tap';
import { Counter, Histogram, Registry } from 'prom-client';
import { BoundCounter, BoundGauge, BoundHistogram } from '../../src/metrics-bound.js';

t.test('bound histograms and counters render like prom-client', async (t) => {
  const ours = new Registry();
  const theirs = new Registry();
  const buckets = [0.001, 0.01, 0.1, 1];
  const h1 = new BoundHistogram({ name: 'h_seconds', help: 'h', labelNames: ['stage'], buckets, registers: [ours] });
  const h2 = new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['stage'], buckets, registers: [theirs] });
  const n1 = new BoundHistogram({ name: 'n_seconds', help: 'n', buckets, registers: [ours] });
  const n2 = new Histogram({ name: 'n_seconds', help: 'n', buckets, registers: [theirs] });
  const c1 = new BoundCounter({ name: 'c_total', help: 'c', labelNames: ['route', 'status'], registers: [ours] });
  const c2 = new Counter({ name: 'c_total', help: 'c', labelNames: ['route', 'status'], registers: [theirs] });
  const bound = h1.bind({ stage: 'jwt' });
  for (const v of [0.0005, 0.001, 0.005, 0.5, 3, 0.02]) {
    bound(v);
    h2.observe({ stage: 'jwt' }, v);
    h1.observe({ stage: 'body' }, v * 2);
    h2.observe({ stage: 'body' }, v * 2);
    n1.observe(v);
    n2.observe(v);
    c1.inc({ route: 'cancel', status: v > 0.01 ? '200' : '422' });
    c2.inc({ route: 'cancel', status: v > 0.01 ? '200' : '422' });
  }
  t.equal(await ours.metrics(), await theirs.metrics());
  h1.observe({ stage: 'x' }, Number.NaN);
  t.notMatch(await ours.metrics(), /stage="x"/, 'a value that is not a number is not counted');
});

t.test('a bound gauge moves up and down and starts at 0', async (t) => {
  const r = new Registry();
  const g = new BoundGauge({ name: 'g', help: 'g', registers: [r] });
  t.match(await r.metrics(), /^g 0$/m);
  g.inc();
  g.inc();
  g.dec();
  t.match(await r.metrics(), /^g 1$/m);
});
