/**
 * The simulator, batched (`flatmesh sim --batched`) against unbatched, on the same experiment in
 * the same process, one after the other: time, CPU, round times, and how far the figures agree.
 *
 *   npm run bench -- sim [--case preset16|nodes1000] [--rounds R] [--engines unbatched,batched]
 *
 * Cases:
 *   preset16   scripts/presets/fashion-mnist-ring16.yaml as it is (16 nodes, 150 rounds, MATCHA on
 *              ring-16, MLP 784-200-200-10, 10 steps of 32, evaluation every 10 rounds and SWA);
 *              target (issue 14): <= 2 minutes on one core.
 *   nodes1000  1,000 nodes on a ring, all edges every round with Metropolis weights, Fashion-MNIST
 *              split Dirichlet(0.1), MLP 784-200-200-10, 10 local SGD steps of 32 at lr 0.05,
 *              evaluation only at the last round (on 1,000 test samples), 4 rounds by default;
 *              the figure is the time of the rounds without evaluation. Target: <= 10 s per round.
 *
 * Prints JSON lines (suite "sim"):
 *   {"kind":"run","engine":"batched","wallS":..,"cpuS":..,"roundS":{median,p90,max},...figures}
 *   {"kind":"agreement","maxWeightDiff":..,"meanAccuracyDiff":..,...}   (with both engines)
 */
import { cpus, loadavg } from 'node:os';
import { loadExperiment, parseExperiment } from '../../src/config/index.js';
import type { Experiment } from '../../src/config/schema.js';
import { simulate } from '../../src/run/simulate.js';
import { round, spread } from './lib/stats.js';

function flag(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

function experiment(kind: string, rounds: string): Experiment {
  if (kind === 'preset16') {
    return loadExperiment({
      file: new URL('../presets/fashion-mnist-ring16.yaml', import.meta.url).pathname,
      ...(rounds && { set: [`run.rounds=${rounds}`] }),
    });
  }
  if (kind === 'nodes1000') {
    return parseExperiment({
      nodes: 1000,
      run: { seed: 1, rounds: Number(rounds || 4) },
      topology: { graph: 'ring', sampler: 'vanilla' },
      data: { dataset: 'fashion-mnist', partition: 'dirichlet:0.1' },
      model: { kind: 'mlp', hidden: [200, 200] },
      train: { optimizer: 'sgd', lr: 0.05, batchSize: 32, localSteps: 10, weightDecay: 0 },
      gossip: { mixing: 'metropolis' },
      eval: { every: 1_000_000, limit: 1000 },
      swa: { enabled: false },
    });
  }
  throw new Error(`--case: must be preset16 or nodes1000 (got ${kind})`);
}

export async function run(args: string[]): Promise<void> {
  const kind = flag(args, 'case', 'preset16');
  const cfg = experiment(kind, flag(args, 'rounds', ''));
  const engines = flag(args, 'engines', 'unbatched,batched').split(',');
  const finals = new Map<string, Map<number, Float32Array>>();
  const figures = new Map<string, Record<string, number | null>>();
  for (const engine of engines) {
    if (engine !== 'batched' && engine !== 'unbatched') {
      throw new Error(`--engines: each must be batched or unbatched (got ${engine})`);
    }
    const lastOfRound = new Map<number, number>();
    const last = new Map<number, Float32Array>();
    const evalRounds = new Set<number>();
    const load0 = loadavg();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const s = await simulate(cfg, {
      batched: engine === 'batched',
      onRound: (r) => {
        lastOfRound.set(r.round, Math.max(lastOfRound.get(r.round) ?? 0, performance.now()));
        if (r.accuracy !== undefined) evalRounds.add(r.round);
      },
      onWeights: (node, k, x) => {
        if (k === cfg.run.rounds - 1) last.set(node, x);
      },
    });
    const cpu = process.cpuUsage(cpu0);
    const wallS = (performance.now() - t0) / 1000;
    // Round k's time: from the last node finishing round k-1 to the last finishing round k.
    const roundS: number[] = [];
    const plainRoundS: number[] = [];
    for (let k = 1; k < cfg.run.rounds; k++) {
      const dt = ((lastOfRound.get(k) ?? 0) - (lastOfRound.get(k - 1) ?? 0)) / 1000;
      roundS.push(dt);
      if (!evalRounds.has(k)) plainRoundS.push(dt);
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
        cpuS: round((cpu.user + cpu.system) / 1e6, 2),
        roundS: spread(roundS, 3),
        roundSWithoutEval: spread(plainRoundS, 3),
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
