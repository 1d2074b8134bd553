import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/compute/backend.js';
import { loadDigits } from '../../src/data/digits.js';
import { evaluateStacked } from '../../src/learn/batched-eval.js';
import { BatchedMlpTrainer } from '../../src/learn/batched-mlp.js';
import { createModel, evaluateFlat, readFlat } from '../../src/learn/index.js';

/**
 * Batched evaluation against evaluateFlat, vector by vector: the same accuracy (the same logits),
 * the same loss within float32 summation order, on both backends the batched simulator runs on.
 */
describe('evaluateStacked', () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    it(`gives evaluateFlat's figures for each vector, in chunks, without leaking tensors (${backend})`, async () => {
      await initBackend({ prefer: backend, quiet: true });
      const { test } = loadDigits({ seed: 3 });
      for (const spec of [
        { kind: 'mlp' as const, hidden: [32, 16] },
        { kind: 'logreg' as const },
      ]) {
        const models = [1, 2, 3, 4, 5].map((s) => createModel(spec, test.shape, test.classes, s));
        const flats = models.map(readFlat);
        const model = models[0]!;
        const before = tf.memory().numTensors;
        // 5 vectors in chunks of 2, 3 and a last of 1; batches of 100 with a short last one.
        const max = BatchedMlpTrainer.maxStackedValues;
        BatchedMlpTrainer.maxStackedValues = 2 * model.size;
        let got: ReturnType<typeof evaluateStacked>;
        try {
          got = evaluateStacked(model, flats, test, 100);
        } finally {
          BatchedMlpTrainer.maxStackedValues = max;
        }
        assert.equal(tf.memory().numTensors, before);
        flats.forEach((x, g) => {
          const want = evaluateFlat(model, x, test, 100);
          assert.equal(got[g]!.accuracy, want.accuracy, `${spec.kind} vector ${g}: accuracy`);
          assert.ok(
            Math.abs(got[g]!.loss - want.loss) <= 1e-5 * Math.max(1, want.loss),
            `${spec.kind} vector ${g}: loss ${got[g]!.loss} vs ${want.loss}`,
          );
        });
        // The model's own weights are untouched.
        assert.deepEqual(readFlat(model), flats[0]);
        for (const m of models) m.dispose();
      }
    });
  }

  it('refuses a vector of the wrong size and a model it cannot batch', async () => {
    await initBackend({ prefer: 'cpu', quiet: true });
    const { test } = loadDigits({ seed: 3 });
    const mlp = createModel({ kind: 'mlp', hidden: [8] }, test.shape, test.classes, 1);
    assert.throws(() => evaluateStacked(mlp, [new Float32Array(3)], test), /has 3 values/);
    const cnn = createModel({ kind: 'cnn-small' }, test.shape, test.classes, 1);
    assert.throws(() => evaluateStacked(cnn, [readFlat(cnn)], test), /model\.kind/);
    mlp.dispose();
    cnn.dispose();
  });
});
