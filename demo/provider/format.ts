/**
 * Wire formats for the demo provider (issue 15): it reads and writes FHIR JSON and FHIR XML like a
 * real STU3 server. The answer's format: `_format`, then `Accept`, then the request's own
 * Content-Type (an XML PUT is answered in XML), else JSON.
 */
import { decodeFhirXml, encodeFhirXml } from '../../src/fhir/xml/index.js';

export type WireFormat = 'json' | 'xml';

const XML_TYPES = new Set(['application/fhir+xml', 'application/xml+fhir', 'application/xml', 'text/xml']);
const JSON_TYPES = new Set(['application/fhir+json', 'application/json+fhir', 'application/json', 'text/json']);
const FORMAT_WORDS: Record<string, WireFormat> = { xml: 'xml', json: 'json' };

export const CONTENT_TYPE: Record<WireFormat, string> = {
  json: 'application/fhir+json;charset=utf-8',
  xml: 'application/fhir+xml;charset=utf-8',
};

/** The bounds an XML body is read under (the same defaults as the gateway's JSON depth). */
const XML_LIMITS = { maxDepth: 64, maxNodes: 100_000 };

function mediaFormat(value: string): WireFormat | undefined {
  // An unencoded `+` in a query (_format=application/fhir+xml) arrives as a space.
  const type = value.split(';')[0]!.trim().toLowerCase().replace(/ /g, '+');
  return XML_TYPES.has(type) ? 'xml' : JSON_TYPES.has(type) ? 'json' : FORMAT_WORDS[type];
}

/** The format of a request body, from its Content-Type (JSON when absent or unknown, as before). */
export function bodyFormat(contentType: string | undefined): WireFormat {
  return contentType !== undefined && mediaFormat(contentType) === 'xml' ? 'xml' : 'json';
}

function acceptFormat(accept: string): WireFormat | undefined {
  // Highest q first; among equals, the order written. q=0 means "not this".
  const ranges = accept.split(',').map((part, i) => {
    const [type, ...params] = part.split(';');
    const q = params.map((p) => /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p)).find((m) => m)?.[1];
    return { format: mediaFormat(type ?? ''), q: q === undefined ? 1 : Number(q), i };
  });
  ranges.sort((a, b) => b.q - a.q || a.i - b.i);
  return ranges.find((r) => r.format !== undefined && r.q > 0)?.format;
}

export function answerFormat(url: string, headers: { accept?: string | undefined; 'content-type'?: string | undefined }): WireFormat {
  const query = url.includes('?') ? new URLSearchParams(url.slice(url.indexOf('?') + 1)) : undefined;
  const asked = query?.get('_format');
  if (asked) {
    const f = mediaFormat(asked);
    if (f) return f;
  }
  const fromAccept = headers.accept ? acceptFormat(headers.accept) : undefined;
  if (fromAccept) return fromAccept;
  return headers['content-type'] !== undefined && mediaFormat(headers['content-type']) === 'xml' ? 'xml' : 'json';
}

/** Body bytes -> resource, in the request's format. */
export function decodeBody(body: Buffer, format: WireFormat): { ok: true; value: unknown } | { ok: false; reason: string } {
  if (format === 'xml') {
    const d = decodeFhirXml(body, XML_LIMITS);
    return d.ok ? { ok: true, value: d.resource } : { ok: false, reason: d.diagnostics };
  }
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) as unknown };
  } catch {
    return { ok: false, reason: 'Body is not JSON' };
  }
}

/** Resource -> bytes; throws FhirXmlEncodeError for a stored resource FHIR XML cannot express. */
export function encodeBody(resource: unknown, format: WireFormat): Buffer {
  return Buffer.from(format === 'xml' ? encodeFhirXml(resource as Record<string, unknown>) : JSON.stringify(resource), 'utf8');
}
