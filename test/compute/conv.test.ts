import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { compareWasmToCpu, randomTensor } from './helpers.js';

interface ConvCase {
  what: string;
  input: [number, number, number]; // H, W, Cin
  filter: [number, number, number, number]; // fh, fw, Cin, Cout
  stride: number;
  pad: 'same' | 'valid';
}

// The model zoo's convs (cnn-small at 8x8x1 and 28x28x1, cnn-fedavg at 32x32x3), plus strided and
// uneven cases that exercise the general (dilated, cropped) path of the filter gradient.
const CASES: ConvCase[] = [
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
  },
  { what: 'cnn-small 8x8 conv1', input: [8, 8, 1], filter: [5, 5, 1, 32], stride: 1, pad: 'same' },
  {
    what: 'cnn-small 8x8 conv2',
    input: [4, 4, 32],
    filter: [5, 5, 32, 64],
    stride: 1,
    pad: 'same',
  },
  { what: 'cnn-fedavg conv1', input: [32, 32, 3], filter: [5, 5, 3, 64], stride: 1, pad: 'valid' },
  {
    what: 'cnn-fedavg conv2',
    input: [14, 14, 64],
    filter: [5, 5, 64, 64],
    stride: 1,
    pad: 'valid',
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
];

describe('wasm Conv2D gradients (patched) match the cpu backend', () => {
  for (const c of CASES) {
    it(`${c.what}: forward, dx and dfilter`, async () => {
      const batch = 2;
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
      const x = randomTensor(11, 'x', [2, 14, 14, 32]) as tf.Tensor4D;
      const f = randomTensor(11, 'f', [5, 5, 32, 64]).mul(0.1) as tf.Tensor4D;
      const b = randomTensor(11, 'b', [64]);
      const conv = (xx: tf.Tensor, ff: tf.Tensor, bb: tf.Tensor) =>
        tf.fused.conv2d({
          x: xx as tf.Tensor4D,
          filter: ff as tf.Tensor4D,
          strides: 1,
          pad: 'same',
          bias: bb,
          activation: 'relu',
        });
      const dy = randomTensor(11, 'dy', [2, 14, 14, 64]);
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

  it('a whole cnn-small loss and its parameter gradients (28x28x1, batch 4)', async () => {
    await compareWasmToCpu('cnn-small', () => {
      const x = randomTensor(13, 'x', [4, 28, 28, 1]) as tf.Tensor4D;
      const labels = tf.oneHot(tf.tensor1d([3, 1, 4, 1], 'int32'), 10);
      const p = [
        randomTensor(13, 'c1', [5, 5, 1, 32]).mul(0.2),
        randomTensor(13, 'c1b', [32]).mul(0.1),
        randomTensor(13, 'c2', [5, 5, 32, 64]).mul(0.035),
        randomTensor(13, 'c2b', [64]).mul(0.1),
        randomTensor(13, 'd1', [3136, 128]).mul(0.018),
        randomTensor(13, 'd1b', [128]).mul(0.1),
        randomTensor(13, 'd2', [128, 10]).mul(0.09),
        randomTensor(13, 'd2b', [10]).mul(0.1),
      ];
      const loss = (...q: tf.Tensor[]) => {
        let h: tf.Tensor4D = tf.relu(
          tf.add<tf.Tensor4D>(tf.conv2d(x, q[0] as tf.Tensor4D, 1, 'same'), q[1]!),
        );
        h = tf.maxPool(h, 2, 2, 'valid');
        h = tf.relu(tf.add<tf.Tensor4D>(tf.conv2d(h, q[2] as tf.Tensor4D, 1, 'same'), q[3]!));
        h = tf.maxPool(h, 2, 2, 'valid');
        const flat = tf.reshape(h, [4, 3136]);
        const z = tf.relu(tf.add(tf.matMul(flat, q[4]!), q[5]!));
        const logits = tf.add(tf.matMul(z, q[6]!), q[7]!);
        return tf.losses.softmaxCrossEntropy(labels, logits);
      };
      const { value, grads } = tf.valueAndGrads(loss)(p);
      return [value, ...grads];
    });
  });
});
