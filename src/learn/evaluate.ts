/**
 * Batched evaluation: accuracy and mean cross-entropy of a model on a data set, and of another
 * parameter vector (e.g. the SWA average) in the same model.
 *
 *   const { accuracy, loss } = evaluate(model, test);            // current weights
 *   const swaMetrics = evaluateFlat(model, swa.average!, test);  // weights restored afterwards
 */
import * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../data/types.js';
import { ConfigError, ModelMismatchError } from '../errors.js';
import { writeFlat } from './flat.js';
import { oneHot } from './loss.js';
import type { Model } from './model.js';

export interface EvalResult {
  /** Fraction of correctly classified samples in [0, 1] (NaN on an empty set). */
  accuracy: number;
  /** Mean softmax cross-entropy (NaN on an empty set). */
  loss: number;
}

export function evaluate(model: Model, data: Dataset, batchSize = 256): EvalResult {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new ConfigError('eval.batchSize', 'must be an integer >= 1', batchSize);
  }
  checkCompatible(model, data);
  const f = data.x.length / Math.max(data.count, 1);
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < data.count; start += batchSize) {
    const b = Math.min(batchSize, data.count - start);
    const labels = data.y.subarray(start, start + b);
    const [pred, loss] = tf.tidy(() => {
      // Copy: the cpu backend would alias data.x otherwise (harmless here, but never rely on it).
      const x = tf.tensor(data.x.slice(start * f, (start + b) * f), [b, ...data.shape], 'float32');
      const logits = model.logits(x);
      const sumLoss = tf.losses.softmaxCrossEntropy(
        oneHot(labels, model.classes),
        logits,
        undefined,
        undefined,
        tf.Reduction.SUM,
      );
      return [tf.argMax(logits, 1), sumLoss];
    });
    const p = pred.dataSync();
    for (let i = 0; i < b; i++) if (p[i] === labels[i]) correct++;
    lossSum += loss.dataSync()[0]!;
    tf.dispose([pred, loss]);
  }
  return data.count === 0
    ? { accuracy: Number.NaN, loss: Number.NaN }
    : { accuracy: correct / data.count, loss: lossSum / data.count };
}

/**
 * Evaluates the parameter vector `flat` in `model`'s architecture, then restores the model's own
 * weights exactly (the saved tensors are re-assigned, not copied through a Float32Array).
 */
export function evaluateFlat(
  model: Model,
  flat: Float32Array,
  data: Dataset,
  batchSize = 256,
): EvalResult {
  const saved = model.params.map((p) => tf.clone(p.variable));
  try {
    writeFlat(model, flat);
    return evaluate(model, data, batchSize);
  } finally {
    model.params.forEach((p, i) => p.variable.assign(saved[i]!));
    tf.dispose(saved);
  }
}

export function checkCompatible(model: Model, data: Dataset): void {
  const f = data.shape.reduce((a, d) => a * d, 1);
  const mf = model.inputShape.reduce((a, d) => a * d, 1);
  if (f !== mf) {
    throw new ModelMismatchError(
      `data samples have shape [${data.shape.join(', ')}] but the model expects [${model.inputShape.join(', ')}]`,
    );
  }
  if (data.classes > model.classes) {
    throw new ModelMismatchError(
      `data has ${data.classes} classes but the model outputs ${model.classes}`,
    );
  }
}
