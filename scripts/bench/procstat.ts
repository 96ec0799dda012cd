/**
 * Linux /proc readers for the bench: CPU time of a process (all its threads: V8's GC and libuv's
 * pool included), its resident set, and the whole machine's busy time.
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let ticks: number | undefined;
/** Clock ticks per second of /proc/<pid>/stat (getconf CLK_TCK, nearly always 100). */
export function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** User and system (kernel) CPU milliseconds of a process, or undefined when it is gone. */
export function processCpu(pid: number, hz = clockTicks()): { user: number; system: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return { user: (Number(fields[11]) * 1000) / hz, system: (Number(fields[12]) * 1000) / hz };
  } catch {
    return undefined;
  }
}

/** user + system CPU milliseconds of a process, or undefined when it is gone. */
export function processCpuMs(pid: number, hz = clockTicks()): number | undefined {
  const c = processCpu(pid, hz);
  return c ? c.user + c.system : undefined;
}

function statusKiB(pid: number, key: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
/** Resident set now, KiB. */
export const rssKiB = (pid: number) => statusKiB(pid, 'VmRSS');
/** Peak resident set over the process's life, KiB. */
export const peakRssKiB = (pid: number) => statusKiB(pid, 'VmHWM');

/** Direct children of a process (nginx workers under their master). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Machine-wide busy and total jiffies (first line of /proc/stat). */
export function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}
