import type { Writable } from 'node:stream';
import { jsonLine, linesTo } from './ops/line-batch.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level | 'silent', number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * JSON lines, one object per event. Callers pass decision fields only; bodies, tokens and patient
 * data are never handed to the logger (a test sends a request with a known NHS number and name
 * and asserts neither appears in any log line). A dependency-free writer keeps start-up fast.
 */
export function createLogger(level: Level | 'silent', to: Writable | { write(s: string): unknown } = process.stdout): Logger {
  const min = ORDER[level];
  const out = linesTo(to);
  const write = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    // One serialisation of the caller's fields after our three (issue 17); a caller naming one of
    // ours gets the merged object, in which its value wins, as before.
    if (fields === undefined || !('time' in fields || 'level' in fields || 'msg' in fields)) {
      out.write(jsonLine(`"time":"${new Date().toISOString()}","level":"${lvl}","msg":${JSON.stringify(msg)}`, fields));
      return;
    }
    out.write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields }) + '\n');
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}
