/** isAcceptedMediaType (rulings 5, 21): FHIR JSON and, by standard, FHIR XML; charset utf-8 only. */
import t from 'tap';
import { createMediaTypeCheck, isAcceptedMediaType } from '../../src/checks/media-type.js';
import { createContext } from '../../src/context.js';
import { GatewayError } from '../../src/errors.js';
import { STANDARDS } from '../../src/standards/index.js';

const accepted = [
  'application/fhir+json',
  'application/json+fhir',
  'application/fhir+json; charset=utf-8',
  'application/fhir+json;charset=utf-8',
  'application/fhir+json ; charset = utf-8',
  'application/json+fhir; charset=utf-8',
  'Application/FHIR+JSON; Charset=UTF-8',
  'application/fhir+json; charset="utf-8"',
  '  application/fhir+json  ',
];

const rejected: Array<string | undefined> = [
  undefined,
  '',
  ' ',
  'text/plain',
  'application/json',
  'application/json; charset=utf-8',
  'application/xml',
  'text/xml',
  'application/fhir+json; charset=iso-8859-1',
  'application/fhir+json; charset=utf8',
  'application/fhir+json; charset=utf-16',
  'application/fhir+json; charset=utf-8; charset=latin1',
  'application/fhir+json; charset=utf-8; charset=utf-8',
  'application/fhir+json; fhirVersion=3.0',
  'application/fhir+json; foo=bar',
  'application/fhir+json; charset',
  'application/fhir+jsonx',
  'application/fhir+json, text/plain',
  'application/fhir json',
  'application/*',
  '*/*',
  'multipart/form-data; boundary=x',
];

t.test('accepted', async (t) => {
  for (const v of accepted) t.equal(isAcceptedMediaType(v), true, JSON.stringify(v));
});

t.test('rejected', async (t) => {
  for (const v of rejected) t.equal(isAcceptedMediaType(v), false, JSON.stringify(v));
  for (const v of ['application/fhir+xml', 'application/xml+fhir']) t.equal(isAcceptedMediaType(v), false, `${v}: not a JSON type`);
  t.equal(isAcceptedMediaType('application/xml+fhir', STANDARDS['gp-connect'].requestMediaTypes), false, 'legacy XML name not under gp-connect');
  t.equal(isAcceptedMediaType('application/fhir+xml; charset=utf-8', STANDARDS['gp-connect'].requestMediaTypes), true);
});

t.test('the check throws UNSUPPORTED_MEDIA_TYPE for a rejected type and passes an accepted one', async (t) => {
  const std = STANDARDS['nhs-booking'];
  const check = createMediaTypeCheck(std);
  t.equal(check.family, 'mediaType');
  const io = { readBody: async () => Buffer.alloc(0) };
  const run = (headers: Record<string, string>, repeated: string[] = []) => {
    try {
      check.run(createContext({ method: 'PUT', path: '/Appointment/a', headers, repeated: new Set(repeated) }, [std.interactions[0]!], 'a'), io);
      return undefined;
    } catch (e) {
      return e instanceof GatewayError ? e.code : String(e);
    }
  };
  t.equal(run({}), 'UNSUPPORTED_MEDIA_TYPE');
  t.equal(run({ 'content-type': 'application/fhir+xml' }), undefined, 'FHIR XML (ruling 21)');
  t.equal(run({ 'content-type': 'application/xml+fhir' }), undefined, 'the legacy XML name under nhs-booking');
  t.equal(run({ 'content-type': 'application/xml' }), 'UNSUPPORTED_MEDIA_TYPE');
  t.equal(run({ 'content-type': 'application/fhir+json; charset=utf-8' }), undefined);
  t.equal(run({ 'content-type': 'application/fhir+json' }, ['content-type']), 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type sent twice');
});
