/** Sealing kept bodies (src/store/seal.ts): key files, AES-256-GCM, binding to the row, rotation. */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSealer, keyId, KeyFileError, loadKeyFile, parseKey, SealError, sealerFromFiles } from '../../src/store/seal.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-seal-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const raw = Buffer.alloc(32, 7);

t.test('a key file: 32 raw bytes, 64 hex digits or base64, trailing newline allowed', async (t) => {
  t.ok(parseKey(raw).equals(raw));
  t.ok(parseKey(Buffer.from(raw.toString('hex') + '\n')).equals(raw));
  t.ok(parseKey(Buffer.from(raw.toString('base64') + '\n')).equals(raw));
  for (const bad of [Buffer.alloc(31), Buffer.alloc(33), Buffer.from('x'.repeat(64)), Buffer.from(Buffer.alloc(16).toString('base64')), Buffer.alloc(0)]) {
    t.throws(() => parseKey(bad), KeyFileError, `${bad.length} bytes refused`);
  }
  const f = join(dir, 'k');
  writeFileSync(f, raw.toString('hex'));
  t.same(loadKeyFile(f), { id: keyId(raw), key: raw });
  const e = t.throws(() => loadKeyFile(join(dir, 'missing'))) as unknown as Error;
  t.match(e.message, /cannot read .*ENOENT/);
  writeFileSync(f, 'short');
  t.notMatch((t.throws(() => loadKeyFile(f)) as unknown as Error).message, /short/, 'the key is never echoed');
});

t.test('sealed bodies open only for their own row and key', async (t) => {
  const k = { id: keyId(raw), key: raw };
  const s = createSealer(k);
  const plain = Buffer.from('{"resourceType":"Appointment"}');
  const a = s.seal(plain, 'appt', '1');
  const b = s.seal(plain, 'appt', '1');
  t.equal(a.keyId, k.id);
  t.notOk(a.data.includes(plain), 'not in the clear');
  t.notOk(a.nonce!.equals(b.nonce!), 'a fresh nonce per row');
  t.ok(s.open(a, 'appt', '1').equals(plain));
  t.throws(() => s.open(a, 'appt', '2'), SealError, 'moved to another version: refused');
  t.throws(() => s.open(a, 'other', '1'), SealError, 'moved to another appointment: refused');
  const tampered = { ...a, data: Buffer.from(a.data) };
  tampered.data[0]! ^= 1;
  t.throws(() => s.open(tampered, 'appt', '1'), SealError, 'tampered: refused');
  t.throws(() => createSealer().open(a, 'appt', '1'), { message: new RegExp(`key ${k.id}`) }, 'no key: names the key id');
  const clear = createSealer().seal(plain, 'appt', '1');
  t.same([clear.keyId, clear.nonce], [null, null]);
  t.ok(s.open(clear, 'appt', '1').equals(plain), 'rows kept before encryption was turned on stay readable');
});

t.test('sealerFromFiles: current and previous keys', async (t) => {
  const f1 = join(dir, 'k1');
  const f2 = join(dir, 'k2');
  writeFileSync(f1, Buffer.alloc(32, 1));
  writeFileSync(f2, Buffer.alloc(32, 2));
  const old = sealerFromFiles(f1);
  const sealed = old.seal(Buffer.from('x'), 'a', '1');
  const rotated = sealerFromFiles(f2, [f1]);
  t.equal(rotated.currentKeyId, keyId(Buffer.alloc(32, 2)));
  t.equal(rotated.open(sealed, 'a', '1').toString(), 'x');
  t.equal(sealerFromFiles(undefined).currentKeyId, null);
});
