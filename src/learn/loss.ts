/**
 * The training loss: mean softmax cross-entropy over a batch (PyTorch `CrossEntropyLoss()`), and
 * one-hot label tensors built from integer labels.
 *
 *   const y = oneHot(labels, classes);                  // [batch, classes] float32
 *   const loss = crossEntropy(model.logits(x), y);      // scalar
 */
import * as tf from '@tensorflow/tfjs';

export function crossEntropy(logits: tf.Tensor2D, oneHotLabels: tf.Tensor2D): tf.Scalar {
  // tf.losses.softmaxCrossEntropy has a fused gradient (softmax - labels); its default reduction
  // (sum over weights, all 1) is the mean over the batch.
  return tf.losses.softmaxCrossEntropy(oneHotLabels, logits) as tf.Scalar;
}

/** A float32 one-hot matrix built from a fresh array (never aliased with the caller's). */
export function oneHot(labels: ArrayLike<number>, classes: number): tf.Tensor2D {
  const n = labels.length;
  const buf = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) buf[i * classes + labels[i]!] = 1;
  return tf.tensor2d(buf, [n, classes], 'float32');
}
