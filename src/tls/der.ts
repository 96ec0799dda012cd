/**
 * The little DER (X.690) reading that node:crypto does not offer: Node parses certificates but not
 * CRLs, and check-config must see a CRL's issuer, dates and signature (issue 19). Only what
 * RFC 5280 CRLs and certificates use: definite lengths, tags below 31.
 */

export interface Tlv {
  /** Identifier octet: class, constructed bit and tag number. */
  tag: number;
  /** The whole element (identifier, length, content). */
  der: Buffer;
  /** The content octets. */
  content: Buffer;
}

/** Read the element starting at `offset`; throws on anything truncated or not DER. */
export function readTlv(buf: Buffer, offset = 0): Tlv {
  if (offset + 2 > buf.length) throw new Error('DER: truncated element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('DER: high tag numbers are not used here');
  let len = buf[offset + 1]!;
  let head = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // 0x80 is BER's indefinite length; more than 4 length octets is nothing a CRL needs.
    if (n === 0 || n > 4) throw new Error('DER: unsupported length form');
    if (offset + 2 + n > buf.length) throw new Error('DER: truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!;
    head += n;
  }
  const end = offset + head + len;
  if (end > buf.length) throw new Error('DER: element runs past its container');
  return { tag, der: buf.subarray(offset, end), content: buf.subarray(offset + head, end) };
}

/** The elements inside a constructed element's content. */
export function children(t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let at = 0;
  while (at < t.content.length) {
    const c = readTlv(t.content, at);
    out.push(c);
    at += c.der.length;
  }
  return out;
}

export const TAG = { INTEGER: 0x02, BIT_STRING: 0x03, NULL: 0x05, OID: 0x06, SEQUENCE: 0x30, SET: 0x31, UTC_TIME: 0x17, GENERALIZED_TIME: 0x18 } as const;

export function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new Error(`DER: ${what} missing or of the wrong type`);
  return t;
}

/** Dotted form of an OBJECT IDENTIFIER's content. */
export function oid(t: Tlv): string {
  const b = t.content;
  if (!b.length) throw new Error('DER: empty OID');
  const parts: number[] = [];
  let v = 0;
  for (const byte of b) {
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  const first = parts.shift()!;
  const a = first < 80 ? Math.floor(first / 40) : 2;
  return [a, first - a * 40, ...parts].join('.');
}

/** UTCTime / GeneralizedTime (RFC 5280 4.1.2.5: Zulu, seconds present) -> ms since the epoch. */
export function time(t: Tlv): number {
  const s = t.content.toString('latin1');
  const m = t.tag === TAG.UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new Error(`DER: not an RFC 5280 time: ${JSON.stringify(s)}`);
  let year = Number(m[1]);
  if (t.tag === TAG.UTC_TIME) year += year >= 50 ? 1900 : 2000;
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

export function isTime(t: Tlv | undefined): t is Tlv {
  return t !== undefined && (t.tag === TAG.UTC_TIME || t.tag === TAG.GENERALIZED_TIME);
}
