// Whole models of the zoo (src/learn createModel): loss and every parameter gradient on the patched
// wasm backend match the cpu backend's own kernels.
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/compute/rng.js';
import { createModel, type ModelSpec } from '../../src/learn/index.js';
import { compareWasmToCpu, randomValues } from './helpers.js';

const ZOO: { spec: ModelSpec; input: number[]; batch: number }[] = [
  { spec: { kind: 'mlp' }, input: [28, 28, 1], batch: 8 },
  { spec: { kind: 'cnn-small' }, input: [28, 28, 1], batch: 2 },
  { spec: { kind: 'cnn-small' }, input: [8, 8, 1], batch: 3 },
  // Batch 1: the cpu reference's conv filter gradient is a slow scalar loop.
  { spec: { kind: 'cnn-fedavg' }, input: [32, 32, 3], batch: 1 },
];

describe('model zoo on patched wasm vs cpu', () => {
  for (const { spec, input, batch } of ZOO) {
    it(`${spec.kind} on ${input.join('x')}: loss and parameter gradients`, async () => {
      // Created inside each backend run, from the same seed: identical weights on both.
      const size = batch * input.reduce((a, b) => a * b, 1);
      const xs = randomValues(20, `${spec.kind} x`, size);
      const rng = Rng.from(20, 'test', 'labels');
      const labels = Array.from({ length: batch }, () => rng.int(10));
      await compareWasmToCpu(`${spec.kind} ${input.join('x')}`, () => {
        const model = createModel(spec, input, 10, 7);
        try {
          const x = tf.tensor(xs, [batch, ...input]);
          const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
          const vars = model.params.map((p) => p.variable);
          const { value, grads } = tf.variableGrads(
            () => tf.losses.softmaxCrossEntropy(y, model.logits(x)) as tf.Scalar,
            vars,
          );
          return [value, ...vars.map((v) => grads[v.name]!)];
        } finally {
          model.dispose();
        }
      });
    });
  }
});
