/**
 * Certificate toolkit for the demo (`npm start`) and the TLS tests.
 *
 * Keys come from Node's native RSA generator (forge's pure-JS one is far too slow for tests);
 * certificates and CRLs are built and signed with node-forge. Extensions that OpenSSL relies on
 * for chain and CRL verification are always set: CA -> basicConstraints cA, keyUsage
 * keyCertSign+cRLSign, subjectKeyIdentifier; leaf -> authorityKeyIdentifier (matches the CRL's).
 */
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';

const { pki, asn1, md } = forge;

export interface Pem {
  cert: string;
  key: string;
}

export interface CertAuthority extends Pem {
  /** Parsed forms, used to sign leaf certificates and CRLs. */
  forgeCert: forge.pki.Certificate;
  forgeKey: forge.pki.rsa.PrivateKey;
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;

interface KeyPair {
  pem: string;
  priv: forge.pki.rsa.PrivateKey;
  pub: forge.pki.rsa.PublicKey;
}

function newKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const priv = pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  const pub = pki.setRsaPublicKey(priv.n, priv.e);
  return { pem, priv, pub };
}

/** 16 random bytes, first byte in 0x01..0x7f: positive and minimally DER-encoded. */
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) || 0x01;
  return b.toString('hex');
}

/** Normalise a hex serial to an even-length lowercase string (as forge writes it verbatim). */
function normaliseSerial(hex: string): string {
  let h = hex.toLowerCase().replace(/^0x/, '').replace(/[^0-9a-f]/g, '');
  if (h.length === 0) throw new Error('empty serial number');
  if (h.length % 2) h = '0' + h;
  return h;
}

/** DER INTEGER content bytes for a non-negative hex value (minimal, positive). */
function hexToDerIntegerBytes(hex: string): string {
  let h = normaliseSerial(hex);
  while (h.length > 2 && h.startsWith('00') && parseInt(h.slice(2, 4), 16) < 0x80) h = h.slice(2);
  if (parseInt(h.slice(0, 2), 16) >= 0x80) h = '00' + h;
  return forge.util.hexToBytes(h);
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function timeAsn1(d: Date): forge.asn1.Asn1 {
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

export function createCa(opts: { commonName?: string; notBefore?: Date; notAfter?: Date } = {}): CertAuthority {
  const keys = newKeyPair();
  const cert = pki.createCertificate();
  cert.publicKey = keys.pub;
  cert.serialNumber = randomSerial();
  const now = Date.now();
  cert.validity.notBefore = opts.notBefore ?? new Date(now - HOUR);
  cert.validity.notAfter = opts.notAfter ?? new Date(now + 5 * 365 * DAY);
  const attrs = [
    { name: 'commonName', value: opts.commonName ?? 'cancel-gateway demo CA' },
    { name: 'organizationName', value: 'cancel-gateway demo' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.priv, md.sha256.create());
  return { cert: pki.certificateToPem(cert), key: keys.pem, forgeCert: cert, forgeKey: keys.priv };
}

export function issueCertificate(
  ca: CertAuthority,
  opts: {
    commonName: string;
    kind: 'server' | 'client';
    dnsNames?: string[];
    ipAddresses?: string[];
    notBefore?: Date;
    notAfter?: Date;
    serialNumber?: string;
    extKeyUsage?: 'serverAuth' | 'clientAuth' | 'codeSigning';
  },
): Pem & { serialNumber: string } {
  const keys = newKeyPair();
  const cert = pki.createCertificate();
  cert.publicKey = keys.pub;
  const serialNumber = opts.serialNumber ? normaliseSerial(opts.serialNumber) : randomSerial();
  cert.serialNumber = serialNumber;
  const now = Date.now();
  cert.validity.notBefore = opts.notBefore ?? new Date(now - HOUR);
  cert.validity.notAfter = opts.notAfter ?? new Date(now + 365 * DAY);
  cert.setSubject([{ name: 'commonName', value: opts.commonName }]);
  cert.setIssuer(ca.forgeCert.subject.attributes);

  const eku = opts.extKeyUsage ?? (opts.kind === 'server' ? 'serverAuth' : 'clientAuth');
  const dnsNames = opts.dnsNames ?? (opts.kind === 'server' ? ['localhost'] : []);
  const ipAddresses = opts.ipAddresses ?? (opts.kind === 'server' ? ['127.0.0.1'] : []);
  const altNames = [
    ...dnsNames.map((value) => ({ type: 2, value })),
    ...ipAddresses.map((ip) => ({ type: 7, ip })),
  ];
  const extensions: object[] = [
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', [eku]: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.forgeCert.generateSubjectKeyIdentifier().getBytes() },
  ];
  if (altNames.length > 0) extensions.push({ name: 'subjectAltName', altNames });
  cert.setExtensions(extensions);
  cert.sign(ca.forgeKey, md.sha256.create());
  return { cert: pki.certificateToPem(cert), key: keys.pem, serialNumber };
}

/** A CRL (PEM, 'X509 CRL') signed by the CA, listing the given serial numbers as revoked. */
export function createCrl(
  ca: CertAuthority,
  revokedSerials: string[],
  opts: { thisUpdate?: Date; nextUpdate?: Date } = {},
): string {
  // node-forge has no CRL support: hand-build RFC 5280 section 5.1 TBSCertList (v2).
  const C = asn1.Class;
  const T = asn1.Type;
  const thisUpdate = opts.thisUpdate ?? new Date(Date.now() - HOUR);
  const nextUpdate = opts.nextUpdate ?? new Date(Date.now() + 30 * DAY);
  const sigAlg = () =>
    asn1.create(C.UNIVERSAL, T.SEQUENCE, true, [
      asn1.create(C.UNIVERSAL, T.OID, false, asn1.oidToDer(pki.oids['sha256WithRSAEncryption']!).getBytes()),
      asn1.create(C.UNIVERSAL, T.NULL, false, ''),
    ]);
  const integer = (hex: string) => asn1.create(C.UNIVERSAL, T.INTEGER, false, hexToDerIntegerBytes(hex));
  const extension = (oid: string, value: forge.asn1.Asn1) =>
    asn1.create(C.UNIVERSAL, T.SEQUENCE, true, [
      asn1.create(C.UNIVERSAL, T.OID, false, asn1.oidToDer(oid).getBytes()),
      asn1.create(C.UNIVERSAL, T.OCTETSTRING, false, asn1.toDer(value).getBytes()),
    ]);

  const tbsFields: forge.asn1.Asn1[] = [
    asn1.create(C.UNIVERSAL, T.INTEGER, false, asn1.integerToDer(1).getBytes()), // v2
    sigAlg(),
    pki.distinguishedNameToAsn1(ca.forgeCert.subject),
    timeAsn1(thisUpdate),
    timeAsn1(nextUpdate),
  ];
  // RFC 5280 5.1.2.6: when there are no revoked certificates the list MUST be absent.
  if (revokedSerials.length > 0) {
    tbsFields.push(
      asn1.create(
        C.UNIVERSAL,
        T.SEQUENCE,
        true,
        revokedSerials.map((s) => asn1.create(C.UNIVERSAL, T.SEQUENCE, true, [integer(s), timeAsn1(thisUpdate)])),
      ),
    );
  }
  const aki = asn1.create(C.UNIVERSAL, T.SEQUENCE, true, [
    asn1.create(C.CONTEXT_SPECIFIC, 0, false, ca.forgeCert.generateSubjectKeyIdentifier().getBytes()),
  ]);
  const crlNumber = integer(Math.floor(Date.now() / 1000).toString(16));
  tbsFields.push(
    asn1.create(C.CONTEXT_SPECIFIC, 0, true, [
      asn1.create(C.UNIVERSAL, T.SEQUENCE, true, [extension('2.5.29.35', aki), extension('2.5.29.20', crlNumber)]),
    ]),
  );
  const tbs = asn1.create(C.UNIVERSAL, T.SEQUENCE, true, tbsFields);

  const digest = md.sha256.create();
  digest.update(asn1.toDer(tbs).getBytes());
  const signature = ca.forgeKey.sign(digest);
  const certList = asn1.create(C.UNIVERSAL, T.SEQUENCE, true, [
    tbs,
    sigAlg(),
    asn1.create(C.UNIVERSAL, T.BITSTRING, false, String.fromCharCode(0) + signature),
  ]);
  return forge.pem.encode({ type: 'X509 CRL', body: asn1.toDer(certList).getBytes() }, { maxline: 64 });
}

/**
 * Dev material for `npm start`: CA, server cert (localhost/127.0.0.1), client cert, written as PEM
 * files into `dir` and reused when present and valid for 30+ more days. Returns the file paths.
 */
export function ensureDevCertificates(dir: string): {
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
} {
  const paths = {
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };
  if (devMaterialUsable(paths)) return paths;

  mkdirSync(dir, { recursive: true });
  const ca = createCa();
  const server = issueCertificate(ca, { commonName: 'localhost', kind: 'server' });
  const client = issueCertificate(ca, { commonName: 'demo-client', kind: 'client' });
  writeFileSync(paths.caCert, ca.cert);
  writeFileSync(paths.caKey, ca.key, { mode: 0o600 });
  writeFileSync(paths.serverCert, server.cert);
  writeFileSync(paths.serverKey, server.key, { mode: 0o600 });
  writeFileSync(paths.clientCert, client.cert);
  writeFileSync(paths.clientKey, client.key, { mode: 0o600 });
  return paths;
}

function devMaterialUsable(p: Record<'caCert' | 'caKey' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string>): boolean {
  if (!Object.values(p).every((f) => existsSync(f))) return false;
  try {
    const minValidTo = Date.now() + 30 * DAY;
    const ca = new X509Certificate(readFileSync(p.caCert));
    for (const [certFile, keyFile] of [
      [p.caCert, p.caKey],
      [p.serverCert, p.serverKey],
      [p.clientCert, p.clientKey],
    ] as const) {
      const cert = new X509Certificate(readFileSync(certFile));
      if (Date.parse(cert.validTo) < minValidTo || Date.parse(cert.validFrom) > Date.now()) return false;
      if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return false;
      const key = pki.privateKeyFromPem(readFileSync(keyFile, 'utf8')) as forge.pki.rsa.PrivateKey;
      const pub = pki.publicKeyFromPem(cert.publicKey.export({ type: 'spki', format: 'pem' }).toString()) as forge.pki.rsa.PublicKey;
      if (key.n.compareTo(pub.n) !== 0) return false;
    }
    return true;
  } catch {
    return false;
  }
}
