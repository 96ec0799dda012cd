import { decodeFhirXml, encodeFhirXml } from '../fhir/xml/index.js';
import type { Codec } from '../ports/codec.js';

/**
 * FHIR XML (ruling 21). application/xml+fhir is the STU3-era legacy name NHS Booking still sends;
 * whether a standard accepts it is the media-type check's decision, not the codec's.
 * encode throws FhirXmlEncodeError for a model FHIR XML cannot express (never for an
 * OperationOutcome the gateway builds).
 */
export const xmlCodec: Codec = Object.freeze({
  format: 'xml' as const,
  mediaTypes: Object.freeze(['application/fhir+xml', 'application/xml+fhir', 'application/xml', 'text/xml']),
  contentType: 'application/fhir+xml; charset=utf-8',
  decode: (bytes: Buffer, limits: { maxDepth: number; maxNodes: number }) => decodeFhirXml(bytes, limits),
  encode: (resource: Record<string, unknown>) => Buffer.from(encodeFhirXml(resource), 'utf8'),
});
