import type { Clock } from '../ports/clock.js';
import type { Logger } from '../log.js';

export interface ReadinessProbe {
  /** Resolves when the dependency answers. */
  ping(): Promise<void>;
  /** Counts towards readiness (a store, the certificates); otherwise reported only (the provider). */
  required: boolean;
}

export interface ReadinessState {
  ready: boolean;
  draining: boolean;
  [check: string]: boolean;
}

/**
 * Readiness says whether this gateway can serve (issue 19 item 5): its certificate, its store,
 * not draining. The provider is pinged on the same schedule and reported — a metric, a log line
 * on each change, a field of /readyz — but fails readiness only when configured to, so a provider
 * redeploy does not take every gateway pod out of its Service. Time is the injected clock.
 */
export function createReadiness(opts: {
  clock: Clock;
  logger: Logger;
  intervalMs: number;
  probes: Record<string, ReadinessProbe>;
  /** Synchronous checks evaluated at each ask (the served certificate's validity). */
  checks: Record<string, () => boolean>;
  draining: () => boolean;
  onResult?: (name: string, ok: boolean) => void;
}) {
  const lastOk: Record<string, boolean> = {};
  let stopTimer: (() => void) | undefined;
  let stopped = false;

  async function probeAll(): Promise<void> {
    await Promise.all(
      Object.entries(opts.probes).map(async ([name, p]) => {
        let ok = true;
        try {
          await p.ping();
        } catch {
          ok = false;
        }
        if (lastOk[name] !== ok) opts.logger[ok ? 'info' : 'warn'](`${name} ${ok ? 'reachable' : 'unreachable'}`, { check: name });
        lastOk[name] = ok;
        opts.onResult?.(name, ok);
      }),
    );
  }

  const schedule = () => {
    if (stopped) return;
    stopTimer = opts.clock.setTimer(() => void probeAll().finally(schedule), opts.intervalMs);
  };

  return {
    start(): Promise<void> {
      const first = probeAll();
      schedule();
      return first;
    },
    stop(): void {
      stopped = true;
      stopTimer?.();
    },
    probeNow: probeAll,
    state(): ReadinessState {
      const state: ReadinessState = { ready: true, draining: opts.draining() };
      for (const [name, check] of Object.entries(opts.checks)) state[name] = check();
      for (const [name, p] of Object.entries(opts.probes)) {
        state[name] = lastOk[name] === true;
        if (p.required && !state[name]) state.ready = false;
      }
      for (const name of Object.keys(opts.checks)) if (!state[name]) state.ready = false;
      if (state.draining) state.ready = false;
      return state;
    },
  };
}

export type Readiness = ReturnType<typeof createReadiness>;
