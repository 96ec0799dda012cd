import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join, relative, isAbsolute } from 'node:path';
import { applyEnv, buildConfig, ConfigError, namingEnv, type Config } from '../src/config.js';
import type { Gateway } from '../src/server.js';
import { packageRoot } from '../src/paths.js';
import { STANDARDS } from '../src/standards/index.js';
import { ensureDevCertificates } from './certs.js';
import { startDemoProvider } from './provider/server.js';
import { heldByAnotherProcess } from '../src/adapters/vault-sqlite.js';

/**
 * The embedded default of `npm start`: development certificates, the bundled demo provider on a
 * free loopback port, and the gateway in front of it, then numbered ready-to-paste commands.
 * Everything it writes (certificates, the audit file, the files the commands save) goes into one
 * git-ignored folder, `.demo/`. GATEWAY_STANDARD=gp-connect shows the second standard; it and the
 * other variables the demo reads are validated like a configuration file (a typo stops it).
 * Nothing here is on the gateway's request path: the provider is just another upstream.
 */

/** The environment variables the demo honours (the rest of ENV_OVERRIDES belong to real deployments). */
const DEMO_ENV = ['GATEWAY_STANDARD', 'GATEWAY_PORT', 'GATEWAY_ADMIN_PORT', 'GATEWAY_LOG_LEVEL'] as const;

export interface DemoOptions {
  env?: NodeJS.ProcessEnv;
  /** The demo folder; default `.demo/` in the package root. */
  dir?: string;
  out?: { write(s: string): unknown };
}

/**
 * The demo's configuration: fixed values plus the demo variables, validated by the gateway's own
 * schema; a problem names the variable it came from.
 */
export function demoConfig(env: NodeJS.ProcessEnv, dir: string, files: { certs: ReturnType<typeof ensureDevCertificates>; providerUrl: string }): Readonly<Config> {
  const port = Number(env.GATEWAY_PORT ?? 8443);
  const raw: Record<string, unknown> = {
    standard: 'nhs-booking',
    listen: { host: '127.0.0.1', port: 8443 },
    admin: { host: '127.0.0.1', port: 9090 },
    basePath: '/STU3/1',
    publicBaseUrl: `https://localhost:${Number.isInteger(port) ? port : 8443}/STU3/1`,
    tls: { cert: files.certs.serverCert, key: files.certs.serverKey, clientCa: files.certs.caCert },
    upstream: { url: files.providerUrl },
    spine: { providerAsids: ['918999198738'] },
    log: { level: 'info' },
    audit: { destination: join(dir, 'audit.jsonl') },
    // The embedded default keeps every version it cancels (issue 18), in one file.
    store: { kind: 'sqlite', path: join(dir, 'store', 'vault.sqlite') },
    // GP Connect's amend is guarded like a cancel (ruling 27); the demo shows it.
    interactions: { amend: env.GATEWAY_STANDARD === 'gp-connect' },
  };
  const demoEnv = Object.fromEntries(DEMO_ENV.map((k) => [k, env[k]]));
  // A schema problem at a path a variable set names the variable, as for a configuration file.
  const named = (problem: string) => namingEnv(problem, demoEnv);
  const envProblems = applyEnv(raw, demoEnv);
  let config: Readonly<Config>;
  try {
    config = buildConfig(raw);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    throw new ConfigError([...envProblems, ...e.problems.map(named)]);
  }
  if (envProblems.length) throw new ConfigError(envProblems);
  // The same configuration as a file, for the operator commands the demo prints (vault history).
  mkdirSync(join(dir, 'store'), { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...raw, listen: config.listen, admin: config.admin, standard: config.standard }, null, 2) + '\n');
  return config;
}

/**
 * The bundled provider is seeded afresh on every start, so the demo's store starts empty too: the
 * versions an earlier run kept would be versions this provider never had. A store another demo
 * holds is left alone (this start is then refused, saying so).
 */
function freshDemoStore(path: string): void {
  if (heldByAnotherProcess(path)) return;
  for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
}

/** The standard the demo will run, checked before anything starts (the provider is seeded by it). */
export function demoStandard(env: NodeJS.ProcessEnv): Config['standard'] {
  const s = env.GATEWAY_STANDARD || 'nhs-booking';
  if (!(s in STANDARDS)) {
    throw new ConfigError([`standard: must be equal to one of the allowed values (${Object.keys(STANDARDS).join(', ')}) (from GATEWAY_STANDARD)`]);
  }
  return s as Config['standard'];
}

const shellQuote = (s: string) => (/^[\w./@:=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The numbered steps, each with commands that work when pasted into a shell. */
export function demoInstructions(a: {
  standard: Config['standard']; gatewayPort: number; adminPort: number; providerUrl: string; ids: string[];
  dir: string; certs: ReturnType<typeof ensureDevCertificates>;
}): string {
  const std = STANDARDS[a.standard];
  const read = std.interactions.find((i) => i.name === 'read')!;
  const cancel = std.interactions.find((i) => i.name === 'cancel')!;
  const id = a.ids[0];
  const id2 = a.ids[1] ?? id;
  const id3 = a.ids[2] ?? id;
  // Paths relative to the package root (the commands start with a cd there) when they are inside it.
  const rel = (p: string) => {
    const r = relative(packageRoot, p);
    return shellQuote(r && !r.startsWith('..') && !isAbsolute(r) ? r : p);
  };
  const d = (f: string) => rel(join(a.dir, f));
  const tls = `--cacert ${rel(a.certs.caCert)} --cert ${rel(a.certs.clientCert)} --key ${rel(a.certs.clientKey)}`;
  const spine = (interaction: string) =>
    `-H "Ssp-TraceID: $(node -p 'crypto.randomUUID()')" -H 'Ssp-From: 200000000359' -H 'Ssp-To: 918999198738' -H 'Ssp-InteractionID: ${interaction}'`;
  const base = `https://localhost:${a.gatewayPort}/STU3/1`;
  const addReason = a.standard === 'gp-connect'
    // Double quotes: this JS is pasted inside the single-quoted `node -e '...'` below.
    ? `a.extension=[...(a.extension||[]),{url:"${std.cancel.reasonExtensionUrl}",valueString:"Patient request"}];`
    : '';
  const cancelCurl = `curl -sS ${tls} ${spine(cancel.id)} \\
  -H "Authorization: Bearer $(node dist/demo/token.js write ${a.standard})" \\
  -H "If-Match: $(grep -i '^etag:' ${d('read-headers.txt')} | cut -d' ' -f2 | tr -d '\\r')" \\
  -H 'Content-Type: application/fhir+json' -X PUT --data-binary @${d('cancel.json')} \\
  -D - ${base}/Appointment/${id}`;
  const xmlReason = a.standard === 'gp-connect'
    ? `.replace("<status value=\\"booked\\"/>","<extension url=\\"${std.cancel.reasonExtensionUrl}\\"><valueString value=\\"Patient request\\"/></extension><status value=\\"booked\\"/>")`
    : '';
  const xmlSteps = `curl -sS ${tls} ${spine(read.id)} \\
  -H "Authorization: Bearer $(node dist/demo/token.js read ${a.standard})" -H 'Accept: application/fhir+xml' \\
  -D ${d('read-xml-headers.txt')} -o ${d('appointment.xml')} ${base}/Appointment/${id2} && cat ${d('read-xml-headers.txt')}
node -e 'const fs=require("fs");fs.writeFileSync(${JSON.stringify(d('cancel.xml'))},fs.readFileSync(${JSON.stringify(d('appointment.xml'))},"utf8")${xmlReason}.replace("<status value=\\"booked\\"/>","<status value=\\"cancelled\\"/>"))'
curl -sS ${tls} ${spine(cancel.id)} \\
  -H "Authorization: Bearer $(node dist/demo/token.js write ${a.standard})" \\
  -H "If-Match: $(grep -i '^etag:' ${d('read-xml-headers.txt')} | cut -d' ' -f2 | tr -d '\\r')" \\
  -H 'Content-Type: application/fhir+xml' -H 'Accept: application/fhir+xml' -X PUT --data-binary @${d('cancel.xml')} \\
  -D - ${base}/Appointment/${id2}`;
  const amend = std.interactions.find((i) => i.name === 'amend');
  const amendStep = a.standard === 'gp-connect' && amend ? `
# 7. GP Connect amend, guarded like a cancel: only description and comment may change: 200
curl -sS ${tls} ${spine(read.id)} \\
  -H "Authorization: Bearer $(node dist/demo/token.js read ${a.standard})" \\
  -D ${d('amend-read-headers.txt')} -o ${d('amend.json')} ${base}/Appointment/${id3}
node -e 'const fs=require("fs");const a=JSON.parse(fs.readFileSync(${JSON.stringify(d('amend.json'))}));a.comment="Please bring your inhaler";fs.writeFileSync(${JSON.stringify(d('amend.json'))},JSON.stringify(a))'
curl -sS ${tls} ${spine(amend.id)} \\
  -H "Authorization: Bearer $(node dist/demo/token.js write ${a.standard})" \\
  -H "If-Match: $(grep -i '^etag:' ${d('amend-read-headers.txt')} | cut -d' ' -f2 | tr -d '\\r')" \\
  -H 'Content-Type: application/fhir+json' -X PUT --data-binary @${d('amend.json')} \\
  -D - ${base}/Appointment/${id3}
` : '';
  return `
cancel-gateway demo (${std.title}) is running.
  gateway  ${base}   (mTLS: development CA and client certificate in ${rel(join(a.dir, 'certs'))}/)
  admin    http://127.0.0.1:${a.adminPort}/metrics  /healthz  /readyz
  provider ${a.providerUrl}   (bundled demo provider, seeded: ${a.ids.join(', ')})
  files    everything the demo writes is in ${rel(a.dir)}/ (git-ignored)

Paste these into another terminal:

cd ${shellQuote(packageRoot)}

# 1. read the appointment (a fresh token each time: tokens live 300 s)
curl -sS ${tls} ${spine(read.id)} \\
  -H "Authorization: Bearer $(node dist/demo/token.js read ${a.standard})" \\
  -D ${d('read-headers.txt')} -o ${d('appointment.json')} ${base}/Appointment/${id} && cat ${d('read-headers.txt')}

# 2. cancel it: the same resource with status "cancelled", If-Match from the ETag: 200
node -e 'const fs=require("fs");const a=JSON.parse(fs.readFileSync(${JSON.stringify(d('appointment.json'))}));a.status="cancelled";${addReason}fs.writeFileSync(${JSON.stringify(d('cancel.json'))},JSON.stringify(a))'
${cancelCurl}

# 3. send the same cancel again: its If-Match is no longer current, so 409 (an OperationOutcome)
${cancelCurl}

# 4. the audit records of these cancels (one JSON line per request on the cancel route)
tail -n 5 ${d('audit.jsonl')}

# 5. every version a cancel replaced is kept by the gateway (the sqlite vault): its history
node dist/src/main.js vault history ${id} --config ${d('config.json')}

# 6. the same in FHIR XML: read appointment ${id2} as XML, cancel it with an XML body: 200
${xmlSteps}
${amendStep}
Stop with Ctrl-C. GATEWAY_STANDARD=gp-connect npm start runs the GP Connect 1.2.7 rules.
`;
}

/**
 * GATEWAY_PORT=0 (any free port): the port is chosen here, before the configuration is built, so
 * that publicBaseUrl — every Location the gateway returns — names the port it listens on (ruling 22).
 */
async function withGatewayPortChosen(env: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  if (env.GATEWAY_PORT?.trim() !== '0') return env;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return { ...env, GATEWAY_PORT: String(port) };
}

export async function runDemo(
  run: (config: Readonly<Config>, onReady: (gw: Gateway) => void) => Promise<void>,
  opts: DemoOptions = {},
): Promise<{ close(): Promise<void> }> {
  const env = await withGatewayPortChosen(opts.env ?? process.env);
  const dir = opts.dir ?? join(packageRoot, '.demo');
  const out = opts.out ?? process.stdout;
  const standard = demoStandard(env);
  mkdirSync(dir, { recursive: true });
  const certs = ensureDevCertificates(join(dir, 'certs'));
  const provider = await startDemoProvider({ seed: standard, host: '127.0.0.1', port: 0 });
  let config: Readonly<Config>;
  try {
    config = demoConfig(env, dir, { certs, providerUrl: provider.url });
  } catch (e) {
    await provider.close();
    throw e;
  }
  freshDemoStore(config.store.path!);
  await run(config, (gw) => {
    out.write(demoInstructions({ standard, gatewayPort: gw.port, adminPort: gw.adminPort, providerUrl: provider.url, ids: provider.store.ids(), dir, certs }));
  });
  return { close: () => provider.close() };
}
