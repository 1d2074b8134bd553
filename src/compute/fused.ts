/**
 * Fused elementwise passes of the optimizers, one kernel where tfjs runs several. On the wasm backend
 * they are kernels of ./kernels/fused-kernels.ts (128-bit wasm SIMD on the backend's heap, one pass,
 * one output); on every other backend, and whenever the kernel is not registered (patches removed),
 * the same arithmetic as plain tfjs ops. Both give the same float32 roundings, in the same order.
 *
 *   w.assign(addScaled(w, g, negLr));             // w + (-lr)·g: SGD's update
 *   const sq = asamSumSq(w, g, eta);              // Σ (g·(|w| + eta))², a number
 *   v.assign(asamPerturb(w, g, eta, factor));     // w + ((g·s)·s)·factor, s = |w| + eta
 *
 * Not differentiable (no gradients registered): for optimizer updates, never inside a loss.
 */
import * as tf from '@tensorflow/tfjs';

export const ADD_SCALED = 'FlatmeshAddScaled';
export const ASAM_SUM_SQ = 'FlatmeshAsamSumSq';
export const ASAM_PERTURB = 'FlatmeshAsamPerturb';

function fusedHere(kernel: string, ...ts: tf.Tensor[]): boolean {
  const first = ts[0]!;
  return (
    tf.getKernel(kernel, tf.getBackend()) !== undefined &&
    ts.every((t) => t.dtype === 'float32' && tf.util.arraysEqual(t.shape, first.shape))
  );
}

/** x + a·y (a: a scalar tensor, e.g. a cached -lr). */
export function addScaled(x: tf.Tensor, y: tf.Tensor, a: tf.Scalar): tf.Tensor {
  if (!fusedHere(ADD_SCALED, x, y)) return tf.tidy(() => tf.add(x, tf.mul(y, a)));
  return tf.engine().runKernel(ADD_SCALED, { x, y }, { a: a.dataSync()[0]! }) as tf.Tensor;
}

/**
 * Σ (g·(|w| + eta))² as a number (eta undefined: Σ g²). Read back at once: on wasm (where the fused
 * kernel runs) a read is a heap access, and the factor it gives feeds the next fused kernel.
 */
export function asamSumSq(w: tf.Tensor, g: tf.Tensor, eta: number | undefined): number {
  if (!fusedHere(ASAM_SUM_SQ, w, g)) {
    return tf.tidy(() => {
      const t = eta === undefined ? g : tf.mul(g, tf.add(tf.abs(w), eta));
      return tf.sum(tf.square(t)).dataSync()[0]!;
    });
  }
  const s = tf.engine().runKernel(ASAM_SUM_SQ, { w, g }, { eta: eta ?? Number.NaN }) as tf.Tensor;
  const v = s.dataSync()[0]!;
  s.dispose();
  return v;
}

/** w + ((g·s)·s)·factor with s = |w| + eta (eta undefined: w + g·factor). */
export function asamPerturb(
  w: tf.Tensor,
  g: tf.Tensor,
  eta: number | undefined,
  factor: number,
): tf.Tensor {
  if (!fusedHere(ASAM_PERTURB, w, g)) {
    return tf.tidy(() => {
      if (eta === undefined) return tf.add(w, tf.mul(g, factor));
      const s = tf.add(tf.abs(w), eta);
      return tf.add(w, tf.mul(tf.mul(tf.mul(g, s), s), factor));
    });
  }
  return tf.engine().runKernel(
    ASAM_PERTURB,
    { w, g },
    {
      eta: eta ?? Number.NaN,
      factor,
    },
  ) as tf.Tensor;
}
