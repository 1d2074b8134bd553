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
 * Layout, and why: weights are held transposed (`[nodes, out, in]`) and activations as `[nodes,
 * features, batch]`, so every matrix product has the (fixed, large) weights on the left. XNNPACK
 * packs the right-hand operand of a product whenever its data is new, and weights are new after
 * every step: with the weights on the right a 784x200 layer re-packed 157k values per step, costing
 * twice the product itself (measured: 0.31 ms for [32,784]·[784,200] with the packed weights
 * cached, 0.97 ms with new weights); on the left they are streamed as they are, and only the small
 * activations (features x 32) are packed. The backward pass is written out
 * (dense layers, ReLU, softmax cross-entropy) rather than taped: a handful of stacked operations per
 * layer and step for all nodes at once, instead of a tape per node.
 *
 * The products are per node: tfjs-wasm's BatchMatMul runs a plain loop for more than one matrix
 * (7x slower than XNNPACK on these shapes), so on wasm each node's slice is multiplied on its own;
 * other backends (tfjs-node, cpu) get one batched product. Everything elementwise (bias, ReLU, its
 * gradient, the loss, the optimizer) runs once over the stacked tensors.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.js';
import { groupedMatMul } from './batched-matmul.js';
import type { Model, ModelSpec } from './model.js';
import type { LocalOptimizer, OptimizerSpec } from './optim/types.js';
import { checkTrainArgs, type LocalTrainer, type TrainResult } from './trainer.js';

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

/** Parameters of one dense layer for all nodes: weights `[G, out, in]`, biases `[G, out, 1]`. */
type Layer = { w: tf.Tensor3D; b: tf.Tensor3D };

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
    const per = first.model.size;
    const chunk = Math.max(1, Math.floor(BatchedMlpTrainer.maxStackedValues / per));
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

    let layers = gatherLayers(members);
    let buffers = momentum ? gatherState(members, 'momentum') : undefined;
    const negLr = tf.tensor3d(
      lrs.map((lr) => -lr),
      [G, 1, 1],
    );
    const wd = this.spec.weightDecay;
    // Gradient tracking's fixed correction, pre-multiplied by -lr where the gradients are.
    const correction = this.spec.correction
      ? tidy(() =>
          gatherState(members, 'correction').map((l) =>
            momentum
              ? l
              : { w: tf.mul(l.w, negLr) as tf.Tensor3D, b: tf.mul(l.b, negLr) as tf.Tensor3D },
          ),
        )
      : undefined;
    const consts = {
      wd: wd > 0 ? tf.scalar(wd) : undefined,
      decay:
        !momentum && wd > 0
          ? tf.tensor3d(
              lrs.map((lr) => 1 - lr * wd),
              [G, 1, 1],
            )
          : undefined,
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
    const weights = new Float32Array(G * B);
    try {
      for (let s = 0; s < steps; s++) {
        xs.fill(0);
        weights.fill(0);
        const oneHot = new Float32Array(G * B * classes);
        members.forEach((m, g) => {
          const n = m.trainer.nextBatchInto(xs, labels, g * B);
          sizes[g]!.push(n);
          for (let r = 0; r < n; r++) {
            weights[g * B + r] = 1 / n;
            oneHot[(g * B + r) * classes + labels[g * B + r]!] = 1;
          }
        });
        const next = tidy(() => {
          // Fresh arrays for the tensors (the cpu backend keeps a reference to its input array).
          const x = tf.tensor3d(xs.slice(), [G, B, features]);
          const y = tf.tensor3d(oneHot, [G, B, classes]);
          const rowWeight = tf.tensor3d(weights.slice(), [G, B, 1]);
          const batch = { x, xt: transposeInner(x), y, rowWeight };
          const out =
            this.spec.kind === 'sgd'
              ? this.sgdStep(layers, buffers, batch, negLr, consts)
              : this.sharpnessStep(layers, buffers, batch, negLr, consts);
          return out;
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
      tf.dispose([negLr, ...Object.values(consts).filter((c) => c instanceof tf.Tensor)]);
      if (correction) disposeLayers(correction);
    }
  }

  private sgdStep(
    layers: Layer[],
    buffers: Layer[] | undefined,
    batch: Batch,
    negLr: tf.Tensor3D,
    c: Consts,
  ): { layers: Layer[]; buffers: Layer[] | undefined; loss: tf.Tensor1D } {
    const { loss, grads } = lossAndGrads(layers, batch, buffers ? undefined : negLr);
    return { ...sgdUpdate(layers, buffers, grads, negLr, c), loss };
  }

  /** SAM/ASAM (src/learn/optim/optimizer.ts), with the perturbation's norm taken per node. */
  private sharpnessStep(
    layers: Layer[],
    buffers: Layer[] | undefined,
    batch: Batch,
    negLr: tf.Tensor3D,
    c: Consts,
  ): { layers: Layer[]; buffers: Layer[] | undefined; loss: tf.Tensor1D } {
    const asam = this.spec.kind === 'asam';
    const first = lossAndGrads(layers, batch);
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
    const second = lossAndGrads(unflatten(perturbed), batch, buffers ? undefined : negLr);
    return { ...sgdUpdate(layers, buffers, second.grads, negLr, c), loss: first.loss };
  }
}

interface Batch {
  /** Samples `[G, B, features]` and the same transposed `[G, features, B]`. */
  x: tf.Tensor3D;
  xt: tf.Tensor3D;
  /** One-hot labels `[G, B, classes]`; padding rows are all zero. */
  y: tf.Tensor3D;
  /** `1 / batch size` for a node's real rows, 0 for padding: `[G, B, 1]`. */
  rowWeight: tf.Tensor3D;
}

interface Consts {
  wd: tf.Scalar | undefined;
  /** Without momentum: 1 - lr * wd per node `[G, 1, 1]` (undefined without weight decay). */
  decay: tf.Tensor3D | undefined;
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
 * Mean softmax cross-entropy per node `[G]` and its gradients, for dense layers with ReLU between
 * them. Activations are `[G, features, B]`. The same function as model.ts's `runDense` followed by
 * loss.ts's `crossEntropy`, with the gradients tfjs would derive for them, times `scale` per node
 * when given (the gradients are linear in the loss's: scaling there costs a pass over
 * `[G, classes, B]` instead of one over every parameter).
 */
function lossAndGrads(
  layers: readonly Layer[],
  batch: Batch,
  scale?: tf.Tensor3D,
): { loss: tf.Tensor1D; grads: Layer[] } {
  const acts: tf.Tensor3D[] = [batch.xt];
  const pre: tf.Tensor3D[] = [];
  layers.forEach((l, i) => {
    const z = tf.add(groupedMatMul(l.w, acts[i]!), l.b) as tf.Tensor3D;
    pre.push(z);
    if (i < layers.length - 1) acts.push(tf.relu(z));
  });
  const logits = tf.transpose(pre[pre.length - 1]!, [0, 2, 1]) as tf.Tensor3D; // [G, B, classes]
  const logp = tf.logSoftmax(logits);
  const rowLoss = tf.neg(tf.sum(tf.mul(batch.y, logp), 2, true));
  const loss = tf.sum(tf.mul(rowLoss, batch.rowWeight), [1, 2]) as tf.Tensor1D;
  // d(mean CE)/d logits = (softmax - y) / batch size, per real row; zero on padding rows.
  let dz = tf.transpose(
    tf.mul(tf.sub(tf.exp(logp), batch.y), batch.rowWeight),
    [0, 2, 1],
  ) as tf.Tensor3D;
  if (scale) dz = tf.mul(dz, scale);
  const grads: Layer[] = new Array(layers.length);
  for (let i = layers.length - 1; i >= 0; i--) {
    // dW = dz · actᵀ; for the first layer actᵀ is the batch as it came, untransposed.
    const w = groupedMatMul(dz, i === 0 ? batch.x : transposeInner(acts[i]!));
    grads[i] = { w, b: tf.sum(dz, 2, true) as tf.Tensor3D };
    if (i > 0) {
      const da = groupedMatMul(transposeInner(layers[i]!.w), dz);
      dz = tf.mul(da, tf.step(pre[i - 1]!)) as tf.Tensor3D;
    }
  }
  return { loss, grads };
}

/**
 * SgdUpdate.apply over stacked parameters, with a learning rate per node. With momentum, `grads`
 * are the gradients and the update is SgdUpdate's operation for operation; without, `grads` are
 * already -lr times the gradients (lossAndGrads' `scale`).
 */
function sgdUpdate(
  layers: readonly Layer[],
  buffers: readonly Layer[] | undefined,
  grads: readonly Layer[],
  negLr: tf.Tensor3D,
  c: Consts,
): { layers: Layer[]; buffers: Layer[] | undefined } {
  const params = flatten(layers);
  const g = flatten(grads);
  const corr = c.correction ? flatten(c.correction) : undefined;
  if (!buffers) {
    const next = params.map((w, i) => {
      const step = corr ? tf.add(g[i]!, corr[i]!) : g[i]!;
      return tf.add(c.decay ? tf.mul(w, c.decay) : w, step) as tf.Tensor3D;
    });
    return { layers: unflatten(next), buffers: undefined };
  }
  const bufs = buffers ? flatten(buffers) : undefined;
  const nextBufs: tf.Tensor3D[] = [];
  const next = params.map((w, i) => {
    let gi: tf.Tensor = g[i]!;
    if (c.wd) gi = tf.add(gi, tf.mul(w, c.wd));
    if (corr) gi = tf.add(gi, corr[i]!);
    const buf = bufs?.[i];
    if (buf && c.mom) {
      gi = tf.add(tf.mul(buf, c.mom), gi);
      nextBufs.push(gi as tf.Tensor3D);
    }
    return tf.add(w, tf.mul(gi, negLr)) as tf.Tensor3D;
  });
  // Fixed buffers (quasi-global momentum) carry over to the next step untouched.
  if (c.fixedBuffer) return { layers: unflatten(next), buffers: buffers as Layer[] };
  return { layers: unflatten(next), buffers: bufs ? unflatten(nextBufs) : undefined };
}

/** `[G, m, n]` -> `[G, n, m]`: each node's matrix transposed (one Transpose for all nodes). */
function transposeInner(t: tf.Tensor3D): tf.Tensor3D {
  return tf.transpose(t, [0, 2, 1]);
}

function flatten(layers: readonly Layer[]): tf.Tensor3D[] {
  return layers.flatMap((l) => [l.w, l.b]);
}

function unflatten(ts: readonly tf.Tensor3D[]): Layer[] {
  const out: Layer[] = [];
  for (let i = 0; i < ts.length; i += 2) out.push({ w: ts[i]!, b: ts[i + 1]! });
  return out;
}

function disposeLayers(layers: readonly Layer[]): void {
  for (const l of layers) tf.dispose([l.w, l.b]);
}

/** The members' parameters (weight `[in, out]`, bias `[out]` per layer) stacked and transposed. */
function gatherLayers(members: readonly BatchMember[]): Layer[] {
  const params = members[0]!.model.params;
  return tidy(() => {
    const out: Layer[] = [];
    for (let i = 0; i < params.length; i += 2) {
      const w = tf.stack(members.map((m) => m.model.params[i]!.variable));
      const b = tf.stack(members.map((m) => m.model.params[i + 1]!.variable));
      out.push({
        w: transposeInner(w as tf.Tensor3D),
        b: tf.expandDims(b, 2) as tf.Tensor3D,
      });
    }
    return out;
  });
}

function scatterLayers(members: readonly BatchMember[], layers: readonly Layer[]): void {
  const params = members[0]!.model.params;
  layers.forEach((l, k) => {
    for (const [i, stacked] of [
      [2 * k, l.w],
      [2 * k + 1, l.b],
    ] as const) {
      const shape = params[i]!.variable.shape;
      slices(stacked, i % 2 === 0).forEach((v, g) => {
        const t = tf.tensor(v, shape, 'float32');
        members[g]!.model.params[i]!.variable.assign(t);
        t.dispose();
      });
    }
  });
}

/**
 * Each node's values of a stacked parameter, in the members' own layout (weights transposed back
 * to `[in, out]`). One read of the stacked values: slicing the tensor G times (unstack) would copy
 * all of it out of the wasm heap for each slice.
 */
function slices(stacked: tf.Tensor3D, transposed: boolean): Float32Array[] {
  const own = transposed ? tf.tidy(() => transposeInner(stacked)) : stacked;
  const values = own.dataSync() as Float32Array;
  if (own !== stacked) own.dispose();
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
  return tidy(() => {
    const out: Layer[] = [];
    for (let i = 0; i < params.length; i += 2) {
      const stack = (j: number) =>
        tf.stack(
          states.map((s) =>
            tf.tensor(s[`${params[j]!.name}.${kind}`]!, params[j]!.variable.shape, 'float32'),
          ),
        );
      out.push({
        w: transposeInner(stack(i) as tf.Tensor3D),
        b: tf.expandDims(stack(i + 1), 2) as tf.Tensor3D,
      });
    }
    return out;
  });
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
      slices(stacked, i % 2 === 0).forEach((v, g) => {
        states[g]![`${params[i]!.name}.momentum`] = v;
      });
    }
  });
  members.forEach((m, g) => m.optimizer.setState(states[g]!));
}
