#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { createTracer } from './compose.js';
import { ConfigError, loadConfig, namingEnv, withoutCredentials, type Config } from './config.js';
import { createLogger } from './log.js';
import { createGateway, type Gateway } from './server.js';
import { inspectTls, startupTlsProblems } from './tls/inspect.js';
import { runVaultCommand, VAULT_USAGE } from './cli/vault.js';
import { checkListen } from './ops/listen-check.js';
import { checkStore } from './store/check.js';

/**
 * Entry point: load config -> build -> listen; every config problem printed at once, exit 1.
 *   cancel-gateway [--config FILE]          run (no config: the embedded demo)
 *   cancel-gateway check-config --config F [--warn-days N]  validate a configuration and its TLS material, exit
 */

const USAGE = `usage:
  cancel-gateway [--config FILE]              run the gateway (no --config: the embedded demo)
  cancel-gateway check-config --config FILE [--warn-days N]
                                              validate a configuration file and every certificate, key and
                                              CRL it names; warn about expiry within N days (tls.expiryWarningDays)
  cancel-gateway vault <history|show|export|purge|restore> … --config FILE
                                              the kept versions (see \`cancel-gateway vault --help\`)
environment overrides: see README "Configuration"`;

/** The tracer's last export is given at most this long at shutdown (docs/tracing.md). */
const TRACER_EXPORT_MS = 5000;

/** A collector that accepts and never answers must not keep the process past the drain. */
function withinTracerExport(done: Promise<unknown>): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, TRACER_EXPORT_MS);
    done.catch(() => undefined).then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A listener that could not bind, named by its key (README: every problem with its path). */
function listenError(e: unknown, config: Readonly<Config>): unknown {
  const err = e as NodeJS.ErrnoException & { port?: number; address?: string };
  if (!err || !['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL'].includes(String(err.code))) return e;
  // The admin listener when its port is the one that failed; an address that is not this
  // machine's is the host's problem, anything else the port's.
  const admin = (err.port === config.admin.port && err.port !== config.listen.port) || (err.address === config.admin.host && err.address !== config.listen.host);
  const side = admin ? 'admin' : 'listen';
  const key = `${side}.${err.code === 'EADDRNOTAVAIL' ? 'host' : 'port'}`;
  const port = err.port ?? config[side].port;
  const why = err.code === 'EADDRINUSE' ? 'the address is in use' : err.code === 'EACCES' ? 'not permitted (a privileged port?)' : 'the address is not this machine\'s';
  return new Error(`${key}: cannot listen on ${err.address ?? config[side].host}:${port}: ${why} (${err.code})`);
}

/** A start-up failure's message, with the variable that set the key it begins with (`tls.key does not match …`). */
function startupMessage(e: unknown): string {
  const m = (e as Error)?.message ?? String(e);
  const lead = /^([a-z][A-Za-z]*(?:\.[A-Za-z]+)+)[ :]/.exec(m)?.[1];
  if (!lead) return m;
  const probe = `${lead}: x`;
  return m + namingEnv(probe, process.env).slice(probe.length);
}

async function runGateway(config: Readonly<Config>, onReady?: (gw: Gateway) => void, configFile?: string): Promise<void> {
  const logger = createLogger(config.log.level);
  const t0 = performance.now();
  const tracer = await createTracer(config);
  const gw = createGateway(config, { logger, tracer });
  await gw.listen().catch((e: unknown) => {
    throw listenError(e, config);
  });
  logger.info('ready', { standard: config.standard, port: gw.port, adminPort: gw.adminPort, startupMs: Math.round(performance.now() - t0) });
  onReady?.(gw);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      // Said, not silent: the first signal's drain goes on (in-flight requests finish or reach the deadline).
      logger.info('shutdown already in progress: waiting for in-flight requests', { signal, drainTimeoutMs: config.shutdown.drainTimeoutMs });
      return;
    }
    stopping = true;
    logger.info('shutdown requested', { signal });
    // The tracer's last spans (the drained requests') are exported before exit; its own failure
    // (collector gone) does not change the exit code.
    gw.shutdown().then(
      () => withinTracerExport(tracer.shutdown()).then(() => process.exit(0)),
      () => process.exit(1),
    );
  };
  // SIGHUP: re-read the configuration file; a bad or restart-only change keeps the current one.
  if (configFile) {
    process.on('SIGHUP', () => {
      try {
        gw.reloadConfig(loadConfig(configFile));
      } catch (e) {
        gw.metrics.reloads.inc({ kind: 'config', result: 'failure' });
        logger.error('configuration reload failed; keeping the current configuration', {
          problems: e instanceof ConfigError ? e.problems : [(e as Error).message],
        });
      }
    });
  } else {
    // No file to re-read (the demo's embedded configuration): a SIGHUP changes nothing and must
    // not end the process (Node's default for the signal).
    process.on('SIGHUP', () => logger.warn('SIGHUP ignored: there is no configuration file to reload (started without --config)'));
  }
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** `FILE: N problem(s)` and one `  - problem` line each, on stderr. */
function writeProblems(label: string, problems: readonly string[]): void {
  // A problem with a key an environment variable set names the variable (README "Configuration").
  const named = problems.map((p) => (p.includes(' (from GATEWAY_') ? p : namingEnv(p, process.env)));
  process.stderr.write(`${label}: ${named.length} problem(s)\n${named.map((p) => `  - ${p}`).join('\n')}\n`);
}

/** check-config's TLS half (issue 19): warnings on stderr, errors listed like config problems; 1 on an error. */
function reportTls(configFile: string, c: Readonly<Config>, warnDays: number | undefined): number {
  const findings = inspectTls(c, { now: Date.now(), certWarningDays: warnDays ?? c.tls.expiryWarningDays, crlWarningHours: c.tls.crlWarningHours });
  for (const f of findings) if (f.level === 'warning') process.stderr.write(`${configFile}: warning: ${f.what}: ${f.message}\n`);
  const errors = findings.filter((f) => f.level === 'error');
  if (errors.length) {
    writeProblems(configFile, errors.map((f) => `${f.what}: ${f.message}`));
    return 1;
  }
  return 0;
}

/**
 * `--config FILE`, `--config=FILE`, `-c FILE` or `-cFILE`, the last one given winning — as the
 * vault command's own parser (node:util parseArgs) reads them, so both name the same store.
 */
function configArgument(argv: readonly string[]): string | undefined {
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === '--config' || a === '-c') file = argv[++i];
    else if (a.startsWith('--config=')) file = a.slice('--config='.length);
    else if (a.startsWith('-c') && !a.startsWith('--')) file = a.slice(2);
  }
  return file;
}

/** `vault …`: the operator's commands on the kept versions (issue 18), on the same configuration. */
async function runVault(argv: string[]): Promise<number> {
  const file = configArgument(argv) ?? process.env.GATEWAY_CONFIG;
  if (!file || argv.includes('--help') || argv.includes('-h')) {
    const asked = argv.includes('--help') || argv.includes('-h');
    // Asked for: the usage is the answer (stdout, 0); a missing --config is an error (stderr, 2).
    (asked ? process.stdout : process.stderr).write(`${VAULT_USAGE}\n`);
    return asked ? 0 : 2;
  }
  let config;
  try {
    config = loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      writeProblems(file, e.problems);
      return 1;
    }
    throw e;
  }
  return runVaultCommand(argv, config, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });
}

/** `check-config`: the file, its TLS material, the store and the listen addresses, as start-up would load them. */
async function checkConfig(configFile: string, warnDays: number | undefined): Promise<number> {
  try {
    const c = loadConfig(configFile);
    const tlsCode = reportTls(configFile, c, warnDays);
    // The store is checked as start-up would open it (connects to PostgreSQL, opens sqlite).
    const { problems: storeProblems, warnings: storeWarnings } = await checkStore(c);
    // The listen and admin addresses, bound once and closed, as start-up would bind them.
    const listen = await checkListen(c);
    for (const w of [...storeWarnings, ...listen.warnings]) process.stderr.write(`${configFile}: warning: ${w}\n`);
    if (storeProblems.length) writeProblems(`${configFile}: store`, storeProblems);
    if (listen.problems.length) writeProblems(configFile, listen.problems);
    if (storeProblems.length || listen.problems.length) return 1;
    // "valid" only once every part is: the file, the TLS material, the store and the addresses.
    if (tlsCode === 0) process.stdout.write(`${configFile}: valid (standard ${c.standard}, upstream ${withoutCredentials(c.upstream.url)}, store ${c.store.kind})\n`);
    return tlsCode;
  } catch (e) {
    if (e instanceof ConfigError) {
      writeProblems(configFile, e.problems);
      return 1;
    }
    throw e;
  }
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'vault') {
    // `vault export | head`: a reader that stops early is not an error of ours.
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
    return runVault(argv.slice(1));
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' }, 'warn-days': { type: 'string' } }, allowPositionals: true });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const command = positionals[0] ?? 'run';
  const configFile = values.config ?? process.env.GATEWAY_CONFIG;
  if (command === 'check-config') {
    if (!configFile) {
      process.stderr.write('check-config needs --config FILE\n');
      return 2;
    }
    const warnDays = values['warn-days'] === undefined ? undefined : Number(values['warn-days']);
    if (warnDays !== undefined && !(Number.isInteger(warnDays) && warnDays >= 0)) {
      process.stderr.write('--warn-days must be a whole number of days\n');
      return 2;
    }
    return checkConfig(configFile, warnDays);
  }
  if (command !== 'run') {
    process.stderr.write(`unknown command '${command}'\n${USAGE}\n`);
    return 2;
  }
  if (!configFile) {
    // The demo is not in the container image (issue 19: only what the gateway needs ships there).
    const demo = await import('../demo/run.js').catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ERR_MODULE_NOT_FOUND') throw e;
      return undefined;
    });
    if (!demo) {
      process.stderr.write(`the embedded demo is not part of this installation: pass --config FILE\n${USAGE}\n`);
      return 2;
    }
    await demo.runDemo(runGateway);
    return -1;
  }
  let config;
  try {
    config = loadConfig(configFile);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`cancel-gateway: ${configFile}: ${e.problems.length} configuration problem(s):\n${e.problems.map((p) => `  - ${p}`).join('\n')}\n`);
      return 1;
    }
    throw e;
  }
  const tlsProblems = startupTlsProblems(config);
  if (tlsProblems.length) {
    process.stderr.write(`cancel-gateway: ${configFile}: ${tlsProblems.length} configuration problem(s):\n${tlsProblems.map((p) => `  - ${p}`).join('\n')}\n`);
    return 1;
  }
  await runGateway(config, undefined, configFile);
  return -1; // keep running
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`cancel-gateway: ${startupMessage(e)}\n`);
    process.exit(1);
  },
);

