import type { Registry } from 'prom-client';

/**
 * The request path's metrics (issue 17): a series is found by one Map lookup of its label values
 * (or bound once, at start-up or on first use) and updated with a few additions — no label
 * validation, sorting or hashing per observation as prom-client's own classes do. Rendered by
 * prom-client's registry through the metric interface it renders (`get()`), in the same text
 * format: `name_bucket{le="…",label="…"}`, `name_sum`, `name_count`, counters as `name{…} n`.
 */

type Labels = Record<string, string>;

interface Series {
  labels: Labels;
  counts: Float64Array;
  sum: number;
  count: number;
}

interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  sharedLabels?: Labels;
  metricName?: string;
}

abstract class BoundMetric<S> {
  protected readonly series = new Map<string, S>();
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly aggregator = 'sum';

  constructor(o: { name: string; help: string; labelNames?: readonly string[]; registers: Registry[] }) {
    this.name = o.name;
    this.help = o.help;
    this.labelNames = o.labelNames ?? [];
    for (const r of o.registers) r.registerMetric(this as never);
  }

  protected key(labels: Labels | undefined): string {
    const names = this.labelNames;
    if (names.length === 0) return '';
    if (names.length === 1) return String(labels?.[names[0]!] ?? '');
    let k = '';
    for (const n of names) k += String(labels?.[n] ?? '') + '\u0001';
    return k;
  }

  protected labelsOf(labels: Labels | undefined): Labels {
    const out: Labels = {};
    for (const n of this.labelNames) if (labels?.[n] !== undefined) out[n] = String(labels[n]);
    return out;
  }

  protected find(labels: Labels | undefined): S {
    const k = this.key(labels);
    let s = this.series.get(k);
    if (!s) {
      s = this.create(this.labelsOf(labels));
      this.series.set(k, s);
    }
    return s;
  }

  protected abstract create(labels: Labels): S;

  reset(): void {
    this.series.clear();
  }
}

export class BoundHistogram extends BoundMetric<Series> {
  readonly type = 'histogram';
  private readonly bounds: Float64Array;

  constructor(o: { name: string; help: string; labelNames?: readonly string[]; buckets: readonly number[]; registers: Registry[] }) {
    super(o);
    this.bounds = Float64Array.from(o.buckets);
  }

  protected create(labels: Labels): Series {
    return { labels, counts: new Float64Array(this.bounds.length), sum: 0, count: 0 };
  }

  /** `observe(labels, seconds)`, or `observe(seconds)` for a histogram without labels. */
  observe(labels: Labels | number, value?: number): void {
    const v = typeof labels === 'number' ? labels : value!;
    if (!Number.isFinite(v)) return; // prom-client throws; a metric must never fail a request
    this.add(this.find(typeof labels === 'number' ? undefined : labels), v);
  }

  /** The series of these label values, found once: the returned function only adds. */
  bind(labels: Labels): (seconds: number) => void {
    const s = this.find(labels);
    return (v) => this.add(s, v);
  }

  private add(s: Series, v: number): void {
    if (!Number.isFinite(v)) return;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        s.counts[i]!++;
        break;
      }
    }
    s.sum += v;
    s.count++;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { le: this.bounds[i]! }, sharedLabels: s.labels, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

interface Cell {
  labels: Labels;
  value: number;
}

export class BoundCounter extends BoundMetric<Cell> {
  readonly type = 'counter';

  protected create(labels: Labels): Cell {
    return { labels, value: 0 };
  }

  inc(labels?: Labels | number, by = 1): void {
    if (typeof labels === 'number') this.find(undefined).value += labels;
    else this.find(labels).value += by;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    return cellsOf(this, this.series.values());
  }
}

/** A counter's or gauge's series as the registry renders them. */
function cellsOf(m: { name: string; help: string; type: string; aggregator: string }, cells: Iterable<Cell>) {
  const values: MetricValue[] = [];
  for (const c of cells) values.push({ labels: c.labels, value: c.value });
  return { name: m.name, help: m.help, type: m.type, aggregator: m.aggregator, values };
}

/** A gauge without labels that requests move up and down (in-flight requests). */
export class BoundGauge extends BoundMetric<Cell> {
  readonly type = 'gauge';

  constructor(o: { name: string; help: string; registers: Registry[] }) {
    super(o);
    this.find(undefined); // a gauge without labels is shown from the start, at 0
  }

  protected create(labels: Labels): Cell {
    return { labels, value: 0 };
  }

  inc(by = 1): void {
    this.find(undefined).value += by;
  }

  dec(by = 1): void {
    this.find(undefined).value -= by;
  }

  set(v: number): void {
    this.find(undefined).value = v;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    return cellsOf(this, this.series.values());
  }
}
