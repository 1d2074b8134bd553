/**
 * Training throughput: `npm run bench -- train [flags]`. For each (model, optimizer) on one backend,
 * samples/s at batch 32 of (a) the flatmesh training step (src/learn: createModel, createOptimizer,
 * LocalTrainer.train — batch assembly, loss, optimizer step, one loss read-back per round) and
 * (b) a bare tfjs loop over the same variables (tf.train.sgd + optimizer.minimize, batches built
 * the same way; for ASAM a hand-written two-pass step). The two alternate in the same process
 * (ABBA rounds, so drift and other processes' load hit both alike). One JSON line per config:
 *
 *   {"model":"mlp","input":[28,28,1],"backend":"wasm","optimizer":"sgd","batch":32,
 *    "flatmeshSamplesPerSec":..., "bareSamplesPerSec":..., "ratio":..., "peakRssMB":..., ...}
 *
 * `...CpuSamplesPerSec` divide by this process's CPU time instead of wall time: the backends are
 * single-threaded here, so on a busy machine the CPU figure is the one that compares across runs.
 *
 * Flags: --backend node|wasm|cpu (default: automatic, as a node would pick), --models a,b
 * (default mlp,cnn-small), --all (adds cnn-fedavg on 32x32x3), --optimizers sgd,asam (default
 * both), --batch 32, --rounds N, --steps N (per round and side), --without patch,patch (wasm: run
 * without these kernel patches, to measure each patch's effect).
 */
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { type BackendName, initBackend } from '../../src/compute/backend.js';
import {
  removeWasmPatches,
  WASM_PATCHES,
  type WasmPatch,
} from '../../src/compute/kernels/wasm-patches.js';
import { Rng } from '../../src/compute/rng.js';
import type { Dataset } from '../../src/data/types.js';
import { UsageError } from '../../src/errors.js';
import { createModel, type Model, type ModelSpec } from '../../src/learn/index.js';
import {
  ASAM,
  flatmeshTrainer,
  INPUT,
  LR,
  type BenchModel as ModelName,
  newSide,
  type BenchOptimizer as OptName,
  rate,
  round3,
  type Side,
  timeSide,
} from './lib/training.js';

/** Steps per round and side, and rounds, sized for a few seconds per config on wasm. */
const DEFAULT_STEPS: Record<ModelName, [steps: number, rounds: number]> = {
  mlp: [40, 6],
  'cnn-small': [10, 6],
  'cnn-fedavg': [3, 4],
};

interface Options {
  backend: BackendName | undefined;
  models: ModelName[];
  optimizers: OptName[];
  batch: number;
  rounds: number | undefined;
  steps: number | undefined;
  without: WasmPatch[];
}

export async function run(args: string[]): Promise<void> {
  const opts = parseArgs(args);
  const info = await initBackend({
    ...(opts.backend ? { prefer: opts.backend } : {}),
    quiet: true,
  });
  const patches = info.name === 'wasm' ? removeWasmPatches(opts.without) : [];
  for (const model of opts.models) {
    for (const optimizer of opts.optimizers) {
      const r = benchOne(model, optimizer, opts);
      console.log(JSON.stringify({ ...r, backend: info.name, patches }));
    }
  }
}

function benchOne(modelName: ModelName, opt: OptName, o: Options) {
  const [defSteps, defRounds] = DEFAULT_STEPS[modelName];
  const steps = o.steps ?? defSteps;
  const rounds = o.rounds ?? defRounds;
  const fm = flatmeshTrainer(modelName, opt, o.batch);
  const { data, trainer } = fm;
  // A second model with the same seed: the same weights, so both loops do the same arithmetic.
  const bm = createModel({ kind: modelName } as ModelSpec, INPUT[modelName], 10, 1);
  const bare = bareLoop(bm, data, o.batch, opt);
  const flat: Side = newSide();
  const base: Side = newSide();
  const runFlat = (n: number) => trainer.train(n, LR).samples;
  const runBare = (n: number) => bare.steps(n);
  // Warm-up: compile kernels, pack XNNPACK operators, let the JIT settle.
  runFlat(Math.max(2, Math.ceil(steps / 2)));
  runBare(Math.max(2, Math.ceil(steps / 2)));
  let peakRss = process.memoryUsage.rss();
  let tensorsAfterFirst = 0;
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ([flat, base] as const) : ([base, flat] as const);
    for (const side of order)
      timeSide(side, () => (side === flat ? runFlat(steps) : runBare(steps)));
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    if (r === 0) tensorsAfterFirst = tf.memory().numTensors;
  }
  const numTensors = tf.memory().numTensors;
  const result = {
    model: modelName,
    input: INPUT[modelName],
    optimizer: opt,
    batch: o.batch,
    steps: steps * rounds,
    flatmeshSamplesPerSec: rate(flat.samples, flat.wallMs),
    bareSamplesPerSec: rate(base.samples, base.wallMs),
    ratio: round3(flat.samples / flat.wallMs / (base.samples / base.wallMs)),
    flatmeshCpuSamplesPerSec: rate(flat.samples, flat.cpuMs),
    bareCpuSamplesPerSec: rate(base.samples, base.cpuMs),
    cpuRatio: round3(flat.samples / flat.cpuMs / (base.samples / base.cpuMs)),
    peakRssMB: Math.round(peakRss / 2 ** 20),
    numTensors,
    tensorGrowth: numTensors - tensorsAfterFirst,
    loadavg1: round3(loadavg()[0] ?? 0),
  };
  bare.dispose();
  fm.dispose();
  bm.dispose();
  return result;
}

/**
 * The bare tfjs loop: what a tfjs user writes by hand. Batches are drawn and built exactly as the
 * trainer does (fresh Float32Array, one-hot labels), so only the training step differs.
 */
function bareLoop(model: Model, data: Dataset, batch: number, opt: OptName) {
  const vars = model.params.map((p) => p.variable);
  const sgd = tf.train.sgd(LR);
  const rng = Rng.from(2, 'bench', 'bare');
  const f = data.shape.reduce((a, d) => a * d, 1);
  const loss = (x: tf.Tensor, y: tf.Tensor2D) => () =>
    tf.losses.softmaxCrossEntropy(y, model.logits(x)) as tf.Scalar;
  const isWeight = model.params.map((p) => p.kind === 'weight');
  const asamStep = (l: () => tf.Scalar) => {
    tf.tidy(() => {
      const g1 = tf.variableGrads(l, vars);
      const g = vars.map((v) => g1.grads[v.name]!);
      const t = vars.map((v, i) => (isWeight[i] ? tf.add(tf.abs(v), ASAM.eta) : tf.onesLike(v)));
      const tg = g.map((gi, i) => tf.mul(t[i]!, gi));
      const norm = tf.add(tf.sqrt(tf.addN(tg.map((x) => tf.sum(tf.square(x))))), 1e-16);
      const scale = tf.div(ASAM.rho, norm);
      const saved = vars.map((v) => tf.clone(v));
      vars.forEach((v, i) => {
        v.assign(tf.add(v, tf.mul(tf.mul(tf.mul(t[i]!, t[i]!), g[i]!), scale)));
      });
      const g2 = tf.variableGrads(l, vars);
      vars.forEach((v, i) => {
        v.assign(saved[i]!);
      });
      sgd.applyGradients(g2.grads);
    });
  };
  return {
    steps(n: number): number {
      let samples = 0;
      for (let s = 0; s < n; s++) {
        const xs = new Float32Array(batch * f);
        const ys = new Float32Array(batch * data.classes);
        for (let i = 0; i < batch; i++) {
          const j = rng.int(data.count);
          xs.set(data.x.subarray(j * f, (j + 1) * f), i * f);
          ys[i * data.classes + data.y[j]!] = 1;
        }
        const x = tf.tensor(xs, [batch, ...data.shape]);
        const y = tf.tensor2d(ys, [batch, data.classes]);
        if (opt === 'sgd') sgd.minimize(loss(x, y), false, vars);
        else asamStep(loss(x, y));
        tf.dispose([x, y]);
        samples += batch;
      }
      // One read-back per round, as the trainer does (it reads the round's mean loss).
      vars[0]?.dataSync();
      return samples;
    },
    dispose() {
      sgd.dispose();
    },
  };
}

function parseArgs(args: string[]): Options {
  const o: Options = {
    backend: undefined,
    models: ['mlp', 'cnn-small'],
    optimizers: ['sgd', 'asam'],
    batch: 32,
    rounds: undefined,
    steps: undefined,
    without: [],
  };
  const list = <T extends string>(flag: string, v: string | undefined, legal: readonly T[]) => {
    const items = (v ?? '').split(',').filter(Boolean);
    for (const it of items) {
      if (!(legal as readonly string[]).includes(it)) {
        throw new UsageError(`${flag}: must be a comma list of ${legal.join(', ')} (got ${it})`);
      }
    }
    if (items.length === 0) throw new UsageError(`${flag}: needs a value`);
    return items as T[];
  };
  const int = (flag: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) {
      throw new UsageError(`${flag}: must be an integer >= 1 (got ${v})`);
    }
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = args[i + 1];
    switch (a) {
      case '--backend':
        o.backend = list(a, v, ['node', 'wasm', 'cpu'] as const)[0];
        i++;
        break;
      case '--models':
        o.models = list(a, v, ['mlp', 'cnn-small', 'cnn-fedavg'] as const);
        i++;
        break;
      case '--all':
        o.models = ['mlp', 'cnn-small', 'cnn-fedavg'];
        break;
      case '--optimizers':
        o.optimizers = list(a, v, ['sgd', 'asam'] as const);
        i++;
        break;
      case '--batch':
        o.batch = int(a, v);
        i++;
        break;
      case '--rounds':
        o.rounds = int(a, v);
        i++;
        break;
      case '--steps':
        o.steps = int(a, v);
        i++;
        break;
      case '--without':
        o.without = list(a, v, WASM_PATCHES);
        i++;
        break;
      default:
        throw new UsageError(
          `unknown flag ${a}; flags: --backend, --models, --all, --optimizers, --batch, --rounds, --steps, --without`,
        );
    }
  }
  return o;
}
