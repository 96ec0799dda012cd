import t from 'tap';
import { clientEtag, isEntityTag, parseEntityTag, providerEtagVersion } from '../../src/http/entity-tag.js';

t.test('the entity-tag forms (If-Match and the provider ETag)', async (t) => {
  for (const [v, want] of [['W/"5"', '5'], ['"5"', '5'], [' W/"a.b-1" ', 'a.b-1'], ['5', undefined], ['W/""', undefined], ['*', undefined], [`"${'x'.repeat(65)}"`, undefined]] as const) {
    t.equal(parseEntityTag(v), want, JSON.stringify(v));
    t.equal(isEntityTag(v), want !== undefined);
  }
});

t.test("ruling 8: the version a provider's ETag names — quoted, bare, none, or none that can be told", async (t) => {
  const cases: Array<[string | string[] | undefined, string | null | undefined]> = [
    ['W/"5"', '5'], ['"7"', '7'], ['5', '5'], [' 12 ', '12'], [['W/"3"'], '3'],
    [undefined, undefined], ['', undefined], ['  ', undefined],
    ['*', null], ['W/""', null], ['garbage!', null], ['W/5', null], [`${'9'.repeat(65)}`, null],
  ];
  for (const [etag, want] of cases) t.equal(providerEtagVersion(etag), want, JSON.stringify(etag));
});

t.test('rulings 12 and 13: the ETag a client is given', async (t) => {
  t.equal(clientEtag('W/"5"', '3'), 'W/"5"', "the provider's own entity tag, untouched");
  t.equal(clientEtag('"5"', undefined), '"5"', 'a strong one too');
  t.equal(clientEtag('5', '3'), 'W/"5"', 'a bare version is written as an entity tag');
  for (const bad of ['', '*', 'W/""', 'garbage!', undefined]) t.equal(clientEtag(bad, '3'), 'W/"3"', `${JSON.stringify(bad)}: made from the body's version`);
  t.equal(clientEtag('*', undefined), undefined, 'nothing to make it from: none');
});
