/**
 * Assembling a node from an experiment: the shared, deterministic parts every node computes the
 * same way (data split and partition, base graph and MATCHA plan, fault plan) and the node's own
 * parts (model, optimizer, trainer on its shard, checkpoint store, metrics). Used by the
 * `flatmesh node` process and by the simulator alike.
 *
 *   const shared = await prepareRun(cfg);
 *   const node = buildNode(shared, id, { transport, counters, sink, dir });
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Experiment } from '../config/schema.js';
import {
  loadDataset,
  parsePartitionSpec,
  partitionDataset,
  readShardFile,
  subset,
  writeShardFile,
} from '../data/index.js';
import type { Dataset, DatasetSpec, DatasetSplit } from '../data/types.js';
import { ConfigError, DataError } from '../errors.js';
import { flipLabels } from '../faults/byzantine.js';
import { FaultPlan } from '../faults/plan.js';
import {
  createModel,
  createOptimizer,
  type EvalResult,
  type LocalOptimizer,
  LocalTrainer,
  type Model,
  type ModelSpec,
  modelSignature,
  type OptimizerSpec,
  paramLayout,
  type RoundTrainer,
} from '../learn/index.js';
import type { Transport } from '../net/transport.js';
import { packagePath } from '../paths.js';
import {
  generateTopology,
  loadTopologyFile,
  matchaPlan,
  optimizeAlpha,
  vanillaPlan,
} from '../topology/index.js';
import type { Graph, MatchaPlan } from '../topology/types.js';
import { frameChannels } from './channels.js';
import {
  type CheckpointFailure,
  type CheckpointSink,
  CheckpointStore,
  tolerantCheckpoints,
} from './checkpoint.js';
import type { MetricsSink, NodeCounters } from './metrics.js';
import { NodeRuntime } from './runtime.js';

/** What every node of a run derives identically from the experiment. */
export interface RunContext {
  cfg: Experiment;
  runId: string;
  data: DatasetSplit;
  /** Test set used for evaluation (capped by eval.limit). */
  test: Dataset;
  partition: Int32Array[];
  graph: Graph;
  plan: MatchaPlan;
  faults: FaultPlan;
  /**
   * Model signature, and the size and per-tensor layout of what a frame carries (for the wire
   * codec): the model, or with gradient tracking the model followed by its tracker.
   */
  signature: string;
  size: number;
  layout: number[];
}

export function datasetSpec(cfg: Experiment): DatasetSpec {
  const d = cfg.data;
  const limit = d.limit > 0 ? { limit: d.limit } : {};
  switch (d.dataset) {
    case 'digits':
      return { name: 'digits' };
    case 'synthetic':
      return { name: 'synthetic', ...d.synthetic };
    case 'fashion-mnist':
      return { name: 'fashion-mnist', ...limit };
    case 'cifar10':
      return { name: 'cifar10', ...limit };
  }
}

export function modelSpec(cfg: Experiment): ModelSpec {
  return cfg.model.kind === 'mlp'
    ? { kind: 'mlp', hidden: [...cfg.model.hidden] }
    : { kind: cfg.model.kind };
}

/** The local optimizer an experiment asks for (the same for a node and for the batched engine). */
export function optimizerSpec(cfg: Experiment): OptimizerSpec {
  return {
    kind: cfg.train.optimizer,
    momentum: cfg.train.momentum,
    weightDecay: cfg.train.weightDecay,
    rho: cfg.train.rho,
    eta: cfg.train.eta,
    quasiGlobal: cfg.train.quasiGlobalMomentum,
    correction: cfg.train.gradientTracking,
  };
}

/** Resolve `topology.graph`: a file (as given, or under the package's topologies/) or a generator. */
export function resolveGraph(spec: string, n: number, seed: number): Graph {
  const candidates = spec.endsWith('.json')
    ? [spec, ...(isAbsolute(spec) ? [] : [packagePath(spec), packagePath('topologies', spec)])]
    : [];
  const file = candidates.find((c) => existsSync(c));
  if (spec.endsWith('.json') && !file)
    throw new ConfigError('topology.graph', 'file not found', spec);
  const graph = file ? loadTopologyFile(file) : generateTopology(...parseGenerator(spec, n), seed);
  if (graph.n !== n) {
    throw new ConfigError(
      'nodes',
      `must equal the topology's node count (${graph.n} in ${spec})`,
      n,
    );
  }
  return graph;
}

function parseGenerator(spec: string, n: number): [string, { n: number } & Record<string, number>] {
  const [kind = '', args = ''] = spec.split(':', 2);
  const params: { n: number } & Record<string, number> = { n };
  for (const kv of args.split(',').filter(Boolean)) {
    const [k, v] = kv.split('=', 2);
    const num = Number(v);
    if (!k || v === undefined || !Number.isFinite(num)) {
      throw new ConfigError(
        'topology.graph',
        'generator parameters must look like kind:key=number,key=number',
        spec,
      );
    }
    params[k] = num;
  }
  return [kind, params];
}

/** MATCHA's alpha re-optimized for the expected topology under loss (gossip.lossAware). */
export function lossAwarePlan(plan: MatchaPlan, cfg: Experiment): MatchaPlan {
  const q = cfg.faults.loss.p;
  if (!cfg.gossip.lossAware || q <= 0 || cfg.faults.loss.model !== 'bernoulli') return plan;
  // pairwise: an edge is mixed only if both of its messages arrive.
  const kept = cfg.gossip.pairwise ? (1 - q) ** 2 : 1 - q;
  const survive = plan.probabilities.map((p) => p * kept);
  return { ...plan, alpha: optimizeAlpha(plan.graph.n, plan.matchings, survive).alpha };
}

export interface PrepareOptions {
  /**
   * Keep only this node's training shard in memory (a node process needs nothing else): the full
   * training set is dropped after partitioning, so a node holds its shard, not 60k images.
   */
  only?: number;
  /**
   * With `only`: read this node's shard and the test set from files a launcher wrote
   * (`writeRunShards`), instead of loading and partitioning the data set again.
   */
  shards?: string;
  /** The simulator emulates crashes (see FaultPlan). */
  emulateCrashes?: boolean;
  /** Plan and layout already derived (by a launcher, before loading the data): not derived again. */
  derived?: Derived;
}

export const shardFile = (dir: string, node: number) => join(dir, `train-${node}.fmsh`);
export const testShardFile = (dir: string) => join(dir, 'test.fmsh');

/**
 * Write every node's training shard and the test set, for node processes to read (`shards`, with
 * the plan and layout of `writeDerived`). It yields to the event loop between files, so a
 * launcher keeps answering its nodes meanwhile.
 */
export async function writeRunShards(
  ctx: Pick<RunContext, 'data' | 'partition'>,
  dir: string,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (const [node, idx] of ctx.partition.entries()) {
    writeShardFile(shardFile(dir, node), subset(ctx.data.train, idx));
    await new Promise((r) => setImmediate(r));
  }
  writeShardFile(testShardFile(dir), ctx.data.test);
}

/** Capped test sets, by full test set and eval.limit (see prepareRun). */
const cappedTests = new WeakMap<Dataset, Map<number, Dataset>>();

/** Test sets read from shard files, by path (see loadRunData). */
const testSets = new Map<string, Dataset>();

async function loadRunData(
  cfg: Experiment,
  opts: PrepareOptions,
): Promise<{ data: DatasetSplit; partition: Int32Array[] }> {
  const seed = cfg.run.seed;
  if (opts.shards !== undefined && opts.only !== undefined) {
    const train = readShardFile(shardFile(opts.shards, opts.only));
    const partition = Array.from({ length: cfg.nodes }, (_, i) =>
      i === opts.only ? Int32Array.from({ length: train.count }, (_, k) => k) : new Int32Array(0),
    );
    // The test set is read at the first evaluation, not while the node is starting, and once per
    // process: the nodes a process holds (launch --nodes-per-process) share it, read-only.
    const file = testShardFile(opts.shards);
    const data: DatasetSplit = {
      name: cfg.data.dataset,
      train,
      get test() {
        const have = testSets.get(file);
        if (have) return have;
        const test = readShardFile(file);
        testSets.set(file, test);
        return test;
      },
    };
    return { data, partition };
  }
  const loaded = await loadDataset(datasetSpec(cfg), {
    seed,
    ...(cfg.data.dir ? { dataDir: cfg.data.dir } : {}),
  });
  const partition = partitionDataset(
    loaded.train.y,
    loaded.train.classes,
    cfg.nodes,
    parsePartitionSpec(cfg.data.partition),
    seed,
    loaded.train.groups,
  );
  if (opts.only === undefined) return { data: loaded, partition };
  const mine = partition[opts.only];
  if (!mine) throw new ConfigError('id', `must be less than nodes (${cfg.nodes})`, opts.only);
  return {
    data: { ...loaded, train: subset(loaded.train, mine) },
    partition: partition.map((_, i) =>
      i === opts.only ? Int32Array.from({ length: mine.length }, (_, k) => k) : new Int32Array(0),
    ),
  };
}

export async function prepareRun(
  cfg: Experiment,
  runId: string,
  opts: PrepareOptions = {},
): Promise<RunContext> {
  const seed = cfg.run.seed;
  const { data, partition } = await loadRunData(cfg, opts);
  let test: Dataset | undefined;
  const cappedTest = (): Dataset => {
    const full = data.test;
    if (!(cfg.eval.limit > 0 && cfg.eval.limit < full.count)) return full;
    // One capped copy per test set and limit: the nodes of one process (launch
    // --nodes-per-process) share the test set read-only, and so its first `limit` samples and
    // their float features (3 MB per node for 1,000 Fashion-MNIST images).
    const byLimit = cappedTests.get(full) ?? new Map<number, Dataset>();
    cappedTests.set(full, byLimit);
    let capped = byLimit.get(cfg.eval.limit);
    if (!capped) {
      capped = subset(
        full,
        Int32Array.from({ length: cfg.eval.limit }, (_, i) => i),
      );
      byLimit.set(cfg.eval.limit, capped);
    }
    return capped;
  };
  const derived =
    opts.derived ??
    (opts.shards !== undefined && opts.only !== undefined
      ? readDerived(opts.shards)
      : deriveRun(cfg, data.train));
  return {
    cfg,
    runId,
    data,
    // Evaluated on first use (see loadRunData).
    get test() {
      test ??= cappedTest();
      return test;
    },
    partition,
    faults: new FaultPlan(cfg.faults, seed, cfg.nodes, opts.emulateCrashes ?? false),
    ...derived,
  };
}

/** What a run derives from its experiment beyond the data: the same on every node. */
export type Derived = Pick<RunContext, 'graph' | 'plan' | 'signature' | 'size' | 'layout'>;

/** The run's graph and its sampling plan, as every node uses it (loss-aware when configured). */
export function samplingPlan(cfg: Experiment): MatchaPlan {
  const graph = resolveGraph(cfg.topology.graph, cfg.nodes, cfg.run.seed);
  const basePlan =
    cfg.topology.sampler === 'vanilla'
      ? vanillaPlan(graph)
      : matchaPlan(graph, cfg.topology.budget);
  return lossAwarePlan(basePlan, cfg);
}

export function deriveRun(cfg: Experiment, train: Pick<Dataset, 'shape' | 'classes'>): Derived {
  const plan = samplingPlan(cfg);
  // A throwaway model gives the signature and layout every node's model shares.
  const probe = createModel(modelSpec(cfg), train.shape, train.classes, cfg.run.seed);
  try {
    const layout = paramLayout(probe).map((s) => s.size);
    // A frame carries the model, and the tracker and SWA average when configured (channels.ts).
    const copies = frameChannels(cfg).length;
    return {
      graph: plan.graph,
      plan,
      signature: modelSignature(probe),
      size: probe.size * copies,
      layout: Array.from({ length: copies }, () => layout).flat(),
    };
  } finally {
    probe.dispose();
  }
}

/**
 * The launcher derives the topology plan and model layout once and writes them next to the shards,
 * so node processes skip MATCHA's optimization and a probe model while starting (~75 ms of CPU
 * each, times N processes on the same cores). JSON keeps every number exact.
 */
const derivedFile = (dir: string) => join(dir, 'derived.json');

export function writeDerived(dir: string, d: Derived): void {
  mkdirSync(dir, { recursive: true });
  const file = derivedFile(dir);
  const tmp = `${file}.tmp-${process.pid}`;
  // Only these fields: `d` may be a whole RunContext, data included.
  const { graph, plan, signature, size, layout } = d;
  writeFileSync(tmp, JSON.stringify({ graph, plan, signature, size, layout }));
  renameSync(tmp, file);
}

export function readDerived(dir: string): Derived {
  const file = derivedFile(dir);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Derived;
  } catch (e) {
    throw new DataError(`cannot read ${file} (written by the launcher): ${(e as Error).message}`);
  }
}

export interface NodeParts {
  transport: Transport;
  counters: NodeCounters;
  sink: MetricsSink;
  /** Node directory for checkpoints (or `store`); neither = no checkpoints. */
  dir?: string;
  store?: CheckpointSink;
  log?: (msg: string) => void;
  /** Track neighbour liveness (real runs; see NodeDeps.liveness). */
  liveness?: boolean;
  /**
   * The trainer the runtime calls, built around the node's own (the batched simulator trains many
   * nodes together). Default: the node's LocalTrainer.
   */
  trainer?: (node: {
    model: Model;
    optimizer: LocalOptimizer;
    trainer: LocalTrainer;
  }) => RoundTrainer;
  /** Evaluation of a parameter vector on the test set (see NodeDeps.evaluator). */
  evaluator?: (x: Float32Array) => Promise<EvalResult>;
  /**
   * A checkpoint in `dir` could not be written (full disk, I/O error). The node keeps its previous
   * checkpoint and goes on; the failure is also counted as a `checkpoint-failed` fault.
   */
  onCheckpointFailure?: (f: CheckpointFailure) => void;
}

export interface BuiltNode {
  runtime: NodeRuntime;
  model: Model;
  dispose(): void;
}

/** A node's checkpoint file, stamped with the experiment, whose failed writes do not end the run. */
export function fileCheckpoints(dir: string, cfg: Experiment, parts: NodeParts): CheckpointSink {
  return tolerantCheckpoints(new CheckpointStore(dir, { experiment: cfg }), (f) => {
    parts.counters.fault('checkpoint-failed');
    parts.log?.(f.message);
    parts.onCheckpointFailure?.(f);
  });
}

export function buildNode(ctx: RunContext, id: number, parts: NodeParts): BuiltNode {
  const { cfg } = ctx;
  const model = createModel(
    modelSpec(cfg),
    ctx.data.train.shape,
    ctx.data.train.classes,
    cfg.run.seed,
  );
  const optimizer = createOptimizer(optimizerSpec(cfg), model.params);
  const indices = ctx.partition[id];
  if (!indices) throw new ConfigError('id', `must be less than nodes (${cfg.nodes})`, id);
  let data = ctx.data.train;
  if (ctx.faults.byzantine(id)?.behaviour === 'label-flip') {
    data = { ...data, y: flipLabels(data.y, data.classes) };
  }
  const trainer = new LocalTrainer({
    model,
    optimizer,
    data,
    indices,
    batchSize: cfg.train.batchSize,
    seed: cfg.run.seed,
    node: id,
  });
  const runtime = new NodeRuntime({
    cfg,
    id,
    runId: ctx.runId,
    signature: ctx.signature,
    transport: parts.transport,
    plan: ctx.plan,
    faults: ctx.faults,
    model,
    optimizer,
    trainer: parts.trainer ? parts.trainer({ model, optimizer, trainer }) : trainer,
    get test() {
      return ctx.test;
    },
    ...(parts.evaluator && { evaluator: parts.evaluator }),
    counters: parts.counters,
    sink: parts.sink,
    ...(parts.store
      ? { store: parts.store }
      : parts.dir
        ? { store: fileCheckpoints(parts.dir, cfg, parts) }
        : {}),
    ...(parts.log ? { log: parts.log } : {}),
    ...(parts.liveness ? { liveness: true } : {}),
  });
  return {
    runtime,
    model,
    dispose: () => {
      optimizer.dispose();
      model.dispose();
    },
  };
}
