import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/compute/backend.js';
import { groupedMatMul } from '../../src/learn/batched-matmul.js';

describe('groupedMatMul', () => {
  it('multiplies each slice as tf.matMul does, without copying slices or leaking tensors (wasm)', async () => {
    await initBackend({ prefer: 'wasm', quiet: true });
    assert.equal(tf.getBackend(), 'wasm');
    const a = tf.randomNormal([5, 7, 33], 0, 1, 'float32', 1) as tf.Tensor3D;
    const b = tf.randomNormal([5, 33, 11], 0, 1, 'float32', 2) as tf.Tensor3D;
    const before = tf.memory().numTensors;
    const c = groupedMatMul(a, b);
    assert.deepEqual(c.shape, [5, 7, 11]);
    assert.equal(tf.memory().numTensors, before + 1);
    const expected = tf.tidy(() =>
      tf.stack(tf.unstack(a).map((ai, g) => tf.matMul(ai, tf.unstack(b)[g]!))),
    );
    // The same XNNPACK kernel on the same slices: the same bits.
    assert.deepEqual(Array.from(c.dataSync()), Array.from(expected.dataSync()));
    // Used inside a tidy, its result is tracked like any tensor's.
    const held = tf.memory().numTensors;
    tf.tidy(() => {
      groupedMatMul(a, b);
    });
    assert.equal(tf.memory().numTensors, held);
    tf.dispose([a, b, c, expected]);
  });

  it('refuses shapes that do not multiply', () => {
    const a = tf.zeros([2, 3, 4]) as tf.Tensor3D;
    const b = tf.zeros([2, 5, 4]) as tf.Tensor3D;
    assert.throws(() => groupedMatMul(a, b), /do not multiply/);
    tf.dispose([a, b]);
  });
});
