/**
 * Evaluation of many parameter vectors of one MLP (or logistic regression) architecture on one data
 * set in a single pass: the batched simulator's evaluation of every node's model and SWA average.
 * Each test batch is read once and multiplied by all the vectors' stacked layers in one product per
 * layer (batched-matmul.ts), instead of one pass over the test set per vector with a dozen kernel
 * calls per batch. The figures are `evaluateFlat`'s for each vector: the products are the same
 * kernel's on the same rows (so the same logits, the bias added after the product instead of in
 * its store, which rounds the same), only the loss's sum runs in another order.
 *
 *   const [a, b] = evaluateStacked(model, [xA, xB], test);   // { accuracy, loss } per vector
 */
import * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../data/types.js';
import { ConfigError, ModelMismatchError } from '../errors.js';
import {
  batchable,
  disposeLayers,
  type StackedLayer,
  stackedChunk,
  stackedForward,
} from './batched-mlp.js';
import { checkCompatible, type EvalResult } from './evaluate.js';
import type { Model } from './model.js';

/**
 * `evaluateFlat(model, flats[g], data, batchSize)` for every g, in one pass over `data` for up to
 * `stackedChunk(model)` vectors at a time. `model` gives the architecture only (its weights are
 * neither read nor changed).
 */
export function evaluateStacked(
  model: Model,
  flats: readonly Float32Array[],
  data: Dataset,
  batchSize = 256,
): EvalResult[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new ConfigError('eval.batchSize', 'must be an integer >= 1', batchSize);
  }
  if (!batchable(model.spec)) {
    throw new ConfigError(
      'model.kind',
      'must be mlp or logreg to evaluate batched',
      model.spec.kind,
    );
  }
  checkCompatible(model, data);
  for (const x of flats) {
    if (x.length !== model.size) {
      throw new ModelMismatchError(
        `parameter vector has ${x.length} values, model has ${model.size}`,
      );
    }
  }
  const chunk = stackedChunk(model);
  const out: EvalResult[] = [];
  for (let i = 0; i < flats.length; i += chunk) {
    out.push(...evaluateChunk(model, flats.slice(i, i + chunk), data, batchSize));
  }
  return out;
}

function evaluateChunk(
  model: Model,
  flats: readonly Float32Array[],
  data: Dataset,
  batchSize: number,
): EvalResult[] {
  const G = flats.length;
  if (data.count === 0) return flats.map(() => ({ accuracy: Number.NaN, loss: Number.NaN }));
  const layers = stackFlats(model, flats);
  const f = data.x.length / data.count;
  const correct = new Array<number>(G).fill(0);
  const lossSum = new Array<number>(G).fill(0);
  try {
    for (let start = 0; start < data.count; start += batchSize) {
      const b = Math.min(batchSize, data.count - start);
      const labels = data.y.subarray(start, start + b);
      const oneHot = new Float32Array(b * model.classes);
      for (let r = 0; r < b; r++) oneHot[r * model.classes + labels[r]!] = 1;
      const [pred, loss] = tf.tidy(() => {
        // The cpu backend would alias data.x (so a copy); the others copy it themselves.
        const rows = data.x.subarray(start * f, (start + b) * f);
        const x = tf.tensor3d(tf.getBackend() === 'cpu' ? rows.slice() : rows, [1, b, f]);
        const { logits } = stackedForward(layers, x);
        const y = tf.tensor3d(oneHot, [1, b, model.classes]);
        const sumLoss = tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(logits)), [1, 2]));
        return [tf.argMax(logits, 2), sumLoss];
      });
      const p = pred.dataSync();
      const l = loss.dataSync();
      tf.dispose([pred, loss]);
      for (let g = 0; g < G; g++) {
        lossSum[g]! += l[g]!;
        let c = 0;
        for (let r = 0; r < b; r++) if (p[g * b + r] === labels[r]) c++;
        correct[g]! += c;
      }
    }
  } finally {
    disposeLayers(layers);
  }
  return flats.map((_, g) => ({
    accuracy: correct[g]! / data.count,
    loss: lossSum[g]! / data.count,
  }));
}

/** The vectors' dense layers stacked: weights `[G, in, out]`, biases `[G, 1, out]`. */
function stackFlats(model: Model, flats: readonly Float32Array[]): StackedLayer[] {
  const G = flats.length;
  const layers: StackedLayer[] = [];
  let offset = 0;
  const take = (shape: [number, number, number]) => {
    const n = shape[1] * shape[2];
    const all = new Float32Array(G * n);
    flats.forEach((x, g) => all.set(x.subarray(offset, offset + n), g * n));
    offset += n;
    return tf.tensor3d(all, shape);
  };
  for (let i = 0; i < model.params.length; i += 2) {
    const [fanIn, fanOut] = model.params[i]!.variable.shape as [number, number];
    layers.push({ w: take([G, fanIn, fanOut]), b: take([G, 1, fanOut]) });
  }
  return layers;
}
