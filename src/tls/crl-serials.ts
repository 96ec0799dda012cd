/**
 * The serial numbers a PEM CRL revokes (issue 13 item 7): just enough DER to walk
 * CertificateList -> tbsCertList -> revokedCertificates (RFC 5280 §5.1). OpenSSL still does the
 * real verification at the handshake; this only tells which OPEN connections a reloaded CRL now
 * refuses. Anything unexpected throws (the caller keeps the connections and logs it).
 */

interface Node { tag: number; start: number; end: number; next: number }

function read(der: Buffer, at: number): Node {
  const tag = der[at]!;
  let len = der[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('CRL: unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  const end = start + len;
  if (end > der.length) throw new Error('CRL: truncated DER');
  return { tag, start, end, next: end };
}

function children(der: Buffer, parent: Node): Node[] {
  const out: Node[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const c = read(der, at);
    out.push(c);
    at = c.next;
  }
  return out;
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;

/** Upper-case hex without leading zeros: the form both sides are compared in. */
export function normaliseSerial(hex: string): string {
  return hex.replace(/[^0-9a-fA-F]/g, '').toUpperCase().replace(/^0+(?=.)/, '');
}

export function revokedSerials(pem: string): Set<string> {
  const serials = new Set<string>();
  for (const block of pem.match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g) ?? []) {
    const der = Buffer.from(block.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    const list = read(der, 0);
    const tbs = children(der, list)[0];
    if (list.tag !== SEQUENCE || tbs?.tag !== SEQUENCE) throw new Error('CRL: not a CertificateList');
    // version?, signature, issuer, thisUpdate, nextUpdate?, revokedCertificates?, [0] extensions?
    // The revoked list is the only SEQUENCE after the issuer whose items are SEQUENCEs led by an INTEGER.
    const fields = children(der, tbs);
    const afterIssuer = fields.slice(fields[0]?.tag === INTEGER ? 3 : 2);
    for (const f of afterIssuer) {
      if (f.tag !== SEQUENCE) continue;
      for (const entry of children(der, f)) {
        const serial = children(der, entry)[0];
        if (entry.tag !== SEQUENCE || serial?.tag !== INTEGER) throw new Error('CRL: malformed revoked entry');
        serials.add(normaliseSerial(der.subarray(serial.start, serial.end).toString('hex')));
      }
    }
  }
  return serials;
}
