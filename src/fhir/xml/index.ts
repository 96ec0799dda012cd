/** FHIR STU3 XML codec (issue 15, ruling 21): pure, synchronous, no I/O. See docs/fhir-xml.md. */
export { decodeFhirXml, type NumberText, type XmlDecodeOptions, type XmlDecodeResult } from './decode.js';
export { encodeFhirXml, FhirXmlEncodeError } from './encode.js';
