import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/compute/backend.js';
import { groupedMatMul, stackedMatMul } from '../../src/learn/batched-matmul.js';
import { stackedSlices } from '../../src/learn/wasm-heap.js';

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

  it('stackedMatMul: each slice as tf.matMul multiplies it, in every transpose mode and with a shared left operand', async () => {
    await initBackend({ prefer: 'wasm', quiet: true });
    const a = tf.randomNormal([3, 6, 9], 0, 1, 'float32', 3) as tf.Tensor3D;
    const b = tf.randomNormal([3, 9, 5], 0, 1, 'float32', 4) as tf.Tensor3D;
    const shared = tf.randomNormal([1, 6, 9], 0, 1, 'float32', 5) as tf.Tensor3D;
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const cases: [tf.Tensor3D, tf.Tensor3D, boolean, boolean][] = [
        [a, b, false, false],
        [tf.transpose(a, [0, 2, 1]), b, true, false],
        [a, tf.transpose(b, [0, 2, 1]), false, true],
        [shared, b, false, false],
      ];
      for (const [x, y, ta, tb] of cases) {
        const c = stackedMatMul(x, y, ta, tb);
        const xs = tf.unstack(x);
        const want = tf.stack(
          tf.unstack(y).map((yg, g) => tf.matMul(xs[xs.length === 1 ? 0 : g]!, yg, ta, tb)),
        );
        const d = tf.max(tf.abs(tf.sub(c, want))).dataSync()[0]!;
        assert.ok(d <= 1e-5, `transposeA ${ta} transposeB ${tb}: off by ${d}`);
      }
    });
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([a, b, shared]);
  });

  it('stackedSlices: the slices of a stacked tensor as tensors of their own, as tf.unstack gives them', async () => {
    for (const backend of ['wasm', 'cpu'] as const) {
      await initBackend({ prefer: backend, quiet: true });
      const t = tf.randomNormal([4, 5, 3], 0, 1, 'float32', 6) as tf.Tensor3D;
      const before = tf.memory().numTensors;
      const parts = stackedSlices(t);
      assert.equal(tf.memory().numTensors, before + 4);
      const want = tf.unstack(t);
      parts.forEach((p, g) => {
        assert.deepEqual(p.shape, [5, 3]);
        assert.deepEqual(Array.from(p.dataSync()), Array.from(want[g]!.dataSync()), `slice ${g}`);
      });
      // Copies: disposing the stacked tensor leaves them intact.
      const values = parts.map((p) => Array.from(p.dataSync()));
      t.dispose();
      parts.forEach((p, g) => assert.deepEqual(Array.from(p.dataSync()), values[g]));
      tf.dispose([...parts, ...want]);
    }
    await initBackend({ prefer: 'wasm', quiet: true });
  });
});
