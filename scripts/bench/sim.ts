/**
 * The simulator, batched (`flatmesh sim --batched`) against unbatched, on the same experiment in
 * the same process, one after the other: time, CPU (and where it went), round times, and how far
 * the figures agree.
 *
 *   npm run bench -- sim [--case preset16|nodes1000] [--rounds R] [--engines unbatched,batched]
 *                        [--set path=value ...]
 *
 * Cases:
 *   preset16   scripts/presets/fashion-mnist-ring16.yaml as it is (16 nodes, 150 rounds, MATCHA on
 *              ring-16, MLP 784-200-200-10, 10 steps of 32, evaluation every 10 rounds and of the
 *              last 5, SWA); target (issue 14): <= 2 minutes CPU on one core.
 *   nodes1000  1,000 nodes on a ring, all edges every round with Metropolis weights, Fashion-MNIST
 *              split Dirichlet(0.1), MLP 784-200-200-10, 10 local SGD steps of 32 at lr 0.05,
 *              evaluation only at the last round (on 1,000 test samples), 4 rounds by default
 *              (`--engines batched` skips the unbatched run, which takes minutes per round); the
 *              figure is the CPU (and wall) time of the rounds without evaluation
 *              (roundCpuSWithoutEval, roundSWithoutEval).
 *              Target: <= 10 s per round.
 * `--set` overrides fields of either (e.g. `--set eval.every=1000 --set eval.tail=0`).
 *
 * Prints JSON lines (suite "sim"):
 *   {"kind":"run","engine":"batched","wallS":..,"cpuS":..,"cpuByPhaseS":{..},"roundS":{..},
 *    "roundSWithoutEval":{..},"roundCpuSWithoutEval":{median,p90,max},...figures}
 *   {"kind":"agreement","maxWeightDiff":..,"meanAccuracyDiff":..,...}   (with both engines)
 * cpuByPhaseS: process CPU seconds spent inside local training, batched evaluation (the unbatched
 * engine's evaluation runs inside the round and counts under `rest`), mixing, SWA updates, and the
 * rest (exchange through the wire codec, records, evaluation of the unbatched engine, start-up).
 * evalWallS: the records' evaluation time summed over nodes (wall time, both engines).
 */
import { cpus, loadavg } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { loadExperiment } from '../../src/config/index.js';
import type { Experiment } from '../../src/config/schema.js';
import { BatchedMlpTrainer } from '../../src/learn/batched-mlp.js';
import { LocalTrainer, SwaAverage } from '../../src/learn/index.js';
import { Mixer } from '../../src/node/mix.js';
import { BatchedEvaluation } from '../../src/run/batched-sim.js';
import { simulate } from '../../src/run/simulate.js';
import { round, spread } from './lib/stats.js';

function flag(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

function flags(args: string[], name: string): string[] {
  return args.flatMap((a, i) => (a === `--${name}` && args[i + 1] ? [args[i + 1]!] : []));
}

const NODES1000 = {
  nodes: 1000,
  'run.seed': 1,
  'topology.graph': 'ring',
  'topology.sampler': 'vanilla',
  'data.dataset': 'fashion-mnist',
  'data.partition': 'dirichlet:0.1',
  'model.kind': 'mlp',
  'model.hidden': [200, 200],
  'train.optimizer': 'sgd',
  'train.lr': 0.05,
  'train.batchSize': 32,
  'train.localSteps': 10,
  'train.weightDecay': 0,
  'gossip.mixing': 'metropolis',
  'eval.every': 1_000_000,
  'eval.tail': 0,
  'eval.limit': 1000,
  'swa.enabled': false,
};

function experiment(kind: string, rounds: string, set: string[]): Experiment {
  const overrides: Record<string, unknown> = {};
  for (const s of set) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new Error(`--set: must look like path.to.field=value (got ${s})`);
    overrides[s.slice(0, eq)] = parseYaml(s.slice(eq + 1));
  }
  if (kind === 'preset16') {
    return loadExperiment({
      file: new URL('../presets/fashion-mnist-ring16.yaml', import.meta.url).pathname,
      overrides: { ...(rounds && { 'run.rounds': Number(rounds) }), ...overrides },
    });
  }
  if (kind === 'nodes1000') {
    return loadExperiment({
      overrides: { ...NODES1000, 'run.rounds': Number(rounds || 4), ...overrides },
    });
  }
  throw new Error(`--case: must be preset16 or nodes1000 (got ${kind})`);
}

/** CPU seconds spent inside the wrapped methods, by phase (outermost call only). */
class PhaseCpu {
  readonly seconds: Record<string, number> = {};
  private depth = 0;
  private readonly restore: (() => void)[] = [];

  wrap(proto: object, method: string, phase: string): void {
    const p = proto as Record<string, (...a: unknown[]) => unknown>;
    const original = p[method]!;
    const self = this;
    p[method] = function (this: unknown, ...a: unknown[]) {
      if (self.depth > 0) return original.apply(this, a);
      self.depth++;
      const c0 = process.cpuUsage();
      try {
        return original.apply(this, a);
      } finally {
        const c = process.cpuUsage(c0);
        self.seconds[phase] = (self.seconds[phase] ?? 0) + (c.user + c.system) / 1e6;
        self.depth--;
      }
    };
    this.restore.push(() => {
      p[method] = original;
    });
  }

  unwrap(): void {
    for (const r of this.restore.splice(0)) r();
  }
}

export async function run(args: string[]): Promise<void> {
  const kind = flag(args, 'case', 'preset16');
  const cfg = experiment(kind, flag(args, 'rounds', ''), flags(args, 'set'));
  const engines = flag(args, 'engines', 'unbatched,batched').split(',');
  const compare = engines.includes('batched') && engines.includes('unbatched');
  const finals = new Map<string, Map<number, Float32Array>>();
  const figures = new Map<string, Record<string, number | null>>();
  for (const engine of engines) {
    if (engine !== 'batched' && engine !== 'unbatched') {
      throw new Error(`--engines: each must be batched or unbatched (got ${engine})`);
    }
    const lastOfRound = new Map<number, number>();
    // Process CPU when the last node's record of round k arrived (the rounds overlap a little:
    // a node may start round k+1 before the last one ends round k).
    const cpuAtRound = new Map<number, number>();
    const last = new Map<number, Float32Array>();
    const evalRounds = new Set<number>();
    let evalWallMs = 0;
    const phases = new PhaseCpu();
    phases.wrap(LocalTrainer.prototype, 'train', 'training');
    phases.wrap(BatchedMlpTrainer.prototype, 'train', 'training');
    phases.wrap(BatchedEvaluation.prototype, 'flush', 'evaluation');
    phases.wrap(Mixer.prototype, 'mix', 'mixing');
    phases.wrap(SwaAverage.prototype, 'update', 'swa');
    phases.wrap(SwaAverage.prototype, 'assign', 'swa');
    const load0 = loadavg();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const s = await simulate(cfg, {
      batched: engine === 'batched',
      onRound: (r) => {
        lastOfRound.set(r.round, Math.max(lastOfRound.get(r.round) ?? 0, performance.now()));
        const c = process.cpuUsage(cpu0);
        cpuAtRound.set(r.round, (c.user + c.system) / 1e6);
        if (r.accuracy !== undefined) evalRounds.add(r.round);
        evalWallMs += r.phases.evalMs;
      },
      // The final weights, to compare the engines (a copy of every node's weights every round).
      ...(compare && {
        onWeights: (node: number, k: number, x: Float32Array) => {
          if (k === cfg.run.rounds - 1) last.set(node, x);
        },
      }),
    }).finally(() => phases.unwrap());
    const cpu = process.cpuUsage(cpu0);
    const cpuS = (cpu.user + cpu.system) / 1e6;
    const wallS = (performance.now() - t0) / 1000;
    const known = Object.values(phases.seconds).reduce((a, b) => a + b, 0);
    // Round k's time: from the last node finishing round k-1 to the last finishing round k.
    const roundS: number[] = [];
    const plainRoundS: number[] = [];
    const plainRoundCpuS: number[] = [];
    for (let k = 1; k < cfg.run.rounds; k++) {
      const dt = ((lastOfRound.get(k) ?? 0) - (lastOfRound.get(k - 1) ?? 0)) / 1000;
      roundS.push(dt);
      if (evalRounds.has(k)) continue;
      plainRoundS.push(dt);
      plainRoundCpuS.push((cpuAtRound.get(k) ?? 0) - (cpuAtRound.get(k - 1) ?? 0));
    }
    const fig = {
      meanAccuracy: s.meanAccuracy,
      meanSwaAccuracy: s.meanSwaAccuracy,
      accuracyOfAverageModel: s.accuracyOfAverageModel,
      finalDisagreement: s.finalDisagreement,
    };
    finals.set(engine, last);
    figures.set(engine, fig);
    process.stdout.write(
      `${JSON.stringify({
        suite: 'sim',
        kind: 'run',
        case: kind,
        engine,
        nodes: cfg.nodes,
        rounds: cfg.run.rounds,
        backend: (await import('@tensorflow/tfjs')).getBackend(),
        wallS: round(wallS, 2),
        cpuS: round(cpuS, 2),
        cpuByPhaseS: Object.fromEntries(
          [...Object.entries(phases.seconds), ['rest', cpuS - known] as const].map(([k, v]) => [
            k,
            round(v, 2),
          ]),
        ),
        evalWallS: round(evalWallMs / 1000, 2),
        roundS: spread(roundS, 3),
        roundSWithoutEval: spread(plainRoundS, 3),
        roundCpuSWithoutEval: spread(plainRoundCpuS, 3),
        ...fig,
        cores: cpus().length,
        loadavgBefore: load0.map((x) => round(x, 2)),
        loadavgAfter: loadavg().map((x) => round(x, 2)),
      })}\n`,
    );
  }
  const a = finals.get('unbatched');
  const b = finals.get('batched');
  if (a && b) {
    let maxDiff = 0;
    for (const [node, x] of a) {
      const y = b.get(node)!;
      for (let i = 0; i < x.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x[i]! - y[i]!));
    }
    const fa = figures.get('unbatched')!;
    const fb = figures.get('batched')!;
    const diff = (k: string) =>
      fa[k] === null || fb[k] === null ? null : Math.abs(fa[k]! - fb[k]!);
    process.stdout.write(
      `${JSON.stringify({
        suite: 'sim',
        kind: 'agreement',
        case: kind,
        maxWeightDiff: maxDiff,
        meanAccuracyDiff: diff('meanAccuracy'),
        meanSwaAccuracyDiff: diff('meanSwaAccuracy'),
        accuracyOfAverageModelDiff: diff('accuracyOfAverageModel'),
        finalDisagreementDiff: diff('finalDisagreement'),
      })}\n`,
    );
  }
}
