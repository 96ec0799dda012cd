/** refusalHeadersOf (src/cancel/answer.ts): the provider headers its error status cannot go without. Pure. */
import t from 'tap';
import { refusalHeadersOf } from '../../src/cancel/answer.js';

t.test('401 keeps WWW-Authenticate, 405 keeps Allow, any status its Retry-After (RFC 9110 §11.6.1, §15.5.6)', async (t) => {
  t.same(refusalHeadersOf(401, { 'www-authenticate': 'Bearer realm="fhir"' }), { 'www-authenticate': 'Bearer realm="fhir"' });
  t.same(refusalHeadersOf(401, { 'www-authenticate': ['Basic', 'Bearer'] } as never), { 'www-authenticate': 'Basic, Bearer' }, 'several challenges: all of them, as one list');
  t.same(refusalHeadersOf(405, { allow: 'GET, PUT' }), { allow: 'GET, PUT' });
  t.same(refusalHeadersOf(405, { allow: '' }), { allow: '' }, 'an empty Allow says "no method": kept');
  t.same(refusalHeadersOf(503, { 'retry-after': '7', allow: 'GET' }), { 'retry-after': '7' }, 'Allow only with a 405');
  t.equal(refusalHeadersOf(401, {}), undefined, 'none sent: none');
  t.equal(refusalHeadersOf(401, { 'www-authenticate': 'Bearer caf\u00e9' }), undefined, 'not ASCII: not passed');
});
