/**
 * The gateway's own read of the appointment before a cancel is a read: it carries the read
 * interaction id and, for an unsigned token, the read scope (a provider that enforces scope per
 * interaction would refuse a write scope on a read, and every cancel would become a 500). The
 * write carries the client's token exactly as sent.
 */
import t from 'tap';
import { cancelRequest, startHarness } from '../helpers/harness.js';
import { unsignedTokenWithScope } from '../../src/identity/token.js';

const claimsOf = (authorization: unknown): Record<string, unknown> =>
  JSON.parse(Buffer.from(String(authorization).split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

for (const [standard, readScope, writeScope] of [
  ['nhs-booking', 'patient/appointment.read', 'patient/appointment.write'],
  ['gp-connect', 'patient/*.read', 'patient/*.write'],
] as const) {
  t.test(`${standard}: the read before the write carries the read scope; the write the client's token`, async (t) => {
    const h = await startHarness({ standard });
    t.teardown(() => h.close());
    const id = h.provider.store.ids()[0]!;
    const req = await cancelRequest(h, standard, id);
    const from = h.provider.requests.length;
    const r = await h.request(req);
    t.equal(r.status, 200, r.body.toString().slice(0, 200));
    const seen = h.provider.requests.slice(from).filter((x) => x.url.split('?')[0] === `/Appointment/${id}`);
    const read = seen.find((x) => x.method === 'GET');
    const write = seen.find((x) => x.method === 'PUT');
    t.ok(read && write, 'one read, one write');
    const sent = String(req.headers!.Authorization ?? req.headers!.authorization);
    t.equal(write?.headers.authorization, sent, 'the write carries the token as sent');
    const readClaims = claimsOf(read?.headers.authorization);
    const sentClaims = claimsOf(sent);
    t.equal(sentClaims.requested_scope, writeScope);
    t.equal(readClaims.requested_scope, readScope, 'the read carries the read scope');
    t.same({ ...readClaims, requested_scope: undefined }, { ...sentClaims, requested_scope: undefined }, 'every other claim unchanged');
    t.match(String(read?.headers.authorization), /\.$/, 'still unsigned');
  });
}

t.test('unsignedTokenWithScope: only an unsigned token with a JSON object payload is changed', async (t) => {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const h = enc({ alg: 'none', typ: 'JWT' });
  const out = unsignedTokenWithScope(`Bearer ${h}.${enc({ iss: 'x', requested_scope: 'w', exp: 1 })}.`, 'r');
  t.equal(out, `Bearer ${h}.${enc({ iss: 'x', requested_scope: 'r', exp: 1 })}.`, 'in place, order kept');
  t.equal(unsignedTokenWithScope(`Bearer ${h}.${enc({ iss: 'x' })}.c2ln`, 'r'), undefined, 'a signed token is never changed');
  t.equal(unsignedTokenWithScope(`Bearer ${h}.${enc([1])}.`, 'r'), undefined, 'not an object');
  t.equal(unsignedTokenWithScope(`Bearer ${h}.bm90IGpzb24.`, 'r'), undefined, 'not JSON');
  t.equal(unsignedTokenWithScope('Basic abc', 'r'), undefined, 'not a bearer token');
});

t.test('unsignedTokenWithScope: the in-text replacement gives what parsing would', async (t) => {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const dec = (tok: string) => JSON.parse(Buffer.from(tok.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
  const h = enc({ alg: 'none', typ: 'JWT' });
  const payloads: Array<[string, string]> = [
    ['compact', JSON.stringify({ iss: 'x', requested_scope: 'patient/appointment.write', n: 1 })],
    ['spaced', '{ "iss" : "x", "requested_scope" :  "patient/appointment.write" , "n": 1 }'],
    ['a nested look-alike as well', JSON.stringify({ requested_scope: 'w', requesting_device: { requested_scope: 'w' } })],
    ['an escaped look-alike in a value', JSON.stringify({ note: '"requested_scope":"z"', requested_scope: 'w' })],
    ['a scope with an escape', '{"requested_scope":"a\\"b","iss":"x"}'],
  ];
  for (const [name, text] of payloads) {
    const out = unsignedTokenWithScope(`Bearer ${h}.${Buffer.from(text).toString('base64url')}.`, 'patient/appointment.read');
    t.ok(out, name);
    const want = { ...(JSON.parse(text) as Record<string, unknown>), requested_scope: 'patient/appointment.read' };
    t.same(dec(out!), want, `${name}: every claim as parsing would leave it`);
  }
});
