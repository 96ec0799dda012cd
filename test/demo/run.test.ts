import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { packageRoot } from '../../src/paths.js';
import { createGateway, type Gateway } from '../../src/server.js';
import { demoConfig, demoStandard, runDemo } from '../../demo/run.js';

/**
 * The demo of `npm start` (issue 19): its variables are validated like a configuration file, it
 * writes only into its folder, and every numbered step's commands work when pasted: this test
 * pastes them into bash and checks what each one answers.
 */

const problems = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
};

t.test('GATEWAY_STANDARD and the other demo variables are validated, naming the variable', async (t) => {
  t.equal(demoStandard({}), 'nhs-booking');
  t.equal(demoStandard({ GATEWAY_STANDARD: 'gp-connect' }), 'gp-connect');
  t.same(problems(() => demoStandard({ GATEWAY_STANDARD: 'gp-connnect' })), ['standard: must be equal to one of the allowed values (nhs-booking, gp-connect) (from GATEWAY_STANDARD)']);
  const dir = mkdtempSync(join(tmpdir(), 'gw-demo-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files = { certs: { caCert: 'ca.crt', caKey: 'ca.key', serverCert: 'server.crt', serverKey: 'server.key', clientCert: 'client.crt', clientKey: 'client.key' }, providerUrl: 'http://127.0.0.1:1' };
  // File existence is checked too; these cases fail earlier or alongside, on the variables.
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ GATEWAY_PORT: 'eighty' }, /^GATEWAY_PORT: must be an integer$/],
    // The same form as for a configuration file (README "Configuration").
    [{ GATEWAY_PORT: '70000' }, /^listen\.port: must be <= 65535 \(from GATEWAY_PORT\)$/],
    [{ GATEWAY_LOG_LEVEL: 'loud' }, /^log\.level: must be equal to one of the allowed values.* \(from GATEWAY_LOG_LEVEL\)$/],
  ];
  for (const [env, want] of cases) {
    const p = problems(() => demoConfig(env, dir, files));
    t.ok(p.some((x) => want.test(x)), `${JSON.stringify(env)}: ${p.join(' | ')}`);
  }
});

t.test('a typo in GATEWAY_STANDARD stops npm start with a clear error, before anything starts', async (t) => {
  const r = spawnSync(process.execPath, [join(packageRoot, 'dist', 'src', 'main.js')], {
    env: { PATH: process.env.PATH ?? '', GATEWAY_STANDARD: 'nhs_booking' }, encoding: 'utf8', timeout: 20_000,
  });
  t.equal(r.status, 1, r.stderr);
  t.match(r.stderr, /standard: must be equal to one of the allowed values \(nhs-booking, gp-connect\) \(from GATEWAY_STANDARD\)/);
  t.equal(r.stdout, '', 'no demo banner');
});

const curl = spawnSync('curl', ['--version']);
t.test('every numbered step prints commands that work when pasted; everything lands in the demo folder', { skip: curl.status === 0 ? false : 'curl is not installed' }, async (t) => {
  for (const standard of ['nhs-booking', 'gp-connect'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'gw-demo-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    let text = '';
    let gw: Gateway | undefined;
    const demo = await runDemo(async (config, onReady) => {
      gw = createGateway(config, { logger: createLogger('silent') });
      await gw.listen();
      onReady(gw);
    }, { dir, env: { GATEWAY_STANDARD: standard, GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0' }, out: { write: (s: string) => (text += s) } });
    t.teardown(async () => {
      await gw?.close();
      await demo.close();
    });

    const cd = /^cd .+$/m.exec(text)?.[0];
    t.ok(cd, 'a cd line: the commands work from any terminal');
    const steps = [...text.matchAll(/^# (\d)\. .*\n((?:.+\n)+)/gm)].map((m) => ({ n: Number(m[1]), commands: m[2]! }));
    const expected = standard === 'gp-connect' ? [1, 2, 3, 4, 5, 6, 7] : [1, 2, 3, 4, 5, 6];
    t.same(steps.map((s) => s.n), expected, `${standard}: numbered steps, each with a command`);
    // Asynchronously: the gateway answering the commands runs in this process.
    const paste = (commands: string) => new Promise<{ stdout: string; stderr: string }>((resolve) => {
      execFile('bash', ['--norc', '--noprofile', '-c', `set -e\n${cd}\n${commands}`], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 },
        (error, stdout, stderr) => resolve({ stdout, stderr: `${stderr}${error ? ` (${error.message.split('\n')[0]})` : ''}` }));
    });
    const status = (out: string) => [...out.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));

    const results: Array<{ stdout: string; stderr: string }> = [];
    // A client holds its answer a moment before the gateway writes the request's audit record:
    // each step starts once the one before it has been recorded, as it would for a person pasting.
    for (const step of steps) {
      await gw!.settled();
      results.push(await paste(step.commands));
    }
    await gw!.settled();
    const [read, cancel, again, audit, history, xml, amend] = results;
    t.same(status(read!.stdout), [200], `${standard} step 1 reads: ${read!.stderr}`);
    t.same(status(cancel!.stdout), [200], `${standard} step 2 cancels: ${cancel!.stderr}${cancel!.stdout.slice(-400)}`);
    // GATEWAY_PORT=0: the Location names the port the gateway listens on (ruling 22; README review of stop 33).
    t.match(cancel!.stdout, new RegExp(`^location: https://localhost:${gw!.port}/STU3/1/Appointment/`, 'im'), `${standard} step 2: the Location leads to this gateway`);
    t.same(status(again!.stdout), [409], `${standard} step 3, the same cancel again: 409`);
    t.match(again!.stdout, /"resourceType":\s*"OperationOutcome"/);
    const records = audit!.stdout.trim().split('\n').map((l) => JSON.parse(l) as { status: number; interaction: string });
    t.same(records.map((r) => r.status), [200, 409], `${standard} step 4 shows the audit records of the two cancels`);

    t.match(history!.stdout, /\b1\b/, `${standard} step 5 lists the kept version: ${history!.stderr}`);
    t.same(status(xml!.stdout), [200, 200], `${standard} step 6 reads and cancels in XML: ${xml!.stderr}${xml!.stdout.slice(-400)}`);
    t.match(xml!.stdout, /<Appointment xmlns="http:\/\/hl7.org\/fhir">/, 'the XML answer');
    if (standard === 'gp-connect') t.same(status(amend!.stdout), [200], `step 7 amends: ${amend!.stderr}${amend!.stdout.slice(-400)}`);
    const files = ['appointment.json', 'appointment.xml', 'audit.jsonl', 'cancel.json', 'cancel.xml', 'certs', 'config.json', 'read-headers.txt', 'read-xml-headers.txt', 'store'];
    if (standard === 'gp-connect') files.push('amend-read-headers.txt', 'amend.json');
    t.same(readdirSync(dir).sort(), files.sort(), 'everything the demo and its commands wrote is in its folder');
    t.ok(existsSync(join(dir, 'certs', 'client.key')));
    t.notMatch(text, /\.dev-certs/, 'no other folder named');
    t.equal(readFileSync(join(dir, 'audit.jsonl'), 'utf8').split('\n').filter(Boolean).length, standard === 'gp-connect' ? 4 : 3);
  }
});

t.test('the demo starts with an empty store, as its provider starts freshly seeded (review of stop 34)', async (t) => {
  const { createSqliteVault } = await import('../../src/adapters/vault-sqlite.js');
  const { entry } = await import('../contracts/vault.contract.js');
  const dir = mkdtempSync(join(tmpdir(), 'gw-demo-fresh-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'store', 'vault.sqlite');
  const before = createSqliteVault({ path, timeoutMs: 500 });
  await before.keep(entry('appt-1', '1', 0));
  t.equal((await before.history('appt-1')).length, 1, 'an earlier run kept a version');
  await before.close();
  let gw: Gateway | undefined;
  const demo = await runDemo(async (config, onReady) => {
    gw = createGateway(config, { logger: createLogger('silent') });
    await gw.listen();
    onReady(gw);
  }, { dir, env: { GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0' }, out: { write: () => true } });
  await gw?.close();
  await demo.close();
  const after = createSqliteVault({ path, timeoutMs: 500 });
  t.same(await after.history('appt-1'), [], 'none of it is served as this provider\'s history');
  await after.close();
});
