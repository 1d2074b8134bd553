/**
 * The summary of a run (summary.json): per-node outcomes, means over nodes, the accuracy of the
 * average of all node models (what a server would have had), and totals of every message fate and
 * injected fault. Built the same way by the launcher, the simulator and `flatmesh collect`; a run
 * that ends early still gets one, with `completed: false` and the reason.
 *
 * Each node process also writes its own end record (DIR/nodes/<i>/end.json, `writeNodeEnd`), so
 * the nodes of a run spread over several machines can be summarized later (`summarizeNodeDirs`).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Experiment } from '../config/schema.js';
import { rmsDistance } from '../gossip/mixing.js';
import { createModel, evaluate, writeFlat } from '../learn/index.js';
import { modelSpec, type RunContext } from '../node/build.js';
import { CheckpointStore } from '../node/checkpoint.js';
import { meanLastFlatness } from '../node/flatness-tracking.js';
import {
  addCounts,
  emptyCounts,
  type NodeOutcome,
  type ProcessEvent,
  type RunSummary,
} from '../report/records.js';

export type { NodeOutcome, ProcessEvent, RunSummary } from '../report/records.js';

/** What a node itself reports when its runtime ends (over IPC and in its end record). */
export type NodeReport = Omit<NodeOutcome, 'restarts' | 'status' | 'crashes'>;

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
  ctx: SummaryContext,
  finals: readonly Float32Array[],
): { accuracyOfAverageModel: number | null; finalDisagreement: number | null } {
  const avg = averageVectors(finals);
  if (!avg || !ctx.data) return { accuracyOfAverageModel: null, finalDisagreement: null };
  const model = createModel(
    modelSpec(ctx.cfg),
    ctx.data.train.shape,
    ctx.data.train.classes,
    ctx.cfg.run.seed,
  );
  try {
    writeFlat(model, avg);
    const acc = evaluate(model, ctx.test!, ctx.cfg.eval.batchSize).accuracy;
    return {
      accuracyOfAverageModel: acc,
      finalDisagreement: mean(finals.map((f) => rmsDistance(f, avg))),
    };
  } finally {
    model.dispose();
  }
}

/** What a summary needs of a run; without its data (a run that failed before loading it) the
 * average model is not evaluated. */
export type SummaryContext = Pick<RunContext, 'cfg' | 'runId'> &
  Partial<Pick<RunContext, 'data' | 'test'>>;

export function buildSummary(args: {
  ctx: SummaryContext;
  mode: RunSummary['mode'];
  outcomes: NodeOutcome[];
  finals: Float32Array[];
  wallSeconds: number;
  /** Nodes not expected to finish (planned permanent leave). */
  expectedUnfinished?: ReadonlySet<number>;
  /** Why the run ended early (an error, an interruption), if it did. */
  failure?: string;
}): RunSummary {
  const { ctx, outcomes } = args;
  const cfg = ctx.cfg;
  const messages = emptyCounts();
  const faults: Record<string, number> = {};
  for (const o of outcomes) {
    addCounts(messages, o.messages);
    for (const [k, v] of Object.entries(o.faults)) faults[k] = (faults[k] ?? 0) + v;
  }
  const unfinished = outcomes.filter(
    (o) => !args.expectedUnfinished?.has(o.id) && o.lastRound !== cfg.run.rounds - 1,
  );
  const reason =
    args.failure ??
    (unfinished.length === 0
      ? undefined
      : `${unfinished.length} of ${outcomes.length} nodes did not finish: ${unfinished
          .map((o) => `node ${o.id} (last round ${o.lastRound}, ${o.status})`)
          .join(', ')}`);
  return {
    runId: ctx.runId,
    mode: args.mode,
    nodes: cfg.nodes,
    rounds: cfg.run.rounds,
    completed: reason === undefined,
    ...(reason !== undefined && { reason }),
    ...(args.failure !== undefined && { endedEarly: true }),
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
    catchUps: outcomes.reduce((s, o) => s + (o.catchUps ?? 0), 0),
    roundsCaughtUp: outcomes.reduce((s, o) => s + (o.roundsCaughtUp ?? 0), 0),
    perNode: outcomes,
    ...flatnessMean(outcomes),
    config: cfg,
  };
}

/** In-run flatness: the mean of the nodes' last figures, when they have any. */
function flatnessMean(outcomes: readonly NodeOutcome[]): Pick<RunSummary, 'flatness'> {
  const flatness = meanLastFlatness(outcomes.map((o) => o.flatness));
  return flatness ? { flatness } : {};
}

/** A node's directory and what is known of its process (from its launcher or its end record). */
export interface NodeDirState {
  id: number;
  dir: string;
  /** What the node reported when its runtime ended; undefined when it died first. */
  report?: NodeReport;
  status: string;
  restarts: number;
  crashes: number;
}

/**
 * The summary of a process run from its node directories: each node's report (or, for a node that
 * died, what its checkpoint says), the average of the final models on disk, and the process events.
 * Used by the launcher and by `flatmesh collect`.
 */
export function summarizeNodeDirs(args: {
  ctx: SummaryContext & { signature?: string };
  nodes: readonly NodeDirState[];
  wallSeconds: number;
  events?: ProcessEvent[];
  failure?: string;
}): RunSummary {
  const { ctx } = args;
  const cfg = ctx.cfg;
  const leaves = new Set(cfg.faults.leaves.map((l) => l.node));
  const finals: Float32Array[] = [];
  const notInAverage: number[] = [];
  const outcomes: NodeOutcome[] = args.nodes.map((n) => {
    let ck: ReturnType<CheckpointStore['load']>;
    try {
      ck = new CheckpointStore(n.dir).load({
        runId: ctx.runId,
        ...(ctx.signature !== undefined && { signature: ctx.signature }),
      });
    } catch {
      ck = undefined; // a corrupt or foreign checkpoint holds no final model of this run
    }
    const r = n.report;
    const lastRound = r?.lastRound ?? ck?.round ?? -1;
    // Only a checkpoint of the node's last round holds its final model: after a failed final
    // write, a crash or an interruption, the file on disk is older. A node that died and was not
    // restarted (no report) counts only if it had got to the run's last round.
    const final =
      ck && ck.round === lastRound && (r !== undefined || ck.round === cfg.run.rounds - 1);
    if (!leaves.has(n.id)) {
      if (ck && final) finals.push(ck.weights);
      else notInAverage.push(n.id);
    }
    return {
      id: n.id,
      accuracy: r?.accuracy ?? null,
      swaAccuracy: r?.swaAccuracy ?? null,
      tailAccuracy: r?.tailAccuracy ?? null,
      tailSwaAccuracy: r?.tailSwaAccuracy ?? null,
      roundsCompleted: r?.roundsCompleted ?? (ck ? ck.round + 1 : 0),
      lastRound,
      restarts: n.restarts,
      roundsLostToRestarts: r?.roundsLostToRestarts ?? 0,
      catchUps: r?.catchUps ?? 0,
      roundsCaughtUp: r?.roundsCaughtUp ?? 0,
      messages: r?.messages ?? emptyCounts(),
      bytesSent: r?.bytesSent ?? 0,
      bytesReceived: r?.bytesReceived ?? 0,
      faults: r?.faults ?? {},
      status: n.status,
      crashes: n.crashes,
      checkpointFailures: r?.checkpointFailures ?? [],
      ...(r?.flatness && { flatness: r.flatness }),
    };
  });
  const summary = buildSummary({
    ctx,
    mode: 'processes',
    outcomes,
    finals,
    wallSeconds: args.wallSeconds,
    expectedUnfinished: leaves,
    ...(args.failure !== undefined && { failure: args.failure }),
  });
  // The launcher's events are the account of crashes and restarts: they replace the counts the
  // restarted processes put in their round records (a crashed process reports nothing).
  const events = args.events ?? [];
  const counted: Record<string, number> = {};
  for (const e of events) {
    const key =
      e.kind === 'checkpoint-failed'
        ? undefined // counted below, once per node and round
        : e.planned || e.kind === 'restart-limit'
          ? e.kind
          : `${e.kind}-unplanned`;
    if (key) counted[key] = (counted[key] ?? 0) + 1;
  }
  if (events.length > 0) Object.assign(summary.faults, counted);
  const failedCheckpoints = new Set<string>();
  for (const o of outcomes)
    for (const f of o.checkpointFailures ?? []) failedCheckpoints.add(`${o.id}:${f.round}`);
  for (const e of events)
    if (e.kind === 'checkpoint-failed') failedCheckpoints.add(`${e.node}:${e.round}`);
  if (failedCheckpoints.size > 0) summary.faults['checkpoint-failed'] = failedCheckpoints.size;
  else delete summary.faults['checkpoint-failed'];
  if (events.length > 0) summary.events = events;
  if (notInAverage.length > 0) summary.notInAverageModel = notInAverage;
  return summary;
}

/** The record a node process writes to its directory when its runtime ends. */
export const NODE_END_FILE = 'end.json';

export interface NodeEndRecord {
  runId: string;
  node: number;
  /** src/config/identity.ts: records of one run share it. */
  experimentHash: string;
  /** 'done': ran to its end (or planned leave); 'stopped': stopped early by a signal. */
  status: 'done' | 'stopped';
  endedAt: string;
  report: NodeReport;
  config: Experiment;
}

export function writeNodeEnd(dir: string, rec: NodeEndRecord): void {
  const file = join(dir, NODE_END_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(rec, null, 2)}\n`);
  renameSync(tmp, file);
}

/** A node directory's end record, or undefined when it has none (the node died or never ended). */
export function readNodeEnd(dir: string): NodeEndRecord | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, NODE_END_FILE), 'utf8');
  } catch {
    return undefined;
  }
  return JSON.parse(text) as NodeEndRecord;
}
