import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { packageRoot } from '../../src/paths.js';
import { pki } from '../helpers/harness.js';
import { chartDir, parseManifests, template } from './render.js';

/**
 * The container image, without a container engine: the Dockerfile's shape (what the build stage
 * runs, the non-root user, entry point, health check), that the runtime stage's contents suffice
 * (dist/ imports only production dependencies and builtins), and that the image's command line
 * starts the gateway on the configuration the chart renders, with the image's HEALTHCHECK command
 * passing against it.
 */

const dockerfile = readFileSync(join(packageRoot, 'Dockerfile'), 'utf8');
const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8'));

interface Instr { op: string; args: string; stage: number }
const instructions: Instr[] = [];
{
  let stage = -1;
  const joined = dockerfile.replace(/\\\n/g, ' ').split('\n');
  for (const raw of joined) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'FROM') stage++;
    instructions.push({ op: m[1]!, args: m[2]!.replace(/\s+/g, ' ').trim(), stage });
  }
}
const inStage = (stage: number, op: string) => instructions.filter((i) => i.stage === stage && i.op === op).map((i) => i.args);
const lastStage = Math.max(...instructions.map((i) => i.stage));

t.test('Dockerfile: two stages on node:26-trixie-slim; the build installs the native toolchain, runs npm ci, npm prune --omit=dev and drops the demo', async (t) => {
  t.ok(instructions.some((i) => i.op === 'ARG' && i.args === 'NODE_IMAGE=node:26-trixie-slim'), 'Node 26 (Active LTS), Debian trixie slim');
  t.match(pkg.engines.node, /^>=20\./, 'engines still admits Node 20 (the suite runs on 20 and 26)');
  t.same(instructions.filter((i) => i.op === 'FROM').map((i) => i.args), ['${NODE_IMAGE} AS build', '${NODE_IMAGE}']);
  t.equal(lastStage, 1);
  const runs = inStage(0, 'RUN').flatMap((r) => r.split('&&').map((c) => c.trim()));
  t.same(runs, [
    'apt-get update', 'apt-get install -y --no-install-recommends python3 make g++', 'rm -rf /var/lib/apt/lists/*',
    'npm ci --no-audit --no-fund', 'npm prune --omit=dev --no-audit --no-fund', 'rm -rf dist/demo',
  ], 'the node-gyp toolchain for native modules, then plain npm commands that CI already runs, then the demo goes');
  t.same(inStage(1, 'RUN').join(' ').match(/apt-get|g\+\+|python3/g), null, 'no compiler in the runtime stage');
  // npm ci runs `prepare` (tsc): every input tsc needs for src/ must be copied.
  const copied = inStage(0, 'COPY').flatMap((c) => c.split(' ').slice(0, -1));
  t.same(copied.sort(), ['config', 'demo', 'package-lock.json', 'package.json', 'src', 'tsconfig.json'].sort());
  for (const f of copied) t.ok(existsSync(join(packageRoot, f)), `${f} exists in the repository`);
  t.equal(pkg.scripts.prepare, 'tsc -p tsconfig.json', 'npm ci compiles');
  const ignore = readFileSync(join(packageRoot, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  t.equal(ignore[0], '*', '.dockerignore is an allow-list');
  t.same(ignore.slice(1).map((l) => l.replace(/^!/, '').replace(/\/$/, '')).sort(), copied.slice().sort(), 'it lets in exactly what the build copies');
});

t.test('Dockerfile: runtime stage is non-root, production, read-only friendly, with a node health check', async (t) => {
  t.same(inStage(1, 'ENV'), ['NODE_ENV=production']);
  t.same(inStage(1, 'USER'), ['10001:10001'], 'uid/gid 10001, numeric so runAsNonRoot can verify it');
  t.match(inStage(1, 'RUN').join(' '), /useradd --system --uid 10001 --gid 10001/);
  t.same(inStage(1, 'COPY').sort(), [
    '--from=build /app/config ./config', '--from=build /app/dist ./dist', '--from=build /app/node_modules ./node_modules', '--from=build /app/package.json ./package.json',
  ].sort(), 'only the built output, production node_modules, config/ and package.json (paths.ts finds the root by it)');
  t.same(inStage(1, 'VOLUME'), [], 'no VOLUME: nothing is written');
  t.same(JSON.parse(inStage(1, 'ENTRYPOINT')[0] ?? 'null'), ['node', '--max-semi-space-size=4', '--heap-growing-percent=50', 'dist/src/main.js']);
  t.match(JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).scripts.start, /--max-semi-space-size=4 --heap-growing-percent=50 dist\/src\/main\.js/, 'npm start runs the gateway as the image does');
  t.same(JSON.parse(inStage(1, 'CMD')[0] ?? 'null'), ['--config', '/etc/cancel-gateway/config.yaml']);
  t.equal(pkg.bin['cancel-gateway'], 'dist/src/main.js', 'the entry point is the package bin');
  const hc = inStage(1, 'HEALTHCHECK')[0] ?? '';
  t.match(hc, /CMD \["node", "-e", /, 'node itself (no curl in slim images)');
  t.match(hc, /\/healthz/);
});

t.test('the runtime stage has what dist/ imports: production dependencies and builtins only', async (t) => {
  const deps = new Set(Object.keys(pkg.dependencies));
  const builtins = new Set(builtinModules);
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.js')) files.push(p);
    }
  };
  // dist/demo is removed in the build stage: only dist/src ships.
  walk(join(packageRoot, 'dist', 'src'));
  t.ok(files.some((f) => f.endsWith(join('dist', 'src', 'main.js'))), 'dist/src/main.js is built');
  const bad: string[] = [];
  const demoRefs: string[] = [];
  const seen = new Set<string>();
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    // TypeScript's scanner lists static imports, re-exports and import() with literals (ES modules).
    for (const { fileName: spec } of ts.preProcessFile(text, true, false).importedFiles) {
      if (spec.includes('/demo/')) demoRefs.push(`${relative(packageRoot, f)}: ${spec}`);
      if (spec.startsWith('.') || spec.startsWith('node:')) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      seen.add(name);
      if (!deps.has(name) && !builtins.has(name)) bad.push(`${relative(packageRoot, f)}: ${spec}`);
    }
  }
  t.ok(['ajv', 'yaml', 'http-proxy-3', 'prom-client'].every((d) => seen.has(d)), 'the scan sees the bare imports (ajv, yaml, http-proxy-3, prom-client)');
  t.same(bad, [], 'no import of a devDependency or an undeclared package (npm prune --omit=dev removes them)');
  t.same(demoRefs, [join('dist', 'src', 'main.js') + ': ../demo/run.js'], 'only main.js reaches for the demo (a guarded dynamic import)');
  t.notOk(seen.has('node-forge'), 'node-forge is not used by the gateway');
  t.ok(pkg.devDependencies['node-forge'] && !pkg.dependencies['node-forge'], 'node-forge is a devDependency: not in the image');
  for (const [name] of Object.entries<string>(pkg.dependencies)) t.ok(seen.has(name), `dependency ${name} is imported by the gateway`);
});

/** Spawn and resolve with the first JSON log line whose msg matches. */
function waitForLog(child: ChildProcess, msg: string, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no '${msg}' log line within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const o = JSON.parse(line) as Record<string, unknown>;
          if (o.msg === msg) {
            clearTimeout(timer);
            resolve(o);
          }
        } catch {
          // not a log line
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before '${msg}'; stderr: ${err}`));
    });
  });
}

t.test("the image's command starts the gateway on the chart's rendered configuration; HEALTHCHECK passes", async (t) => {
  // The pod's file layout in a temporary root: the ConfigMap and the Secrets, each in its folder.
  const root = mkdtempSync(join(tmpdir(), 'gw-image-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  // One replica with the in-process store: this test has no PostgreSQL (the store's own tests do).
  const r = template(chartDir, { values: [join(chartDir, 'ci', 'standalone-values.yaml')], set: ['replicaCount=1', 'store.kind=memory'] });
  t.ok(r.ok, r.stderr);
  const cm = parseManifests(r.stdout).find((d) => d.kind === 'ConfigMap');
  const text = String(cm?.data?.['config.yaml'] ?? '').replaceAll('/etc/cancel-gateway/', `${root}/etc/cancel-gateway/`);
  const p = pki();
  const put = (path: string, content: string) => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
  };
  put('etc/cancel-gateway/config/config.yaml', text);
  put('etc/cancel-gateway/tls/tls.crt', p.server.cert);
  put('etc/cancel-gateway/tls/tls.key', p.server.key);
  put('etc/cancel-gateway/client-ca/ca.crt', p.ca.cert);
  const configFile = join(root, 'etc/cancel-gateway/config/config.yaml');
  // Port 1: privileged, nothing listens on it (a port freed by the test could be taken by another).
  const closed = 1;
  // Loopback and free ports for the test (the pod's 0.0.0.0:8443/9090), a local upstream: the
  // same environment overrides a Kubernetes deployment may set.
  const env = {
    PATH: process.env.PATH ?? '', NODE_ENV: 'production',
    GATEWAY_LISTEN_HOST: '127.0.0.1', GATEWAY_PORT: '0', GATEWAY_ADMIN_HOST: '127.0.0.1', GATEWAY_ADMIN_PORT: '0',
    GATEWAY_UPSTREAM_URL: `http://127.0.0.1:${closed}/STU3/1`,
  };
  const entry = ['dist/src/main.js'];
  // The runtime stage's /app: package.json, config/, dist/ without the demo, node_modules.
  const app = join(root, 'app');
  for (const d of ['package.json', 'config', join('dist', 'src')]) cpSync(join(packageRoot, d), join(app, d), { recursive: true });
  symlinkSync(join(packageRoot, 'node_modules'), join(app, 'node_modules'));
  t.notOk(existsSync(join(app, 'dist', 'demo')), 'no demo in the image');
  const noDemo = spawnSync('node', entry, { cwd: app, env, encoding: 'utf8', timeout: 10_000 });
  t.equal(noDemo.status, 2, 'without --config and without the demo: a usage error, not a crash');
  t.match(noDemo.stderr, /the embedded demo is not part of this installation: pass --config FILE/);

  const check = spawnSync('node', [...entry, 'check-config', '--config', configFile], { cwd: app, env, encoding: 'utf8' });
  t.equal(check.status, 0, `check-config accepts the rendered configuration with its files: ${check.stderr}`);
  t.match(check.stdout, /valid \(standard nhs-booking/);

  const gw = spawn('node', [...entry, '--config', configFile], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (gw.exitCode === null) gw.kill('SIGKILL');
  });
  const ready = await waitForLog(gw, 'ready', 10_000);
  const adminPort = Number(ready.adminPort);
  t.ok(adminPort > 0, 'ready, admin port known');

  const hcArgs = (JSON.parse(/CMD (\[.*\])$/.exec(inStage(1, 'HEALTHCHECK')[0] ?? '')?.[1] ?? '[]') as string[]);
  t.equal(hcArgs[0], 'node');
  const healthy = spawnSync(hcArgs[0]!, hcArgs.slice(1), { cwd: packageRoot, env: { PATH: env.PATH, GATEWAY_ADMIN_PORT: String(adminPort) }, timeout: 10_000 });
  t.equal(healthy.status, 0, 'HEALTHCHECK passes against the running gateway');
  const sick = spawnSync(hcArgs[0]!, hcArgs.slice(1), { cwd: packageRoot, env: { PATH: env.PATH, GATEWAY_ADMIN_PORT: String(closed) }, timeout: 10_000 });
  t.equal(sick.status, 1, 'HEALTHCHECK fails when nothing answers');

  const exited = new Promise<number | null>((resolve) => gw.once('exit', (code) => resolve(code)));
  gw.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: drains and exits 0 (node is PID 1 in the image and handles it)');
});
