/**
 * CPU of profile validation (issue 14 target: <= 150 µs per valid cancel).
 *   npx tsc -p tsconfig.json && node dist/scripts/profiles/bench-profile.js [iterations]
 * 1. The validator alone: mean µs per call over N calls (after a warm-up) on the cancel form of
 *    each standard's fixture (status cancelled, with the standard's cancellation reason).
 * 2. The gateway's own check plan, in process (scripts/bench/stages.ts): mean CPU µs of the
 *    `profile` stage and of the validation stages together.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { createProfileValidator, type ProfileName } from '../../src/fhir/profile.js';
import { measureStages } from '../bench/stages.js';

const n = Number(process.argv[2] ?? 10_000);
const fixture = (std: string): Record<string, any> => JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', std, 'appointment.json'), 'utf8')); // eslint-disable-line @typescript-eslint/no-explicit-any

const cases: [ProfileName, Record<string, unknown>][] = [];
{
  const b = fixture('nhs-booking');
  b.status = 'cancelled';
  b.extension = [{ url: 'https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-AppointmentCancellationReason-1', valueString: 'No longer needed' }];
  cases.push(['careconnect-appointment-1', b]);
  const g = fixture('gp-connect');
  g.status = 'cancelled';
  g.extension.push({ url: 'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1', valueString: 'Double booked' });
  cases.push(['gpconnect-appointment-1', g]);
}
for (const [profile, body] of cases) {
  const t0 = process.hrtime.bigint();
  const validate = createProfileValidator(profile);
  const startupMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (validate(body).length) throw new Error(`${profile}: the bench body is not valid`);
  for (let i = 0; i < 2000; i++) validate(body);
  const cpu0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) validate(body);
  const wall = Number(process.hrtime.bigint() - w0) / 1e3 / n;
  const cpu = process.cpuUsage(cpu0);
  console.log(`${profile}: ${((cpu.user + cpu.system) / n).toFixed(1)} µs CPU, ${wall.toFixed(1)} µs wall per validation (${n} calls); validator built in ${startupMs.toFixed(0)} ms`);
}
const stages = await measureStages(Math.min(n, 5000), 1000);
const v = ['jwt', 'body', 'profile', 'cancel-request', 'diff'].reduce((s, k) => s + (stages.cpuUs[k] ?? 0), 0);
console.log(`check plan (nhs-booking, in process): profile stage ${stages.cpuUs['profile']?.toFixed(1)} µs CPU; validation (jwt+body+profile+cancel-request+diff) ${v.toFixed(1)} µs CPU`);
