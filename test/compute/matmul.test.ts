import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/compute/backend.js';
import { compareWasmToCpu, randomTensor } from './helpers.js';

// The dense shapes of the model zoo: mlp 784-200-200-10, cnn-small heads (3136-128-10, 128-10 for
// 8x8 inputs), cnn-fedavg 1600-384-192-10; batch 32 (training) and 7 (an odd tail batch).
const DENSE: [number, number][] = [
  [784, 200],
  [200, 200],
  [200, 10],
  [3136, 128],
  [128, 10],
  [1600, 384],
  [384, 192],
  [192, 10],
];

describe('wasm MatMul (SIMD GEMM on the operands as they lie, explicit transposes below it)', () => {
  it('the SIMD GEMM patch is in force on wasm', async () => {
    const info = await initBackend({ prefer: 'wasm', quiet: true });
    assert.ok(info.patches.includes('matmul-simd-gemm'), `patches: ${info.patches.join(', ')}`);
  });

  // Every tile kind: rows 4k and 1-3 left over, columns in 8s, a 4, and 1-3 single ones; K = 1.
  it('odd shapes, K = 1, broadcast batches and every transpose mode match cpu', async () => {
    await compareWasmToCpu('odd shapes', () => {
      const outs: tf.Tensor[] = [];
      for (const [m, k, n] of [
        [1, 1, 1],
        [3, 1, 7],
        [6, 17, 13],
        [9, 5, 31],
        [33, 70, 15],
      ] as const) {
        for (const ta of [false, true]) {
          for (const tb of [false, true]) {
            const a = randomTensor(5, `a${m}${k}${ta}`, ta ? [k, m] : [m, k]);
            const b = randomTensor(5, `b${k}${n}${tb}`, tb ? [n, k] : [k, n]);
            const bias = randomTensor(5, `bias${n}`, [n]);
            outs.push(tf.matMul(a, b, ta, tb));
            outs.push(
              tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, bias, activation: 'relu' }),
            );
            outs.push(tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, bias }));
          }
        }
      }
      // [2,3,m,k] against one [k,n] matrix, and one [m,k] against [4,k,n].
      outs.push(tf.matMul(randomTensor(6, 'a4', [2, 3, 5, 6]), randomTensor(6, 'b2', [6, 9])));
      outs.push(
        tf.matMul(randomTensor(6, 'a2', [5, 6]), randomTensor(6, 'b3', [4, 6, 9]), false, false),
      );
      return outs;
    });
  });

  for (const [ta, tb] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const) {
    it(`matMul transposeA=${ta} transposeB=${tb} matches cpu (2-D and batched)`, async () => {
      await compareWasmToCpu(`matMul ${ta} ${tb}`, () => {
        const a = randomTensor(1, 'a', ta ? [784, 32] : [32, 784]);
        const b = randomTensor(1, 'b', tb ? [200, 784] : [784, 200]);
        const a3 = randomTensor(2, 'a3', ta ? [3, 9, 5] : [3, 5, 9]);
        const b3 = randomTensor(2, 'b3', tb ? [3, 4, 9] : [3, 9, 4]);
        return [tf.matMul(a, b, ta, tb), tf.matMul(a3, b3, ta, tb)];
      });
    });
    it(`fused matMul (bias, relu) transposeA=${ta} transposeB=${tb} matches cpu`, async () => {
      await compareWasmToCpu(`fused ${ta} ${tb}`, () => {
        const a = randomTensor(3, 'a', ta ? [200, 32] : [32, 200]);
        const b = randomTensor(3, 'b', tb ? [10, 200] : [200, 10]);
        const bias = randomTensor(3, 'bias', [10]);
        return [
          tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, bias, activation: 'relu' }),
        ];
      });
    });
  }

  for (const batch of [32, 7]) {
    it(`dense layer forward and gradients match cpu on the model zoo shapes (batch ${batch})`, async () => {
      await compareWasmToCpu(`dense batch ${batch}`, () => {
        const outs: tf.Tensor[] = [];
        for (const [nin, nout] of DENSE) {
          const x = randomTensor(4, `x${nin}`, [batch, nin]);
          const w = randomTensor(4, `w${nin}x${nout}`, [nin, nout]).mul(0.05);
          const b = randomTensor(4, `b${nout}`, [nout]);
          const dy = randomTensor(4, `dy${nout}`, [batch, nout]);
          const f = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
            tf.relu(tf.add(tf.matMul(xx, ww), bb));
          const ff = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
            tf.fused.matMul({ a: xx, b: ww, bias: bb, activation: 'relu' });
          const [gx, gw, gb] = tf.grads((xx, ww, bb) => f(xx, ww, bb))([x, w, b], dy);
          const [fx, fw, fb] = tf.grads((xx, ww, bb) => ff(xx, ww, bb))([x, w, b], dy);
          outs.push(f(x, w, b), gx!, gw!, gb!, fx!, fw!, fb!);
        }
        return outs;
      });
    });
  }
});
