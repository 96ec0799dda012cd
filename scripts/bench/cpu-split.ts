/**
 * Where a request's CPU goes (issue 17 item 3): the self time of a V8 CPU profile (`--cpu-prof`),
 * idle and start-up (module loading) left out, summed into a few categories by the script or
 * built-in each sample is in. Pure: reads one .cpuprofile, returns shares of the busy time.
 */
import { readFileSync } from 'node:fs';

export const CATEGORIES = [
  'upstream client',
  'TLS and socket writes',
  'HTTP server, streams, events',
  'parse (JSON, XML)',
  'checks (JWT, profile, rules, diff)',
  'store',
  'metrics',
  'log and audit',
  'GC',
  'gateway plumbing',
  'other runtime',
] as const;
export type Category = (typeof CATEGORIES)[number];

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const RULES: Array<[RegExp, Category]> = [
  [/node_modules\/undici\/|^wasm:|\/adapters\/provider-http\.js$/, 'upstream client'],
  [/node_modules\/(pg|pg-[^/]+|pgpass|postgres-[^/]+|better-sqlite3|bindings)\/|\/adapters\/(vault|lock)-|\/src\/store\//, 'store'],
  [/node_modules\/prom-client\/|\/src\/metrics(-bound)?\.js$/, 'metrics'],
  [/\/src\/log\.js$|\/src\/ops\/audit\.js$|sync_write_stream/, 'log and audit'],
  [/\/fhir\/strict-json\.js$|\/adapters\/codec-|\/fhir\/xml\/|node_modules\/saxes\/|node_modules\/xmlchars\//, 'parse (JSON, XML)'],
  [/\/src\/checks\/|\/src\/fhir\/|\/src\/identity\/|\/cancel\/change-rules\.js$|node_modules\/(fhirpath|jose|ajv|@lhncbc|antlr4)/, 'checks (JWT, profile, rules, diff)'],
  [/\/dist\/src\//, 'gateway plumbing'],
  [/^node:(_http_|internal\/streams|events|internal\/event_target|internal\/http|_http)/, 'HTTP server, streams, events'],
  [/^node:(net|tls|_tls_|internal\/stream_base_commons|internal\/tls)/, 'TLS and socket writes'],
];
const NATIVE: Record<string, Category> = {
  '(garbage collector)': 'GC',
  writev: 'TLS and socket writes',
  writeBuffer: 'TLS and socket writes',
  writeLatin1String: 'TLS and socket writes',
  writeUtf8String: 'TLS and socket writes',
  writeAsciiString: 'TLS and socket writes',
  parse: 'parse (JSON, XML)',
  stringify: 'log and audit',
};

function categoryOf(frame: ProfileNode['callFrame']): Category {
  const url = frame.url;
  if (!url) return NATIVE[frame.functionName] ?? (frame.functionName.startsWith('wasm') ? 'upstream client' : 'other runtime');
  for (const [re, cat] of RULES) if (re.test(url)) return cat;
  return 'other runtime';
}

/** Categories that own what runs below them: a socket write under pg is the store's, under undici the upstream client's. */
const OWNERS: ReadonlySet<Category> = new Set(['upstream client', 'store', 'log and audit', 'metrics']);

/** Busy milliseconds, each category's share of them (0..1), and the 25 functions with the most self time. */
export function cpuSplit(path: string): { busyMs: number; shares: Record<Category, number>; topFunctions: Array<[string, number]> } {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const startup = new Map<number, boolean>();
  const isStartup = (id: number): boolean => {
    const known = startup.get(id);
    if (known !== undefined) return known;
    const here = /^node:internal\/modules\//.test(byId.get(id)!.callFrame.url);
    const up = parent.get(id);
    const v = here || (up !== undefined && isStartup(up));
    startup.set(id, v);
    return v;
  };
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const owner = new Map<number, Category | null>();
  const ownerOf = (id: number): Category | null => {
    const known = owner.get(id);
    if (known !== undefined) return known;
    const cat = categoryOf(byId.get(id)!.callFrame);
    const up = parent.get(id);
    const v = OWNERS.has(cat) ? cat : up === undefined ? null : ownerOf(up);
    owner.set(id, v);
    return v;
  };
  const totals = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  const top = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    if (node.callFrame.functionName === '(idle)' || isStartup(id)) continue;
    busy += us;
    const cat = categoryOf(node.callFrame);
    const up = parent.get(id);
    // Native work and node internals are charged to the library or adapter that asked for them.
    const charged = !OWNERS.has(cat) && up !== undefined && (!node.callFrame.url || node.callFrame.url.startsWith('node:')) ? (ownerOf(up) ?? cat) : cat;
    totals[charged] += us;
    const name = `${charged}: ${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/.*\/node_modules\//, '').replace(/.*\/dist\//, '')}`;
    top.set(name, (top.get(name) ?? 0) + us);
  }
  const shares = Object.fromEntries(CATEGORIES.map((c) => [c, busy ? totals[c] / busy : 0])) as Record<Category, number>;
  const topFunctions = [...top].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]): [string, number] => [k, busy ? v / busy : 0]);
  return { busyMs: busy / 1000, shares, topFunctions };
}
