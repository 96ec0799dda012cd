/**
 * Time, injected (style habit 7): checks, leases, readiness and deadlines read it, never Date.now()
 * directly, so tests move time instead of sleeping.
 *
 * Contract:
 * - `now()` is milliseconds since the Unix epoch and never goes backwards within one process.
 * - `setTimer(fn, ms)` calls `fn` once, no earlier than `ms` after the call by this clock's time,
 *   unless cancelled; the returned function cancels it (idempotent). A manual test clock calls due
 *   timers when it is advanced.
 */
export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return () => clearTimeout(t);
  },
};

/** A clock for tests: time passes only by `advance`, which runs the timers that fall due, in order. */
export class ManualClock implements Clock {
  private timers: Array<{ at: number; fn: () => void; seq: number }> = [];
  private seq = 0;
  constructor(private t = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.t;
  }
  /** How many timers have been set so far (a test waits for a deadline to be armed, not for time to pass). */
  get timersSet(): number {
    return this.seq;
  }
  setTimer(fn: () => void, ms: number): () => void {
    const entry = { at: this.t + Math.max(0, ms), fn, seq: this.seq++ };
    this.timers.push(entry);
    return () => {
      this.timers = this.timers.filter((e) => e !== entry);
    };
  }
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const due = this.timers.filter((e) => e.at <= until).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((e) => e !== due);
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = until;
  }
}
