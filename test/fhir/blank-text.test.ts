/** isBlankText (src/fhir/json.ts): what a cancellation reason or an amended text may not be. Pure. */
import t from 'tap';
import { isBlankText } from '../../src/fhir/json.js';

t.test('nothing a reader would see is blank', async (t) => {
  for (const [what, s] of <[string, string][]>[['empty', ''], ['spaces', '  \t\n'], ['no-break spaces', '\u00a0\u2007'], ['NUL', '\u0000'], ['controls', '\u0001\u007f\u0085'], ['zero-width', '\u200b\u200d\ufeff\u2060'], ['a lone surrogate', '\ud800'], ['mixed', ' \u0000\u200b '], ['variation selector, grapheme joiner', '\ufe0f\u034f'], ['Hangul fillers, braille blank', '\u3164\u115f\uffa0\u2800']]) t.ok(isBlankText(s), what);
});

t.test('any visible character is text', async (t) => {
  for (const s of ['x', ' x ', '\u0000x', '😀', 'é', 'e\u0301', '\ud83d\ude00', '\u2764\ufe0f']) t.notOk(isBlankText(s), JSON.stringify(s));
});
