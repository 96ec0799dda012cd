import t from 'tap';
import { acceptFromFormatParam, codecFor, formatParam, negotiate } from '../../src/edge/negotiate.js';
import { isAcceptedCancelQuery } from '../../src/checks/media-type.js';
import { jsonCodec } from '../../src/adapters/codec-json.js';
import { xmlCodec } from '../../src/adapters/codec-xml.js';

t.test('codecFor: by media type, parameters and case ignored, JSON when absent or unknown; the same answer when remembered', async (t) => {
  const codecs = [jsonCodec, xmlCodec];
  const cases: Array<[unknown, string]> = [
    ['application/fhir+xml', 'xml'], ['Application/FHIR+XML; charset=utf-8', 'xml'], ['application/xml+fhir', 'xml'],
    ['application/fhir+json', 'json'], ['application/json;charset=utf-8', 'json'], ['text/plain', 'json'],
    ['text/xml', 'xml'], ['text/xml; charset=UTF-8', 'xml'],
    [undefined, 'json'], ['', 'json'], [['application/fhir+xml'], 'xml'],
  ];
  for (let round = 0; round < 2; round++) {
    for (const [ct, format] of cases) t.equal(codecFor(ct, codecs).format, format, `${JSON.stringify(ct)} (round ${round + 1})`);
  }
  // A client may send any number of distinct values: answers stay right beyond what is remembered.
  for (let i = 0; i < 200; i++) t.equal(codecFor(`application/fhir+xml; x=${i}`, codecs).format, 'xml');
  t.equal(codecFor('application/fhir+json; x=199', codecs).format, 'json');
  t.equal(codecFor('application/fhir+xml', [jsonCodec]).format, 'json', 'another codec list has its own answers');
});

t.test('_format: a literal + (form-decoded to a space) still names the media type; said to the provider as Accept', async (t) => {
  t.equal(formatParam('_format=application/fhir+xml'), 'xml');
  t.equal(formatParam('_format=application%2Bfhir%2Bxml'.replace('application%2B', 'application/')), 'xml');
  t.equal(formatParam('_format=application/fhir+json'), 'json');
  t.equal(formatParam('_format=application/fhir++xml'), undefined);
  t.ok(isAcceptedCancelQuery('_format=application/fhir+xml'), 'accepted on a cancel');
  // Two `_format`s naming different formats: first-wins and last-wins readers disagree, so refused.
  t.notOk(isAcceptedCancelQuery('_format=json&_format=xml'), 'json then xml: refused');
  t.notOk(isAcceptedCancelQuery('_format=application/fhir+xml&_format=json'), 'xml then json: refused');
  t.ok(isAcceptedCancelQuery('_format=json&_format=application/fhir+json'), 'the same format twice: accepted');
  const h: Record<string, string> = { accept: 'application/fhir+json' };
  acceptFromFormatParam('_format=xml', h, [jsonCodec, xmlCodec]);
  t.equal(h.accept, 'application/fhir+xml', '_format beats Accept');
  const none: Record<string, string> = { accept: 'application/fhir+json' };
  acceptFromFormatParam('', none, [jsonCodec, xmlCodec]);
  t.equal(none.accept, 'application/fhir+json', 'no _format: Accept as sent');
});

const XML = 'application/fhir+xml';
/** The format negotiate() chooses for a query, an Accept and (optionally) a Content-Type. */
const format = (query: string, accept: string, contentType?: string) => negotiate(query, accept, contentType, [jsonCodec, xmlCodec]).format;

t.test('ruling 21 with RFC 9110 §12.4.2: a format refused by q=0 is never the fall-back', async (t) => {
  t.equal(format('', 'application/fhir+xml;q=0', XML), 'json', 'XML refused: not taken from Content-Type');
  t.equal(format('', 'application/fhir+xml;Q=0', XML), 'json', 'Q in upper case is the same parameter');
  t.equal(format('', 'application/fhir+json;q=0'), 'xml', 'JSON refused, nothing else said: XML');
  t.equal(format('', 'application/fhir+json;q=0, application/fhir+xml;q=0'), 'json', 'both refused: JSON');
  t.equal(format('', 'application/fhir+xml;q=0.5'), 'xml', 'a low quality is still acceptable');
  t.equal(format('_format=xml', 'application/fhir+xml;q=0'), 'xml', '_format beats Accept');
  t.equal(format('', 'text/html', XML), 'xml', 'nothing FHIR in Accept: Content-Type');
});

t.test('Accept weights as RFC 9110 writes them: spaces around =, at most three decimals, malformed ones say nothing', async (t) => {
  t.equal(format('', 'application/fhir+xml; q = 0', XML), 'json', 'q = 0 refuses');
  t.equal(format('', 'application/fhir+xml;q=0.000', XML), 'json', '0.000 refuses');
  for (const bad of ['q=', 'q=0x0', 'q=0e0', 'q=-0', 'q=0x1', 'q=1.5', 'q=0.0001']) {
    t.equal(format('', `application/fhir+json;${bad}`, XML), 'xml', `${bad}: ignored (Content-Type decides)`);
  }
  t.equal(format('', 'application/fhir+json;q=0.5, application/fhir+xml;q=0.8'), 'xml', 'the higher weight');
});
