/**
 * Issue 13 item 3: large bodies take turns. Parsing and validating a body is synchronous work on
 * the one event loop, in proportion to its size. Without this, every body that arrived during one
 * turn of the loop is parsed and validated in that same turn: eight clients sending the largest
 * bodies the limits allow, back to back, make each turn last eight validations, and a normal
 * cancel — which needs several turns (its body, the lock, the provider's read and write) — waits
 * that long at each of them.
 *
 * A request whose body is over `limits.largeBodyBytes` therefore waits here, once its body is
 * read and before it is parsed, for a turn of its own, and says when its checks are done:
 * - one large body at a time, let through in the check phase of a turn of the loop (setImmediate),
 *   after that turn's I/O has been served;
 * - the next one no sooner than the last one's turn took again, counted until the turn after its
 *   checks (large bodies get at most about half of the loop while others wait).
 * Normal-sized bodies never wait, so a normal request waits behind at most one large body's
 * checks at each step. Waiting is bounded by the request's own timeouts.
 */
export interface Lane {
  /** Resolves when it is this caller's turn, with the function to call when its checks are done. */
  turn(): Promise<() => void>;
  /** How many are waiting (tests). */
  readonly waiting: number;
}

/**
 * `now` measures turns; a turn whose caller never says it is done still ends after `maxTurnMs`
 * (defence in depth: every caller says done in a finally).
 */
export function createLane(o: { now?: () => number; maxTurnMs?: number } = {}): Lane {
  const now = o.now ?? (() => performance.now());
  const maxTurnMs = o.maxTurnMs ?? 1000;
  const queue: Array<(done: () => void) => void> = [];
  let busy = false;
  const next = (): void => {
    const waiter = queue.shift();
    if (!waiter) {
      busy = false;
      return;
    }
    const started = now();
    let ended = false;
    const guard = setTimeout(() => done(), maxTurnMs);
    const done = (): void => {
      if (ended) return;
      ended = true;
      clearTimeout(guard);
      // Measured in the next turn, so the synchronous work that follows the checks in the same
      // turn (the refusal written, its log line) counts too; then the same time again for the
      // others before the next large body.
      setImmediate(() => {
        const took = now() - started;
        if (took >= 1) setTimeout(next, took);
        else setImmediate(next);
      });
    };
    waiter(done);
  };
  return {
    turn() {
      return new Promise<() => void>((resolve) => {
        queue.push(resolve);
        if (!busy) {
          busy = true;
          setImmediate(next);
        }
      });
    },
    get waiting() {
      return queue.length;
    },
  };
}
