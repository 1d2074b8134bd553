/**
 * The summary of a run (summary.json): per-node outcomes, means over nodes, the accuracy of the
 * average of all node models (what a server would have had), and totals of every message fate and
 * injected fault. Built the same way by the launcher and the simulator.
 */
import { rmsDistance } from '../gossip/mixing.js';
import { createModel, evaluate, writeFlat } from '../learn/index.js';
import { modelSpec, type RunContext } from '../node/build.js';
import { addCounts, emptyCounts, type NodeOutcome, type RunSummary } from '../report/records.js';

export type { NodeOutcome, RunSummary } from '../report/records.js';

const mean = (xs: (number | null)[]): number | null => {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  return v.length === 0 ? null : v.reduce((a, b) => a + b, 0) / v.length;
};

export function averageVectors(vs: readonly Float32Array[]): Float32Array | undefined {
  const first = vs[0];
  if (!first) return undefined;
  const acc = new Float64Array(first.length);
  for (const v of vs) for (let k = 0; k < v.length; k++) acc[k]! += v[k]!;
  const out = new Float32Array(first.length);
  for (let k = 0; k < out.length; k++) out[k] = acc[k]! / vs.length;
  return out;
}

/** Accuracy of the average model and the consensus distance, from the nodes' final vectors. */
export function consensusFigures(
  ctx: Pick<RunContext, 'cfg' | 'data' | 'test'>,
  finals: readonly Float32Array[],
): { accuracyOfAverageModel: number | null; finalDisagreement: number | null } {
  const avg = averageVectors(finals);
  if (!avg) return { accuracyOfAverageModel: null, finalDisagreement: null };
  const model = createModel(
    modelSpec(ctx.cfg),
    ctx.data.train.shape,
    ctx.data.train.classes,
    ctx.cfg.run.seed,
  );
  try {
    writeFlat(model, avg);
    const acc = evaluate(model, ctx.test, ctx.cfg.eval.batchSize).accuracy;
    return {
      accuracyOfAverageModel: acc,
      finalDisagreement: mean(finals.map((f) => rmsDistance(f, avg))),
    };
  } finally {
    model.dispose();
  }
}

export function buildSummary(args: {
  ctx: Pick<RunContext, 'cfg' | 'runId' | 'data' | 'test'>;
  mode: RunSummary['mode'];
  outcomes: NodeOutcome[];
  finals: Float32Array[];
  wallSeconds: number;
  /** Nodes not expected to finish (planned permanent leave). */
  expectedUnfinished?: ReadonlySet<number>;
}): RunSummary {
  const { ctx, outcomes } = args;
  const cfg = ctx.cfg;
  const messages = emptyCounts();
  const faults: Record<string, number> = {};
  for (const o of outcomes) {
    addCounts(messages, o.messages);
    for (const [k, v] of Object.entries(o.faults)) faults[k] = (faults[k] ?? 0) + v;
  }
  const completed = outcomes.every(
    (o) => args.expectedUnfinished?.has(o.id) || o.lastRound === cfg.run.rounds - 1,
  );
  return {
    runId: ctx.runId,
    mode: args.mode,
    nodes: cfg.nodes,
    rounds: cfg.run.rounds,
    completed,
    wallSeconds: args.wallSeconds,
    meanAccuracy: mean(outcomes.map((o) => o.accuracy)),
    meanSwaAccuracy: mean(outcomes.map((o) => o.swaAccuracy)),
    tailRounds: cfg.eval.tail,
    meanTailAccuracy: mean(outcomes.map((o) => o.tailAccuracy ?? null)),
    meanTailSwaAccuracy: mean(outcomes.map((o) => o.tailSwaAccuracy ?? null)),
    ...consensusFigures(ctx, args.finals),
    messages,
    faults,
    restarts: outcomes.reduce((s, o) => s + o.restarts, 0),
    roundsLostToRestarts: outcomes.reduce((s, o) => s + o.roundsLostToRestarts, 0),
    perNode: outcomes,
    config: cfg,
  };
}
