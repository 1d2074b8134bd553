/**
 * The cross-entropy loss written so that tfjs can differentiate it twice. Two things in tfjs 4.22
 * break a second backward pass through the training loss (src/learn/loss.ts):
 *
 * - `tf.losses.softmaxCrossEntropy` has a custom gradient whose saved log-softmax is a constant to
 *   the second pass, so the softmax curvature (the Gauss-Newton part of H) is silently dropped;
 * - an op whose gradient reads its own saved *output* (Exp: dy·exp(x) as dy·y) clones that output
 *   onto the tape before the op's own node, so a second pass finds no path through it and either
 *   drops the term or throws "Cannot find a connection between any variable and the result".
 *
 * So the loss here is Σ logsumexp(z) - Σ⟨y, z⟩ with logsumexp = m + log Σ exp(z - m), and exp
 * a custom op whose gradient is computed from its saved *input* (dy·exp(x), itself twice
 * differentiable). Both are tested against float64 reference values (test/learn/flatness*).
 *
 *   const s = crossEntropySum(model.logits(x), oneHotY);   // scalar, summed over the batch
 */
import * as tf from '@tensorflow/tfjs';

/** exp with a gradient that reads its input, so it can be differentiated again (see above). */
const expTwice: (x: tf.Tensor) => tf.Tensor = tf.customGrad((...args) => {
  const [x, save] = args as unknown as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  return {
    value: tf.exp(x),
    gradFunc: (dy, saved) => tf.mul(dy, expTwice(saved[0]!)),
  };
}) as unknown as (x: tf.Tensor) => tf.Tensor;

/** Σ over the batch of softmax cross-entropy, twice differentiable in the logits. */
export function crossEntropySum(logits: tf.Tensor2D, oneHotLabels: tf.Tensor2D): tf.Scalar {
  // The row max only keeps exp in range: the result does not depend on it, nor does any
  // derivative (its gradient, a mask, has zero derivative: the Equal gradient of
  // src/compute/kernels/second-order.ts).
  const m = tf.max(logits, 1, true);
  const lse = tf.add(tf.reshape(m, [-1]), tf.log(tf.sum(expTwice(tf.sub(logits, m)), 1)));
  return tf.sub(tf.sum(lse), tf.sum(tf.mul(oneHotLabels, logits)));
}
