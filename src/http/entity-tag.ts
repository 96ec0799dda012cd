/** W/"v" or "v"; v is an opaque version id without quotes or control characters (ruling 4). */
const ENTITY_TAG = /^(?:W\/)?"([\x21\x23-\x7e]{1,64})"$/;

/** The one entity-tag parser (If-Match, the provider's ETag): the version, or undefined. */
export function parseEntityTag(value: string): string | undefined {
  return ENTITY_TAG.exec(value.trim())?.[1];
}
