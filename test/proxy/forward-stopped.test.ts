/**
 * Past the shutdown deadline (abortInFlight) no new provider exchange starts: a passthrough still in
 * its checks then is refused, nothing sent (review of stop 33's left-alone list).
 */
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { createForwarder } from '../../src/proxy/forward.js';
import { createUpstream } from '../../src/proxy/upstream.js';
import { STANDARDS } from '../../src/standards/index.js';

t.test('a forward asked for after abortInFlight is refused without contacting the provider', async (t) => {
  let seen = 0;
  const server = http.createServer((req, res) => {
    seen++;
    req.resume();
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const config = buildConfig({
    publicBaseUrl: 'https://gw.example/STU3/1', tls: { cert: '/x', key: '/x', clientCa: '/x' },
    upstream: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, spine: { providerAsids: ['1'] },
  }, { checkFiles: false });
  const forwarder = createForwarder(config, STANDARDS['nhs-booking'], createUpstream(config), { logger: createLogger('error', { write: () => {} }), metrics: createMetrics() });
  t.teardown(() => forwarder.close());
  forwarder.abortInFlight();
  const req = Object.assign(new http.IncomingMessage(null as never), { method: 'GET', url: '/STU3/1/Appointment/a1', headers: {} });
  const res = new http.ServerResponse(req);
  await t.rejects(forwarder.forward(req, res, {} as never, undefined, undefined, undefined), { code: 'UPSTREAM_UNAVAILABLE', message: /shutting down: nothing was forwarded/ });
  t.equal(seen, 0, 'the provider saw nothing');
});
