import type { ServerResponse } from 'node:http';
import { constants, createGzip, gzipSync, type Gzip } from 'node:zlib';

/**
 * gzip for the gateway's answers (GP Connect 1.2.7 §a: "Accept-Encoding: gzip — Servers SHALL
 * support gzip"; the `gp-connect` standard turns it on, `answerGzip`). The provider is never
 * asked for an encoding (it is read and judged by the gateway); the client's answer is compressed
 * when its Accept-Encoding allows gzip. Fast level: the answers are small and CPU is the cost.
 */
const LEVEL = { level: constants.Z_BEST_SPEED };

/** Whether an Accept-Encoding value allows gzip (RFC 9110 §12.5.3: `gzip`, `x-gzip` or `*`, with a q above 0). */
export function acceptsGzip(value: string | string[] | undefined): boolean {
  if (value === undefined) return false;
  const text = Array.isArray(value) ? value.join(',') : value;
  let gzip: number | undefined;
  let any: number | undefined;
  for (const part of text.split(',')) {
    const [rawName, ...params] = part.split(';');
    const name = rawName!.trim().toLowerCase();
    if (!name) continue;
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)\s*$/i.exec(p);
      if (m) q = Number(m[1]);
      else if (/^\s*q\s*=/i.test(p)) q = 0; // a malformed weight: not an acceptance
    }
    if (name === 'gzip' || name === 'x-gzip') gzip = Math.max(gzip ?? 0, q);
    else if (name === '*') any = q;
  }
  return (gzip ?? any ?? 0) > 0;
}

/** Whether this answer is to be compressed: the standard asks for it, the client accepts it, and there is a body. */
export function gzipWanted(res: ServerResponse, enabled: boolean, status: number): boolean {
  return enabled && status !== 204 && status !== 304 && status >= 200 && acceptsGzip(res.req?.headers['accept-encoding']);
}

/** Whether a Content-Encoding value (a header as received) leaves the body as it is: none, or `identity`. */
export function isIdentityCoding(value: string | string[] | undefined): boolean {
  if (value === undefined) return true;
  const text = (Array.isArray(value) ? value.join(',') : value).trim().toLowerCase();
  return text === '' || text === 'identity';
}

/**
 * Headers of a compressed answer: its coding and Vary. The ETag is kept as it is: a strong tag
 * made weak would come back as a weak If-Match, which the gateway forwards as received (ruling 11)
 * and a provider comparing strongly would refuse; and GP Connect's answers are never cached
 * (`Cache-Control: no-store`), so no cache can confuse the two representations.
 */
function markCompressed(res: ServerResponse): void {
  res.setHeader('Content-Encoding', 'gzip');
  varyOnEncoding(res);
}

/**
 * A 304 carries the Vary its 200 would have (RFC 9110 §15.4.5): with gzip on and accepted, the
 * 200 would have been compressed, so the 304 says it varies on Accept-Encoding too.
 */
export function varyAsCompressed(res: ServerResponse, enabled: boolean, status: number): void {
  if (enabled && status === 304 && acceptsGzip(res.req?.headers['accept-encoding'])) varyOnEncoding(res);
}

function varyOnEncoding(res: ServerResponse): void {
  const vary = res.getHeader('vary');
  const list = vary === undefined ? [] : String(vary).split(',').map((s) => s.trim()).filter(Boolean);
  if (!list.some((v) => v === '*' || v.toLowerCase() === 'accept-encoding')) res.setHeader('Vary', [...list, 'Accept-Encoding'].join(', '));
}

/** A whole body, compressed, with its headers set (Content-Length too). An empty body stays empty. */
export function gzipWhole(res: ServerResponse, body: Buffer): Buffer {
  if (body.length === 0) return body;
  const out = gzipSync(body, LEVEL);
  markCompressed(res);
  res.setHeader('Content-Length', out.length);
  return out;
}

/** A streamed body: its headers set (no Content-Length), and the stream to pipe it through. */
export function gzipStream(res: ServerResponse): Gzip {
  markCompressed(res);
  res.removeHeader('Content-Length');
  return createGzip(LEVEL);
}
