import type net from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Issue 13 item 5: connections that have not finished the TLS handshake are bounded on their own,
 * in total and per source address, so that idle TCP connections without a certificate cannot fill
 * `maxConnections`. At a bound the OLDEST pending connection is closed to make room: a real client
 * finishes its handshake in milliseconds, an idle one never does, so the idle ones are the ones that
 * go (refusing the newcomer instead would lock a real client out behind the idle ones).
 */
export function createHandshakeGuard(limits: { total: number; perAddress: number }, onEvict: () => void) {
  const pending = new Set<net.Socket>(); // insertion order = age
  const byAddress = new Map<string, Set<net.Socket>>();
  const forget = (s: net.Socket) => {
    if (!pending.delete(s)) return;
    const key = s.remoteAddress ?? '';
    const set = byAddress.get(key);
    set?.delete(s);
    if (set && set.size === 0) byAddress.delete(key);
  };
  const evict = (s: net.Socket | undefined) => {
    if (!s) return;
    forget(s);
    onEvict();
    s.destroy();
  };
  return {
    /** A raw TCP connection arrived (before TLS). */
    opened(s: net.Socket): void {
      const key = s.remoteAddress ?? '';
      let set = byAddress.get(key);
      if (set && set.size >= limits.perAddress) evict(set.values().next().value);
      if (pending.size >= limits.total) evict(pending.values().next().value);
      set = byAddress.get(key) ?? new Set();
      byAddress.set(key, set);
      set.add(s);
      pending.add(s);
      s.once('close', () => forget(s));
    },
    /** The handshake of the TLS socket wrapping `raw` is over: it no longer counts as pending. */
    handshaken(raw: net.Socket | undefined): void {
      if (raw) forget(raw);
    },
    get size(): number {
      return pending.size;
    },
  };
}

/** A TLS socket as Node's HTTP server keeps it: its own pause flag and its parser. */
type ParsedSocket = TLSSocket & { _paused?: boolean; parser?: { resume?: () => void } | null };
/**
 * Node's own backpressure, as it pauses a connection whose answers are not being read: `_paused`
 * and a paused socket; Node pauses the parser once the execute() of the chunk in hand has returned.
 * This holds only because the listener reads its sockets through 'data' events (tls-listener.ts,
 * readThroughEvents): a parser reading a TLS handle directly is handed further decrypted records
 * whatever the socket's state, and a paused parser refuses them (HPE_PAUSED, answered as a
 * malformed request) and, resumed, goes on with the half-read request joined to bytes of a later
 * one (a review spliced one request's token into another's headers). Node resumes such a socket
 * itself once an answer is written: the book pauses it again on its 'resume' (createConnectionBook).
 */
function pauseReading(s: ParsedSocket): void {
  s._paused = true;
  s.pause();
}
function resumeReading(s: ParsedSocket): void {
  if (!s._paused) return;
  s._paused = false;
  s.parser?.resume?.();
  s.resume();
}

/** Requests pipelined behind the one in flight before the connection is read no further. */
export const MAX_PIPELINED = 16;

interface ConnectionState {
  readonly openedAt: number;
  /** When the first bytes of its first request arrived (a drain times an unfinished head from here). */
  begunAt?: number;
  requests: number;
  /** Answers started on this connection and not yet finished. */
  inFlight: number;
  idle: Array<() => void>;
  /** Close once the in-flight answers are done (a reloaded CRL refuses its certificate). */
  retire: boolean;
  /** Requests pipelined behind the one in flight, started one at a time in order. */
  queued: Array<{ go: () => void; res: ServerResponse }>;
  /** An answer closed the connection: nothing after it on this connection is handled. */
  closing: boolean;
  /** Paused here (MAX_PIPELINED), not by Node's own write backpressure: resumed here. */
  paused: boolean;
  /** The answer started last (retiring the connection marks it `Connection: close` if not yet sent). */
  current?: ServerResponse;
  /** Requests admitted on this connection (started or queued). */
  admitted: number;
  /** The request admitted last: its body may be what a deferred timeout was about. */
  last?: ServerResponse;
  /** A headers/request timeout reported while paused here, judged again once reading resumes. */
  deferred?: { admitted: number; pending: ServerResponse['req'] | undefined };
}

/** Whether an answer ends its connection (`Connection: close`, or it was cut short). */
function closesConnection(res: ServerResponse): boolean {
  return !res.writableFinished || /\bclose\b/i.test(String(res.getHeader('connection') ?? ''));
}

/**
 * Issue 13 items 7 and 13: per-connection bookkeeping — age, request count, answers in flight —
 * so that a connection can be retired after its in-flight answer, and a raw error answer can wait
 * for the answers queued before it (answers go out in request order).
 */
export interface StallLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** A connection whose deferred timeout found no progress once it was read again: close it. */
  onStalled: (s: TLSSocket) => void;
}

/**
 * A timeout Node reported while the connection was paused behind its queue (the unread head or
 * body was the gateway's doing, not the client's) is judged again once reading resumes: the
 * client then has the limit's time afresh, and a connection that by then has neither completed
 * the body pending at the report nor sent a new request head is closed (ruling 16: slowloris).
 * Node reports an overdue request once only: without this, a deferred one would never time out.
 */
function judgeDeferred(s: TLSSocket, st: ConnectionState, stall: StallLimits | undefined): void {
  const d = st.deferred;
  st.deferred = undefined;
  if (!d || !stall) return;
  const ms = d.pending ? stall.requestTimeoutMs : stall.headersTimeoutMs;
  setTimeout(() => {
    const progressed = st.admitted > d.admitted || (d.pending !== undefined && d.pending.complete);
    if (!progressed && !s.destroyed) stall.onStalled(s);
  }, ms).unref();
}

export function createConnectionBook(limits: { maxAgeMs: number; maxRequests: number }, now: () => number, onDropped: (req: IncomingMessage, cutMidBody: boolean) => void = () => {}, stall?: StallLimits) {
  const states = new Map<TLSSocket, ConnectionState>();
  let drainingHeadersMs: number | undefined;
  // Timed from the first byte of its head once one came (as Node times a head), else from the
  // handshake: a head begun just before the drain has its whole headers timeout (review of stop 36).
  const closeIfUnrequested = (s: TLSSocket, st: ConnectionState, headersTimeoutMs: number): void => {
    const check = (): void => {
      if (st.requests > 0 || s.destroyed) return;
      const left = (st.begunAt ?? st.openedAt) + headersTimeoutMs - now();
      if (left > 0) setTimeout(check, left).unref();
      else closeAsGateway(s);
    };
    setTimeout(check, Math.max(0, st.openedAt + headersTimeoutMs - now())).unref();
  };
  const settle = (st: ConnectionState) => {
    if (st.inFlight > 0) return;
    for (const w of st.idle.splice(0)) w();
  };
  return {
    opened(s: TLSSocket): void {
      const state: ConnectionState = { openedAt: now(), requests: 0, inFlight: 0, idle: [], retire: false, queued: [], closing: false, paused: false, admitted: 0 };
      states.set(s, state);
      s.once('data', () => (state.begunAt = now()));
      // Node resumes a socket it paused itself (`_paused`) as soon as an answer is written; one
      // paused here stays paused until its queue is empty (else each answer lets another chunk of
      // up to 16 KB of requests in: a flood behind a slow reader fills the memory).
      s.on('resume', () => {
        if (state.paused && !s.destroyed) pauseReading(s);
      });
      if (drainingHeadersMs !== undefined) closeIfUnrequested(s, state, drainingHeadersMs);
      s.once('close', () => {
        const st = states.get(s);
        states.delete(s);
        // Requests still queued when the connection closed were never handled: each is recorded
        // (ruling 19: one decision per request), none is run.
        if (st) { st.inFlight = 0; st.closing = true; for (const q of st.queued.splice(0)) onDropped(q.res.req, cutByGateway.has(s) && !q.res.req.complete); settle(st); }
      });
    },
    /**
     * Rulings 1 and 16 (RFC 9112 §9.3.2, §9.6): requests pipelined on one connection are handled one
     * at a time, in order — each starts when the answer before it is finished — and none after an
     * answer that closed the connection (a refusal of bad framing, an over-limit body, a retired
     * connection) is handled at all: a cancel queued behind a refused request never reaches the
     * provider. `run` receives whether this answer must close the connection (see `started`).
     */
    admit(s: TLSSocket, res: ServerResponse, run: (closeAfter: boolean) => void): void {
      const st = states.get(s);
      if (st?.closing) return void onDropped(res.req, false);
      if (st) {
        st.admitted += 1;
        st.last = res;
      }
      const go = () => run(this.started(s, res));
      if (st && (st.inFlight > 0 || st.queued.length > 0)) {
        // Backpressure: a client pipelining faster than it is answered is read no further until the
        // queue empties (each parsed request holds its request and response objects: unread, its
        // bytes wait in the kernel's buffers and then the client's).
        if (st.queued.push({ go, res }) >= MAX_PIPELINED) {
          st.paused = true;
          pauseReading(s);
        }
      } else go();
    },
    /** A request starts; true when its answer must close the connection (age, count, retired). */
    started(s: TLSSocket, res: ServerResponse): boolean {
      const st = states.get(s);
      if (!st) return false;
      st.requests += 1;
      st.inFlight += 1;
      st.current = res;
      res.once('close', () => {
        if (st.current === res) st.current = undefined;
        st.inFlight -= 1;
        // A retired connection (its certificate refused by a reloaded CRL) ends with the answers
        // already started: nothing queued behind them is handled (ruling 25).
        if (closesConnection(res) || st.retire) st.closing = true;
        if (st.retire && st.inFlight === 0) s.destroySoon();
        if (st.closing) {
          // An answer closed the connection: a queued request whose body was still arriving is cut by the gateway.
          for (const q of st.queued.splice(0)) onDropped(q.res.req, !q.res.req.complete);
        }
        // The next pipelined request starts (and counts as in flight) before a raw refusal queued
        // behind it may go out: answers stay in request order.
        if (st.inFlight === 0) st.queued.shift()?.go();
        if (st.queued.length === 0 && st.paused) {
          st.paused = false;
          // Nothing after an answer that closed the connection is read (its parser may have failed).
          if (!s.destroyed && !st.closing) {
            resumeReading(s);
            judgeDeferred(s, st, stall);
          }
        }
        settle(st);
      });
      return st.retire || st.requests >= limits.maxRequests || now() - st.openedAt >= limits.maxAgeMs;
    },
    /**
     * A headers/request timeout Node reports: true when `s` is read no further for now (paused
     * behind its queue: judged again once read, judgeDeferred; or its answers end it anyway), so
     * the report is not acted on; false when it is the client's and the connection must close.
     */
    deferTimeout(s: net.Socket): boolean {
      const st = states.get(s as TLSSocket);
      if (st === undefined || !(st.paused || st.closing)) return false;
      if (st.paused && !st.deferred) st.deferred = { admitted: st.admitted, pending: st.last && !st.last.req.complete ? st.last.req : undefined };
      return true;
    },
    /** Run `fn` once every answer started on `s` has finished (at once when none is in flight). */
    whenIdle(s: net.Socket, fn: () => void): void {
      const st = states.get(s as TLSSocket);
      if (!st || st.inFlight === 0) fn();
      else st.idle.push(fn);
    },
    /**
     * Draining: a connection that has not begun a request is closed when `limits.headersTimeoutMs`
     * since it opened has passed (Node stops that timer once the server closes, and does not count
     * such a connection as idle), so it cannot hold the drain to its deadline. One whose request
     * starts in time is served as any other.
     */
    /** The drain's end: every connection is cut by the gateway (a body still arriving on one is its refusal). */
    cutAll(): void {
      for (const s of states.keys()) cutByGateway.add(s);
    },
    /** Whether `s` has not begun a request yet (its handshake done, its first head not parsed). */
    unrequested(s: net.Socket): boolean {
      return states.get(s as TLSSocket)?.requests === 0;
    },
    closeUnrequested(headersTimeoutMs: number): void {
      drainingHeadersMs = headersTimeoutMs; // and for a connection whose handshake ends from now on
      for (const [s, st] of states) if (st.requests === 0) closeIfUnrequested(s, st, headersTimeoutMs);
    },
    /** Close every connection `refused` says no to: idle ones now, busy ones after their answers. */
    retire(refused: (s: TLSSocket) => boolean): number {
      let n = 0;
      for (const [s, st] of states) {
        if (!refused(s)) continue;
        n += 1;
        st.retire = true;
        // From now on nothing more of this connection is handled: a request pipelined or sent
        // after the reload is dropped, never forwarded (ruling 25: closed after its in-flight answer).
        st.closing = true;
        if (st.inFlight === 0) s.destroy();
        // Its answer in flight says so, not keep-alive: the client sends nothing more on it.
        else if (st.current && !st.current.headersSent) st.current.setHeader('Connection', 'close');
      }
      return n;
    },
  };
}

/** Connections the gateway itself cut (a request or header timeout): their clients did not leave. */
const cutByGateway = new WeakSet<net.Socket>();

/** Closes a connection for the gateway's own reason (ruling 16's timeouts). */
export function closeAsGateway(socket: net.Socket): void {
  cutByGateway.add(socket);
  socket.destroy();
}

/**
 * Whether the client left before its answer (recorded as 499): the response or the connection is
 * gone, or the connection can no longer be written (a client that hung up mid-body leaves it
 * unwritable before it is destroyed) — unless the gateway cut it itself, which is its refusal.
 */
export function clientLeft(req: IncomingMessage, res: ServerResponse): boolean {
  const s = req.socket as net.Socket | null;
  // Cut by the gateway while this request's body was still coming: its refusal. A whole request
  // on that connection (one pipelined ahead of the one that timed out) lost its answer: 499.
  if (s && cutByGateway.has(s) && !req.complete) return false;
  return res.destroyed || (s ? s.destroyed || !s.writable : false);
}
