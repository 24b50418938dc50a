/**
 * What several benches measure and print: percentiles, rounding, and a process's memory and
 * CPU from /proc. (bench/support is not a bench; `npm run bench` does not list it.)
 */
import { readFileSync } from 'node:fs';

/** The p-th percentile (nearest rank) of `xs`, which need not be sorted. */
export function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
}

/** Rounded to one decimal. */
export const r1 = (x: number): number => Math.round(x * 10) / 10;

/** A memory figure of a process in MB from /proc/PID/status (VmRSS, VmHWM, RssAnon...); NaN when gone. */
export function statusMb(pid: number | undefined, field = 'VmRSS'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    );
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Resident memory of a process in MB (VmRSS); NaN when it is gone. */
export const rssMb = (pid: number | undefined): number => statusMb(pid, 'VmRSS');

/**
 * Proportional set size in MB (/proc/PID/smaps_rollup): resident pages, each shared page
 * divided by the number of processes mapping it (the node executable, shared by every proxy
 * on a host). NaN when the process is gone.
 */
export function pssMb(pid: number | undefined): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** User + system CPU time of a process so far, in ms (/proc/PID/stat, 100 ticks/s). */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}
