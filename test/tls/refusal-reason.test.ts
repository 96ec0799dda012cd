/** certificateFailureReason (src/edge/tls-listener.ts): the metric label of a refused client certificate. Pure. */
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { caCertificates, certificateFailureReason } from '../../src/edge/tls-listener.js';
import { createCa, issueCertificate } from '../../demo/certs.js';

t.test('UNABLE_TO_GET_CRL for a certificate no configured CA issued is untrusted, not crl (review of stop 34)', async (t) => {
  const ca1 = createCa({ commonName: 'Spine CA 1' });
  const ca2 = createCa({ commonName: 'Spine CA 2' });
  const fromCa1 = issueCertificate(ca1, { commonName: 'load-b', kind: 'client' });
  const peer = (pem: string) => {
    const x = new X509Certificate(pem);
    return { subject: { CN: 'load-b' }, issuer: { CN: x.issuer.replace(/^CN=/, '') }, raw: x.raw };
  };
  t.equal(certificateFailureReason('UNABLE_TO_GET_CRL', peer(fromCa1.cert), caCertificates(ca2.cert)), 'untrusted', 'its CA was rotated away');
  t.equal(certificateFailureReason('UNABLE_TO_GET_CRL', peer(fromCa1.cert), caCertificates([ca2.cert, ca1.cert])), 'crl', 'its CA is configured: the CRL is missing');
  t.equal(certificateFailureReason('UNABLE_TO_GET_CRL', peer(fromCa1.cert)), 'crl', 'no CA list: as before');
  t.equal(caCertificates('garbage').length, 0);
});
