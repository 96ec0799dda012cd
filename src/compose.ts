import type { IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { createMemoryLock } from './adapters/lock-memory.js';
import { createNoVault } from './adapters/vault-none.js';
import type { StoreConfig } from './config.js';
import { noStoreMetrics, type StoreMetrics } from './store/metrics.js';
import { sealerFromFiles } from './store/seal.js';
import { jsonCodec } from './adapters/codec-json.js';
import { xmlCodec } from './adapters/codec-xml.js';
import { createHttpProvider } from './adapters/provider-http.js';
import { createHistoryRead } from './cancel/history.js';
import { createWriteTransaction } from './cancel/transaction.js';
import { createCheckPlan } from './checks/index.js';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { AuditSink } from './ops/audit.js';
import { createPipeline } from './pipeline.js';
import { systemClock, type Clock } from './ports/clock.js';
import type { Lane } from './edge/large-body-lane.js';
import type { Codec } from './ports/codec.js';
import { LockUnavailable, type LockPort } from './ports/lock.js';
import { noTracer, type Tracer } from './ports/tracer.js';
import { VaultUnavailable, type VaultPort } from './ports/vault.js';
import { createForwarder } from './proxy/forward.js';
import { createUpstream } from './proxy/upstream.js';
import { createRouter } from './route.js';
import { STANDARDS } from './standards/index.js';
import { assertClientPair, assertTrustBundle } from './tls/trust-bundle.js';

/**
 * The composition root (issue 12): the only file that names an adapter. Configuration in, a
 * request handler out.
 */

/** What lives as long as the process, across configuration reloads (ruling 10 holds across them). */
export interface LongLived {
  lock: LockPort;
  vault: VaultPort;
  codecs: readonly Codec[];
  /** Large bodies are checked one per turn of the event loop (issue 13 item 3), across reloads too. */
  largeBodies: Lane;
  /** Writes in doubt still holding their appointment (ruling 23): shutdown waits them out, across reloads too. */
  holdsInDoubt: Set<Promise<void>>;
}

export interface Shared extends LongLived {
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  audit: AuditSink;
  clientAllowed: (req: IncomingMessage) => boolean;
  draining: () => boolean;
  tracer: Tracer;
}

/** How long a cancel may wait for another cancel of the same appointment (then 500, nothing forwarded). */
const DEFAULT_LOCK_WAIT_MS = 30_000;

/**
 * The store a configuration asks for (oauth2-proxy's factory keyed on config): memory = the
 * in-process lock and no vault; sqlite = the in-process lock and the file vault; postgres = the
 * shared advisory lock and the shared vault. Used by compose.ts and by the `vault` commands.
 */
export interface Store {
  kind: StoreConfig['kind'];
  lock: LockPort;
  vault: VaultPort;
  close(): Promise<void>;
}

export interface StoreDeps {
  clock?: Clock;
  metrics?: StoreMetrics;
  /** false: the vault only (the `vault` commands take no locks). Default true. */
  lock?: boolean;
  /** The gateway's own open: a sqlite file is held for this process alone. */
  exclusive?: boolean;
  /** A sqlite file must exist already (the `vault` commands read or change a store, never create one). */
  existing?: boolean;
}

/** Whether another gateway process holds the sqlite file (check-config's warning; the adapter loads only here). */
export async function sqliteHeldByAnotherProcess(path: string): Promise<boolean> {
  const { heldByAnotherProcess } = await import('./adapters/vault-sqlite.js');
  return heldByAnotherProcess(path);
}

/** Opens the store; rejects with VaultUnavailable (database), KeyFileError (keys) or Error. */
export async function openStore(s: Readonly<StoreConfig>, deps: StoreDeps = {}): Promise<Store> {
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics ?? noStoreMetrics;
  if (s.kind === 'memory') {
    const lock = createMemoryLock({ clock, metrics });
    return { kind: s.kind, lock, vault: createNoVault(), close: () => lock.close() };
  }
  const sealer = sealerFromFiles(s.encryptionKeyFile, s.decryptionKeyFiles);
  // The database drivers load only for the store that uses them (issue 17: memory at start-up).
  if (s.kind === 'sqlite') {
    const { createSqliteVault } = await import('./adapters/vault-sqlite.js');
    const vault = createSqliteVault({ path: s.path!, timeoutMs: s.timeoutMs, sealer, clock, metrics, exclusive: deps.exclusive === true, existing: deps.existing === true });
    const lock = createMemoryLock({ clock, metrics });
    return { kind: s.kind, lock, vault, close: async () => { await lock.close(); await vault.close(); } };
  }
  const conn = {
    url: s.url!,
    timeoutMs: s.timeoutMs,
    ...(s.tls ? { tls: { rejectUnauthorized: s.tls.rejectUnauthorized, ...(s.tls.ca ? { ca: readFileSync(s.tls.ca) } : {}), ...(s.tls.cert && s.tls.key ? { cert: readFileSync(s.tls.cert), key: readFileSync(s.tls.key) } : {}) } } : {}),
  };
  const [{ createPostgresVault }, { createPostgresLock }] = await Promise.all([import('./adapters/vault-postgres.js'), import('./adapters/lock-postgres.js')]);
  const vault = await createPostgresVault({ ...conn, poolSize: s.poolSize, sealer, clock, metrics });
  if (deps.lock === false) return { kind: s.kind, lock: createMemoryLock({ clock }), vault, close: () => vault.close() };
  const lock = createPostgresLock({ ...conn, lockPoolSize: s.lockPoolSize, clock, metrics });
  return { kind: s.kind, lock, vault, close: async () => { await lock.close(); await vault.close(); } };
}

/**
 * Tracing lives as long as the process (a reload does not change it). Off -> the no-op tracer, and
 * the OpenTelemetry SDK is never loaded (importing it costs about half a second and 17 MB at start).
 */
export async function createTracer(config: Readonly<Config>): Promise<Tracer> {
  const t = config.tracing;
  if (!t.enabled || !t.otlpEndpoint) return noTracer;
  const { createOtelTracer } = await import('./adapters/tracer-otel.js');
  return createOtelTracer({ serviceName: t.serviceName, otlpEndpoint: t.otlpEndpoint, sampleRatio: t.sampleRatio });
}

/** Everything a request is handled with, built from one configuration; swapped on reload. */
export function createHandling(cfg: Readonly<Config>, shared: Shared, onClosed?: () => void) {
  const standard = STANDARDS[cfg.standard];
  // A CA file that holds no certificate would fail every provider or key-set connection: refused
  // here, so start-up fails and a reload or file change keeps the current handling.
  if (cfg.upstream.ca) assertTrustBundle(cfg.upstream.ca, 'upstream.ca');
  if (cfg.jwt.mode === 'signed' && cfg.jwt.jwksCa) assertTrustBundle(cfg.jwt.jwksCa, 'jwt.jwksCa');
  if (cfg.upstream.cert || cfg.upstream.key) assertClientPair(cfg.upstream.cert, cfg.upstream.key);
  const upstream = createUpstream(cfg);
  const provider = createHttpProvider({ url: cfg.upstream.url, ca: cfg.upstream.ca, cert: cfg.upstream.cert, key: cfg.upstream.key, connections: cfg.upstream.writeConnections, clock: shared.clock });
  const transaction = createWriteTransaction({
    provider, lock: shared.lock, vault: shared.vault, clock: shared.clock, codecs: shared.codecs,
    changeSets: standard.changeSets, logger: shared.logger, metrics: shared.metrics,
    publicBaseUrl: cfg.publicBaseUrl, report: cfg.report, holdsInDoubt: shared.holdsInDoubt,
    timeouts: {
      upstreamMs: cfg.upstream.timeoutMs, bodyMs: cfg.upstream.bodyTimeoutMs, inDoubtHoldMs: cfg.upstream.inDoubtHoldMs ?? cfg.upstream.timeoutMs,
      lockWaitMs: cfg.store.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS, maxAnswerBytes: cfg.upstream.maxAnswerBytes,
    },
  });
  const history = createHistoryRead({
    provider, vault: shared.vault, codecs: shared.codecs,
    exchange: { deadlineMs: cfg.upstream.timeoutMs, bodyDeadlineMs: cfg.upstream.bodyTimeoutMs, maxBytes: cfg.upstream.maxAnswerBytes },
    // Counted by the store adapter (cancel_gateway_store_errors_total); named here.
    onVaultError: (e) => shared.logger.error('a kept version could not be read from the store', { error: (e as Error)?.name }),
    onUpstreamError: (kind) => shared.metrics.upstreamErrors.inc({ kind }),
    now: () => shared.clock.now(),
  });
  const forwarder = createForwarder(cfg, standard, upstream, { logger: shared.logger, metrics: shared.metrics, codecs: shared.codecs });
  const pipeline = createPipeline({
    config: cfg, standard, plan: createCheckPlan(cfg, standard, { clock: shared.clock, codecs: shared.codecs, logger: shared.logger }),
    router: createRouter(standard, { amend: cfg.interactions.amend }), forwarder, transaction, history,
    logger: shared.logger, metrics: shared.metrics, audit: shared.audit, clientAllowed: shared.clientAllowed, draining: shared.draining, tracer: shared.tracer, codecs: shared.codecs,
    largeBodies: shared.largeBodies,
  });
  let inFlight = 0;
  let retired = false;
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    onClosed?.();
    forwarder.close();
    upstream.close();
    provider.close().catch(() => undefined); // already destroyed by abortInFlight, or closing
  };
  const end = (): void => {
    if (--inFlight === 0 && retired) close();
  };
  return {
    config: cfg, standard, upstream, provider, pipeline,
    /** A request handled with this configuration starts; call the returned function when it has ended. */
    begin(): () => void {
      inFlight++;
      return end;
    },
    /**
     * Replaced by a reload: its provider connections close once the requests it is handling have
     * ended, however long they wait for a lock or a provider (at once when there are none).
     */
    retire(): void {
      retired = true;
      if (inFlight === 0) close();
    },
    close,
    /** Past the drain deadline: provider exchanges still in flight are aborted, so their requests end and are recorded. */
    abortInFlight: async () => {
      transaction.abortWaiting();
      forwarder.abortInFlight();
      await (provider.abort?.() ?? Promise.resolve());
    },
  };
}

export type Handling = ReturnType<typeof createHandling>;

/**
 * The store as the gateway holds it from construction: bound to the opened store at listen()
 * (sqlite and PostgreSQL open asynchronously). Until then every operation fails closed.
 */
export function createLateStore() {
  let target: Store | undefined;
  const notOpen = () => new LockUnavailable('store', 'the state store is not open');
  const lock: LockPort = {
    hold: (key, opts, fn) => (target ? target.lock.hold(key, opts, fn) : Promise.reject(notOpen())),
    ping: () => (target ? target.lock.ping() : Promise.reject(notOpen())),
    close: async () => {},
  };
  const vault: VaultPort = {
    keep: (e, held) => (target ? target.vault.keep(e, held) : Promise.reject(new VaultUnavailable('the state store is not open'))),
    link: (id, a, held) => (target ? target.vault.link(id, a, held) : Promise.reject(new VaultUnavailable('the state store is not open'))),
    version: (id, vid) => (target ? target.vault.version(id, vid) : Promise.resolve(undefined)),
    history: (id) => (target ? target.vault.history(id) : Promise.resolve([])),
    all: () => (target ? target.vault.all() : (async function* () {})()),
    purge: (before) => (target ? target.vault.purge(before) : Promise.resolve(0)),
    ping: () => (target ? target.vault.ping() : Promise.reject(new VaultUnavailable('the state store is not open'))),
    close: async () => {},
  };
  return {
    lock,
    vault,
    bind(store: Store) {
      target = store;
    },
    get kind() {
      return target?.kind;
    },
    close: () => target?.close() ?? Promise.resolve(),
  };
}

/** The wire formats the gateway reads and writes (ruling 21). */
export const CODECS: readonly Codec[] = [jsonCodec, xmlCodec];
