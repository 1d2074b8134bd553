import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/compute/backend.js';
import { loadDigits } from '../../src/data/digits.js';
import type { Dataset } from '../../src/data/types.js';
import {
  createModel,
  createOptimizer,
  evaluate,
  evaluateFlat,
  LocalTrainer,
  learningRate,
  readFlat,
  SwaAverage,
} from '../../src/learn/index.js';

const SGD = { kind: 'sgd' as const, momentum: 0.9, weightDecay: 4e-4, rho: 0, eta: 0 };

/** A data set whose features encode the sample index, so the batches drawn can be observed. */
function indexData(n: number): Dataset {
  return {
    x: Float32Array.from({ length: n }, (_, i) => i),
    y: Int32Array.from({ length: n }, (_, i) => i % 2),
    count: n,
    shape: [1],
    classes: 2,
  };
}

describe('LocalTrainer', () => {
  before(async () => {
    await initBackend();
  });

  it('draws seeded shuffled passes over the shard and restores its RNG state exactly', () => {
    const data = indexData(20);
    const shard = Int32Array.of(1, 3, 5, 7, 9, 11, 13);
    const model = createModel({ kind: 'logreg' }, [1], 2, 0);
    const seen: number[][] = [];
    // An optimizer stand-in that records the batch each step sees (loss closure's input).
    const spy = {
      spec: SGD,
      stepTensor: (loss: () => tf.Scalar) => loss(),
      step: () => 0,
      getState: () => ({}),
      setState: () => {},
      dispose: () => {},
    };
    const origLogits = model.logits;
    const recording = {
      ...model,
      logits: (x: tf.Tensor) => {
        seen.push(Array.from(x.dataSync()));
        return origLogits(x);
      },
    };
    const make = () =>
      new LocalTrainer({
        model: recording,
        optimizer: spy,
        data,
        indices: shard,
        batchSize: 3,
        seed: 4,
        node: 2,
      });
    const a = make();
    const r = a.train(3, 0.1); // 3 + 3 + 1 (end of pass)
    assert.equal(r.samples, 7);
    assert.deepEqual(
      seen.flat().sort((p, q) => p - q),
      Array.from(shard),
    );
    const saved = a.getRngState();
    seen.length = 0;
    a.train(4, 0.1);
    const continued = seen.splice(0);
    const b = make();
    b.setRngState(JSON.parse(JSON.stringify(saved)));
    b.train(4, 0.1);
    assert.deepEqual(seen, continued);
    // A fresh trainer replays the same stream from the seed.
    seen.length = 0;
    make().train(3, 0.1);
    const replay = seen.splice(0);
    make().train(3, 0.1);
    assert.deepEqual(seen, replay);
    model.dispose();
  });

  it('trains the MLP centrally on digits to >= 95% test accuracy, SWA model beside it', () => {
    const { train, test } = loadDigits({ seed: 1 });
    const model = createModel({ kind: 'mlp' }, train.shape, train.classes, 1);
    const opt = createOptimizer(SGD, model.params);
    const indices = Int32Array.from({ length: train.count }, (_, i) => i);
    const trainer = new LocalTrainer({
      model,
      optimizer: opt,
      data: train,
      indices,
      batchSize: 32,
      seed: 1,
      node: 0,
    });
    const rounds = 12;
    const swaSpec = { start: 0.5, cycle: 2, lr2: 1e-3 };
    const swa = new SwaAverage();
    let tensors = 0;
    let lastLoss = Number.POSITIVE_INFINITY;
    for (let r = 0; r < rounds; r++) {
      const lr = learningRate({ kind: 'constant' }, 0.03, r, rounds, swaSpec);
      const { loss, samples } = trainer.train(45, lr);
      assert.ok(samples >= 45 * 31);
      lastLoss = loss;
      // After the first round (which creates the optimizer's cached lr scalar) nothing may grow.
      if (r === 0) tensors = tf.memory().numTensors;
      if (r >= 6 && r % 2 === 1) swa.update(readFlat(model));
    }
    assert.equal(tf.memory().numTensors, tensors, 'no tensor grows across rounds');
    assert.ok(lastLoss < 0.2, `training loss ${lastLoss}`);
    const current = evaluate(model, test);
    assert.ok(current.accuracy >= 0.95, `test accuracy ${current.accuracy}`);
    const w = readFlat(model);
    const swaEval = evaluateFlat(model, swa.average!, test);
    assert.deepEqual(readFlat(model), w, 'evaluateFlat restores the weights');
    assert.ok(swaEval.accuracy >= 0.95, `SWA test accuracy ${swaEval.accuracy}`);
    opt.dispose();
    model.dispose();
  });
});
