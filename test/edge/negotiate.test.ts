import t from 'tap';
import { acceptFromFormatParam, codecFor, formatParam } from '../../src/edge/negotiate.js';
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
  const h: Record<string, string> = { accept: 'application/fhir+json' };
  acceptFromFormatParam('_format=xml', h, [jsonCodec, xmlCodec]);
  t.equal(h.accept, 'application/fhir+xml', '_format beats Accept');
  const none: Record<string, string> = { accept: 'application/fhir+json' };
  acceptFromFormatParam('', none, [jsonCodec, xmlCodec]);
  t.equal(none.accept, 'application/fhir+json', 'no _format: Accept as sent');
});

t.test('ruling 21 with RFC 9110 §12.4.2: a format refused by q=0 is never the fall-back', async (t) => {
  const { negotiate } = await import('../../src/edge/negotiate.js');
  const codecs = [jsonCodec, xmlCodec];
  const XML = 'application/fhir+xml';
  t.equal(negotiate('', 'application/fhir+xml;q=0', XML, codecs).format, 'json', 'XML refused: not taken from Content-Type');
  t.equal(negotiate('', 'application/fhir+xml;Q=0', XML, codecs).format, 'json', 'Q in upper case is the same parameter');
  t.equal(negotiate('', 'application/fhir+json;q=0', undefined, codecs).format, 'xml', 'JSON refused, nothing else said: XML');
  t.equal(negotiate('', 'application/fhir+json;q=0, application/fhir+xml;q=0', undefined, codecs).format, 'json', 'both refused: JSON');
  t.equal(negotiate('', 'application/fhir+xml;q=0.5', undefined, codecs).format, 'xml', 'a low quality is still acceptable');
  t.equal(negotiate('_format=xml', 'application/fhir+xml;q=0', undefined, codecs).format, 'xml', '_format beats Accept');
  t.equal(negotiate('', 'text/html', XML, codecs).format, 'xml', 'nothing FHIR in Accept: Content-Type');
});

t.test('Accept weights as RFC 9110 writes them: spaces around =, at most three decimals, malformed ones say nothing', async (t) => {
  const { negotiate } = await import('../../src/edge/negotiate.js');
  const codecs = [jsonCodec, xmlCodec];
  const XML = 'application/fhir+xml';
  t.equal(negotiate('', 'application/fhir+xml; q = 0', XML, codecs).format, 'json', 'q = 0 refuses');
  t.equal(negotiate('', 'application/fhir+xml;q=0.000', XML, codecs).format, 'json', '0.000 refuses');
  for (const bad of ['q=', 'q=0x0', 'q=0e0', 'q=-0', 'q=0x1', 'q=1.5', 'q=0.0001']) {
    t.equal(negotiate('', `application/fhir+json;${bad}`, XML, codecs).format, 'xml', `${bad}: ignored (Content-Type decides)`);
  }
  t.equal(negotiate('', 'application/fhir+json;q=0.5, application/fhir+xml;q=0.8', undefined, codecs).format, 'xml', 'the higher weight');
});
