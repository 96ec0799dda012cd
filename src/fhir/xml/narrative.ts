import { copyKeepingNumberText } from '../strict-json.js';
import { canonicalDiv, MAX_XHTML_DEPTH, Refusal } from './xhtml.js';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `r` with `text.div` in the canonical form the XML decoder gives it, or `r` itself when unchanged. */
function withCanonicalDiv(r: Json, strict: boolean): Json {
  const text = r['text'];
  if (!isObj(text) || typeof text['div'] !== 'string') return r;
  const div = canonicalDiv(text['div'], MAX_XHTML_DEPTH, { strict });
  // A div XML cannot carry stays as it is: the diff then reports it, as it must.
  if (div instanceof Refusal || div === text['div']) return r;
  // Copies keep the numbers' written text (ruling 26), which a spread would drop.
  const copy = copyKeepingNumberText(r);
  copy['text'] = Object.assign(copyKeepingNumberText(text), { div });
  return copy;
}

/**
 * Ruling 21 ("checked identically"): an XML body's narrative reaches the model in the XML
 * decoder's canonical form (`<br />` → `<br/>`, `&quot;` → `"`, …), so the stored resource it is
 * compared with is read the same way: its `text.div`, and each contained resource's, in that form.
 * The resource is not changed; a copy is returned when a div differs.
 *
 * `strict` for the submitted side (xhtml.ts canonicalDiv): a JSON div with anything around the div
 * element is compared as written, so a client cannot slip a comment or text past the diff. The
 * stored side is read leniently: what a provider stored around its div (a line break, a
 * declaration) is nothing an XML client could send back, and must not make its cancel a 422.
 */
export function narrativesAsXmlReadsThem(stored: Json, opts: { strict?: boolean } = {}): Json {
  const strict = opts.strict === true;
  let out = withCanonicalDiv(stored, strict);
  const contained = out['contained'];
  if (Array.isArray(contained)) {
    const next = contained.map((c) => (isObj(c) ? withCanonicalDiv(c, strict) : c));
    if (next.some((c, i) => c !== contained[i])) {
      out = out === stored ? copyKeepingNumberText(stored) : out;
      out['contained'] = next;
    }
  }
  return out;
}
