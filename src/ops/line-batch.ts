/**
 * Lines for the process's stdout or stderr, written together once per turn of the event loop
 * (issue 17): the decision log line and the audit record of every request finished in one turn
 * go out in one write instead of two each. Flushed at once beyond 64 KiB, and on exit (stdout and
 * stderr are synchronous on Linux for files and pipes, so nothing written before exit is lost;
 * a SIGKILL loses at most the current turn's lines).
 */
type Sink = { write(s: string): unknown };

const FLUSH_AT = 64 * 1024;
const batches = new WeakMap<Sink, Sink>();

export function batchedLines(out: Sink): Sink {
  const known = batches.get(out);
  if (known) return known;
  let pending = '';
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending === '') return;
    const text = pending;
    pending = '';
    out.write(text);
  };
  process.on('exit', flush);
  const batch: Sink = {
    write(line: string) {
      pending += line;
      if (pending.length >= FLUSH_AT) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
      return true;
    },
  };
  batches.set(out, batch);
  return batch;
}

/** The process's own streams are batched; any other sink (a test's, a file's) is written at once. */
export function linesTo(out: Sink): Sink {
  return out === process.stdout || out === process.stderr ? batchedLines(out) : out;
}

/**
 * One JSON line: `head` (members already serialised, without braces) followed by the members of
 * `fields`, in one serialisation of `fields` and no merged copy (issue 17).
 */
export function jsonLine(head: string, fields: object | undefined): string {
  const rest = fields === undefined ? '{}' : JSON.stringify(fields);
  return rest === '{}' ? `{${head}}\n` : `{${head},${rest.slice(1)}\n`;
}
