/**
 * The flatness analysis's costs on the Fashion-MNIST MLP (784-200-200-10, 199,210 parameters):
 * one Hessian-vector product against one gradient on the same samples (target ≤ 3×), λmax on
 * 1,000 test samples (target ≤ 10 s on one core: the wasm backend runs single-threaded), and live
 * tensors and memory across 200 products (target: flat). The model is trained for a few hundred
 * SGD steps first so the spectrum is a trained net's, not an initialization's.
 * It also compares the two trace estimators at the same budget of products: the spread of
 * Hutchinson's and Hutch++'s estimates over `--trace-reps` seeds, as variance × products (the
 * variance one product buys; lower is better) and their ratio.
 * `npm run bench -- flatness [--samples 1000] [--reps 20] [--products 200] [--train-steps 300] [--chunk 256] [--trace-budget 30] [--trace-reps 8]`
 *
 *   {"suite":"flatness","figure":"hvp-vs-gradient","gradientCpuMs":...,"hvpCpuMs":...,"ratio":...,"load":[...]}
 *   {"suite":"flatness","figure":"lambda-max","seconds":...,"cpuSeconds":...,"lambdaMax":...,"products":...}
 *   {"suite":"flatness","figure":"memory","products":200,"numTensors":[...],"numBytes":[...],"heapMB":[...],"rssMB":[...],"flat":true}
 *   {"suite":"flatness","figure":"trace-variance","budget":30,"hutchinson":{...},"hutch++":{...},"varianceRatio":...}
 */
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/compute/backend.js';
import { loadDataset } from '../../src/data/load.js';
import {
  HessianOperator,
  hutchinsonTrace,
  hutchPlusPlusTrace,
  sampleSet,
  topEigenvalues,
} from '../../src/learn/flatness/index.js';
import { createModel } from '../../src/learn/model.js';
import { createOptimizer } from '../../src/learn/optim/optimizer.js';
import { LocalTrainer } from '../../src/learn/trainer.js';

function flag(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : dflt;
}

const load = () => loadavg().map((l) => Number(l.toFixed(2)));
const line = (o: Record<string, unknown>) =>
  console.log(JSON.stringify({ suite: 'flatness', ...o }));

export async function run(args: string[]): Promise<void> {
  const samples = flag(args, 'samples', 1000);
  const reps = flag(args, 'reps', 20);
  const products = flag(args, 'products', 200);
  const trainSteps = flag(args, 'train-steps', 300);
  const chunk = flag(args, 'chunk', 256);
  const backend = await initBackend({ quiet: true });
  const data = await loadDataset({ name: 'fashion-mnist' });
  const model = createModel({ kind: 'mlp', hidden: [200, 200] }, data.train.shape, 10, 1);
  const optimizer = createOptimizer(
    { kind: 'sgd', momentum: 0, weightDecay: 4e-4, rho: 0, eta: 0 },
    model.params,
  );
  const indices = Int32Array.from({ length: data.train.count }, (_, i) => i);
  const trainer = new LocalTrainer({
    model,
    optimizer,
    data: data.train,
    indices,
    batchSize: 32,
    seed: 1,
    node: 0,
  });
  trainer.train(trainSteps, 0.05);
  const set = sampleSet(data.test, 'test set', { limit: samples, seed: 1 });
  const H = new HessianOperator(model, set, { chunk });
  const v = Float32Array.from({ length: model.size }, (_, i) => Math.sin(i));
  // CPU time (user + system) beside wall time: on a loaded shared machine wall time mostly
  // measures the other processes; the wasm backend uses one thread, so CPU time is one core's.
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const time = (f: () => void) => {
    f();
    const t0 = performance.now();
    const c0 = cpuMs();
    for (let i = 0; i < reps; i++) f();
    return { wall: (performance.now() - t0) / reps, cpu: (cpuMs() - c0) / reps };
  };
  const gradient = time(() => H.lossAndGradient());
  const hvp = time(() => H.hvp(v));
  line({
    figure: 'hvp-vs-gradient',
    backend: backend.name,
    samples,
    params: model.size,
    method: H.method,
    chunk,
    gradientMs: Number(gradient.wall.toFixed(2)),
    hvpMs: Number(hvp.wall.toFixed(2)),
    gradientCpuMs: Number(gradient.cpu.toFixed(2)),
    hvpCpuMs: Number(hvp.cpu.toFixed(2)),
    ratio: Number((hvp.cpu / gradient.cpu).toFixed(2)),
    target: '<= 3',
    load: load(),
  });

  const t0 = performance.now();
  const c0 = cpuMs();
  const top = topEigenvalues(H, { k: 1, tol: 1e-3, seed: 1 });
  const cpuSeconds = (cpuMs() - c0) / 1000;
  line({
    figure: 'lambda-max',
    backend: backend.name,
    samples,
    seconds: Number(((performance.now() - t0) / 1000).toFixed(2)),
    cpuSeconds: Number(cpuSeconds.toFixed(2)),
    lambdaMax: top.values[0],
    converged: top.converged,
    residual: top.residuals[0],
    products: top.products,
    target: '<= 10 s on one core',
    load: load(),
  });

  // Sampled before the first product and after each quarter of them. `flat`: the live tensors and
  // their bytes are the same at every mark (the RSS and heap only drift with V8's collector).
  const mem = () => ({
    tensors: tf.memory().numTensors,
    bytes: tf.memory().numBytes,
    heapMB: Number((process.memoryUsage().heapUsed / 2 ** 20).toFixed(1)),
    rssMB: Number((process.memoryUsage().rss / 2 ** 20).toFixed(1)),
  });
  const marks = [mem()];
  for (let i = 1; i <= products; i++) {
    H.hvp(v);
    if (i % Math.max(1, Math.floor(products / 4)) === 0) marks.push(mem());
  }
  line({
    figure: 'memory',
    products,
    numTensors: marks.map((m) => m.tensors),
    numBytes: marks.map((m) => m.bytes),
    heapMB: marks.map((m) => m.heapMB),
    rssMB: marks.map((m) => m.rssMB),
    rssGrowthMB: Number((marks.at(-1)!.rssMB - marks[0]!.rssMB).toFixed(1)),
    flat: marks.every((m) => m.tensors === marks[0]!.tensors && m.bytes === marks[0]!.bytes),
    target: 'flat',
    load: load(),
  });

  const budget = flag(args, 'trace-budget', 30);
  const traceReps = flag(args, 'trace-reps', 8);
  const spread = (f: typeof hutchinsonTrace) => {
    const c0 = cpuMs();
    const runs = Array.from({ length: traceReps }, (_, i) =>
      f(H, { probes: budget, seed: 100 + i }),
    );
    const est = runs.map((r) => r.estimate);
    const mean = est.reduce((a, b) => a + b, 0) / est.length;
    const variance = est.reduce((a, b) => a + (b - mean) ** 2, 0) / (est.length - 1);
    return {
      mean: Number(mean.toPrecision(5)),
      std: Number(Math.sqrt(variance).toPrecision(3)),
      meanReportedStderr: Number(
        (runs.reduce((a, r) => a + r.stderr, 0) / runs.length).toPrecision(3),
      ),
      variancePerProduct: Number((variance * budget).toPrecision(3)),
      cpuSecondsPerEstimate: Number(((cpuMs() - c0) / 1000 / traceReps).toFixed(2)),
    };
  };
  const hutchinson = spread(hutchinsonTrace);
  const plusPlus = spread(hutchPlusPlusTrace);
  line({
    figure: 'trace-variance',
    samples,
    budget,
    reps: traceReps,
    hutchinson,
    'hutch++': plusPlus,
    varianceRatio: Number((hutchinson.variancePerProduct / plusPlus.variancePerProduct).toFixed(2)),
    note: 'std: the spread of one estimate over seeds, its standard error at `budget` products; variancePerProduct: its variance x products; varianceRatio > 1: Hutch++ has less',
    load: load(),
  });
  H.dispose();
  model.dispose();
}
