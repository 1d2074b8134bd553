/**
 * Local training of many nodes' MLPs (or logistic regressions) of one architecture in one pass: the
 * batched simulator's compute. Every node keeps its own Model, optimizer and LocalTrainer; a call to
 * `train` gathers their parameters into stacked tensors `[nodes, ...]`, runs the local steps of all
 * of them together, and writes the parameters (and momentum buffers) back. The result is the one
 * each node's own `LocalTrainer.train` would have given, within float32 rounding:
 *   - the same minibatches: each node's LocalTrainer draws them (`nextBatchInto`), from its own
 *     seeded stream, so its checkpointable RNG state advances exactly as in the unbatched engine;
 *   - the same loss: mean softmax cross-entropy over the node's batch (a short last batch of a pass
 *     is padded to the batch size with rows of weight 0, which add exact zeros to every gradient);
 *   - the same updates: SGD with momentum (heavy ball, or quasi-global momentum's fixed buffer) and
 *     weight decay as SgdUpdate makes them, and SAM/ASAM's
 *     perturbation with its norm taken per node. Without momentum the step is computed as
 *     w * (1 - lr * wd) + (-lr * g), with -lr folded into the backward pass before the products:
 *     two passes over the weights instead of four (on a stacked 16-node MLP these passes cost a
 *     third of the products), at the price of a different rounding;
 *   - only the order of the sums inside the matrix products differs.
 *
 *   const batched = new BatchedMlpTrainer({ optimizer: spec, batchSize: 32 });
 *   const results = batched.train(members, 10, lrs);   // members: { model, optimizer, trainer }[]
 *
 * Layout, and why: every stacked tensor keeps the members' own layout with the nodes first
 * (weights `[nodes, in, out]`, biases `[nodes, 1, out]`, activations `[nodes, batch, features]`), so
 * gathering and scattering are plain copies. The matrix products are one kernel call per layer and
 * pass for all nodes (batched-matmul.ts: on wasm, flatmesh's SIMD GEMM reads each node's slice
 * where it lies and handles transposed operands by strides, ~25-30 GFLOP/s on these shapes). The
 * backward pass is written out (dense layers, ReLU, softmax cross-entropy) rather than taped: a
 * handful of stacked operations per layer and step for all nodes at once, instead of a tape per
 * node. Everything elementwise (bias, ReLU, its gradient, the loss, the optimizer) runs once over
 * the stacked tensors; when the batch's nodes share one learning rate (they do unless a schedule
 * gives them different ones), the SGD update is one fused pass (compute/fused.ts's `addScaled`).
 */
import * as tf from '@tensorflow/tfjs';
import { addScaled } from '../compute/fused.js';
import { ConfigError } from '../errors.js';
import { stackedMatMul } from './batched-matmul.js';
import type { Model, ModelSpec } from './model.js';
import type { LocalOptimizer, OptimizerSpec } from './optim/types.js';
import { checkTrainArgs, type LocalTrainer, type TrainResult } from './trainer.js';
import { stackedSlices } from './wasm-heap.js';

/** One node's parts, trained together with others of the same architecture. */
export interface BatchMember {
  model: Model;
  optimizer: LocalOptimizer;
  trainer: LocalTrainer;
}

/** Models whose local training `BatchedMlpTrainer` can batch: dense layers only. */
export function batchable(spec: ModelSpec): boolean {
  return spec.kind === 'mlp' || spec.kind === 'logreg';
}

/** Parameters of one dense layer for all nodes: weights `[G, in, out]`, biases `[G, 1, out]`. */
export type StackedLayer = { w: tf.Tensor3D; b: tf.Tensor3D };
type Layer = StackedLayer;

/** tf.tidy for results that hold tensors in plain objects (tidy keeps every tensor it finds). */
function tidy<T>(fn: () => T): T {
  return tf.tidy(fn as () => tf.TensorContainer) as T;
}

export class BatchedMlpTrainer {
  /** Parameters trained in one stacked computation at most (more nodes: several in turn). */
  static maxStackedValues = 4_000_000;
  private readonly spec: OptimizerSpec;
  private readonly batchSize: number;

  constructor(opts: { optimizer: OptimizerSpec; batchSize: number }) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
      throw new ConfigError('train.batchSize', 'must be an integer >= 1', opts.batchSize);
    }
    this.spec = opts.optimizer;
    this.batchSize = opts.batchSize;
  }

  /**
   * `steps` local steps of every member, member g at learning rate `lrs[g]`. Members must share
   * one architecture and have non-empty shards (a node with nothing to train is not batched).
   */
  train(members: readonly BatchMember[], steps: number, lrs: readonly number[]): TrainResult[] {
    lrs.forEach((lr) => checkTrainArgs(steps, lr));
    const first = members[0];
    if (!first || steps === 0) return members.map(() => ({ loss: Number.NaN, samples: 0 }));
    if (!batchable(first.model.spec)) {
      throw new ConfigError(
        'model.kind',
        'must be mlp or logreg to train batched',
        first.model.spec.kind,
      );
    }
    // Chunks of at most `maxStackedValues` parameters bound the memory of the stacked copies, their
    // gradients and updates: the wasm heap holds every tensor of the process in 4 GB at most, and
    // 1,000 stacked MLPs 784-200-200-10 would need 0.8 GB for each of those.
    const chunk = stackedChunk(first.model);
    if (members.length > chunk) {
      const out: TrainResult[] = [];
      for (let i = 0; i < members.length; i += chunk) {
        out.push(...this.train(members.slice(i, i + chunk), steps, lrs.slice(i, i + chunk)));
      }
      return out;
    }
    const G = members.length;
    const B = this.batchSize;
    const features = first.model.inputShape.reduce((a, d) => a * d, 1);
    const classes = first.model.classes;
    const momentum = this.spec.momentum > 0;
    // Quasi-global momentum: the buffers are fixed over the round's steps (set between rounds).
    const fixedBuffer = momentum && (this.spec.quasiGlobal ?? false);
    // Without momentum -lr is folded into the loss's gradient (so into every gradient): per node.
    const scaled = !momentum;
    const sameLr = lrs.every((lr) => lr === lrs[0]);

    let layers = gatherLayers(members);
    let buffers = momentum ? gatherState(members, 'momentum') : undefined;
    // Per-node factors as one scalar when all nodes share them, else `[G, 1, 1]`.
    const perNode = (v: number[]) => (sameLr ? tf.scalar(v[0]!) : tf.tensor3d(v, [G, 1, 1]));
    const negLr = perNode(lrs.map((lr) => -lr));
    const wd = this.spec.weightDecay;
    // Gradient tracking's fixed correction, pre-multiplied by -lr where the gradients are.
    const correction = this.spec.correction
      ? tidy(() =>
          gatherState(members, 'correction').map((l) =>
            scaled
              ? { w: tf.mul(l.w, negLr) as tf.Tensor3D, b: tf.mul(l.b, negLr) as tf.Tensor3D }
              : l,
          ),
        )
      : undefined;
    const consts: Consts = {
      wd: wd > 0 ? tf.scalar(wd) : undefined,
      decay: scaled && wd > 0 ? perNode(lrs.map((lr) => 1 - lr * wd)) : undefined,
      negLr,
      mom: momentum ? tf.scalar(this.spec.momentum) : undefined,
      fixedBuffer,
      correction,
      rho: tf.scalar(this.spec.rho),
      eta: tf.scalar(this.spec.eta),
      tiny: tf.scalar(1e-16),
    };
    const losses: tf.Tensor1D[] = [];
    const sizes = members.map(() => [] as number[]);
    const xs = new Float32Array(G * B * features);
    const labels = new Int32Array(G * B);
    try {
      for (let s = 0; s < steps; s++) {
        xs.fill(0);
        // Per row: the one-hot label times the row's weight in its node's mean loss (1 / batch
        // size, 0 on padding), and the same times -lr (the loss's gradient, scaled).
        const rowWeight = new Float32Array(G * B);
        const yw = new Float32Array(G * B * classes);
        members.forEach((m, g) => {
          const n = m.trainer.nextBatchInto(xs, labels, g * B);
          sizes[g]!.push(n);
          for (let r = 0; r < n; r++) {
            rowWeight[g * B + r] = 1 / n;
            yw[(g * B + r) * classes + labels[g * B + r]!] = 1 / n;
          }
        });
        const next = tidy(() => {
          // The cpu backend keeps a reference to the array a tensor is made of (so a fresh one);
          // the others copy it (on wasm into its heap), and a copy here would be garbage.
          const batch: Batch = {
            x: tf.tensor3d(aliasing() ? xs.slice() : xs, [G, B, features]),
            yw: tf.tensor3d(yw, [G, B, classes]),
            rw: tf.tensor3d(rowWeight, [G, B, 1]),
            ...(scaled && scaledRows(rowWeight, yw, lrs, G, B, classes)),
          };
          return this.spec.kind === 'sgd'
            ? this.sgdStep(layers, buffers, batch, consts)
            : this.sharpnessStep(layers, buffers, batch, consts);
        });
        disposeLayers(layers);
        if (buffers && next.buffers !== buffers) disposeLayers(buffers);
        layers = next.layers;
        buffers = next.buffers;
        losses.push(next.loss);
      }
      scatterLayers(members, layers);
      if (buffers && !fixedBuffer) scatterMomentum(members, buffers);
      const stacked = tf.stack(losses);
      const values = stacked.dataSync();
      stacked.dispose();
      return members.map((_, g) => {
        let sum = 0;
        let samples = 0;
        sizes[g]!.forEach((n, s) => {
          sum += values[s * G + g]! * n;
          samples += n;
        });
        return { loss: sum / samples, samples };
      });
    } finally {
      disposeLayers(layers);
      if (buffers) disposeLayers(buffers);
      tf.dispose(losses);
      tf.dispose(Object.values(consts).filter((c) => c instanceof tf.Tensor));
      if (correction) disposeLayers(correction);
    }
  }

  private sgdStep(
    layers: Layer[],
    buffers: Layer[] | undefined,
    batch: Batch,
    c: Consts,
  ): { layers: Layer[]; buffers: Layer[] | undefined; loss: tf.Tensor1D } {
    const { loss, grads } = lossAndGrads(layers, batch, !buffers);
    return { ...sgdUpdate(layers, buffers, grads, c), loss };
  }

  /** SAM/ASAM (src/learn/optim/optimizer.ts), with the perturbation's norm taken per node. */
  private sharpnessStep(
    layers: Layer[],
    buffers: Layer[] | undefined,
    batch: Batch,
    c: Consts,
  ): { layers: Layer[]; buffers: Layer[] | undefined; loss: tf.Tensor1D } {
    const asam = this.spec.kind === 'asam';
    const first = lossAndGrads(layers, batch, false);
    const params = flatten(layers);
    const g = flatten(first.grads);
    // ASAM scales weights by |w| + eta, biases not at all (params alternate weight, bias).
    const scale = params.map((p, i) =>
      asam && i % 2 === 0 ? tf.add(tf.abs(p), c.eta) : undefined,
    );
    const tg = g.map((gi, i) => (scale[i] ? tf.mul(gi, scale[i]) : gi));
    const sq = tg.map((t) => tf.sum(tf.square(t), [1, 2]));
    const norm = tf.add(tf.sqrt(sq.length === 1 ? sq[0]! : tf.addN(sq)), c.tiny);
    const factor = tf.reshape(tf.div(c.rho, norm), [-1, 1, 1]);
    const perturbed = params.map((p, i) => {
      const s = scale[i];
      return tf.add(p, tf.mul(s ? tf.mul(tg[i]!, s) : tg[i]!, factor)) as tf.Tensor3D;
    });
    const second = lossAndGrads(unflatten(perturbed), batch, !buffers);
    return { ...sgdUpdate(layers, buffers, second.grads, c), loss: first.loss };
  }
}

/** The number of members of `model`'s size trained (or evaluated) in one stacked computation. */
export function stackedChunk(model: Model): number {
  return Math.max(1, Math.floor(BatchedMlpTrainer.maxStackedValues / model.size));
}

/** The row weights and weighted one-hot labels times each node's -lr. */
function scaledRows(
  rowWeight: Float32Array,
  yw: Float32Array,
  lrs: readonly number[],
  G: number,
  B: number,
  classes: number,
): { rwScaled: tf.Tensor3D; ywScaled: tf.Tensor3D } {
  const rw = new Float32Array(rowWeight.length);
  const y = new Float32Array(yw.length);
  for (let g = 0; g < G; g++) {
    const s = -lrs[g]!;
    for (let i = g * B; i < (g + 1) * B; i++) rw[i] = rowWeight[i]! * s;
    for (let i = g * B * classes; i < (g + 1) * B * classes; i++) y[i] = yw[i]! * s;
  }
  return { rwScaled: tf.tensor3d(rw, [G, B, 1]), ywScaled: tf.tensor3d(y, [G, B, classes]) };
}

interface Batch {
  /** Samples `[G, B, features]` (padding rows are zeros). */
  x: tf.Tensor3D;
  /** One-hot labels times the row weight `[G, B, classes]`: padding rows are all zero. */
  yw: tf.Tensor3D;
  /** `1 / batch size` for a node's real rows, 0 for padding: `[G, B, 1]`. */
  rw: tf.Tensor3D;
  /** `yw` and `rw` times each node's -lr (without momentum, see lossAndGrads' `scaled`). */
  ywScaled?: tf.Tensor3D;
  rwScaled?: tf.Tensor3D;
}

interface Consts {
  wd: tf.Scalar | undefined;
  /** Without momentum: 1 - lr * wd, one scalar or per node `[G, 1, 1]` (undefined without wd). */
  decay: tf.Tensor | undefined;
  /** -lr, one scalar or per node `[G, 1, 1]`. */
  negLr: tf.Tensor;
  mom: tf.Scalar | undefined;
  /** Quasi-global momentum: steps read the buffers and leave them as they are. */
  fixedBuffer: boolean;
  /** Gradient tracking's correction (times -lr without momentum, as the gradients then are). */
  correction: Layer[] | undefined;
  rho: tf.Scalar;
  eta: tf.Scalar;
  tiny: tf.Scalar;
}

/**
 * The logits `[G, B, classes]` of stacked dense layers with ReLU between them on `x` `[G or 1, B,
 * features]` (a batch shared by all nodes when its first dimension is 1), and the pre-activations
 * and activations on the way (for the backward pass). The same function as model.ts's `runDense`.
 */
export function stackedForward(
  layers: readonly StackedLayer[],
  x: tf.Tensor3D,
): { logits: tf.Tensor3D; pre: tf.Tensor3D[]; acts: tf.Tensor3D[] } {
  const acts: tf.Tensor3D[] = [x];
  const pre: tf.Tensor3D[] = [];
  layers.forEach((l, i) => {
    const z = tf.add(stackedMatMul(acts[i]!, l.w), l.b) as tf.Tensor3D;
    pre.push(z);
    if (i < layers.length - 1) acts.push(tf.relu(z));
  });
  return { logits: pre[pre.length - 1]!, pre, acts };
}

/**
 * Mean softmax cross-entropy per node `[G]` and its gradients, for dense layers with ReLU between
 * them. The same function as model.ts's `runDense` followed by loss.ts's `crossEntropy`, with the
 * gradients tfjs would derive for them, times each node's -lr when `scaled` (the gradients are
 * linear in the loss's: scaling there costs nothing, the scaled row weights are made with the
 * batch, instead of a pass over every parameter).
 */
function lossAndGrads(
  layers: readonly Layer[],
  batch: Batch,
  scaled: boolean,
): { loss: tf.Tensor1D; grads: Layer[] } {
  const { logits, pre, acts } = stackedForward(layers, batch.x);
  const logp = tf.logSoftmax(logits);
  const loss = tf.neg(tf.sum(tf.mul(batch.yw, logp), [1, 2])) as tf.Tensor1D;
  // d(mean CE)/d logits = (softmax - y) / batch size, per real row; zero on padding rows.
  const [rw, yw] = scaled ? [batch.rwScaled!, batch.ywScaled!] : [batch.rw, batch.yw];
  let dz = tf.sub(tf.mul(tf.exp(logp), rw), yw) as tf.Tensor3D;
  const grads: Layer[] = new Array(layers.length);
  for (let i = layers.length - 1; i >= 0; i--) {
    // dW = actᵀ · dz (the transpose read by strides), db = the sum of dz over the batch.
    const w = stackedMatMul(acts[i]!, dz, true, false);
    grads[i] = { w, b: tf.sum(dz, 1, true) as tf.Tensor3D };
    if (i > 0) {
      const da = stackedMatMul(dz, layers[i]!.w, false, true);
      dz = tf.mul(da, tf.step(pre[i - 1]!)) as tf.Tensor3D;
    }
  }
  return { loss, grads };
}

/**
 * SgdUpdate.apply over stacked parameters, with a learning rate per node. With momentum, `grads`
 * are the gradients and the update is SgdUpdate's operation for operation; without, `grads` are
 * already -lr times the gradients (lossAndGrads' `scaled`).
 */
function sgdUpdate(
  layers: readonly Layer[],
  buffers: readonly Layer[] | undefined,
  grads: readonly Layer[],
  c: Consts,
): { layers: Layer[]; buffers: Layer[] | undefined } {
  const params = flatten(layers);
  const g = flatten(grads);
  const corr = c.correction ? flatten(c.correction) : undefined;
  // x + a·y: one fused pass when `a` is one scalar for all nodes.
  const axpy = (x: tf.Tensor, y: tf.Tensor, a: tf.Tensor) =>
    (a.rank === 0 ? addScaled(x, y, a as tf.Scalar) : tf.add(x, tf.mul(y, a))) as tf.Tensor3D;
  if (!buffers) {
    const next = params.map((w, i) => {
      const step = corr ? tf.add(g[i]!, corr[i]!) : g[i]!;
      // w·(1 - lr·wd) + step, as step + (1 - lr·wd)·w.
      return c.decay ? axpy(step, w, c.decay) : (tf.add(w, step) as tf.Tensor3D);
    });
    return { layers: unflatten(next), buffers: undefined };
  }
  const bufs = flatten(buffers);
  const nextBufs: tf.Tensor3D[] = [];
  const next = params.map((w, i) => {
    let gi: tf.Tensor = g[i]!;
    if (c.wd) gi = tf.add(gi, tf.mul(w, c.wd));
    if (corr) gi = tf.add(gi, corr[i]!);
    const buf = bufs[i];
    if (buf && c.mom) {
      gi = tf.add(tf.mul(buf, c.mom), gi);
      nextBufs.push(gi as tf.Tensor3D);
    }
    return axpy(w, gi, c.negLr);
  });
  // Fixed buffers (quasi-global momentum) carry over to the next step untouched.
  if (c.fixedBuffer) return { layers: unflatten(next), buffers: buffers as Layer[] };
  return { layers: unflatten(next), buffers: unflatten(nextBufs) };
}

function flatten(layers: readonly Layer[]): tf.Tensor3D[] {
  return layers.flatMap((l) => [l.w, l.b]);
}

function unflatten(ts: readonly tf.Tensor3D[]): Layer[] {
  const out: Layer[] = [];
  for (let i = 0; i < ts.length; i += 2) out.push({ w: ts[i]!, b: ts[i + 1]! });
  return out;
}

export function disposeLayers(layers: readonly StackedLayer[]): void {
  for (const l of layers) tf.dispose([l.w, l.b]);
}

/** The members' parameters (weight `[in, out]`, bias `[out]` per layer) stacked. */
function gatherLayers(members: readonly BatchMember[]): Layer[] {
  const params = members[0]!.model.params;
  return tidy(() => {
    const out: Layer[] = [];
    for (let i = 0; i < params.length; i += 2) {
      const w = tf.stack(members.map((m) => m.model.params[i]!.variable)) as tf.Tensor3D;
      const b = tf.stack(members.map((m) => m.model.params[i + 1]!.variable));
      out.push({ w, b: tf.expandDims(b, 1) as tf.Tensor3D });
    }
    return out;
  });
}

/** Each member's parameters from the stacked ones (copied within the backend's memory). */
function scatterLayers(members: readonly BatchMember[], layers: readonly Layer[]): void {
  const params = members[0]!.model.params;
  layers.forEach((l, k) => {
    for (const [i, stacked] of [
      [2 * k, l.w],
      [2 * k + 1, l.b],
    ] as const) {
      const shape = params[i]!.variable.shape;
      // The variables keep the slices' data; tidy drops the slices' own handles.
      tf.tidy(() => {
        stackedSlices(stacked).forEach((t, g) => {
          members[g]!.model.params[i]!.variable.assign(tf.reshape(t, shape));
        });
      });
    }
  });
}

/** Whether tensors made from an array keep that array (the cpu backend's do; tfjs-node, wasm copy). */
function aliasing(): boolean {
  return tf.getBackend() === 'cpu';
}

/**
 * Each node's values of a stacked parameter, as arrays of their own. One read of the stacked
 * values: slicing the tensor G times (unstack) would copy all of it out of the wasm heap for each.
 */
function slices(stacked: tf.Tensor3D): Float32Array[] {
  const values = stacked.dataSync() as Float32Array;
  const [G, r, c] = stacked.shape;
  const n = r * c;
  return Array.from({ length: G }, (_, g) => values.slice(g * n, (g + 1) * n));
}

/**
 * Momentum buffers or corrections (`<param>.momentum` / `<param>.correction`) from each member's
 * optimizer state, in the layout of `gatherLayers`.
 */
function gatherState(members: readonly BatchMember[], kind: 'momentum' | 'correction'): Layer[] {
  const params = members[0]!.model.params;
  const states = members.map((m) => m.optimizer.getState());
  const stack = (j: number, shape: number[]) => {
    const n = shape.reduce((a, d) => a * d, 1);
    const all = new Float32Array(members.length * n);
    states.forEach((s, g) => all.set(s[`${params[j]!.name}.${kind}`]!, g * n));
    return tf.tensor3d(all, [members.length, ...shape] as [number, number, number]);
  };
  const out: Layer[] = [];
  for (let i = 0; i < params.length; i += 2) {
    const [fanIn, fanOut] = params[i]!.variable.shape as [number, number];
    out.push({ w: stack(i, [fanIn, fanOut]), b: stack(i + 1, [1, fanOut]) });
  }
  return out;
}

function scatterMomentum(members: readonly BatchMember[], buffers: readonly Layer[]): void {
  const params = members[0]!.model.params;
  // Other state (a correction) is kept as it is.
  const states = members.map((m) => m.optimizer.getState());
  buffers.forEach((l, k) => {
    for (const [i, stacked] of [
      [2 * k, l.w],
      [2 * k + 1, l.b],
    ] as const) {
      slices(stacked).forEach((v, g) => {
        states[g]![`${params[i]!.name}.momentum`] = v;
      });
    }
  });
  members.forEach((m, g) => m.optimizer.setState(states[g]!));
}
