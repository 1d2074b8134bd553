import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/compute/backend.js';
import { compareWasmToCpu, randomTensor } from './helpers.js';

interface ConvCase {
  what: string;
  input: [number, number, number]; // H, W, Cin
  filter: [number, number, number, number]; // fh, fw, Cin, Cout
  stride: number;
  pad: 'same' | 'valid' | number;
  /** Batch 1 for the large shapes: the cpu reference's filter gradient is a slow scalar loop. */
  batch?: number;
}

// The model zoo's convs (cnn-small at 8x8x1 and 28x28x1, cnn-fedavg at 32x32x3), plus strided and
// uneven cases that exercise the general (dilated, cropped) path of the filter gradient.
const CASES: ConvCase[] = [
  // src/learn's cnn-small: conv3x3(16, same) -> pool -> conv3x3(32, same) -> pool, at 28x28 and 8x8.
  {
    what: 'learn cnn-small 28x28 conv1',
    input: [28, 28, 1],
    filter: [3, 3, 1, 16],
    stride: 1,
    pad: 'same',
  },
  {
    what: 'learn cnn-small 28x28 conv2',
    input: [14, 14, 16],
    filter: [3, 3, 16, 32],
    stride: 1,
    pad: 'same',
  },
  {
    what: 'learn cnn-small 8x8 conv2',
    input: [4, 4, 16],
    filter: [3, 3, 16, 32],
    stride: 1,
    pad: 'same',
  },
  // The brief's larger cnn-small (5x5, 32/64 filters).
  {
    what: 'cnn-small 28x28 conv1',
    input: [28, 28, 1],
    filter: [5, 5, 1, 32],
    stride: 1,
    pad: 'same',
  },
  {
    what: 'cnn-small 28x28 conv2',
    input: [14, 14, 32],
    filter: [5, 5, 32, 64],
    stride: 1,
    pad: 'same',
    batch: 1,
  },
  { what: 'cnn-small 8x8 conv1', input: [8, 8, 1], filter: [5, 5, 1, 32], stride: 1, pad: 'same' },
  {
    what: 'cnn-small 8x8 conv2',
    input: [4, 4, 32],
    filter: [5, 5, 32, 64],
    stride: 1,
    pad: 'same',
  },
  {
    what: 'cnn-fedavg conv1',
    input: [32, 32, 3],
    filter: [5, 5, 3, 64],
    stride: 1,
    pad: 'valid',
    batch: 1,
  },
  {
    what: 'cnn-fedavg conv2',
    input: [14, 14, 64],
    filter: [5, 5, 64, 64],
    stride: 1,
    pad: 'valid',
    batch: 1,
  },
  { what: 'stride 2 same', input: [9, 9, 3], filter: [3, 3, 3, 4], stride: 2, pad: 'same' },
  {
    what: 'stride 2 valid, uneven',
    input: [10, 11, 2],
    filter: [3, 3, 2, 5],
    stride: 2,
    pad: 'valid',
  },
  { what: 'even filter same', input: [7, 6, 2], filter: [4, 2, 2, 3], stride: 1, pad: 'same' },
  // Explicit pads: below the filter size (the GEMM path's im2col clips windows at the edges), and
  // windows wholly in the padding (the dilated-conv path).
  { what: 'pad 2, 3x3, odd channels', input: [5, 7, 3], filter: [3, 3, 3, 9], stride: 1, pad: 2 },
  {
    what: 'pad 3, 3x3 (beyond the filter)',
    input: [4, 4, 2],
    filter: [3, 3, 2, 4],
    stride: 1,
    pad: 3,
  },
  { what: '1x1 filter', input: [3, 5, 6], filter: [1, 1, 6, 7], stride: 1, pad: 'valid' },
];

describe('wasm Conv2D gradients (patched) match the cpu backend', () => {
  it('the GEMM conv gradients are in force on wasm', async () => {
    const info = await initBackend({ prefer: 'wasm', quiet: true });
    assert.ok(info.patches.includes('conv2d-gemm'), `patches: ${info.patches.join(', ')}`);
  });

  for (const c of CASES) {
    it(`${c.what}: forward, dx and dfilter`, async () => {
      const batch = c.batch ?? 2;
      await compareWasmToCpu(c.what, () => {
        const x = randomTensor(10, `${c.what} x`, [batch, ...c.input]) as tf.Tensor4D;
        const f = randomTensor(10, `${c.what} f`, c.filter).mul(0.2) as tf.Tensor4D;
        const conv = (xx: tf.Tensor, ff: tf.Tensor) =>
          tf.conv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, c.stride, c.pad);
        const y = conv(x, f);
        const dy = randomTensor(10, `${c.what} dy`, y.shape);
        const [dx, df] = tf.grads(conv)([x, f], dy);
        return [y, dx!, df!];
      });
    });
  }

  it('fused conv2d (bias, relu) gradients, as a layer would use them', async () => {
    await compareWasmToCpu('fused conv', () => {
      const x = randomTensor(11, 'x', [2, 14, 14, 16]) as tf.Tensor4D;
      const f = randomTensor(11, 'f', [3, 3, 16, 32]).mul(0.1) as tf.Tensor4D;
      const b = randomTensor(11, 'b', [32]);
      const conv = (xx: tf.Tensor, ff: tf.Tensor, bb: tf.Tensor) =>
        tf.fused.conv2d({
          x: xx as tf.Tensor4D,
          filter: ff as tf.Tensor4D,
          strides: 1,
          pad: 'same',
          bias: bb,
          activation: 'relu',
        });
      const dy = randomTensor(11, 'dy', [2, 14, 14, 32]);
      const [dx, df, db] = tf.grads(conv)([x, f, b], dy);
      return [conv(x, f, b), dx!, df!, db!];
    });
  });

  for (const [h, c] of [
    [28, 32],
    [14, 64],
    [8, 32],
    [28, 64],
    [10, 64],
  ] as const) {
    it(`maxPool 2x2 forward and gradient on ${h}x${h}x${c}`, async () => {
      await compareWasmToCpu(`maxpool ${h} ${c}`, () => {
        const x = randomTensor(12, `mp ${h} ${c}`, [2, h, h, c]) as tf.Tensor4D;
        const pool = (xx: tf.Tensor) => tf.maxPool(xx as tf.Tensor4D, 2, 2, 'valid');
        const y = pool(x);
        const dy = randomTensor(12, `mp dy ${h} ${c}`, y.shape);
        return [y, tf.grad(pool)(x, dy)];
      });
    });
  }

  for (const [h, c, pad, size, stride] of [
    [7, 16, 'same', 2, 2],
    [9, 8, 'same', 3, 1],
    [8, 4, 'valid', 3, 2],
  ] as const) {
    it(`maxPool ${size}x${size}/${stride} ${pad} (odd and overlapping windows) on ${h}x${h}x${c}`, async () => {
      await compareWasmToCpu(`maxpool ${h} ${c} ${pad}`, () => {
        const x = randomTensor(14, `mp ${h} ${c} ${pad}`, [3, h, h, c]) as tf.Tensor4D;
        const pool = (xx: tf.Tensor) => tf.maxPool(xx as tf.Tensor4D, size, stride, pad);
        const y = pool(x);
        const dy = randomTensor(14, `mp dy ${h} ${c} ${pad}`, y.shape);
        return [y, tf.grad(pool)(x, dy)];
      });
    });
  }

  // Ties (values on a coarse grid), all-negative and -Infinity windows, an odd size whose last row
  // and column no window covers, and channel counts on and off the SIMD path's multiple of 4.
  for (const [h, w, c] of [
    [9, 9, 8],
    [6, 8, 3],
    [4, 4, 4],
  ] as const) {
    it(`maxPool 2x2/2 gradient with ties and -Infinity on ${h}x${w}x${c}`, async () => {
      await compareWasmToCpu(`maxpool ties ${h} ${w} ${c}`, () => {
        const raw = randomTensor(16, `ties ${h} ${w} ${c}`, [2, h, w, c]);
        const grid = tf.div(tf.round(tf.mul(raw, 2)), 2);
        const x = tf.where(tf.less(raw, -0.9), tf.fill(raw.shape, Number.NEGATIVE_INFINITY), grid);
        const pool = (xx: tf.Tensor) => tf.maxPool(xx as tf.Tensor4D, 2, 2, 'valid');
        const dy = randomTensor(16, `ties dy ${h} ${w} ${c}`, pool(x).shape);
        return [tf.grad(pool)(x, dy)];
      });
    });
  }

  it('patched kernels free their intermediates in the backend', async () => {
    await initBackend({ prefer: 'wasm', quiet: true });
    const x = randomTensor(15, 'x', [2, 14, 14, 16]) as tf.Tensor4D;
    const f = randomTensor(15, 'f', [3, 3, 16, 32]) as tf.Tensor4D;
    const w = randomTensor(15, 'w', [64, 10]);
    const a = randomTensor(15, 'a', [5, 64]);
    const step = () =>
      tf.tidy(() => {
        const conv = (xx: tf.Tensor, ff: tf.Tensor) =>
          tf.maxPool(tf.conv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, 1, 'same'), 2, 2, 'same');
        const [dx, df] = tf.grads(conv)([x, f]);
        const [da, dw] = tf.grads((aa: tf.Tensor, ww: tf.Tensor) => tf.matMul(aa, ww))([a, w]);
        return tf.addN([dx!.sum(), df!.sum(), da!.sum(), dw!.sum()]).dataSync()[0];
      });
    step();
    const backend = tf.engine().backend;
    const ids = backend.numDataIds();
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) step();
    assert.equal(backend.numDataIds(), ids, 'backend data ids grew');
    assert.equal(tf.memory().numTensors, tensors, 'tensors leaked');
    tf.dispose([x, f, w, a]);
  });
});
