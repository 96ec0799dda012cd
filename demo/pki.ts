import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCa, issueCertificate, type CertAuthority, type Pem } from './certs.js';

export interface WrittenPki {
  ca: CertAuthority;
  server: Pem;
  client: Pem;
  files: { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string };
}

/**
 * The one test PKI writer (issue 12 item 3) shared by the tests, bench and soak: a CA, a server
 * certificate for localhost and a client certificate, written as PEM files into `dir` (keys 0600).
 * Development and test material only.
 */
export function writeTestPki(dir: string, names: { ca: string; client: string }): WrittenPki {
  const ca = createCa({ commonName: names.ca });
  const server = issueCertificate(ca, { commonName: 'localhost', kind: 'server' });
  const client = issueCertificate(ca, { commonName: names.client, kind: 'client', dnsNames: [names.client] });
  const files = { ca: join(dir, 'ca.pem'), serverCert: join(dir, 'server.pem'), serverKey: join(dir, 'server-key.pem'), clientCert: join(dir, 'client.pem'), clientKey: join(dir, 'client-key.pem') };
  writeFileSync(files.ca, ca.cert);
  writeFileSync(files.serverCert, server.cert);
  writeFileSync(files.serverKey, server.key, { mode: 0o600 });
  writeFileSync(files.clientCert, client.cert);
  writeFileSync(files.clientKey, client.key, { mode: 0o600 });
  return { ca, server, client, files };
}
