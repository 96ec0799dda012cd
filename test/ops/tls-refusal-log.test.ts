/**
 * Issue 19 item 4: a refused handshake is diagnosable from the gateway's side — one warn line per
 * refusal with the reason, the peer address and the certificate's subject, issuer, serial and
 * fingerprint; rate-limited.
 */
import t from 'tap';
import { createCa, issueCertificate } from '../../demo/certs.js';
import { createRefusalLog } from '../../src/edge/refusal-log.js';
import { createLogger } from '../../src/log.js';
import { ManualClock } from '../../src/ports/clock.js';
import { startHarness } from '../helpers/harness.js';
import { eventually, rawTls } from '../reliability/support.js';

t.test('an untrusted client certificate: one warn line naming it', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const other = createCa({ commonName: 'Some Other CA' });
  const stranger = issueCertificate(other, { commonName: 'stranger.example', kind: 'client' });
  // Let the gateway refuse (and close) the connection itself: a client that hangs up first is a
  // different refusal ("reset", no certificate seen).
  const conn = await rawTls(h.gateway.port, { cert: stranger }).catch(() => undefined);
  await conn?.closed();
  const refused = () => h.logs.find((l) => l.includes('tls handshake refused') && l.includes('"untrusted"'));
  t.ok(await eventually(() => refused() !== undefined), 'logged');
  const line = JSON.parse(refused()!);
  t.equal(line.level, 'warn');
  t.equal(line.reason, 'untrusted');
  t.match(line.peer, /127\.0\.0\.1/);
  t.equal(line.subject, 'stranger.example');
  t.equal(line.issuer, 'Some Other CA');
  t.match(line.fingerprint256, /^[0-9A-F:]{95}$/);
  t.ok(line.serial);
});

t.test('rate-limited: at most N lines a second, the rest counted', async (t) => {
  const lines: string[] = [];
  const clock = new ManualClock();
  const log = createRefusalLog(createLogger('debug', { write: (s: string) => lines.push(s) }), clock, 3);
  for (let i = 0; i < 10; i++) log('untrusted', '10.0.0.1');
  t.equal(lines.length, 3);
  clock.advance(1000);
  log('expired', '10.0.0.2');
  t.equal(lines.length, 4);
  t.equal(JSON.parse(lines[3]!).suppressedSinceLast, 7);
});
