import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CATALOGUE, GatewayError, SPINE_DISPLAYS, type ErrorCode } from '../src/errors.js';
import { catalogueTable } from '../src/catalogue-table.js';
import { buildOperationOutcome } from '../src/fhir/operation-outcome.js';
import { mappingFor } from '../src/respond.js';
import { STANDARDS } from '../src/standards/index.js';
import { packageRoot } from '../src/paths.js';


t.test('README error table is the catalogue', async (t) => {
  const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');
  const m = /<!-- catalogue:start -->\n([\s\S]*?)\n<!-- catalogue:end -->/.exec(readme);
  t.ok(m, 'README has the catalogue markers');
  t.equal(m?.[1]?.trim(), catalogueTable(), 'regenerate with: node --import ./test/helpers/ts.mjs -e "..." (see README)');
});

t.test('every code maps to a status, an issue type and a Spine code with its display', async (t) => {
  for (const std of Object.values(STANDARDS)) {
    for (const code of Object.keys(CATALOGUE) as ErrorCode[]) {
      const m = mappingFor(new GatewayError(code, 'x'), std);
      t.ok(m.status >= 400 && m.status <= 599, `${std.name} ${code} status ${m.status}`);
      t.ok(SPINE_DISPLAYS[m.spine], `${std.name} ${code} spine ${m.spine} has a display`);
    }
  }
});

t.test('the rulings\' status codes (README rulings 2-9, GP Connect section)', async (t) => {
  const b = STANDARDS['nhs-booking'];
  const g = STANDARDS['gp-connect'];
  const cases: Array<[ErrorCode, number, string, number, string]> = [
    ['SPINE_HEADER_INVALID', 400, 'MISSING_OR_INVALID_HEADER', 400, 'BAD_REQUEST'],
    ['INTERACTION_MISMATCH', 400, 'BAD_REQUEST', 400, 'BAD_REQUEST'],
    ['JWT_INVALID', 403, 'ACCESS DENIED', 400, 'BAD_REQUEST'],
    ['JWT_CLAIM_RESOURCE_INVALID', 403, 'ACCESS DENIED', 422, 'INVALID_RESOURCE'],
    ['IF_MATCH_MISSING', 412, 'MISSING_OR_INVALID_HEADER', 412, 'MISSING_OR_INVALID_HEADER'],
    ['IF_MATCH_INVALID', 400, 'MISSING_OR_INVALID_HEADER', 400, 'BAD_REQUEST'],
    ['VERSION_CONFLICT', 409, 'CONFLICTING_VALUES', 409, 'FHIR_CONSTRAINT_VIOLATION'],
    ['UNSUPPORTED_MEDIA_TYPE', 415, 'UNSUPPORTED_MEDIA_TYPE', 415, 'BAD_REQUEST'], // gp: §e, its code system has no UNSUPPORTED_MEDIA_TYPE,
    ['BODY_TOO_LARGE', 413, 'BAD_REQUEST', 413, 'BAD_REQUEST'],
    ['BODY_INVALID', 400, 'BAD_REQUEST', 400, 'BAD_REQUEST'],
    ['PROFILE_INVALID', 422, 'INVALID_RESOURCE', 422, 'INVALID_RESOURCE'],
    ['BUSINESS_RULE', 422, 'INVALID_RESOURCE', 422, 'INVALID_RESOURCE'],
    ['PARAMETER_INVALID', 422, 'INVALID_PARAMETER', 422, 'INVALID_PARAMETER'],
    ['RECORD_NOT_FOUND', 404, 'NO_RECORD_FOUND', 404, 'NO_RECORD_FOUND'],
    ['UPSTREAM_UNAVAILABLE', 500, 'INTERNAL_SERVER_ERROR', 500, 'INTERNAL_SERVER_ERROR'],
    ['ROUTE_NOT_FOUND', 404, 'BAD_REQUEST', 404, 'BAD_REQUEST'],
    ['METHOD_NOT_ALLOWED', 405, 'BAD_REQUEST', 405, 'BAD_REQUEST'],
  ];
  for (const [code, bs, bc, gs, gc] of cases) {
    const e = new GatewayError(code, 'x');
    t.same([mappingFor(e, b).status, mappingFor(e, b).spine], [bs, bc], `nhs-booking ${code}`);
    t.same([mappingFor(e, g).status, mappingFor(e, g).spine], [gs, gc], `gp-connect ${code}`);
  }
  t.equal(CATALOGUE.BODY_TOO_LARGE.issue, 'too-long', 'ruling 6: 413 has issue code too-long');
  t.equal(CATALOGUE.BUSINESS_RULE.issue, 'business-rule', 'ruling 9: issue code business-rule');
});

t.test('UPSTREAM_ERROR keeps the provider status (ruling 11)', async (t) => {
  const e = new GatewayError('UPSTREAM_ERROR', 'x', { status: 504 });
  t.equal(mappingFor(e, STANDARDS['nhs-booking']).status, 504);
});

t.test('OperationOutcome shape (ruling 14)', async (t) => {
  for (const std of Object.values(STANDARDS)) {
    const e = new GatewayError('BUSINESS_RULE', [{ diagnostics: 'a', expression: 'Appointment.description' }, { diagnostics: 'b' }]);
    const oo = buildOperationOutcome(mappingFor(e, std), e.issues, std.operationOutcomeProfile);
    t.equal(oo.resourceType, 'OperationOutcome');
    t.match(oo.id, /^[0-9a-f-]{36}$/);
    t.same(oo.meta.profile, [std.operationOutcomeProfile]);
    t.equal(oo.issue.length, 2);
    t.same(oo.issue[0], {
      severity: 'error', code: 'business-rule',
      details: { coding: [{ system: 'https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1', code: 'INVALID_RESOURCE', display: 'Invalid validation of resource' }] },
      diagnostics: 'a', expression: ['Appointment.description'],
    });
    t.notOk('expression' in oo.issue[1]!, 'no expression when no path is known');
    const again = buildOperationOutcome(mappingFor(e, std), e.issues, std.operationOutcomeProfile);
    t.not(again.id, oo.id, 'a fresh id per answer');
  }
  t.equal(STANDARDS['nhs-booking'].operationOutcomeProfile, 'https://fhir.nhs.uk/STU3/StructureDefinition/Spine-OperationOutcome-1');
  t.equal(STANDARDS['gp-connect'].operationOutcomeProfile, 'https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1');
});

t.test('an HTTP problem is located as FHIR says ("http." + the parameter name in location), and kept in expression', async (t) => {
  const std = STANDARDS['nhs-booking'];
  const e = new GatewayError('IF_MATCH_MISSING', { diagnostics: 'If-Match is required', expression: 'http.If-Match' });
  const oo = buildOperationOutcome(mappingFor(e, std), e.issues, std.operationOutcomeProfile);
  t.same(oo.issue[0]!.location, ['http.If-Match']);
  t.same(oo.issue[0]!.expression, ['http.If-Match']);
  const body = new GatewayError('PROFILE_INVALID', { diagnostics: 'x', expression: 'Appointment.status' });
  t.notOk('location' in buildOperationOutcome(mappingFor(body, std), body.issues, std.operationOutcomeProfile).issue[0]!, 'a resource path is an expression only');
  // The XML form writes location before expression (STU3 element order).
  const { xmlCodec } = await import('../src/adapters/codec-xml.js');
  const xml = xmlCodec.encode(oo as unknown as Record<string, unknown>).toString();
  t.match(xml, /<diagnostics value="If-Match is required"\/><location value="http\.If-Match"\/><expression value="http\.If-Match"\/>/);
});

t.test('Spine displays match the CodeSystem v1.6.0', async (t) => {
  const cs = JSON.parse(readFileSync(join(packageRoot, 'test/fixtures/spine-error-codes.json'), 'utf8')) as { concepts: Array<{ code: string; display: string }> };
  for (const [code, display] of Object.entries(SPINE_DISPLAYS)) {
    t.equal(cs.concepts.find((c) => c.code === code)?.display, display, code);
  }
});

t.test('a GatewayError is an answer: no stack trace captured, and the limit is left as it was', async (t) => {
  const before = Error.stackTraceLimit;
  const e = new GatewayError('BUSINESS_RULE', { diagnostics: 'description changed', expression: 'Appointment.description' });
  t.equal(e.stack, 'GatewayError: description changed');
  t.ok(e instanceof Error);
  t.equal(Error.stackTraceLimit, before);
  t.match(new Error('a fault').stack, /\n\s+at /, 'other errors keep their stacks');
});

t.test("every Spine code answered under gp-connect is in GP Connect's own code system (GPConnect-OperationOutcome-1 binds it as required)", async (t) => {
  const fixture = JSON.parse(readFileSync(join(packageRoot, 'test/fixtures/gp-connect/spine-error-codes.json'), 'utf8')) as { codes: string[] };
  const codes = new Set(fixture.codes);
  t.ok(codes.size > 30, 'the code system was read');
  const gp = STANDARDS['gp-connect'];
  for (const code of Object.keys(CATALOGUE) as ErrorCode[]) {
    t.ok(codes.has(mappingFor(new GatewayError(code, 'x'), gp).spine), `${code} → ${mappingFor(new GatewayError(code, 'x'), gp).spine}`);
  }
  for (let status = 400; status < 600; status++) {
    const e = new GatewayError('UPSTREAM_REFUSED', 'x', { status });
    t.ok(codes.has(mappingFor(e, gp).spine), `a provider's ${status}`);
  }
});
