import { constants, verify, type KeyObject } from 'node:crypto';
import { children, expect, isTime, oid, readTlv, time, TAG, type Tlv } from './der.js';

/**
 * A CRL as the gateway needs to see it (RFC 5280 section 5.1): who issued it, its dates, and
 * enough to check its signature. OpenSSL reads CRLs for the handshake but Node exposes nothing of
 * them, so without this an expired or foreign CRL is found only when every client is refused.
 */
export interface ParsedCrl {
  /** DER of the issuer Name, compared byte for byte with a CA's subject (as OpenSSL matches). */
  issuerDer: Buffer;
  thisUpdate: number;
  /** Absent in a CRL that never says when the next one comes (allowed, though RFC 5280 requires it of CAs). */
  nextUpdate?: number;
  revokedCount: number;
  tbs: Buffer;
  signatureAlgorithm: string;
  signatureParams?: Tlv;
  signature: Buffer;
}

const CRL_BLOCK = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/g;

/** Every `X509 CRL` block of a PEM text, as DER. */
export function crlBlocks(pem: string): Buffer[] {
  return [...pem.matchAll(CRL_BLOCK)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

export function parseCrl(der: Buffer): ParsedCrl {
  const outer = expect(readTlv(der), TAG.SEQUENCE, 'CertificateList');
  if (outer.der.length !== der.length) throw new Error('DER: trailing bytes after the CRL');
  const [tbsT, algT, sigT] = children(outer);
  const tbs = expect(tbsT, TAG.SEQUENCE, 'tbsCertList');
  const alg = children(expect(algT, TAG.SEQUENCE, 'signatureAlgorithm'));
  const sig = expect(sigT, TAG.BIT_STRING, 'signatureValue');
  const f = children(tbs);
  let i = 0;
  if (f[i]?.tag === TAG.INTEGER) i++; // version (v2)
  expect(f[i++], TAG.SEQUENCE, 'tbsCertList.signature');
  const issuer = expect(f[i++], TAG.SEQUENCE, 'issuer');
  const thisT = f[i++];
  if (!isTime(thisT)) throw new Error('DER: thisUpdate missing');
  const nextT = isTime(f[i]) ? f[i++] : undefined;
  const revoked = f[i]?.tag === TAG.SEQUENCE ? children(f[i++]!).length : 0;
  return {
    issuerDer: issuer.der,
    thisUpdate: time(thisT),
    ...(nextT ? { nextUpdate: time(nextT) } : {}),
    revokedCount: revoked,
    tbs: tbs.der,
    signatureAlgorithm: oid(expect(alg[0], TAG.OID, 'signature algorithm')),
    ...(alg[1] && alg[1].tag !== TAG.NULL ? { signatureParams: alg[1] } : {}),
    // The first content octet of a BIT STRING counts unused bits (0 for a signature).
    signature: sig.content.subarray(1),
  };
}

/** DER of a certificate's subject Name (tbsCertificate: [0] version, serial, sig, issuer, validity, subject). */
export function certificateSubjectDer(certDer: Buffer): Buffer {
  const tbs = children(expect(readTlv(certDer), TAG.SEQUENCE, 'Certificate'))[0];
  const f = children(expect(tbs, TAG.SEQUENCE, 'tbsCertificate'));
  const start = f[0]?.tag === 0xa0 ? 1 : 0;
  return expect(f[start + 4], TAG.SEQUENCE, 'subject').der;
}

const HASH_OF: Record<string, string | null> = {
  '1.2.840.113549.1.1.5': 'sha1', '1.2.840.113549.1.1.14': 'sha224', '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384', '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.1': 'sha224', '1.2.840.10045.4.3.2': 'sha256', '1.2.840.10045.4.3.3': 'sha384', '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null, '1.3.101.113': null, // Ed25519, Ed448: no separate hash
};
const DIGEST_OID: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1', '2.16.840.1.101.3.4.2.4': 'sha224', '2.16.840.1.101.3.4.2.1': 'sha256', '2.16.840.1.101.3.4.2.2': 'sha384', '2.16.840.1.101.3.4.2.3': 'sha512',
};
const RSA_PSS = '1.2.840.113549.1.1.10';

/** RSASSA-PSS parameters (RFC 4055): [0] hash (default SHA-1), [2] salt length (default 20). */
function pssParams(p: Tlv | undefined): { hash: string; saltLength: number } {
  let hash = 'sha1';
  let saltLength = 20;
  for (const c of p ? children(p) : []) {
    if (c.tag === 0xa0) hash = DIGEST_OID[oid(children(children(c)[0]!)[0]!)] ?? 'unknown';
    if (c.tag === 0xa2) saltLength = children(c)[0]!.content.readUIntBE(0, children(c)[0]!.content.length);
  }
  return { hash, saltLength };
}

/**
 * Whether `key` signed the CRL; `undefined` when the algorithm is one this check does not know
 * (OpenSSL may still accept it at the handshake).
 */
export function crlSignedBy(crl: ParsedCrl, key: KeyObject): boolean | undefined {
  try {
    if (crl.signatureAlgorithm === RSA_PSS) {
      const { hash, saltLength } = pssParams(crl.signatureParams);
      if (hash === 'unknown') return undefined;
      return verify(hash, crl.tbs, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, crl.signature);
    }
    if (!(crl.signatureAlgorithm in HASH_OF)) return undefined;
    return verify(HASH_OF[crl.signatureAlgorithm] ?? null, crl.tbs, key, crl.signature);
  } catch {
    // A key of another type (an EC key against an RSA signature) cannot have signed it.
    return false;
  }
}
