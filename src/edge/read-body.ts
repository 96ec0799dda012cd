import type { Readable } from 'node:stream';
import { GatewayError } from '../errors.js';

/** Whether a request's head frames a body: a declared length above zero, or a transfer coding. */
export function carriesBody(headers: { 'content-length'?: string; 'transfer-encoding'?: string }): boolean {
  const length = headers['content-length'];
  // `00` is zero too (RFC 9110 §8.6: 1*DIGIT); Node's parser has already refused any non-digit.
  return headers['transfer-encoding'] !== undefined || (length !== undefined && !/^0+$/.test(length));
}

/**
 * The one bounded stream reader: the whole stream up to `limit` bytes. Over it -> 413
 * BODY_TOO_LARGE (checked on a declared Content-Length first); cut short -> 400 REQUEST_MALFORMED.
 */
export function readBounded(stream: Readable & { headers?: Record<string, unknown> }, limit: number, opts: { clientBody?: boolean } = {}): Promise<Buffer> {
  const tinyPiecesRefused = opts.clientBody !== false;
  const declared = Number(stream.headers?.['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new GatewayError('BODY_TOO_LARGE', `The body is over ${limit} bytes`));
  if ((stream as Flagged)[FRAMING_FAILED]) return Promise.reject(malformedFraming());
  // Gone before the read began (the client left while an earlier check awaited I/O, e.g. a JWKS):
  // its 'aborted'/'close' have fired and 'end' never will.
  if (stream.destroyed && !stream.readableEnded) return Promise.reject(cutShort());
  return new Promise<Buffer>((resolve, reject) => {
    // One buffer, grown by doubling and copied into: a body sent as a million 1-byte chunks must
    // not be kept as a million Buffer objects (~380 bytes of memory per byte of body).
    let buf: Buffer | undefined;
    let size = 0;
    let pieces = 0;
    const onData = (c: Buffer) => {
      if (c.length === 0) return;
      if (size + c.length > limit) {
        cleanup();
        reject(new GatewayError('BODY_TOO_LARGE', `The body is over ${limit} bytes`));
        return;
      }
      // Ruling 16: many tiny pieces (chunked framing of a few bytes each) cost per piece, not per byte.
      // (A client's body only: a provider's answer is the provider's business, and bounded by size.)
      if (++pieces > MANY_PIECES && tinyPiecesRefused && (size + c.length) / pieces < SMALLEST_AVERAGE_PIECE) {
        cleanup();
        reject(new GatewayError('REQUEST_MALFORMED', 'The body is sent in too many tiny pieces'));
        return;
      }
      if (pieces === 1 && size === 0) {
        buf = c; // the usual case: the whole body in one piece, kept as it came
      } else {
        if (buf === undefined || size + c.length > buf.length) buf = grown(buf, size, size + c.length, limit);
        c.copy(buf, size);
      }
      size += c.length;
    };
    const onEnd = () => {
      cleanup();
      // A buffer grown by doubling may be up to twice the body: kept for the request's life, so a
      // large one is copied to its size.
      if (buf === undefined) resolve(Buffer.alloc(0));
      else if (size === buf.length) resolve(buf);
      else resolve(buf.length - size > 64 * 1024 ? Buffer.from(buf.subarray(0, size)) : buf.subarray(0, size));
    };
    const onAbort = () => {
      cleanup();
      reject(cutShort());
    };
    const onClose = () => {
      if (!stream.readableEnded) onAbort();
    };
    const onBadFraming = () => {
      cleanup();
      reject(malformedFraming());
    };
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('aborted', onAbort);
      stream.off('error', onAbort);
      stream.off('close', onClose);
      stream.off(FRAMING_FAILED_EVENT, onBadFraming);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('aborted', onAbort);
    stream.on('error', onAbort);
    stream.on('close', onClose);
    stream.on(FRAMING_FAILED_EVENT, onBadFraming);
  });
}

function cutShort(): GatewayError {
  return new GatewayError('REQUEST_MALFORMED', 'The request body was cut short');
}

/** Beyond this many pieces a body whose pieces average under SMALLEST_AVERAGE_PIECE bytes is refused. */
const MANY_PIECES = 4096;
const SMALLEST_AVERAGE_PIECE = 64;

/** A buffer of at least `need` bytes (doubling, at most `limit`), holding the first `size` bytes of `old`. */
function grown(old: Buffer | undefined, size: number, need: number, limit: number): Buffer {
  const next = Buffer.allocUnsafe(Math.min(limit, Math.max(need, (old?.length ?? 0) * 2, 4096)));
  if (old) old.copy(next, 0, 0, size);
  return next;
}

const FRAMING_FAILED: unique symbol = Symbol('cancel-gateway.framingFailed');
const FRAMING_FAILED_EVENT = 'cancel-gateway:framing-failed';
type Flagged = { [FRAMING_FAILED]?: true };
const malformedFraming = (): GatewayError => new GatewayError('REQUEST_MALFORMED', 'The body\'s chunked framing is malformed');

/**
 * Ruling 16: Node's parser failed inside this request's body (bad chunk framing, a chunk extension
 * over its bound): its body read fails now — or when it starts — so that the request is answered
 * once, as a 400 with Connection: close, instead of waiting for a body that will never end.
 */
export function bodyFramingFailed(req: Readable): boolean {
  return (req as Flagged)[FRAMING_FAILED] === true;
}

export function failBodyFraming(req: Readable): void {
  (req as Flagged)[FRAMING_FAILED] = true;
  req.emit(FRAMING_FAILED_EVENT);
}
