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
  return typeof v === 'string' && FHIR_ID.test(v) ? v : undefined;
}

const FHIR_ID = /^[A-Za-z0-9.-]{1,64}$/;

/**
 * The version a provider's `ETag` names (ruling 8: the ETag first, else meta.versionId): the
 * entity-tag form, or — legacy providers leave the quotes off — a bare FHIR id (`ETag: 5`).
 * `undefined` when there is no ETag (absent or blank); `null` when there is one that names no
 * version this gateway can tell (the caller fails closed rather than guess from the body).
 */
export function providerEtagVersion(value: string | string[] | undefined): string | null | undefined {
  if (value === undefined) return undefined;
  const v = (Array.isArray(value) ? value[0] ?? '' : value).trim();
  if (v === '') return undefined;
  const tagged = parseEntityTag(v);
  if (tagged !== undefined) return tagged;
  return FHIR_ID.test(v) ? v : null;
}

/** Whether a provider's ETag header is already an entity tag the client can send back as If-Match. */
export function isEntityTag(value: unknown): boolean {
  return typeof value === 'string' && parseEntityTag(value) !== undefined;
}

/**
 * The ETag a client is given for a provider answer (rulings 12 and 13): the provider's own when it
 * is an entity tag; a bare id written W/"5"; otherwise (absent, blank, `*`, garbage) made from the
 * body's version, or none.
 */
export function clientEtag(providerEtag: string | string[] | undefined, bodyVersion: string | undefined): string | undefined {
  const raw = Array.isArray(providerEtag) ? providerEtag[0] : providerEtag;
  if (isEntityTag(raw)) return raw!.trim();
  const tagged = providerEtagVersion(raw);
  const v = tagged ?? bodyVersion;
  return v === undefined ? undefined : `W/"${v}"`;
}
