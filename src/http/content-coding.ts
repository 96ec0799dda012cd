import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';

/** Whatever the provider's answer body is once its Content-Encoding is undone cannot be known. */
export class ContentCodingError extends Error {
  override readonly name = 'ContentCodingError';
}

/**
 * A provider answer's bytes as its client would read them: its `Content-Encoding` undone (gzip,
 * deflate, br, in the reverse order they were applied; `identity` is none), bounded by `maxBytes`
 * decoded. The gateway never asks for a coding (it sends no Accept-Encoding), but RFC 9110 §12.5.3
 * lets a provider send one anyway, and GP Connect providers SHALL support gzip. An unknown coding
 * or a corrupt or oversized stream throws ContentCodingError: the caller fails closed.
 */
export function decodedBody(body: Buffer, contentEncoding: string | string[] | undefined, maxBytes: number): Buffer {
  if (contentEncoding === undefined || body.length === 0) return body;
  const codings = String(contentEncoding).toLowerCase().split(',').map((c) => c.trim()).filter((c) => c && c !== 'identity').reverse();
  let out = body;
  try {
    for (const c of codings) {
      const opts = { maxOutputLength: maxBytes };
      if (c === 'gzip' || c === 'x-gzip') out = gunzipSync(out, opts);
      else if (c === 'deflate') out = inflated(out, opts);
      else if (c === 'br') out = brotliDecompressSync(out, opts);
      else throw new Error('unknown coding');
    }
  } catch {
    throw new ContentCodingError('the answer has a content coding that cannot be read');
  }
  return out;
}

/**
 * `deflate` is the zlib format (RFC 9110 §8.4.1.2), yet servers long sent raw deflate under that
 * name and every HTTP client (curl, browsers) reads both: so does the gateway, by the first byte
 * (a zlib stream's CMF byte names method 8 and its header check passes).
 */
function inflated(bytes: Buffer, opts: { maxOutputLength: number }): Buffer {
  const zlibHeader = bytes.length >= 2 && (bytes[0]! & 0x0f) === 8 && ((bytes[0]! << 8) | bytes[1]!) % 31 === 0;
  return zlibHeader ? inflateSync(bytes, opts) : inflateRawSync(bytes, opts);
}
