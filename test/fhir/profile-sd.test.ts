/**
 * The generated StructureDefinition data (config/profiles/*.json) against its sources.
 * - GPConnect-Appointment-1 1.6.0 is generated from its JSON copy (tkw validator assets); the
 *   XML of gp-connect/ must say the same (paths, cardinalities, types) for every snapshot row.
 * - The profile rows are those of the shared StructureDefinitions (cardinalities, slices).
 * Skipped where shared/spec/data is not beside the repository.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { xmlToFhirJson } from '../../scripts/profiles/fhir-xml.js';
import { loadBase, loadProfiles } from '../../src/fhir/sd/model.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const data = join(packageRoot, '..', 'shared', 'spec', 'data');

t.test('GPConnect-Appointment-1 1.6.0: the XML and the JSON copy agree', { skip: !existsSync(data) && 'shared/spec/data not beside the repository' }, async (t) => {
  const xml = xmlToFhirJson(readFileSync(join(data, 'gp-connect', 'GPConnect-Appointment-1.profile-v1.6.0.gpc-1.2.7.xml'), 'utf8'));
  const json = JSON.parse(readFileSync(join(data, 'nhs-booking', 'tkw-FHIR_111_UEC', 'validator-fhir-assets', 'GPConnect-Appointment-1.json'), 'utf8')) as Json;
  t.equal(xml.version, '1.6.0');
  t.equal(json.version, '1.6.0');
  const rows = (sd: Json): string[] =>
    (sd.snapshot.element as Json[]).map((e) => `${e.id ?? e.path} ${e.min}..${e.max} ${(e.type ?? []).map((ty: Json) => ty.code).join(',')}`);
  t.same(rows(xml), rows(json));
});

t.test('the generated profile rows keep the definitions’ cardinalities', async (t) => {
  const p = loadProfiles().profiles;
  const row = (name: string, path: string): Json | undefined => p[name]!.rows.find((r) => r.p === path && !r.sl);
  t.match(row('gpconnect-appointment-1', 'appointmentType'), { min: 0, max: 0 });
  t.match(row('gpconnect-appointment-1', 'slot'), { min: 1, max: -1 });
  t.match(row('gpconnect-appointment-1', 'participant.actor'), { min: 1, max: 1 });
  t.match(row('careconnect-appointment-1', 'status'), { min: 1, max: 1 });
  const slices = p['careconnect-appointment-1']!.rows.filter((r) => r.sl).map((r) => `${r.sl!.split('/').pop()} ${r.min}..${r.max}`);
  t.same(slices.sort(), [
    'Extension-CareConnect-AppointmentCancellationReason-1 0..1',
    'Extension-CareConnect-BookingOrganisation-1 0..1',
    'Extension-CareConnect-DeliveryChannel-1 0..1',
  ]);
  const base = loadBase().types;
  t.equal(Object.keys(base).filter((k) => base[k]!.kind === 'resource').length, 119, 'every FHIR 3.0.1 resource (117, plus Resource and DomainResource)');
  t.ok(base['Slot']!.rows.find((r) => r.p === 'status')!.b!.includes('busy-tentative'), 'required bindings enumerated');
});
