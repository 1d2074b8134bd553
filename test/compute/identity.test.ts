import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/compute/backend.js';
import { compareWasmToCpu, randomTensor } from './helpers.js';

describe('wasm Identity and same-dtype Cast share data (patch identity-shares-data)', () => {
  it('clone and cast-to-float32 add no backend data; a real cast still converts', async () => {
    await initBackend({ prefer: 'wasm', quiet: true });
    const backend = tf.engine().backend;
    const x = randomTensor(30, 'x', [4, 5]).mul(10);
    const ids = backend.numDataIds();
    const c = x.clone();
    const f = tf.cast(x, 'float32');
    assert.equal(backend.numDataIds(), ids, 'a copy was made');
    const i = tf.cast(x, 'int32');
    assert.equal(backend.numDataIds(), ids + 1);
    assert.deepEqual(c.dataSync(), x.dataSync());
    assert.deepEqual(f.dataSync(), x.dataSync());
    assert.deepEqual(
      [...i.dataSync()],
      [...x.dataSync()].map((v) => Math.trunc(v)),
    );
    // The shared data outlives the tensor it came from, and is freed with its last holder.
    x.dispose();
    assert.ok(Number.isFinite(c.dataSync()[0]!));
    tf.dispose([c, f, i]);
    assert.equal(backend.numDataIds(), ids - 1);
  });

  it('gradients through ReLU (which casts its mask) still match cpu', async () => {
    await compareWasmToCpu('relu grads', () => {
      const x = randomTensor(31, 'x', [3, 7, 7, 4]);
      const dy = randomTensor(31, 'dy', [3, 7, 7, 4]);
      return [tf.grad((t: tf.Tensor) => tf.relu(t).square())(x, dy)];
    });
  });
});
