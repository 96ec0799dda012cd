/**
 * The codec port's contract, run against every adapter (FHIR JSON and FHIR XML): what one codec
 * writes it reads back as the same resource; its limits hold at and beyond their value; bytes it
 * cannot read are refused with a diagnostic that never echoes them; encoding is deterministic.
 */
import t from 'tap';
import { jsonCodec } from '../../src/adapters/codec-json.js';
import { xmlCodec } from '../../src/adapters/codec-xml.js';
import type { Codec } from '../../src/ports/codec.js';
import { seedAppointments } from '../../demo/provider/seed/index.js';

const codecs: ReadonlyArray<[string, Codec]> = [['codec-json', jsonCodec], ['codec-xml', xmlCodec]];
const LIMITS = { maxDepth: 64, maxNodes: 200_000 };
const NOW = Date.UTC(2026, 0, 1);

/** Appointments of both standards, and one with primitive extensions and contained resources. */
const resources: Array<Record<string, unknown>> = [
  ...seedAppointments('nhs-booking', NOW),
  ...seedAppointments('gp-connect', NOW),
].map((r) => structuredClone(r) as Record<string, unknown>);
resources.push({
  resourceType: 'Appointment', id: 'contract-1', meta: { versionId: '3', lastUpdated: '2026-01-01T10:00:00Z' },
  status: 'booked', _status: { extension: [{ url: 'http://example.org/ext', valueString: 'note' }] },
  description: 'Emoji 😀, markup <b>&amp;</b> and "quotes"',
  contained: [{ resourceType: 'Practitioner', id: 'p1', name: [{ family: 'Smith', given: ['A', 'B'] }] }],
  participant: [{ actor: { reference: '#p1' }, status: 'accepted' }],
  minutesDuration: 15, priority: 0,
});

/** A resource nested `depth` extensions deep. */
function nested(depth: number): Record<string, unknown> {
  let ext: Record<string, unknown> = { url: 'http://example.org/leaf', valueString: 'x' };
  for (let i = 1; i < depth; i++) ext = { url: `http://example.org/n${i}`, extension: [ext] };
  return { resourceType: 'Appointment', id: 'deep', status: 'booked', extension: [ext], participant: [{ status: 'accepted' }] };
}

for (const [name, codec] of codecs) {
  t.test(`${name}: what it writes it reads back as the same resource, byte for byte on a second write`, async (t) => {
    for (const r of resources) {
      const bytes = codec.encode(r);
      const back = codec.decode(bytes, LIMITS);
      t.ok(back.ok, `${String(r.id)} reads back`);
      if (back.ok) t.same(back.resource, r, `${String(r.id)}: the same resource`);
      t.ok(codec.encode(r).equals(bytes), `${String(r.id)}: encoding is deterministic`);
    }
  });

  t.test(`${name}: its media types and content type name its format, in UTF-8`, async (t) => {
    t.ok(codec.mediaTypes.includes(`application/fhir+${codec.format}`), 'reads its FHIR media type');
    t.ok(codec.mediaTypes.every((m) => m === m.toLowerCase() && !m.includes(';')), 'lower-case, no parameters');
    t.match(codec.contentType, new RegExp(`^application/fhir\\+${codec.format}; ?charset=utf-8$`, 'i'));
  });

  t.test(`${name}: depth and node limits hold at their value and refuse beyond it`, async (t) => {
    const deep = codec.encode(nested(20));
    t.ok(codec.decode(deep, { maxDepth: 64, maxNodes: 10_000 }).ok, 'well within the depth limit');
    const refusedDeep = codec.decode(deep, { maxDepth: 8, maxNodes: 10_000 });
    t.notOk(refusedDeep.ok, 'deeper than maxDepth: refused');
    if (!refusedDeep.ok) t.ok(refusedDeep.diagnostics.length > 0, 'with a diagnostic');
    const wide = codec.encode({ resourceType: 'Appointment', id: 'wide', status: 'booked', participant: Array.from({ length: 400 }, () => ({ status: 'accepted' })) });
    t.ok(codec.decode(wide, { maxDepth: 64, maxNodes: 100_000 }).ok, 'well within the node limit');
    t.notOk(codec.decode(wide, { maxDepth: 64, maxNodes: 100 }).ok, 'more nodes than maxNodes: refused');
  });

  t.test(`${name}: bytes it cannot read are refused, and the diagnostic never echoes them`, async (t) => {
    const secret = 'PATIENT-NAME-9434765919';
    const bad = codec.format === 'json'
      ? [`{"resourceType":"Appointment","description":"${secret}"`, `{"resourceType":"Appointment","x":"${secret}","x":"${secret}"}`, `["${secret}"]`, '']
      : [`<Appointment xmlns="http://hl7.org/fhir"><description value="${secret}"/>`, `<!DOCTYPE a [<!ENTITY e "${secret}">]><Appointment xmlns="http://hl7.org/fhir"/>`, `<Appointment><description value="${secret}"/></Appointment>`, ''];
    for (const text of bad) {
      const d = codec.decode(Buffer.from(text), LIMITS);
      t.notOk(d.ok, `refused: ${text.slice(0, 40) || '(empty)'}`);
      if (!d.ok) {
        t.ok(d.diagnostics.length > 0, 'a diagnostic');
        t.notOk(d.diagnostics.includes(secret), 'that does not echo the body');
      }
    }
  });
}
