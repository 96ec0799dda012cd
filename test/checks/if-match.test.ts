/**
 * parseIfMatch and the If-Match check (ruling 4): W/"<v>" and "<v>" are accepted; anything else is
 * malformed (400); a missing header is 412 under nhs-booking and allowed under gp-connect.
 */
import t from 'tap';
import { createIfMatchCheck, parseIfMatch } from '../../src/checks/if-match.js';
import { createContext } from '../../src/context.js';
import { GatewayError } from '../../src/errors.js';
import { STANDARDS } from '../../src/standards/index.js';

const accepted: Array<[string, string]> = [
  ['W/"1"', '1'],
  ['"1"', '1'],
  ['W/"42"', '42'],
  ['  W/"3"  ', '3'],
  ['W/"abc-1.2_x"', 'abc-1.2_x'],
  ['W/"a/b"', 'a/b'],
  ['"!#~"', '!#~'],
  [`W/"${'9'.repeat(64)}"`, '9'.repeat(64)],
];

const rejected: string[] = [
  '',
  ' ',
  '1',
  'W/1',
  'W/""',
  '""',
  '"',
  'W/"',
  'W/"1',
  '1"',
  '*',
  'w/"1"',
  'W /"1"',
  'W/ "1"',
  'W/"1" ,W/"2"',
  'W/"1", W/"2"',
  '"1""2"',
  '"1 2"',
  '"a"b"',
  '"\\"1"',
  '"1\t"',
  '"1\u0000"',
  '"\u00e9"',
  "'1'",
  '[1]',
  `W/"${'9'.repeat(65)}"`,
];

t.test('accepted forms give the version', async (t) => {
  for (const [input, version] of accepted) t.equal(parseIfMatch(input), version, JSON.stringify(input));
});

t.test('everything else is malformed', async (t) => {
  for (const input of rejected) t.equal(parseIfMatch(input), undefined, JSON.stringify(input));
});

function ctxWith(headers: Record<string, string | string[]>, repeated: string[] = []) {
  const std = STANDARDS['nhs-booking'];
  return createContext({ method: 'PUT', path: '/Appointment/a', headers, repeated: new Set(repeated) }, [std.interactions[0]!], 'a');
}

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return e instanceof GatewayError ? e.code : `not a GatewayError: ${String(e)}`;
  }
}

t.test('the check: missing, empty, malformed, duplicated, valid (nhs-booking)', async (t) => {
  const check = createIfMatchCheck(STANDARDS['nhs-booking']);
  t.equal(check.family, 'ifMatch');
  t.equal(codeOf(() => void check.run(ctxWith({}), { readBody: async () => Buffer.alloc(0) })), 'IF_MATCH_MISSING');
  // Ruling 4: only a missing header is 412; an empty one is malformed (400).
  t.equal(codeOf(() => void check.run(ctxWith({ 'if-match': '' }), { readBody: async () => Buffer.alloc(0) })), 'IF_MATCH_INVALID');
  t.equal(codeOf(() => void check.run(ctxWith({ 'if-match': 'W/1' }), { readBody: async () => Buffer.alloc(0) })), 'IF_MATCH_INVALID');
  t.equal(codeOf(() => void check.run(ctxWith({ 'if-match': ['W/"1"', 'W/"1"'] }), { readBody: async () => Buffer.alloc(0) })), 'IF_MATCH_INVALID');
  // Sent twice with the same value: Node keeps one, the raw header list shows two (ruling 4: refused).
  t.equal(codeOf(() => void check.run(ctxWith({ 'if-match': 'W/"1"' }, ['if-match']), { readBody: async () => Buffer.alloc(0) })), 'IF_MATCH_INVALID');
  const ok = ctxWith({ 'if-match': 'W/"7"' });
  t.equal(codeOf(() => void check.run(ok, { readBody: async () => Buffer.alloc(0) })), undefined);
  t.equal(ok.ifMatchVersion, '7');
  const strong = ctxWith({ 'if-match': '"8"' });
  check.run(strong, { readBody: async () => Buffer.alloc(0) });
  t.equal(strong.ifMatchVersion, '8');
});

t.test('the check: gp-connect allows a missing If-Match but not a malformed one', async (t) => {
  const check = createIfMatchCheck(STANDARDS['gp-connect']);
  const missing = ctxWith({});
  t.equal(codeOf(() => void check.run(missing, { readBody: async () => Buffer.alloc(0) })), undefined);
  t.equal(missing.ifMatchVersion, undefined);
  t.equal(codeOf(() => void check.run(ctxWith({ 'if-match': '1' }), { readBody: async () => Buffer.alloc(0) })), 'IF_MATCH_INVALID');
});
