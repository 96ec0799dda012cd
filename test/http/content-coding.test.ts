import t from 'tap';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { ContentCodingError, decodedBody } from '../../src/http/content-coding.js';

const text = Buffer.from(JSON.stringify({ resourceType: 'Appointment', id: 'a1', status: 'cancelled' }));

t.test('every coding a client would read is undone, in the reverse order it was applied', async (t) => {
  t.same(decodedBody(gzipSync(text), 'gzip', 1 << 20), text);
  t.same(decodedBody(gzipSync(text), 'X-GZIP', 1 << 20), text);
  t.same(decodedBody(deflateSync(text), 'deflate', 1 << 20), text, 'deflate as RFC 9110 names it: zlib');
  t.same(decodedBody(deflateRawSync(text), 'deflate', 1 << 20), text, 'raw deflate under the same name, as curl and browsers read it');
  t.same(decodedBody(brotliCompressSync(text), 'br', 1 << 20), text);
  t.same(decodedBody(gzipSync(deflateRawSync(text)), 'deflate, gzip', 1 << 20), text);
  t.same(decodedBody(text, 'identity', 1 << 20), text);
  t.same(decodedBody(text, undefined, 1 << 20), text);
});

t.test('an unknown coding, a corrupt stream or one past the bound cannot be read: ContentCodingError', async (t) => {
  t.throws(() => decodedBody(text, 'compress', 1 << 20), ContentCodingError);
  t.throws(() => decodedBody(text, 'gzip', 1 << 20), ContentCodingError);
  t.throws(() => decodedBody(Buffer.from([0x78, 0x9c, 1, 2, 3]), 'deflate', 1 << 20), ContentCodingError, 'a zlib header with a corrupt stream');
  t.throws(() => decodedBody(text, 'deflate', 1 << 20), ContentCodingError, 'plain text is no raw deflate either');
  t.throws(() => decodedBody(gzipSync(Buffer.alloc(100_000)), 'gzip', 1000), ContentCodingError, 'a bomb');
  t.throws(() => decodedBody(deflateRawSync(Buffer.alloc(100_000)), 'deflate', 1000), ContentCodingError, 'a raw-deflate bomb');
});
