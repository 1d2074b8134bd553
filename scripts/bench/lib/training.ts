/**
 * What the training benchmarks (train.ts, kernels.ts) share: the models' input shapes, a seeded
 * synthetic data set, flatmesh's own trainer for a (model, optimizer), and CPU-time accounting.
 *
 *   const t = flatmeshTrainer('mlp', 'asam', 32);
 *   const side = newSide(); timeSide(side, () => t.trainer.train(40, LR).samples);
 *   t.dispose();
 */
import { Rng } from '../../../src/compute/rng.js';
import type { Dataset } from '../../../src/data/types.js';
import {
  createModel,
  createOptimizer,
  type LocalOptimizer,
  LocalTrainer,
  type Model,
  type ModelSpec,
  type OptimizerSpec,
} from '../../../src/learn/index.js';

export type BenchModel = 'mlp' | 'cnn-small' | 'cnn-fedavg';
export type BenchOptimizer = 'sgd' | 'asam';
export const BENCH_MODELS: readonly BenchModel[] = ['mlp', 'cnn-small', 'cnn-fedavg'];

export const INPUT: Record<BenchModel, number[]> = {
  mlp: [28, 28, 1],
  'cnn-small': [28, 28, 1],
  'cnn-fedavg': [32, 32, 3],
};
export const LR = 0.01;
export const ASAM = { rho: 0.7, eta: 0.2 };

/** `count` samples of uniform pixels in [0, 1) and uniform labels, from a fixed seed. */
export function syntheticData(shape: number[], classes: number, count: number): Dataset {
  const rng = Rng.from(1, 'bench', 'data');
  const f = shape.reduce((a, d) => a * d, 1);
  const x = new Float32Array(count * f);
  for (let i = 0; i < x.length; i++) x[i] = rng.float();
  const y = new Int32Array(count);
  for (let i = 0; i < count; i++) y[i] = rng.int(classes);
  return { x, y, count, shape, classes };
}

export interface FlatmeshTrainer {
  model: Model;
  optimizer: LocalOptimizer;
  trainer: LocalTrainer;
  data: Dataset;
  dispose(): void;
}

/** flatmesh's training step as a node runs it: createModel, createOptimizer, LocalTrainer. */
export function flatmeshTrainer(
  modelName: BenchModel,
  opt: BenchOptimizer,
  batch: number,
  seed = 1,
): FlatmeshTrainer {
  const input = INPUT[modelName];
  const data = syntheticData(input, 10, Math.max(512, batch * 16));
  const spec: OptimizerSpec = { kind: opt, momentum: 0, weightDecay: 0, ...ASAM };
  const model = createModel({ kind: modelName } as ModelSpec, input, 10, seed);
  const optimizer = createOptimizer(spec, model.params);
  const trainer = new LocalTrainer({
    model,
    optimizer,
    data,
    indices: Int32Array.from({ length: data.count }, (_, i) => i),
    batchSize: batch,
    seed,
    node: 0,
  });
  return {
    model,
    optimizer,
    trainer,
    data,
    dispose() {
      optimizer.dispose();
      model.dispose();
    },
  };
}

/** Accumulated wall time, this process's CPU time and samples of one side of a comparison. */
export interface Side {
  wallMs: number;
  cpuMs: number;
  samples: number;
}

export function newSide(): Side {
  return { wallMs: 0, cpuMs: 0, samples: 0 };
}

/** Runs `f` (which returns the samples it trained) and adds its wall and CPU time to `side`. */
export function timeSide(side: Side, f: () => number): void {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  side.samples += f();
  side.wallMs += performance.now() - t0;
  const c = process.cpuUsage(c0);
  side.cpuMs += (c.user + c.system) / 1000;
}

/** Samples per second of `ms`, one decimal. */
export function rate(samples: number, ms: number): number {
  return Math.round((samples / ms) * 1000 * 10) / 10;
}

export function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
