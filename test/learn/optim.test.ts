import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ConfigError, ModelMismatchError } from '../../src/errors.js';
import {
  createModel,
  createOptimizer,
  crossEntropy,
  type OptimizerSpec,
  oneHot,
  readFlat,
} from '../../src/learn/index.js';

const spec = (o: Partial<OptimizerSpec>): OptimizerSpec => ({
  kind: 'sgd',
  momentum: 0,
  weightDecay: 0,
  rho: 0.1,
  eta: 0.2,
  ...o,
});

function near(actual: ArrayLike<number>, expected: number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) < tol, `[${i}] ${actual[i]} != ${expected[i]}`);
  }
}

describe('local optimizers', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('SGD follows PyTorch: weight decay into the gradient, momentum buffer starting at g', () => {
    // loss = sum(w * c)  =>  g = c
    const w = tf.variable(tf.tensor1d([1, -2]), true, 'sgd-test-w');
    const c = tf.tensor1d([0.5, 1]);
    const opt = createOptimizer(spec({ momentum: 0.9, weightDecay: 0.1 }), [
      { name: 'w', variable: w },
    ]);
    const loss = () => tf.sum(tf.mul(w, c)) as tf.Scalar;
    // step 1: g = c + 0.1 w = [0.6, 0.8]; buf = g; w = w - 0.5 buf = [0.7, -2.4]
    const l1 = opt.step(loss, 0.5);
    near([l1], [0.5 - 2]);
    near(w.dataSync(), [0.7, -2.4]);
    // step 2: g = [0.57, 0.76]; buf = 0.9 [0.6, 0.8] + g = [1.11, 1.48]; w -= 0.5 buf
    opt.step(loss, 0.5);
    near(w.dataSync(), [0.7 - 0.555, -2.4 - 0.74]);
    const state = opt.getState();
    near(state['w.momentum']!, [1.11, 1.48]);
    // setState restores the buffer exactly
    opt.setState({ 'w.momentum': Float32Array.of(0, 0) });
    near(opt.getState()['w.momentum']!, [0, 0]);
    assert.throws(() => opt.setState({ 'w.momentum': Float32Array.of(0) }), ModelMismatchError);
    assert.throws(() => opt.setState({ other: Float32Array.of(0, 0) }), ModelMismatchError);
    opt.dispose();
    tf.dispose([w, c]);
  });

  it('SAM scales all parameters by T = 1 (eps = rho g / ||g||)', () => {
    const w = tf.variable(tf.tensor2d([[3, 4]]), true, 'sam-test-w');
    // loss = 0.5 ||w||^2 => g = w; eps = rho w/||w|| = 0.1 [0.6, 0.8]; the gradient there is w + eps
    const loss = () => tf.mul(0.5, tf.sum(tf.square(w))) as tf.Scalar;
    let eps: number[] = [];
    const opt = createOptimizer(spec({ kind: 'sam', rho: 0.1 }), [{ name: 'w', variable: w }], {
      onPerturbed: (inner) => {
        eps = Array.from(inner.eps[0]!.dataSync());
      },
    });
    const l = opt.step(loss, 0.1);
    near([l], [12.5]);
    near(eps, [0.06, 0.08]);
    near(w.dataSync(), [3 - 0.1 * 3.06, 4 - 0.1 * 4.08], 1e-5);
    opt.dispose();
    w.dispose();
  });

  it('validates its spec with the field named', () => {
    assert.throws(() => createOptimizer(spec({ momentum: 1 }), []), ConfigError);
    assert.throws(() => createOptimizer(spec({ kind: 'asam', rho: -1 }), []), /optimizer\.rho/);
    assert.throws(() => createOptimizer(spec({ weightDecay: Number.NaN }), []), /weightDecay/);
  });

  it('leaks no tensor over 100 ASAM steps on the MLP', () => {
    const model = createModel({ kind: 'mlp', hidden: [32, 32] }, [8, 8, 1], 10, 3);
    const opt = createOptimizer(
      { kind: 'asam', momentum: 0.9, weightDecay: 4e-4, rho: 0.7, eta: 0.2 },
      model.params,
    );
    const x = tf.randomUniform([16, 8, 8, 1], 0, 1, 'float32', 1);
    const y = oneHot(
      Array.from({ length: 16 }, (_, i) => i % 10),
      10,
    );
    const loss = () => crossEntropy(model.logits(x), y);
    opt.step(loss, 0.01); // first step may create cached scalars (the lr)
    const before = tf.memory().numTensors;
    const w0 = readFlat(model);
    let first = Number.NaN;
    let last = Number.NaN;
    for (let i = 0; i < 100; i++) {
      const t = opt.stepTensor(loss, 0.01);
      last = t.dataSync()[0]!;
      if (i === 0) first = last;
      t.dispose();
    }
    assert.equal(tf.memory().numTensors, before);
    assert.notDeepEqual(readFlat(model), w0);
    assert.ok(last < first, `loss went down (${first} -> ${last})`);
    opt.dispose();
    model.dispose();
    tf.dispose([x, y]);
  });
});
