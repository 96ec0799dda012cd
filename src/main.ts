#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { createTracer } from './compose.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './log.js';
import { createGateway, type Gateway } from './server.js';

/**
 * Entry point: load config -> build -> listen; every config problem printed at once, exit 1.
 *   cancel-gateway [--config FILE]          run (no config: the embedded demo)
 *   cancel-gateway check-config --config F  validate a configuration and exit
 */

const USAGE = `usage:
  cancel-gateway [--config FILE]              run the gateway (no --config: the embedded demo)
  cancel-gateway check-config --config FILE   validate a configuration file and exit
environment overrides: see README "Configuration"`;

async function runGateway(config: Readonly<Config>, onReady?: (gw: Gateway) => void, configFile?: string): Promise<void> {
  const logger = createLogger(config.log.level);
  const t0 = performance.now();
  const tracer = await createTracer(config);
  const gw = createGateway(config, { logger, tracer });
  await gw.listen();
  logger.info('ready', { standard: config.standard, port: gw.port, adminPort: gw.adminPort, startupMs: Math.round(performance.now() - t0) });
  onReady?.(gw);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutdown requested', { signal });
    // The tracer's last spans (the drained requests') are exported before exit; its own failure
    // (collector gone) does not change the exit code.
    gw.shutdown().then(
      () => tracer.shutdown().catch(() => undefined).then(() => process.exit(0)),
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
  }
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
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
    try {
      const c = loadConfig(configFile);
      process.stdout.write(`${configFile}: valid (standard ${c.standard}, upstream ${c.upstream.url})\n`);
      return 0;
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`${configFile}: ${e.problems.length} problem(s)\n${e.problems.map((p) => `  - ${p}`).join('\n')}\n`);
        return 1;
      }
      throw e;
    }
  }
  if (command !== 'run') {
    process.stderr.write(`unknown command '${command}'\n${USAGE}\n`);
    return 2;
  }
  if (!configFile) {
    const { runDemo } = await import('../demo/run.js');
    await runDemo(runGateway);
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
  await runGateway(config, undefined, configFile);
  return -1; // keep running
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`cancel-gateway: ${(e as Error)?.message ?? String(e)}\n`);
    process.exit(1);
  },
);


