/**
 * A real cluster: `flatmesh launch` (the installed command: dist/src/cli/start.js, so build first)
 * with N node processes on Fashion-MNIST, MLP 784-200-200-10, 10 local steps per round, MATCHA at
 * budget 0.5 on ring-16.
 * `npm run bench -- cluster [--nodes 16] [--rounds 5] [--graph ring-16.json] [--codec f32]
 *                           [--backend wasm] [--steps 10]`
 *
 * Prints JSON lines:
 *   {"suite":"cluster","kind":"startup", "allConnectedMs": launch -> every node connected and in its
 *    first round, "allFirstRoundDoneMs": -> every node done with it, ...}
 *   {"suite":"cluster","kind":"overhead", per-round overhead = (roundMs - trainMs - waitMs) / roundMs,
 *    median/p90/mean over every node's rounds, and the mean of each phase}
 *   {"suite":"cluster","kind":"memory", peak RSS per node (VmHWM sampled from /proc, and the
 *    records' rssMB), numTensors across rounds}
 * The 16-process targets (issue 4): all in round 1 within 5 s of launch, overhead <= 10% of the
 * round, <= 250 MB RSS per node, numTensors flat across rounds.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExperiment } from '../../src/config/index.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import { readSummary } from '../../src/run/launcher.js';

const START = new URL('../../dist/src/cli/start.js', import.meta.url).pathname;

export async function run(args: string[]): Promise<void> {
  const opt = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] ? args[i + 1]! : def;
  };
  const nodes = Number(opt('nodes', '16'));
  const rounds = Number(opt('rounds', '5'));
  const steps = Number(opt('steps', '10'));
  const graph = opt('graph', nodes === 16 ? 'ring-16.json' : 'ring');
  const codec = opt('codec', 'f32');
  const backend = opt('backend', 'wasm');
  const cfg = parseExperiment({
    nodes,
    run: { seed: 1, rounds },
    topology: { graph, sampler: 'matcha', budget: 0.5 },
    data: { dataset: 'fashion-mnist', partition: 'dirichlet:0.1' },
    model: { kind: 'mlp', hidden: [200, 200] },
    train: { optimizer: 'sgd', lr: 0.05, batchSize: 32, localSteps: steps },
    gossip: { codec, deadlineMs: 30_000 },
    // Evaluate only at the last round: the overhead figure is about the exchange, not eval cost
    // (eval rounds are reported apart all the same).
    eval: { every: 1_000_000 },
    checkpoint: { every: 1_000_000 },
    backend,
  });
  const out = mkdtempSync(join(tmpdir(), 'flatmesh-bench-cluster-'));
  const peaks = new Map<number, { vmHWM: number; node?: number }>();
  const sample = () => {
    for (const { pid, node } of nodeProcesses(out)) {
      const hwm = vmHWM(pid);
      if (hwm === undefined) continue;
      const p = peaks.get(pid) ?? { vmHWM: 0 };
      p.vmHWM = Math.max(p.vmHWM, hwm);
      if (node !== undefined) p.node = node;
      peaks.set(pid, p);
    }
  };
  const sampler = setInterval(sample, 250);
  try {
    // The installed command, as a user runs it (the bundle and its code cache: `npm run build`).
    const expFile = join(out, 'experiment.json');
    writeFileSync(expFile, JSON.stringify(cfg));
    const t0 = Date.now();
    const code = await new Promise<number | null>((done) => {
      const child = spawn(
        process.execPath,
        [START, 'launch', '--config', expFile, '--out', join(out, 'run'), '--quiet'],
        {
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      );
      child.once('exit', (c) => done(c));
    });
    clearInterval(sampler);
    const wallS = (Date.now() - t0) / 1000;
    if (code !== 0) throw new Error(`flatmesh launch exited with ${code}`);
    const summary = readSummary(join(out, 'run'));
    const records: RoundRecord[] = Array.from({ length: nodes }, (_, i) =>
      readFileSync(join(out, 'run', 'nodes', String(i), 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as RoundRecord),
    ).flat();

    // Startup: launch -> every node done with round 0 (so in round 1), and with round 1.
    const doneBy = (round: number) => {
      const ts = records.filter((r) => r.round === round).map((r) => r.time);
      return ts.length === nodes ? Math.max(...ts) - t0 : null;
    };
    const firstRound0 = Math.min(...records.filter((r) => r.round === 0).map((r) => r.time)) - t0;
    emit({
      kind: 'startup',
      nodes,
      graph,
      codec,
      backend,
      // From the launcher's own clock (summary.json): every node connected to its neighbours and
      // in its first round (flatmesh numbers rounds from 0), and every node done with it.
      allConnectedMs: ms(summary.startup?.allConnectedSeconds),
      allFirstRoundDoneMs: ms(summary.startup?.allFirstRoundSeconds),
      // From the records' clocks, measured here from before the command started.
      firstNodeDoneRound0Ms: firstRound0,
      allDoneRound0Ms: doneBy(0),
      allDoneRound1Ms: doneBy(1),
      meanRound0Ms: round(mean(records.filter((r) => r.round === 0).map((r) => r.phases.roundMs))),
      wallSeconds: round(wallS),
      completed: summary.completed,
    });

    // Round overhead in steady state: after round 0 (which absorbs start-up skew between nodes)
    // and without evaluation rounds (the last round evaluates; its records carry an accuracy).
    const steady = records.filter((r) => r.round >= 1 && r.accuracy === undefined);
    for (const [label, set] of [
      ['round>=1, no eval', steady],
      ['all', records],
    ] as const) {
      const frac = set.map(
        (r) => (r.phases.roundMs - r.phases.trainMs - r.phases.waitMs) / r.phases.roundMs,
      );
      const phase = (k: keyof RoundRecord['phases']) => round(mean(set.map((r) => r.phases[k])));
      emit({
        kind: 'overhead',
        rounds: label,
        records: set.length,
        overheadMedian: round(quantile(frac, 0.5), 3),
        overheadP90: round(quantile(frac, 0.9), 3),
        overheadMean: round(mean(frac), 3),
        roundMs: phase('roundMs'),
        trainMs: phase('trainMs'),
        exchangeMs: phase('exchangeMs'),
        waitMs: phase('waitMs'),
        sendMs: round(mean(set.map((r) => r.phases.exchangeMs - r.phases.waitMs))),
        mixMs: phase('mixMs'),
        evalMs: phase('evalMs'),
        checkpointMs: phase('checkpointMs'),
        otherMs: round(
          mean(
            set.map(
              (r) =>
                r.phases.roundMs -
                r.phases.trainMs -
                r.phases.exchangeMs -
                r.phases.mixMs -
                r.phases.evalMs -
                r.phases.checkpointMs,
            ),
          ),
        ),
      });
    }

    for (let k = 0; k < rounds; k++) {
      const rs = records.filter((r) => r.round === k);
      emit({
        kind: 'round',
        round: k,
        overheadMedian: round(
          quantile(
            rs.map(
              (r) => (r.phases.roundMs - r.phases.trainMs - r.phases.waitMs) / r.phases.roundMs,
            ),
            0.5,
          ),
          3,
        ),
        roundMs: round(
          quantile(
            rs.map((r) => r.phases.roundMs),
            0.5,
          ),
        ),
        trainMs: round(
          quantile(
            rs.map((r) => r.phases.trainMs),
            0.5,
          ),
        ),
        waitMs: round(
          quantile(
            rs.map((r) => r.phases.waitMs),
            0.5,
          ),
        ),
        sendMs: round(
          quantile(
            rs.map((r) => r.phases.exchangeMs - r.phases.waitMs),
            0.5,
          ),
        ),
        evalMs: round(
          quantile(
            rs.map((r) => r.phases.evalMs),
            0.5,
          ),
        ),
      });
    }

    // Memory: sampled peak RSS of the node processes, the records' rssMB, tensors across rounds.
    const hwm = [...peaks.values()].map((p) => p.vmHWM / 1024);
    const byNode = new Map<number, RoundRecord[]>();
    for (const r of records) byNode.set(r.node, [...(byNode.get(r.node) ?? []), r]);
    const tensorGrowth = [...byNode.values()].map((rs) => {
      const t = rs.filter((r) => r.round >= 1).map((r) => r.numTensors);
      return t.length ? Math.max(...t) - Math.min(...t) : 0;
    });
    emit({
      kind: 'memory',
      processesSampled: hwm.length,
      peakRssMBMax: round(Math.max(0, ...hwm)),
      peakRssMBMedian: round(quantile(hwm, 0.5)),
      recordRssMBMax: round(Math.max(0, ...records.map((r) => r.rssMB))),
      numTensorsGrowthMax: Math.max(0, ...tensorGrowth),
    });
  } finally {
    clearInterval(sampler);
    rmSync(out, { recursive: true, force: true });
  }
}

/**
 * Node processes of this run: their command line names the run's directory. Read from /proc, not
 * by spawning `ps` every 250 ms, which took CPU from the start-up being measured.
 */
function nodeProcesses(out: string): { pid: number; node?: number }[] {
  const found: { pid: number; node?: number }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let args: string;
    try {
      args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    if (!args.includes(out) || !args.includes(' node ')) continue;
    const id = / --id (\d+)/.exec(args);
    found.push({ pid: Number(name), ...(id ? { node: Number(id[1]) } : {}) });
  }
  return found;
}

/** Peak resident set (kB) of a process, or undefined once it exited. */
function vmHWM(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ suite: 'cluster', ...o })}\n`);
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

function ms(seconds: number | null | undefined): number | null {
  return seconds === null || seconds === undefined ? null : Math.round(seconds * 1000);
}

function round(x: number, digits = 1): number {
  const k = 10 ** digits;
  return Math.round(x * k) / k;
}
