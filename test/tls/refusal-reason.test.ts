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
  // The chain the client sent is walked: a link issued by a configured CA (an intermediate under it) makes it the CRL's doing.
  const fromCa2 = issueCertificate(ca2, { commonName: 'leaf', kind: 'client' });
  const leaf = { ...peer(fromCa2.cert), issuerCertificate: { raw: new X509Certificate(fromCa1.cert).raw } };
  t.equal(certificateFailureReason('UNABLE_TO_GET_CRL', leaf, caCertificates(ca1.cert)), 'crl', 'a link of its chain is issued by a configured CA');
  t.equal(certificateFailureReason('UNABLE_TO_GET_CRL', leaf, caCertificates(createCa({ commonName: 'Other' }).cert)), 'untrusted', 'no link is');
  t.equal(caCertificates('garbage').length, 0);
});
