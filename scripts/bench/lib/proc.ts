/**
 * What the benchmarks read about other processes from /proc (Linux): CPU time, peak resident set
 * and proportional set size, sampled over a run. Read from /proc rather than by spawning `ps`,
 * which would take CPU from the run being measured.
 *
 *   const s = new ProcSampler(() => nodeProcesses(dir));
 *   s.start(250);  ... s.stop();
 *   s.cpuMsAt(pid, Date.now())  // CPU time of pid at that wall time, interpolated between samples
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ, almost always 100). */
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU time of a process in ms, or undefined once it exited. */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: fields after it start past its closing paren.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the paren.
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS;
  } catch {
    return undefined;
  }
}

/** Peak resident set (MB) of a process, or undefined once it exited. */
export function peakRssMB(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Proportional set size (MB): the process's private pages plus its share of the pages it shares
 * with others (the code of node and of the bundle, mapped by every node process). Summed over
 * processes it is what they hold together, which RSS overcounts.
 */
export function pssMB(pid: number): number | undefined {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Processes whose command line contains every one of `parts`, with the nodes they run: the `--id`
 * of a node process, the `--ids` of a process of several nodes (launch --nodes-per-process).
 */
export function processesMatching(parts: readonly string[]): { pid: number; nodes?: number[] }[] {
  const found: { pid: number; nodes?: number[] }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let args: string;
    try {
      args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    if (!parts.every((p) => args.includes(p))) continue;
    const ids = / --ids? ([\d,]+)/.exec(args)?.[1]?.split(',').map(Number);
    found.push({ pid: Number(name), ...(ids ? { nodes: ids } : {}) });
  }
  return found;
}

interface Track {
  /** The nodes the process runs (one, or K with --nodes-per-process). */
  nodes?: number[];
  /** (wall ms, cpu ms) samples in time order. */
  cpu: [number, number][];
  peakRssMB: number;
  peakPssMB: number;
}

/**
 * Samples a changing set of processes: CPU time and peak RSS at every tick, PSS every
 * `pssEvery`-th tick (smaps_rollup walks the page tables: dearer than stat). Also the peak over
 * time of the PSS summed over all processes sampled at the same tick.
 */
export class ProcSampler {
  readonly tracks = new Map<number, Track>();
  peakTotalPssMB = 0;
  private timer: NodeJS.Timeout | undefined;
  private ticks = 0;

  constructor(
    private readonly list: () => { pid: number; nodes?: number[] }[],
    private readonly pssEvery = 4,
  ) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  sample(): void {
    const withPss = this.ticks++ % this.pssEvery === 0;
    let total = 0;
    for (const { pid, nodes } of this.list()) {
      const now = Date.now();
      const cpu = cpuMs(pid);
      if (cpu === undefined) continue;
      let t = this.tracks.get(pid);
      if (!t) {
        t = { cpu: [], peakRssMB: 0, peakPssMB: 0 };
        this.tracks.set(pid, t);
      }
      if (nodes !== undefined) t.nodes = nodes;
      t.cpu.push([now, cpu]);
      t.peakRssMB = Math.max(t.peakRssMB, peakRssMB(pid) ?? 0);
      if (withPss) {
        const pss = pssMB(pid) ?? 0;
        t.peakPssMB = Math.max(t.peakPssMB, pss);
        total += pss;
      }
    }
    this.peakTotalPssMB = Math.max(this.peakTotalPssMB, total);
  }

  /** CPU ms of `pid` at wall time `t`, linear between the samples around it (clamped at the ends). */
  cpuMsAt(pid: number, t: number): number | undefined {
    const s = this.tracks.get(pid)?.cpu;
    if (!s || s.length === 0) return undefined;
    if (t <= s[0]![0]) return s[0]![1];
    for (let i = 1; i < s.length; i++) {
      const [t1, c1] = s[i]!;
      if (t <= t1) {
        const [t0, c0] = s[i - 1]!;
        return t1 === t0 ? c1 : c0 + ((c1 - c0) * (t - t0)) / (t1 - t0);
      }
    }
    return s[s.length - 1]![1];
  }
}
