/** The one JSON-object guard (issue 12 item 3): a plain object, not null, not an array. */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Blank: nothing a reader would see — empty, or only whitespace (space, tab, line breaks, the
 * no-break space and the other Unicode spaces), control characters (NUL, DEL…), invisible format
 * characters (zero-width space, joiners, BOM) and halves of surrogate pairs. Stricter than the FHIR
 * `string` regex, on purpose: a cancellation reason or an amended description of no-break spaces
 * or NULs says nothing, and the gateway refuses on doubt.
 */
const BLANK = /^[\s\p{Cc}\p{Cf}\p{Cs}]*$/u;

export function isBlankText(s: string): boolean {
  return BLANK.test(s);
}
