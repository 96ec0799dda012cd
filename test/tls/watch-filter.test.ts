import t from 'tap';
import { concernsTlsFile } from '../../src/tls/material.js';

/** Only changes to the TLS files themselves (or a Kubernetes secret's ..data swap) reload them. */
t.test('a change in the certificate folder reloads only when it concerns the TLS files', async (t) => {
  const names = new Set(['tls.crt', 'tls.key', 'ca.crt']);
  t.equal(concernsTlsFile('tls.crt', names), true, 'the certificate itself');
  t.equal(concernsTlsFile('ca.crt', names), true, 'the client CA');
  t.equal(concernsTlsFile('..data', names), true, 'a secret volume swap');
  t.equal(concernsTlsFile('..data_tmp', names), true, 'a secret volume swap in progress');
  t.equal(concernsTlsFile(null, names), true, 'a platform that names no file');
  t.equal(concernsTlsFile('.tls.crt.swp', names), false, "an editor's swap file");
  t.equal(concernsTlsFile('gateway.log', names), false, 'a log beside the certificates');
  t.equal(concernsTlsFile(Buffer.from('tls.key'), names), true, 'a name given as bytes');
});
