import type { Codec } from '../ports/codec.js';

/** `_format` values (FHIR's shorthand and the media types) -> format. */
const FORMAT_PARAM: Record<string, 'json' | 'xml'> = {
  json: 'json', 'application/json': 'json', 'application/fhir+json': 'json', 'application/json+fhir': 'json', 'text/json': 'json',
  xml: 'xml', 'application/xml': 'xml', 'application/fhir+xml': 'xml', 'application/xml+fhir': 'xml', 'text/xml': 'xml',
};

export function formatOfParam(value: string): 'json' | 'xml' | undefined {
  const v = value.trim().toLowerCase();
  // A literal '+' in a query decodes to a space (form encoding): `_format=application/fhir+xml`
  // arrives as `application/fhir xml`, which means the media type (as HAPI FHIR reads it).
  return FORMAT_PARAM[v] ?? FORMAT_PARAM[v.replace(/ /g, '+')];
}

function formatOfMediaType(value: string): 'json' | 'xml' | undefined {
  const type = value.split(';')[0]!.trim().toLowerCase();
  if (type === '*/*' || type === 'application/*') return undefined;
  return FORMAT_PARAM[type];
}

/** The `_format` parameter of a query string, if it names a format (the last one wins, as in FHIR servers). */
export function formatParam(query: string): 'json' | 'xml' | undefined {
  if (!query) return undefined;
  let found: 'json' | 'xml' | undefined;
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq) !== '_format') continue;
    let v: string;
    try {
      v = decodeURIComponent(part.slice(eq + 1).replace(/\+/g, ' '));
    } catch {
      continue;
    }
    found = formatOfParam(v) ?? found;
  }
  return found;
}

type Format = 'json' | 'xml';

/** RFC 9110 §12.4.2 qvalue: 0 to 1 with at most three decimals. */
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/** A media range's weight: its `q` parameter (name in any case, spaces around `=` tolerated), 1 without one; undefined when malformed. */
function qualityOf(params: readonly string[]): number | undefined {
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq === -1 || p.slice(0, eq).trim().toLowerCase() !== 'q') continue;
    const v = p.slice(eq + 1).trim();
    return QVALUE.test(v) ? Number(v) : undefined;
  }
  return 1;
}

/**
 * An Accept header read for the two formats: the acceptable one of highest quality (then order),
 * and those it refuses outright (`q=0`, RFC 9110 §12.4.2; parameter names in any case).
 */
function acceptOf(accept: string): { best?: Format; refused: Format[] } {
  let best: { f: Format; q: number } | undefined;
  const refused: Format[] = [];
  for (const range of accept.split(',').slice(0, 32)) {
    const [type, ...params] = range.split(';');
    const f = formatOfMediaType(type ?? '');
    if (!f) continue;
    const q = qualityOf(params);
    if (q === undefined) continue; // a malformed weight: this range says nothing
    if (q === 0) {
      refused.push(f);
      continue;
    }
    if (!best || q > best.q) best = { f, q };
  }
  return { best: best?.f, refused };
}

/**
 * Ruling 21: the answer's format is `_format`, then `Accept`, then the request's `Content-Type`,
 * else JSON. Gateway-made OperationOutcomes are written in it.
 */
export function negotiate(query: string, accept: string | undefined, contentType: string | undefined, codecs: readonly Codec[]): Codec {
  const a = accept ? acceptOf(accept) : { best: undefined, refused: [] as Format[] };
  // A format the client refused (q=0) is not chosen by the fall-backs; refusing both leaves JSON.
  const fallBack = [contentType ? formatOfMediaType(contentType) : undefined, 'json' as const, 'xml' as const].find((x) => x !== undefined && !a.refused.includes(x));
  const f = formatParam(query) ?? a.best ?? fallBack ?? 'json';
  return codecs.find((c) => c.format === f) ?? codecs.find((c) => c.format === 'json')!;
}

/**
 * A `_format` on a write or a version read (ruling 21: it beats Accept) is said to the provider as
 * the Accept of that format: the query itself is never forwarded on those routes, and the
 * provider's answer is passed on as it comes.
 */
export function acceptFromFormatParam(query: string | undefined, headers: Record<string, string>, codecs: readonly Codec[]): void {
  const f = query ? formatParam(query) : undefined;
  const codec = f === undefined ? undefined : codecs.find((c) => c.format === f);
  if (codec) headers.accept = codec.mediaTypes[0]!;
}

/** The codec that reads a body of this Content-Type (request or provider answer); JSON when absent or unknown. */
export function codecFor(contentTypeSent: unknown, codecs: readonly Codec[]): Codec {
  // A Content-Type sent twice (a provider's answer) is read by its first, as Node reads it.
  const contentType = Array.isArray(contentTypeSent) ? contentTypeSent[0] : contentTypeSent;
  // Three lookups per cancel (body, current version, answer) of a handful of distinct values:
  // remembered per codec list, at most CODEC_CACHE_SIZE of them (the header is the client's).
  let known = codecCache.get(codecs);
  if (!known) codecCache.set(codecs, (known = new Map()));
  const key = typeof contentType === 'string' ? contentType : undefined;
  const hit = key === undefined ? undefined : known.get(key);
  if (hit) return hit;
  const type = String(contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const codec = codecs.find((c) => c.mediaTypes.includes(type)) ?? codecs.find((c) => c.format === 'json')!;
  if (key !== undefined && known.size < CODEC_CACHE_SIZE) known.set(key, codec);
  return codec;
}

const CODEC_CACHE_SIZE = 64;
const codecCache = new WeakMap<readonly Codec[], Map<string, Codec>>();

/** The format a request's answer is written in (ruling 21): `_format`, then Accept, then Content-Type, else JSON. */
export function answerCodecOf(req: { url?: string; headers: { accept?: string | string[]; 'content-type'?: string | string[] } }, codecs: readonly Codec[]): Codec {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  const { accept, 'content-type': contentType } = req.headers;
  return negotiate(q === -1 ? '' : url.slice(q + 1), typeof accept === 'string' ? accept : undefined, typeof contentType === 'string' ? contentType : undefined, codecs);
}
