/**
 * Ruling 22 / issue 19 item 7: every Location the gateway returns leads to a route it serves, under
 * both standards; the version read is forwarded (and answered from the vault when the provider
 * keeps no history: see test/store/).
 */
import t from 'tap';
import { cancelRequest, identityHeaders, startHarness } from '../helpers/harness.js';

for (const standard of ['nhs-booking', 'gp-connect'] as const) {
  t.test(`${standard}: the cancel's Location is served by the gateway`, async (t) => {
    const h = await startHarness({ standard });
    t.teardown(() => h.close());
    const id = h.provider.store.ids()[0]!;
    const c = await h.request(await cancelRequest(h, standard, id));
    t.equal(c.status, 200, c.body.toString().slice(0, 200));
    const location = String(c.headers.location);
    t.ok(location.startsWith(h.config.publicBaseUrl + '/Appointment/'), location);
    const path = new URL(location).pathname;
    const r = await h.request({ method: 'GET', path, headers: identityHeaders(standard, 'read') });
    t.equal(r.status, 200, `GET ${path}`);
    t.equal(r.json.id, id);
    t.equal(r.json.status, 'cancelled');
    t.equal(r.headers.etag, c.headers.etag, 'the version the cancel created');
  });
}
