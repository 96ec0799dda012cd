/** The one JSON-object guard (issue 12 item 3): a plain object, not null, not an array. */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Blank: nothing a reader would see — empty, or only whitespace (space, tab, line breaks, the
 * no-break space and the other Unicode spaces), control characters (NUL, DEL…), invisible format
 * characters (zero-width space, joiners, BOM), combining marks with nothing to combine with
 * (variation selectors, the grapheme joiner), fillers (Hangul, braille blank) and halves of
 * surrogate pairs. Stricter than the FHIR
 * `string` regex, on purpose: a cancellation reason or an amended description of no-break spaces
 * or NULs says nothing, and the gateway refuses on doubt.
 */
const BLANK = /^[\s\p{Cc}\p{Cf}\p{Cs}\p{Mn}\u115F\u1160\u3164\uFFA0\u2800]*$/u; // + combining marks alone, Hangul fillers, the braille blank

export function isBlankText(s: string): boolean {
  return BLANK.test(s);
}
