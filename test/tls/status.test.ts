/**
 * What the served TLS material says about itself: an expired server certificate is said at load
 * (start-up or a reload that could not keep a valid one), not only by readiness (fourteenth review:
 * the gateway logged "ready" on an expired certificate without a word).
 */
import t from 'tap';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { ManualClock } from '../../src/ports/clock.js';
import { createTlsStatus, serverValidFrom } from '../../src/tls/status.js';
import type { TlsMaterial } from '../../src/tls/material.js';

const material = (notAfter: number): TlsMaterial => ({ certificates: [{ role: 'server', subject: 'CN=localhost', notAfter }], crls: [] }) as unknown as TlsMaterial;

t.test('an expired server certificate is logged as an error at load, and readiness reports it', async (t) => {
  const clock = new ManualClock();
  const lines: string[] = [];
  const logger = createLogger('info', { write: (s: string) => lines.push(s) });
  const status = createTlsStatus(material(clock.now() - 1000), { metrics: createMetrics(), logger, clock, crlWarningHours: 24 });
  t.notOk(status.serving());
  t.ok(lines.some((l) => l.includes('"level":"error"') && l.includes('the server certificate has expired')), 'said at load');
  const count = lines.length;
  status.update(material(clock.now() + 86400_000));
  t.ok(status.serving());
  t.equal(lines.filter((l) => l.includes('has expired')).length, lines.slice(0, count).filter((l) => l.includes('has expired')).length, 'a valid one says nothing');
});

t.test('a server certificate not valid yet is not serving, and is said at load', async (t) => {
  const clock = new ManualClock();
  const lines: string[] = [];
  const logger = createLogger('info', { write: (s: string) => lines.push(s) });
  const future = { certificates: [{ role: 'server', subject: 'CN=localhost', notBefore: clock.now() + 60_000, notAfter: clock.now() + 86400_000 }], crls: [] } as unknown as TlsMaterial;
  const status = createTlsStatus(future, { metrics: createMetrics(), logger, clock, crlWarningHours: 24 });
  t.notOk(status.serving(), 'clients would refuse it');
  t.ok(lines.some((l) => l.includes('"level":"error"') && l.includes('not valid yet')), 'said at load');
  t.equal(serverValidFrom(future, clock.now()), clock.now() + 60_000, 'and when it becomes valid');
  clock.advance(60_000);
  t.ok(status.serving(), 'valid from its notBefore');
  t.equal(serverValidFrom(future, clock.now()), undefined);
});
