export type DecodeResult = { ok: true; resource: Record<string, unknown> } | { ok: false; diagnostics: string };
/** Bytes <-> FHIR resource in one wire format, under limits. Pure, synchronous, no I/O. */
export interface Codec {
  readonly format: 'json' | 'xml';
  /** Media types this codec reads (lower-case, no parameters), e.g. application/fhir+json. */
  readonly mediaTypes: readonly string[];
  /** The media type written, with charset, e.g. 'application/fhir+json; charset=utf-8'. */
  readonly contentType: string;
  decode(bytes: Buffer, limits: { maxDepth: number; maxNodes: number }): DecodeResult;
  encode(resource: Record<string, unknown>): Buffer;
}
