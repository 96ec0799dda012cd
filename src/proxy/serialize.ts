/**
 * Per-key serialization (ruling 10): cancels of one appointment are decided one at a time, the
 * provider read, version check, diff and forward all inside, so two requests carrying the same
 * If-Match can never both be forwarded. Keys with nothing queued hold no memory.
 */
export class KeyedSerializer {
  private readonly tails = new Map<string, Promise<void>>();

  get size(): number {
    return this.tails.size;
  }

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
