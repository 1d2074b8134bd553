/**
 * The models of a finished run, read from its directory's checkpoints, and their flatness: shared
 * by `flatmesh flatness` (src/cli/flatness.ts) and the flatness columns of a sweep (sweep.ts).
 *
 *   const run = readRunDir(dir, { records: false });
 *   const models = new RunModels(run);
 *   models.resolve('swa:3').weights;                 // node 3's SWA average
 *   expandModels('nodes,average', run.nodes.length); // ['node:0', ..., 'average']
 *
 *   // A sweep's columns for one run (written to RUN/flatness/sweep.json, see report/flatness.ts):
 *   const file = await measureRunFlatness(dir, { models: ['node', 'swa', 'average'], samples: 1000,
 *     top: 5, trace: true, probes: 30, data: 'test', seed: 1 });
 *   file.columns['swa.lambdaMax'];                   // mean over nodes of their SWA models' λmax
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { initBackend } from '../compute/backend.js';
import { subset } from '../data/subset.js';
import type { Dataset } from '../data/types.js';
import { CheckpointError, UsageError } from '../errors.js';
import {
  measureFlatness,
  type SampleInfo,
  type SampleSet,
  sampleInfo,
  sampleSet,
  type TraceMethod,
} from '../learn/flatness/index.js';
import { createModel } from '../learn/model.js';
import { modelSpec, prepareRun } from '../node/build.js';
import { type CheckpointState, CheckpointStore } from '../node/checkpoint.js';
import { SWEEP_FLATNESS_FILE, type SweepFlatnessFile } from '../report/flatness.js';
import { type RunDir, readRunDir } from '../report/run-dir.js';

export interface ModelRef {
  name: string;
  weights: Float32Array;
  round: number | undefined;
}

/** `nodes` and `swas` expand to every node; the rest pass through (validated in resolve). */
export function expandModels(spec: string, nodes: number): string[] {
  const out: string[] = [];
  for (const raw of spec.split(',')) {
    const s = raw.trim();
    if (s === '') continue;
    if (s === 'nodes' || s === 'swas') {
      const kind = s === 'nodes' ? 'node' : 'swa';
      for (let i = 0; i < nodes; i++) out.push(`${kind}:${i}`);
    } else out.push(s);
  }
  if (out.length === 0) throw new UsageError('--models: list at least one model');
  return [...new Set(out)];
}

/** A run's models by name: `node:I`, `swa:I` and `average` (the mean of the node models). */
export class RunModels {
  readonly checkpoints: (CheckpointState | undefined)[];

  constructor(private readonly run: RunDir) {
    this.checkpoints = run.nodes.map((i) =>
      run.checkpointFile(i) ? new CheckpointStore(run.nodeDir(i)).load() : undefined,
    );
  }

  /** Whether node `id` has an SWA model in its checkpoint. */
  hasSwa(id: number): boolean {
    const ck = this.checkpoints[id];
    return ck !== undefined && ck.swa.mean !== undefined && ck.swa.count > 0;
  }

  resolve(name: string): ModelRef {
    const { checkpoints } = this;
    const runDir = this.run.dir;
    if (name === 'average') {
      const present = checkpoints.filter((c) => c !== undefined);
      if (present.length === 0) {
        throw new CheckpointError(`no node of ${runDir} has a checkpoint to average`);
      }
      const n = present[0]!.weights.length;
      const acc = new Float64Array(n);
      for (const c of present) for (let i = 0; i < n; i++) acc[i]! += c.weights[i]!;
      return {
        name,
        weights: Float32Array.from(acc, (v) => v / present.length),
        round: Math.min(...present.map((c) => c.round)),
      };
    }
    const m = /^(node|swa):(\d+)$/.exec(name);
    if (!m) {
      throw new UsageError(
        `--models: ${JSON.stringify(name)} is not one of node:I, swa:I, average, nodes, swas`,
      );
    }
    const id = Number(m[2]);
    if (id >= checkpoints.length) {
      throw new UsageError(`--models: ${name}: the run has nodes 0..${checkpoints.length - 1}`);
    }
    const ck = checkpoints[id];
    if (!ck) throw new CheckpointError(`node ${id} of ${runDir} has no checkpoint`);
    if (m[1] === 'node') return { name, weights: ck.weights, round: ck.round };
    if (!this.hasSwa(id)) {
      throw new CheckpointError(
        `node ${id} of ${runDir} has no SWA model (SWA off or not started)`,
      );
    }
    return { name, weights: Float32Array.from(ck.swa.mean!), round: ck.round };
  }
}

/** The sample set named by `spec`: `test`, `train` (the union of the shards) or `shard:I`. */
export function pickSamples(
  spec: string,
  train: Dataset,
  test: Dataset,
  partition: readonly Int32Array[],
  opts: { limit: number; seed: number },
): SampleSet {
  if (spec === 'test') return sampleSet(test, 'test set', opts);
  if (spec === 'train') {
    const all = Int32Array.from(partition.flatMap((p) => [...p])).sort();
    return sampleSet(subset(train, all), 'union of the training shards', opts);
  }
  const m = /^shard:(\d+)$/.exec(spec);
  const i = m ? Number(m[1]) : -1;
  if (!m || i >= partition.length) {
    throw new UsageError(
      `--data: must be test, train or shard:I with I in 0..${partition.length - 1} (got ${JSON.stringify(spec)})`,
    );
  }
  return sampleSet(subset(train, partition[i]!), `shard ${i}`, opts);
}

/** What a sweep measures on each finished run (the sweep file's `flatness`). */
export interface RunFlatnessSpec {
  /** `node`: every node model; `swa`: every SWA model; `average`: the mean of the node models. */
  models: ('node' | 'swa' | 'average')[];
  samples: number;
  top: number;
  tol: number;
  trace: boolean;
  probes: number;
  traceMethod: TraceMethod;
  data: string;
  seed: number;
}

/** Whether the run's flatness file exists and was measured with `spec`. */
export function runFlatnessUpToDate(dir: string, spec: RunFlatnessSpec): boolean {
  const file = join(dir, SWEEP_FLATNESS_FILE);
  if (!existsSync(file)) return false;
  try {
    const f = JSON.parse(readFileSync(file, 'utf8')) as SweepFlatnessFile;
    return JSON.stringify(f.spec) === JSON.stringify(spec);
  } catch {
    return false;
  }
}

/**
 * Measures the models `spec` names on the run in `dir` and writes RUN/flatness/sweep.json: every
 * model's figures, and the run's columns (`node.lambdaMax`: the mean over nodes of their models'
 * λmax; `node.lambdaMax/lambda5`: the mean of their λmax/λ5; `node.trace`; the same for `swa` and
 * `average`). Every model is measured on the same seeded samples with the same seed.
 */
export async function measureRunFlatness(
  dir: string,
  spec: RunFlatnessSpec,
  progress?: (model: string, done: number, total: number) => void,
): Promise<SweepFlatnessFile> {
  const run = readRunDir(dir, { records: false });
  const cfg = run.config;
  await initBackend({ ...(cfg.backend !== 'auto' && { prefer: cfg.backend }), quiet: true });
  const models = new RunModels(run);
  const names = spec.models.flatMap((kind) =>
    kind === 'average'
      ? ['average']
      : run.nodes
          .filter((i) => models.checkpoints[i] && (kind === 'node' || models.hasSwa(i)))
          .map((i) => `${kind}:${i}`),
  );
  const ctx = await prepareRun(cfg, run.summary?.runId ?? 'flatness');
  const set = pickSamples(spec.data, ctx.data.train, ctx.test, ctx.partition, {
    limit: spec.samples,
    seed: spec.seed,
  });
  const model = createModel(modelSpec(cfg), ctx.data.train.shape, ctx.data.train.classes, 1);
  const measured: SweepFlatnessFile['models'] = [];
  try {
    for (const [i, name] of names.entries()) {
      progress?.(name, i, names.length);
      const ref = models.resolve(name);
      if (ref.weights.length !== model.size) {
        throw new CheckpointError(
          `${name} has ${ref.weights.length} weights but the run's model has ${model.size}`,
        );
      }
      const f = measureFlatness(model, ref.weights, set, {
        top: spec.top,
        tol: spec.tol,
        trace: spec.trace,
        probes: spec.probes,
        traceMethod: spec.traceMethod,
        sharpness: false,
        seed: spec.seed,
      });
      measured.push({
        model: name,
        round: ref.round,
        loss: f.loss,
        top: f.top!.values,
        converged: f.top!.converged,
        ...(spec.top > 1 && { ratio: f.top!.ratio }),
        ...(f.trace && { trace: f.trace.estimate, traceStderr: f.trace.stderr }),
        products: f.products,
        seconds: f.seconds,
      });
    }
  } finally {
    model.dispose();
  }
  const file: SweepFlatnessFile = {
    spec,
    samples: sampleInfo(set) as SampleInfo,
    columns: columnsOf(spec, measured),
    models: measured,
  };
  const path = join(dir, SWEEP_FLATNESS_FILE);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, `${JSON.stringify(file, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
  return file;
}

function columnsOf(
  spec: RunFlatnessSpec,
  measured: SweepFlatnessFile['models'],
): Record<string, number | null> {
  const mean = (vs: (number | undefined)[]): number | null => {
    const ok = vs.filter((v): v is number => v !== undefined && Number.isFinite(v));
    return ok.length === 0 ? null : ok.reduce((s, v) => s + v, 0) / ok.length;
  };
  const columns: Record<string, number | null> = {};
  for (const kind of spec.models) {
    const of = measured.filter((m) => m.model === kind || m.model.startsWith(`${kind}:`));
    columns[`${kind}.lambdaMax`] = mean(of.map((m) => m.top[0]));
    if (spec.top > 1) columns[`${kind}.lambdaMax/lambda${spec.top}`] = mean(of.map((m) => m.ratio));
    if (spec.trace) columns[`${kind}.trace`] = mean(of.map((m) => m.trace));
  }
  return columns;
}
