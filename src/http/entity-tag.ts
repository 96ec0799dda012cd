/** W/"v" or "v"; v is an opaque version id without quotes or control characters (ruling 4). */
const ENTITY_TAG = /^(?:W\/)?"([\x21\x23-\x7e]{1,64})"$/;

/** The one entity-tag parser (If-Match, the provider's ETag): the version, or undefined. */
export function parseEntityTag(value: string): string | undefined {
  return ENTITY_TAG.exec(value.trim())?.[1];
}

/**
 * A `meta.versionId` as an ETag may carry it: a FHIR id (`[A-Za-z0-9.-]{1,64}`), else undefined. A
 * provider's body may hold anything there; a quote or a line break would make the ETag the gateway
 * adds malformed, or a header Node refuses to write after the provider accepted the write.
 */
export function versionIdOf(meta: unknown): string | undefined {
  const v = (meta as { versionId?: unknown } | undefined)?.versionId;
  return typeof v === 'string' && /^[A-Za-z0-9.-]{1,64}$/.test(v) ? v : undefined;
}
