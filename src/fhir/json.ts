/** The one JSON-object guard (issue 12 item 3): a plain object, not null, not an array. */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
