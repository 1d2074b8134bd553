/**
 * The training loss: mean softmax cross-entropy over a batch (PyTorch `CrossEntropyLoss()`), and
 * one-hot label tensors built from integer labels.
 *
 *   const y = oneHot(labels, classes);                  // [batch, classes] float32
 *   const loss = crossEntropy(model.logits(x), y);      // scalar
 */
import * as tf from '@tensorflow/tfjs';
import { softmaxCrossEntropyMean } from '../compute/layers.js';

export function crossEntropy(logits: tf.Tensor2D, oneHotLabels: tf.Tensor2D): tf.Scalar {
  // tf.losses.softmaxCrossEntropy (gradient softmax - labels, default reduction the mean over the
  // batch), as one kernel and one gradient kernel where the backend has them (wasm).
  return softmaxCrossEntropyMean(oneHotLabels, logits);
}

/** A float32 one-hot matrix built from a fresh array (never aliased with the caller's). */
export function oneHot(labels: ArrayLike<number>, classes: number): tf.Tensor2D {
  const n = labels.length;
  const buf = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) buf[i * classes + labels[i]!] = 1;
  return tf.tensor2d(buf, [n, classes], 'float32');
}
