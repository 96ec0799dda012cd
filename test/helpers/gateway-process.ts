import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../src/paths.js';

/** A gateway process (node dist/src/main.js) started on a configuration file. */
/** `logs`: every stdout line so far (decision lines, audit records on stdout). */
export interface Gw { proc: ChildProcess; port: number; adminPort: number; logs: string[] }

/** Start a gateway process on a config file; resolves once it logged "ready" (its real ports). */
export function startGateway(configFile: string): Promise<Gw> {
  const proc = spawn(process.execPath, [join(packageRoot, 'dist/src/main.js'), '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout! });
    const logs: string[] = [];
    let err = '';
    proc.stderr!.on('data', (c) => (err += String(c)));
    proc.once('exit', (code) => { if (code) process.stderr.write(`[gw exit ${code}] ${err.slice(0, 800)}\n`); reject(new Error(`gateway exited ${code}: ${err.slice(0, 500)}`)); });
    lines.on('line', (l) => {
      logs.push(l);
      try {
        const j = JSON.parse(l) as { msg?: string; port?: number; adminPort?: number };
        if (j.msg === 'ready') resolve({ proc, port: j.port!, adminPort: j.adminPort!, logs });
      } catch { /* not JSON */ }
    });
  });
}

