import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * A throwaway PostgreSQL 15 cluster for the tests and `npm run bench` (issue 18 item 6): initdb into a temporary
 * folder owned by the `postgres` OS user, started as that user on a free 127.0.0.1 port with its
 * socket in the same folder, trust authentication; removed at the end. One per test file.
 *
 * The binaries are not on PATH (Debian's postgresql-15 package); .ci/run installs the package
 * when they are missing. `pgMissing()` says why a test cannot run, for `t.skip`.
 */
export const PG_BIN = '/usr/lib/postgresql/15/bin';

export function pgMissing(): string | undefined {
  if (!existsSync(join(PG_BIN, 'initdb'))) return `PostgreSQL 15 is not installed (${PG_BIN}/initdb missing; apt-get install postgresql-15)`;
  if (process.getuid?.() !== 0) return 'starting a throwaway PostgreSQL cluster needs root (to run it as the postgres user)';
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0) return 'there is no postgres OS user';
  return undefined;
}

export interface PgCluster {
  /** postgres://postgres@127.0.0.1:port/postgres */
  url: string;
  /** The same server over its Unix socket (in the cluster's folder). */
  socketUrl: string;
  port: number;
  /** Stops the server at once (the data stays): "PostgreSQL stopped mid-run". */
  stop(): void;
  /** Starts it again on the same port and waits until it accepts connections. */
  start(): Promise<void>;
  /** A fresh database in this cluster (one per test keeps tests apart); returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs one statement as the superuser on the postgres database. */
  sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Stops the server and removes the folder. */
  destroy(): void;
}

/**
 * A free port below Linux's ephemeral range (32768–60999): a port the kernel hands out for port 0
 * or an outgoing connection could be taken by another test between this check and the server's
 * start (or its restart, which keeps the port). Tried at random until one binds.
 */
async function freePort(): Promise<number> {
  for (let tries = 0; ; tries++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
    if (tries > 200) throw new Error('no free port for PostgreSQL between 20000 and 32000');
  }
}

function asPostgres(cmd: string, args: string[]): void {
  execFileSync('runuser', ['-u', 'postgres', '--', join(PG_BIN, cmd), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Polls a real connection until the server answers (no fixed sleep); gives up after `ms`. */
async function waitReady(url: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  let last: unknown;
  while (Date.now() < until) {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      return;
    } catch (e) {
      last = e;
      await c.end().catch(() => {});
      // Yield to the event loop before the next attempt; the server is starting.
      await new Promise((r) => setImmediate(r));
    }
  }
  throw new Error(`PostgreSQL did not become ready: ${(last as Error)?.message}`);
}

/**
 * `ssl`: serve TLS with this certificate and key (PEM); plain connections are still accepted. With
 * `clientCa` and `certUser`, that role (created, a superuser) logs in over TLS by a client
 * certificate issued by `clientCa` whose CN is its name, and by nothing else.
 */
export async function startPostgres(o: { ssl?: { cert: string; key: string; clientCa?: string; certUser?: string } } = {}): Promise<PgCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-pg-'));
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  if (o.ssl) {
    // PostgreSQL refuses a key file readable by others, or not owned by its user.
    for (const [name, pem] of [['server.crt', o.ssl.cert], ['server.key', o.ssl.key]] as const) {
      writeFileSync(join(dir, name), pem, { mode: 0o600 });
      chownSync(join(dir, name), uid, gid);
    }
    options += ` -c ssl=on -c ssl_cert_file=${join(dir, 'server.crt')} -c ssl_key_file=${join(dir, 'server.key')}`;
    if (o.ssl.clientCa && o.ssl.certUser) {
      writeFileSync(join(dir, 'client-ca.crt'), o.ssl.clientCa, { mode: 0o600 });
      chownSync(join(dir, 'client-ca.crt'), uid, gid);
      options += ` -c ssl_ca_file=${join(dir, 'client-ca.crt')}`;
      // First match wins: the certificate user only by certificate, everyone else as initdb set it.
      const hba = join(data, 'pg_hba.conf');
      writeFileSync(hba, `hostssl all ${o.ssl.certUser} 127.0.0.1/32 cert\nhost all ${o.ssl.certUser} 127.0.0.1/32 reject\n${readFileSync(hba, 'utf8')}`);
    }
  }
  let running = false;
  const start = async (): Promise<void> => {
    asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-o', options, '-W', 'start']);
    running = true;
    await waitReady(url, 30_000);
  };
  const stop = (): void => {
    if (!running) return;
    running = false;
    try {
      asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // already down
    }
  };
  await start();
  const sql = async <R extends pg.QueryResultRow>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>> => {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    try {
      return await c.query<R>(text, params);
    } finally {
      await c.end().catch(() => {});
    }
  };
  if (o.ssl?.clientCa && o.ssl.certUser) await sql(`CREATE ROLE "${o.ssl.certUser.replace(/"/g, '')}" LOGIN SUPERUSER`);
  return {
    url,
    socketUrl: `postgres://postgres@localhost/postgres?host=${encodeURIComponent(dir)}&port=${port}`,
    port,
    stop,
    start,
    sql,
    async createDatabase(name) {
      await sql(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      return `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(name)}`;
    },
    destroy() {
      stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
