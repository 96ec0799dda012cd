import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Encryption at rest for kept bodies (issue 18 item 4): AES-256-GCM, a fresh 96-bit nonce per
 * row, and the key's id stored beside the row so keys can rotate: new rows are sealed with the
 * current key, old rows stay readable while their key is still configured.
 *
 * The key id is derived from the key itself (first 16 hex digits of sha256("cancel-gateway key"
 * + key)), so a wrong file can never be used on rows it did not seal, and operators name no ids.
 * The additional authenticated data binds a sealed body to its appointment and version: a row's
 * bytes copied onto another row fail to open.
 */

export interface StoreKey {
  id: string;
  key: Buffer;
}

export class KeyFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyFileError';
  }
}

/** 32 raw bytes, or 64 hex digits, or base64 of 32 bytes (a trailing newline is allowed). */
export function parseKey(bytes: Buffer): Buffer {
  if (bytes.length === 32) return Buffer.from(bytes);
  const text = bytes.toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) {
    const k = Buffer.from(text, 'base64');
    if (k.length === 32) return k;
  }
  throw new KeyFileError('must hold exactly 32 bytes (raw, 64 hex digits, or base64)');
}

export function keyId(key: Buffer): string {
  return createHash('sha256').update('cancel-gateway key\0').update(key).digest('hex').slice(0, 16);
}

/** Reads a key file; the message never contains the key. */
export function loadKeyFile(file: string): StoreKey {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new KeyFileError(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const key = parseKey(bytes);
    return { id: keyId(key), key };
  } catch (e) {
    throw new KeyFileError(`${file}: ${(e as Error).message}`);
  }
}

/** What is stored for one body. Without a key: the plain bytes, keyId and nonce null. */
export interface SealedBody {
  data: Buffer;
  keyId: string | null;
  nonce: Buffer | null;
}

export interface Sealer {
  /** The id new rows are sealed with, or null when bodies are stored in the clear. */
  readonly currentKeyId: string | null;
  seal(plain: Buffer, appointmentId: string, versionId: string): SealedBody;
  open(row: SealedBody, appointmentId: string, versionId: string): Buffer;
}

export class SealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealError';
  }
}

function aad(appointmentId: string, versionId: string): Buffer {
  return Buffer.from(`${appointmentId}\0${versionId}`, 'utf8');
}

const TAG = 16;

/**
 * `current` seals new rows; `previous` only open old ones. With no key at all, rows are stored
 * and read in the clear, and a sealed row cannot be read (SealError names its key id).
 */
export function createSealer(current?: StoreKey, previous: StoreKey[] = []): Sealer {
  const byId = new Map<string, Buffer>();
  for (const k of previous) byId.set(k.id, k.key);
  if (current) byId.set(current.id, current.key);
  return {
    currentKeyId: current?.id ?? null,
    seal(plain, appointmentId, versionId) {
      if (!current) return { data: plain, keyId: null, nonce: null };
      const nonce = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', current.key, nonce);
      c.setAAD(aad(appointmentId, versionId));
      const data = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
      return { data, keyId: current.id, nonce };
    },
    open(row, appointmentId, versionId) {
      if (row.keyId === null) return row.data;
      const key = byId.get(row.keyId);
      if (!key) throw new SealError(`row sealed with key ${row.keyId}, which is not configured`);
      if (!row.nonce || row.data.length < TAG) throw new SealError('sealed row is malformed');
      const d = createDecipheriv('aes-256-gcm', key, row.nonce);
      d.setAAD(aad(appointmentId, versionId));
      d.setAuthTag(row.data.subarray(row.data.length - TAG));
      try {
        return Buffer.concat([d.update(row.data.subarray(0, row.data.length - TAG)), d.final()]);
      } catch {
        throw new SealError(`sealed row does not open with key ${row.keyId} (tampered or moved)`);
      }
    },
  };
}

/** The sealer a store configuration asks for. */
export function sealerFromFiles(encryptionKeyFile?: string, decryptionKeyFiles: readonly string[] = []): Sealer {
  if (!encryptionKeyFile) return createSealer();
  return createSealer(loadKeyFile(encryptionKeyFile), decryptionKeyFiles.map(loadKeyFile));
}
