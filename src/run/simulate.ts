/**
 * The simulator: N NodeRuntimes in one process over the in-memory transport, through the same wire
 * codec, validation, fault decorators and round engine as a real run. Deterministic: the same seed
 * gives the same summary figures. Message loss runs in `notify` mode here whatever the experiment
 * says (a silent loss would only add waiting time, and the decisions are the same), and the nodes
 * run in lockstep (lockstep.ts: nobody collects round k before every present node reached it), so
 * nobody waits for a deadline and a simulation never depends on timing. With `gossip.sync: async`
 * the nodes run on a simulated clock instead (simclock.ts), one exchange at a time in clock order.
 * Either way the summary gives the run's simulated time, in rounds of local training: a lockstep
 * round lasts as long as its slowest node, an asynchronous node keeps its own pace.
 *
 *   const summary = await simulate(cfg, { out: 'runs/sim-1' });
 */
import { setMaxListeners } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../compute/backend.js';
import type { Experiment } from '../config/schema.js';
import { type LiveFault, LiveFaultPlan } from '../faults/live.js';
import type { FaultPlan } from '../faults/plan.js';
import { faultyTransport } from '../faults/transport.js';
import { readFlat } from '../learn/index.js';
import { memoryNetwork, memoryTransport } from '../net/memory.js';
import type { Transport } from '../net/transport.js';
import { type BuiltNode, buildNode, prepareRun } from '../node/build.js';
import { type CheckpointSink, CheckpointStore, memoryCheckpoint } from '../node/checkpoint.js';
import {
  fanout,
  jsonlSink,
  type MetricsSink,
  NodeCounters,
  type RoundRecord,
} from '../node/metrics.js';
import type { NodeRuntime } from '../node/runtime.js';
import { BatchedEvaluation, BatchedTraining, batchedTrainingApplies } from './batched-sim.js';
import { lockstep } from './lockstep.js';
import { simClock } from './simclock.js';
import { buildSummary, type NodeOutcome, type RunSummary } from './summary.js';

export interface SimulateOptions {
  /** Output directory (summary.json, nodes/<i>/metrics.jsonl). None: nothing is written. */
  out?: string;
  /** Called with every node's round record, in completion order. */
  onRound?: (r: RoundRecord) => void;
  /**
   * Called after every node's round with its weights after mixing (a fresh copy, the model the
   * record of that round describes), e.g. to measure the distance between groups of nodes per round.
   */
  onWeights?: (node: number, round: number, x: Float32Array) => void;
  signal?: AbortSignal;
  /**
   * Train all nodes of a round as one batched computation, and evaluate their models and SWA
   * averages in one pass (src/run/batched-sim.ts), when the model allows it (mlp, logreg); other
   * models train node by node. Same figures within float32 rounding.
   */
  batched?: boolean;
  /** Faults injected by hand into a launched run, to replay (src/run/replay.ts). */
  liveFaults?: readonly LiveFault[];
}

export function defaultRunId(cfg: Experiment, prefix: string): string {
  return cfg.run.id ?? `${prefix}-s${cfg.run.seed}`;
}

export async function simulate(cfg: Experiment, opts: SimulateOptions = {}): Promise<RunSummary> {
  const t0 = performance.now();
  await initBackend({ ...(cfg.backend !== 'auto' && { prefer: cfg.backend }), quiet: true });
  const runId = defaultRunId(cfg, 'sim');
  const ctx = await prepareRun(cfg, runId, { emulateCrashes: true });
  const live = opts.liveFaults?.length
    ? new LiveFaultPlan(cfg.faults, cfg.run.seed, cfg.nodes, true)
    : undefined;
  for (const f of opts.liveFaults ?? []) live?.add(f);
  if (live) ctx.faults = live;
  const network = memoryNetwork();
  const signal = opts.signal ?? new AbortController().signal;
  // Every node's pending sends and collects listen on this one signal: many at once is expected.
  setMaxListeners(0, signal);
  const nodes: BuiltNode[] = [];
  const runtimes: NodeRuntime[] = [];
  const transports: Transport[] = [];
  const async = cfg.gossip.sync === 'async';
  const step = async ? simClock(cfg.nodes, ctx.faults) : lockstep(cfg.nodes, ctx.faults);
  // Batched training trains every node's round together: lockstep only (the async clock runs one
  // node at a time).
  const batched = opts.batched && !async && batchedTrainingApplies(cfg);
  const batch = batched ? new BatchedTraining(cfg) : undefined;
  // And every node's evaluations of a round in one pass over the (shared) test set.
  const evals = batched ? new BatchedEvaluation(() => ctx.test, cfg.eval.batchSize) : undefined;
  for (let id = 0; id < cfg.nodes; id++) {
    const c = new NodeCounters();
    const inner = memoryTransport(
      {
        self: id,
        network,
        runId,
        signature: ctx.signature,
        size: ctx.size,
        layout: ctx.layout,
        codec: cfg.gossip.codec,
      },
      {
        metrics: c,
        events: {
          onControl: (m) => runtimes[id]?.onControl(m),
          onFrame: (from, round) => runtimes[id]?.onFrame(from, round),
        },
      },
    );
    const transport = step.wrap(
      faultyTransport(inner, { plan: ctx.faults, mode: 'notify', onFault: (k) => c.fault(k) }),
    );
    const sinks: MetricsSink[] = [];
    if (opts.out) sinks.push(jsonlSink(join(opts.out, 'nodes', String(id), 'metrics.jsonl')));
    if (opts.onRound) sinks.push({ record: opts.onRound });
    if (live) sinks.push({ record: (r) => live.roundDone(r.node, r.round) });
    const onWeights = opts.onWeights;
    // The runtime writes the mixed weights into the model before it emits the round's record, so
    // reading the model inside the sink gives exactly that round's weights.
    if (onWeights) sinks.push({ record: (r) => onWeights(r.node, r.round, readFlat(node.model)) });
    // Emulated crashes need somewhere to lose state to: an in-memory checkpoint per node.
    const memory = cfg.faults.crashes.some((x) => x.node === id) ? memoryCheckpoint() : undefined;
    // With an output directory, each node's checkpoints also land in nodes/<i>/checkpoint.bin, as
    // in a real run, so `flatmesh flatness` can read a simulated run's models. Write-only: a sim
    // re-run in the same directory starts afresh, never resumes from those files.
    const file = opts.out ? new CheckpointStore(join(opts.out, 'nodes', String(id))) : undefined;
    const store: CheckpointSink | undefined = file
      ? {
          save: (s) => {
            memory?.save(s);
            file.save(s);
          },
          load: () => memory?.load(),
        }
      : memory;
    const node = buildNode(ctx, id, {
      transport,
      counters: c,
      sink: fanout(...sinks),
      ...(store && { store }),
      ...(batch && { trainer: (n) => batch.trainerFor(n) }),
      ...(evals && { evaluator: (x: Float32Array) => evals.evaluate(node.model, x) }),
    });
    nodes.push(node);
    runtimes.push(node.runtime);
    transports.push(transport);
  }
  try {
    await Promise.all(transports.map((t) => t.start()));
    const results = await Promise.all(runtimes.map((r) => r.run(signal)));
    const outcomes: NodeOutcome[] = results.map((r) => ({
      id: r.id,
      accuracy: r.accuracy,
      swaAccuracy: r.swaAccuracy,
      tailAccuracy: r.tailAccuracy,
      tailSwaAccuracy: r.tailSwaAccuracy,
      roundsCompleted: r.roundsCompleted,
      lastRound: r.lastRound,
      restarts: r.restarts,
      roundsLostToRestarts: r.roundsSkipped,
      catchUps: r.catchUps,
      roundsCaughtUp: r.roundsCaughtUp,
      messages: r.messages,
      bytesSent: r.bytesSent,
      bytesReceived: r.bytesReceived,
      faults: r.faults,
      status: 'ok',
      ...(r.flatness && { flatness: r.flatness }),
    }));
    const expectedUnfinished = new Set(cfg.faults.leaves.map((l) => l.node));
    const summary = buildSummary({
      ctx,
      mode: 'simulator',
      outcomes,
      finals: results.filter((r) => !expectedUnfinished.has(r.id)).map((r) => r.weights),
      wallSeconds: (performance.now() - t0) / 1000,
      expectedUnfinished,
    });
    const clock = async ? (step as ReturnType<typeof simClock>) : undefined;
    const lock = lockstepTime(cfg, ctx.faults);
    summary.simulatedTime = clock ? clock.elapsed() : lock.time;
    summary.simulatedWait = clock ? clock.waited() : lock.waited;
    if (opts.out) {
      mkdirSync(opts.out, { recursive: true });
      writeFileSync(join(opts.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    }
    return summary;
  } finally {
    await Promise.all(transports.map((t) => t.stop()));
    nodes.forEach((n) => n.dispose());
  }
}

/**
 * Simulated time of a lockstep run, each round lasting as long as its slowest present node, and
 * the time present nodes spent waiting for it (summed over nodes).
 */
function lockstepTime(cfg: Experiment, plan: FaultPlan): { time: number; waited: number } {
  let time = 0;
  let waited = 0;
  for (let k = 0; k < cfg.run.rounds; k++) {
    const present: number[] = [];
    for (let i = 0; i < cfg.nodes; i++)
      if (plan.present(i, k)) present.push(plan.stragglerFactor(i));
    const slowest = present.reduce((m, f) => Math.max(m, f), 0);
    time += slowest;
    for (const f of present) waited += slowest - f;
  }
  return { time, waited };
}
