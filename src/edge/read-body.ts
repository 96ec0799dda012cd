import type { Readable } from 'node:stream';
import { GatewayError } from '../errors.js';

/**
 * The one bounded stream reader: the whole stream up to `limit` bytes. Over it -> 413
 * BODY_TOO_LARGE (checked on a declared Content-Length first); cut short -> 400 REQUEST_MALFORMED.
 */
export function readBounded(stream: Readable & { headers?: Record<string, unknown> }, limit: number): Promise<Buffer> {
  const declared = Number(stream.headers?.['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new GatewayError('BODY_TOO_LARGE', `The body is over ${limit} bytes`));
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        cleanup();
        reject(new GatewayError('BODY_TOO_LARGE', `The body is over ${limit} bytes`));
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onAbort = () => {
      cleanup();
      reject(new GatewayError('REQUEST_MALFORMED', 'The request body was cut short'));
    };
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('aborted', onAbort);
      stream.off('error', onAbort);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('aborted', onAbort);
    stream.on('error', onAbort);
  });
}
