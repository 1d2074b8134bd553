/**
 * SGD with momentum and weight decay, PyTorch semantics, applied to an explicit list of gradients
 * in parameter order. The building block of all three local optimizers.
 *
 *   g <- g + weightDecay * w
 *   buf <- momentum * buf + g        (buf starts at 0, so the first step sets buf = g as torch does)
 *   w <- w - lr * buf                 (without momentum: w <- w - lr * g)
 *
 * With `fixedBuffer` (quasi-global momentum) the buffer is not updated by the steps:
 *   w <- w - lr * (momentum * buf + g)   and buf is set from outside (setState) between rounds.
 *
 * With `correction` (gradient tracking, see learn/tracking.ts) a fixed vector c, set from outside
 * between rounds, is added to every gradient: g <- g + weightDecay * w + c.
 *
 *   const sgd = new SgdUpdate(variables, { momentum: 0.9, weightDecay: 4e-4 });
 *   sgd.apply(grads, 0.01);  // grads[i] matches variables[i]; the caller disposes grads
 */
import * as tf from '@tensorflow/tfjs';
import { addScaled } from '../../compute/fused.js';
import { ModelMismatchError } from '../../errors.js';

export class SgdUpdate {
  private readonly buffers: (tf.Variable | undefined)[];
  private readonly momentum: tf.Scalar | undefined;
  private readonly fixedBuffer: boolean;
  private readonly weightDecay: tf.Scalar | undefined;
  private readonly corrections: tf.Variable[] | undefined;
  // Cached -lr scalar: steps usually repeat the same learning rate for a whole round, and creating
  // a scalar per step costs as much as a small kernel.
  private negLr: tf.Scalar | undefined;
  private negLrValue = Number.NaN;

  constructor(
    private readonly variables: readonly tf.Variable[],
    opts: { momentum: number; weightDecay: number; fixedBuffer?: boolean; correction?: boolean },
  ) {
    this.fixedBuffer = opts.fixedBuffer ?? false;
    this.momentum = opts.momentum > 0 ? tf.scalar(opts.momentum) : undefined;
    this.weightDecay = opts.weightDecay > 0 ? tf.scalar(opts.weightDecay) : undefined;
    // tidy frees the zerosLike temporaries; variables survive it.
    this.buffers = variables.map((v) =>
      this.momentum ? tf.tidy(() => tf.variable(tf.zerosLike(v), false)) : undefined,
    );
    this.corrections = opts.correction
      ? variables.map((v) => tf.tidy(() => tf.variable(tf.zerosLike(v), false)))
      : undefined;
  }

  apply(grads: readonly tf.Tensor[], lr: number): void {
    if (lr !== this.negLrValue) {
      this.negLr?.dispose();
      this.negLr = tf.scalar(-lr);
      this.negLrValue = lr;
    }
    const negLr = this.negLr!;
    tf.tidy(() => {
      this.variables.forEach((w, i) => {
        let g = grads[i]!;
        if (this.weightDecay) g = tf.add(g, tf.mul(w, this.weightDecay));
        const c = this.corrections?.[i];
        if (c) g = tf.add(g, c);
        const buf = this.buffers[i];
        if (buf && this.momentum) {
          const next = tf.add(tf.mul(buf, this.momentum), g);
          if (!this.fixedBuffer) buf.assign(next);
          g = next;
        }
        w.assign(addScaled(w, g, negLr));
      });
    });
  }

  getState(names: readonly string[]): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    this.buffers.forEach((b, i) => {
      if (b) out[`${names[i]!}.momentum`] = (b.dataSync() as Float32Array).slice();
    });
    this.corrections?.forEach((c, i) => {
      out[`${names[i]!}.correction`] = (c.dataSync() as Float32Array).slice();
    });
    return out;
  }

  setState(names: readonly string[], state: Record<string, Float32Array>): void {
    const expected = new Set<string>();
    const slots = [
      ...this.buffers.map((b, i) => [b, `${names[i]!}.momentum`] as const),
      ...(this.corrections ?? []).map((c, i) => [c, `${names[i]!}.correction`] as const),
    ];
    slots.forEach(([b, key]) => {
      if (!b) return;
      expected.add(key);
      const v = state[key];
      if (!v || v.length !== b.size) {
        throw new ModelMismatchError(
          `optimizer state ${key}: expected ${b.size} values, got ${v ? v.length : 'none'}`,
        );
      }
      const t = tf.tensor(v.slice(), b.shape, 'float32');
      b.assign(t);
      t.dispose();
    });
    for (const key of Object.keys(state)) {
      if (!expected.has(key)) {
        throw new ModelMismatchError(`optimizer state has an unknown entry ${key}`);
      }
    }
  }

  dispose(): void {
    for (const b of this.buffers) b?.dispose();
    for (const c of this.corrections ?? []) c.dispose();
    this.momentum?.dispose();
    this.weightDecay?.dispose();
    this.negLr?.dispose();
    this.negLr = undefined;
    this.negLrValue = Number.NaN;
  }
}
