import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { compareWasmToCpu, randomTensor } from './helpers.js';

describe('wasm Sum over leading axes (bias gradients) matches cpu', () => {
  it('conv bias gradient shapes, with and without keepDims, negative axes', async () => {
    await compareWasmToCpu('sum leading', () => {
      const g = randomTensor(30, 'g', [32, 28, 28, 16]);
      const d = randomTensor(30, 'd', [64, 200]);
      const r3 = randomTensor(30, 'r3', [16, 32, 24]);
      // An odd row length: the SIMD pass's pairs of columns, then one column on its own.
      const odd = randomTensor(30, 'odd', [700, 7]);
      return [
        tf.sum(odd, 0),
        tf.sum(g, [0, 1, 2]),
        tf.sum(g, [2, 0, 1], true),
        tf.sum(g, [-4, -3]),
        tf.sum(d, 0),
        tf.sum(r3, [0, 1]),
      ];
    });
  });

  it('other reductions keep the original kernel and still agree', async () => {
    await compareWasmToCpu('sum other', () => {
      const g = randomTensor(31, 'g', [8, 14, 14, 16]);
      const small = randomTensor(31, 's', [4, 10]);
      return [
        tf.sum(g, [1, 2]),
        tf.sum(g),
        tf.sum(g, 3, true),
        tf.sum(small, 0),
        tf.sum(tf.cast(tf.mul(g, 10), 'int32'), [0, 1, 2]).toFloat(),
      ];
    });
  });

  it('the gradient of a bias add over a conv output', async () => {
    await compareWasmToCpu('bias grad', () => {
      const y = randomTensor(32, 'y', [16, 14, 14, 32]);
      const b = randomTensor(32, 'b', [32]);
      const dy = randomTensor(32, 'dy', [16, 14, 14, 32]);
      return [tf.grad((bb: tf.Tensor) => tf.add(y, bb))(b, dy)];
    });
  });
});
