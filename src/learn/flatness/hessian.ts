/**
 * The Hessian of the mean cross-entropy loss of a model on a sample set, as an operator on flat
 * parameter vectors: H·v by double backprop (the gradient of ⟨∇L, v⟩), summed chunk by chunk so
 * memory is bounded by one chunk whatever the set size. Everything upstream (eigenvalues, trace,
 * density) only calls `hvp`.
 *
 *   const H = new HessianOperator(model, sampleSet(test, 'test set', { limit: 1000 }));
 *   const hv = H.hvp(v);          // Float32Array, model.size long
 *   H.method;                     // 'double-backprop' or 'finite-difference' (then H.note says why)
 *   H.dispose();
 *
 * Second derivatives: the loss is ./loss.ts's twice-differentiable cross-entropy (tfjs's own drops
 * the softmax curvature on a second pass); Equal, conv and pooling layers need the gradients of
 * src/compute/kernels/second-order.ts. With `method: 'auto'` (the default) the first operator per
 * model kind and backend checks double backprop (see `check`); if it throws or fails the check,
 * the operator falls back to central differences of gradients and `note` says so, with the
 * relative error they add (estimated from two step sizes).
 *
 * The operator works at the model's weights when it is built; it restores them after every
 * finite-difference product and `lossAt` call.
 */
import * as tf from '@tensorflow/tfjs';
import { backendInfo } from '../../compute/backend.js';
import { registerSecondOrderGradients } from '../../compute/kernels/second-order.js';
import { Rng } from '../../compute/rng.js';
import { ConfigError, ModelMismatchError } from '../../errors.js';
import type { Model } from '../model.js';
import { crossEntropySum } from './loss.js';
import { Chunks, type SampleSet } from './samples.js';
import { dot, norm } from './vec.js';

export type HessianMethod = 'double-backprop' | 'finite-difference';

export interface HessianOptions {
  /** Samples per chunk of each pass (the memory bound). Default 256. */
  chunk?: number;
  /** Adds weightDecay·v to every product (the Hessian of L + wd/2·|w|²). Default 0. */
  weightDecay?: number;
  /** 'auto' (default): double backprop, checked once per model kind and backend. */
  method?: 'auto' | HessianMethod;
}

/** Relative step of the central differences, along the unit vector v/|v|. */
const FD_STEP = 1e-2;

interface CheckResult {
  method: HessianMethod;
  note?: string;
}
const checks = new Map<string, CheckResult>();

export class HessianOperator {
  readonly dim: number;
  readonly method: HessianMethod;
  /** Why central differences are used, with the relative error they add; undefined otherwise. */
  readonly note: string | undefined;
  /** Hessian-vector products computed so far. */
  products = 0;
  private readonly chunks: Chunks;
  private readonly vars: tf.Variable[];
  private readonly weightDecay: number;
  private readonly invCount: number;

  constructor(
    private readonly model: Model,
    readonly samples: SampleSet,
    opts: HessianOptions = {},
  ) {
    registerSecondOrderGradients();
    const f = samples.data.shape.reduce((a, d) => a * d, 1);
    if (f !== model.inputShape.reduce((a, d) => a * d, 1)) {
      throw new ModelMismatchError(
        `samples have shape [${samples.data.shape.join(', ')}] but the model expects [${model.inputShape.join(', ')}]`,
      );
    }
    const wd = opts.weightDecay ?? 0;
    if (!(wd >= 0)) throw new ConfigError('flatness.weightDecay', 'must be >= 0', wd);
    this.weightDecay = wd;
    this.dim = model.size;
    this.vars = model.params.map((p) => p.variable);
    this.chunks = new Chunks(samples, opts.chunk ?? 256, model.classes);
    this.invCount = 1 / this.chunks.count;
    const method = opts.method ?? 'auto';
    if (method === 'auto') {
      const key = `${backendInfo()?.name ?? tf.getBackend()}:${JSON.stringify(model.spec)}`;
      let check = checks.get(key);
      if (!check) {
        check = this.check();
        checks.set(key, check);
      }
      this.method = check.method;
      this.note = check.note;
    } else {
      this.method = method;
      this.note =
        method === 'finite-difference'
          ? `central differences of gradients (asked for); ${this.fdErrorText()}`
          : undefined;
    }
  }

  /** H·v at the model's weights. */
  hvp(v: Float32Array): Float32Array {
    this.checkLength(v);
    this.products++;
    const out =
      this.method === 'double-backprop' ? this.hvpDoubleBackprop(v) : this.hvpFiniteDiff(v);
    if (this.weightDecay > 0)
      for (let i = 0; i < out.length; i++) out[i]! += this.weightDecay * v[i]!;
    return out;
  }

  /** Mean loss and its gradient (no weight decay) at the model's weights, or at `weights`. */
  lossAndGradient(weights?: Float32Array): { loss: number; grad: Float32Array } {
    if (weights) {
      this.checkLength(weights);
      return this.withWeights(weights, 0, () => this.lossAndGradient());
    }
    let lossSum = 0;
    const grad = this.accumulate((x, y) => {
      const { value, grads } = tf.variableGrads(() => this.lossSum(x, y), this.vars);
      lossSum += value.dataSync()[0]!;
      return this.vars.map((v) => grads[v.name]!);
    });
    return { loss: lossSum, grad };
  }

  /** Mean loss at the model's weights, or at `weights` (the model's own are restored after). */
  lossAt(weights?: Float32Array): number {
    if (!weights) return this.meanLoss();
    this.checkLength(weights);
    return this.withWeights(weights, 0, () => this.meanLoss());
  }

  dispose(): void {
    this.chunks.dispose();
  }

  /** The chunk's loss sum scaled by 1/N, so chunk results add up to the mean over the set. */
  private lossSum(x: tf.Tensor, y: tf.Tensor2D): tf.Scalar {
    return tf.mul(crossEntropySum(this.model.logits(x), y), this.invCount);
  }

  private meanLoss(): number {
    let total = 0;
    this.chunks.forEach((x, y) => {
      const s = tf.tidy(() => this.lossSum(x, y));
      total += s.dataSync()[0]!;
      s.dispose();
    });
    return total;
  }

  private hvpDoubleBackprop(v: Float32Array): Float32Array {
    const vt = this.split(v);
    try {
      return this.accumulate((x, y) => {
        const { grads } = tf.variableGrads(() => {
          const g = tf.variableGrads(() => this.lossSum(x, y), this.vars).grads;
          return tf.addN(this.vars.map((w, i) => tf.sum(tf.mul(g[w.name]!, vt[i]!)))) as tf.Scalar;
        }, this.vars);
        return this.vars.map((w) => grads[w.name]!);
      });
    } finally {
      tf.dispose(vt);
    }
  }

  /** (∇L(w + h·u) - ∇L(w - h·u)) / 2h · |v|, u = v/|v|. */
  private hvpFiniteDiff(v: Float32Array, step = FD_STEP): Float32Array {
    const nv = norm(v);
    if (nv === 0) return new Float32Array(v.length);
    const h = step / nv;
    const plus = this.withWeights(v, h, () => this.lossAndGradient().grad);
    const minus = this.withWeights(v, -h, () => this.lossAndGradient().grad);
    const out = new Float32Array(v.length);
    for (let i = 0; i < out.length; i++) out[i] = (plus[i]! - minus[i]!) / (2 * h);
    return out;
  }

  /**
   * Sums per-chunk gradient-shaped results into one flat vector. `f` runs inside a tidy and
   * returns one tensor per parameter.
   */
  private accumulate(f: (x: tf.Tensor, y: tf.Tensor2D) => tf.Tensor[]): Float32Array {
    let acc: tf.Tensor1D | undefined;
    this.chunks.forEach((x, y) => {
      const next = tf.tidy(() => {
        const flat = tf.concat(f(x, y).map((t) => t.reshape([-1])));
        return acc ? tf.add(acc, flat) : flat;
      }) as tf.Tensor1D;
      acc?.dispose();
      acc = next;
    });
    const out = new Float32Array(acc!.dataSync() as Float32Array);
    acc!.dispose();
    return out;
  }

  /** Runs `f` with the weights set to w + scale·d (or d itself when scale is 0), then restores. */
  private withWeights<T>(d: Float32Array, scale: number, f: () => T): T {
    const saved = this.vars.map((v) => tf.clone(v));
    const dt = this.split(d);
    try {
      this.vars.forEach((v, i) => {
        const next = tf.tidy(() =>
          scale === 0 ? dt[i]! : tf.add(saved[i]!, tf.mul(dt[i]!, scale)),
        );
        v.assign(next);
        if (next !== dt[i]) next.dispose();
      });
      return f();
    } finally {
      this.vars.forEach((v, i) => v.assign(saved[i]!));
      tf.dispose(saved);
      tf.dispose(dt);
    }
  }

  /** A flat vector as one tensor per parameter. */
  private split(v: Float32Array): tf.Tensor[] {
    let off = 0;
    return this.vars.map((w) => {
      const t = tf.tensor(v.slice(off, off + w.size), w.shape, 'float32');
      off += w.size;
      return t;
    });
  }

  private checkLength(v: Float32Array): void {
    if (v.length !== this.dim) {
      throw new ModelMismatchError(`vector has ${v.length} values but the model has ${this.dim}`);
    }
  }

  /**
   * Checks double backprop on seeded unit probes u, w: it must run (a kernel without a
   * second-order gradient throws), give finite values and be symmetric (⟨u,Hw⟩ = ⟨w,Hu⟩ within
   * 1e-3 of |Hu|·|Hw|). It is not compared with central differences here: a ReLU net's gradient
   * jumps at every kink a step crosses, so central differences of it are rough (tens of percent
   * on a trained MLP) and would reject a correct product. The precise checks are the test
   * suite's: float64 reference values, linear-in-the-argument checks of every registered
   * second-order gradient, and wasm against cpu on the conv nets.
   */
  private check(): CheckResult {
    const u = unitProbe(this.dim, 'hessian-check');
    const w = unitProbe(this.dim, 'hessian-check-2');
    const fallback = (why: string): CheckResult => ({
      method: 'finite-difference',
      note: `${why}; using central differences of gradients, ${this.fdErrorText(u)}`,
    });
    let hu: Float32Array;
    let hw: Float32Array;
    try {
      hu = this.hvpDoubleBackprop(u);
      hw = this.hvpDoubleBackprop(w);
    } catch (e) {
      return fallback(`double backprop failed (${(e as Error).message.split('\n')[0]})`);
    }
    if (!hu.every(Number.isFinite) || !hw.every(Number.isFinite)) {
      return fallback('double backprop gave non-finite values');
    }
    const asym = Math.abs(dot(u, hw) - dot(w, hu)) / Math.max(norm(hu) * norm(hw), 1e-30);
    if (asym > 1e-3) return fallback(`double backprop is not symmetric (${asym.toExponential(2)})`);
    return { method: 'double-backprop' };
  }

  /** Relative error of central differences, from Richardson: |D(h) - D(2h)| / 3 over |D(h)|. */
  private fdError(probe: Float32Array): number {
    const fd = this.hvpFiniteDiff(probe);
    const fd2 = this.hvpFiniteDiff(probe, 2 * FD_STEP);
    const diff = new Float32Array(fd.length);
    for (let i = 0; i < diff.length; i++) diff[i] = fd[i]! - fd2[i]!;
    return norm(diff) / 3 / Math.max(norm(fd), 1e-12);
  }

  private fdErrorText(probe = unitProbe(this.dim, 'hessian-check')): string {
    return `step ${FD_STEP}, estimated relative error of H·v ${this.fdError(probe).toExponential(1)}`;
  }
}

/** A seeded Rademacher vector scaled to unit length. */
function unitProbe(n: number, label: string): Float32Array {
  const rng = Rng.from(0, label);
  const s = 1 / Math.sqrt(n);
  return Float32Array.from({ length: n }, () => (rng.bernoulli(0.5) ? s : -s));
}
