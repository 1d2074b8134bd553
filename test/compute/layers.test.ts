import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/compute/backend.js';
import { applyWasmPatches, removeWasmPatches } from '../../src/compute/kernels/wasm-patches.js';
import {
  conv2dRelu,
  DENSE_RELU,
  dense,
  LAYER_KERNELS,
  softmaxCrossEntropyMean,
} from '../../src/compute/layers.js';
import { createModel, createOptimizer, LocalTrainer } from '../../src/learn/index.js';
import { oneHot } from '../../src/learn/loss.js';
import { assertClose, randomTensor, randomValues } from './helpers.js';

type Out = { shape: number[]; values: Float32Array };

/**
 * `f`'s outputs with the fused layer kernels (wasm) and again with the plain tfjs ops; checks that
 * the fused kernels ran (not under `nested` tapes) and that no tensor leaked.
 */
async function bothWays(
  f: () => tf.Tensor[],
  nested = false,
): Promise<{ fused: Out[]; plain: Out[] }> {
  await initBackend({ prefer: 'wasm', quiet: true });
  const run = async (fusedKernels: boolean) => {
    const before = tf.memory().numTensors;
    let res: Out[] = [];
    const info = await tf.profile(() => {
      const outs = tf.tidy(f);
      res = outs.map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
      tf.dispose(outs);
    });
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    const ran = info.kernelNames.some((k) => (LAYER_KERNELS as readonly string[]).includes(k));
    assert.equal(ran, fusedKernels, `fused layer kernels ran: ${info.kernelNames.join(', ')}`);
    return res;
  };
  applyWasmPatches(['fused-layers']);
  assert.ok(tf.getKernel(DENSE_RELU, 'wasm'), 'the fused layer kernels are registered on wasm');
  const fused = await run(!nested);
  removeWasmPatches(['fused-layers']);
  try {
    return { fused, plain: await run(false) };
  } finally {
    applyWasmPatches(['fused-layers']);
  }
}

function compare(r: { fused: Out[]; plain: Out[] }, what: string[], rel = 1e-5): void {
  assert.equal(r.fused.length, what.length);
  what.forEach((w, i) => assertClose(r.fused[i]!, r.plain[i]!, w, rel));
}

describe('fused dense layer and softmax cross-entropy (wasm) against the plain tfjs ops', () => {
  // Sizes off the GEMM's 4x8 tiles (tails), a batch-32 MLP layer, and a single row.
  for (const [m, k, n] of [
    [32, 784, 200],
    [7, 13, 10],
    [1, 5, 3],
  ] as const) {
    for (const relu of [true, false]) {
      it(`dense ${m}x${k}x${n}${relu ? ' relu' : ''}: values and the gradients of x, W and b`, async () => {
        const r = await bothWays(() => {
          const x = randomTensor(30, 'x', [m, k]) as tf.Tensor2D;
          const w = randomTensor(30, 'w', [k, n]) as tf.Tensor2D;
          const b = randomTensor(30, 'b', [n]) as tf.Tensor1D;
          const dy = randomTensor(30, 'dy', [m, n]);
          const y = dense(x, w, b, relu);
          // A loss with an upstream gradient that is not all ones: Σ dy ⊙ y.
          const g = tf.grads((xi, wi, bi) =>
            tf.sum(
              tf.mul(dense(xi as tf.Tensor2D, wi as tf.Tensor2D, bi as tf.Tensor1D, relu), dy),
            ),
          )([x, w, b]);
          return [y, ...g];
        });
        if (relu) {
          const zeros = r.fused[0]!.values.filter((v) => v === 0).length;
          assert.ok(zeros > 0, 'the ReLU masks some outputs (else its gradient is untested)');
        }
        compare(r, ['y', 'dx', 'dW', 'db']);
      });
    }
  }

  // cnn-small's layers ('same' 3x3) and cnn-fedavg's ('valid' 5x5), at small sizes.
  for (const [hw, cin, cout, f, pad] of [
    [9, 3, 8, 3, 'same'],
    [10, 4, 12, 5, 'valid'],
  ] as const) {
    it(`conv2d ${f}x${f} ${pad} + bias + ReLU (${hw}x${hw}x${cin} -> ${cout}): values and gradients`, async () => {
      const r = await bothWays(() => {
        const x = randomTensor(34, 'x', [3, hw, hw, cin]) as tf.Tensor4D;
        const w = randomTensor(34, 'w', [f, f, cin, cout]) as tf.Tensor4D;
        const b = randomTensor(34, 'b', [cout]) as tf.Tensor1D;
        const y = conv2dRelu(x, w, b, pad);
        const dy = randomTensor(34, 'dy', y.shape);
        const g = tf.grads((xi, wi, bi) =>
          tf.sum(
            tf.mul(conv2dRelu(xi as tf.Tensor4D, wi as tf.Tensor4D, bi as tf.Tensor1D, pad), dy),
          ),
        )([x, w, b]);
        return [y, ...g];
      });
      assert.ok(
        r.fused[0]!.values.some((v) => v === 0),
        'the ReLU masks some outputs',
      );
      compare(r, ['y', 'dx', 'dW', 'db']);
    });
  }

  it('softmax cross-entropy: the mean loss and its gradient in the logits', async () => {
    const labels = Int32Array.from(randomValues(31, 'labels', 32), (v) => Math.floor((v + 1) * 5));
    const r = await bothWays(() => {
      // Large logits too: the loss must shift by the row maximum.
      const z = tf.mul(randomTensor(31, 'z', [32, 10]), 30) as tf.Tensor2D;
      const y = oneHot(labels, 10);
      const [loss, g] = [
        softmaxCrossEntropyMean(y, z),
        tf.grad((zi) => tf.mul(softmaxCrossEntropyMean(y, zi as tf.Tensor2D), 3))(z),
      ];
      return [loss, g];
    });
    compare(r, ['loss', 'dz']);
  });

  it('an MLP trained 5 SGD steps with the fused layers ends where the plain tfjs ops end', async () => {
    const train = () => {
      const input = [6, 6, 1];
      const model = createModel({ kind: 'mlp', hidden: [20, 12] }, input, 4, 7);
      const opt = createOptimizer(
        { kind: 'sgd', momentum: 0.9, weightDecay: 1e-3, rho: 0, eta: 0 },
        model.params,
      );
      const count = 40;
      const data = {
        x: randomValues(32, 'data', count * 36),
        y: Int32Array.from(randomValues(32, 'y', count), (v) => Math.floor((v + 1) * 2)),
        count,
        shape: input,
        classes: 4,
      };
      const trainer = new LocalTrainer({
        model,
        optimizer: opt,
        data,
        indices: Int32Array.from({ length: count }, (_, i) => i),
        batchSize: 16,
        seed: 3,
        node: 0,
      });
      const { loss } = trainer.train(5, 0.1);
      const params = model.params.map((p) => p.variable.clone());
      opt.dispose();
      model.dispose();
      return [tf.scalar(loss), ...params];
    };
    const r = await bothWays(train);
    compare(r, [
      'loss',
      'fc1.weight',
      'fc1.bias',
      'fc2.weight',
      'fc2.bias',
      'fc3.weight',
      'fc3.bias',
    ]);
  });

  it('under nested tapes (Hessian-vector products) the plain ops run and are differentiated', async () => {
    // Σ_i v_i ∂²L/∂w∂w_i for L = Σ dense(x, W, b, relu)² through two layers.
    const r = await bothWays(() => {
      const x = randomTensor(33, 'x', [5, 6]) as tf.Tensor2D;
      const w1 = randomTensor(33, 'w1', [6, 4]) as tf.Tensor2D;
      const w2 = randomTensor(33, 'w2', [4, 3]) as tf.Tensor2D;
      const b = tf.zeros([4]) as tf.Tensor1D;
      const c = tf.zeros([3]) as tf.Tensor1D;
      const v = randomTensor(33, 'v', [6, 4]);
      const loss = (w: tf.Tensor) =>
        tf.sum(tf.square(dense(dense(x, w as tf.Tensor2D, b, true), w2, c, false)));
      const hv = tf.grad((w) => tf.sum(tf.mul(tf.grad(loss)(w), v)))(w1);
      return [hv];
    }, true);
    compare(r, ['H·v']);
  });
  it('gemm-fma: switching the GEMM re-installs the fused kernels, and removing them still works', async () => {
    await initBackend({ prefer: 'wasm', quiet: true });
    const conv = () =>
      tf.tidy(() => {
        const x = randomTensor(35, 'x', [2, 12, 12, 8]) as tf.Tensor4D;
        const w = randomTensor(35, 'w', [5, 5, 8, 16]) as tf.Tensor4D;
        const b = randomTensor(35, 'b', [16]) as tf.Tensor1D;
        return conv2dRelu(x, w, b, 'valid').dataSync() as Float32Array;
      });
    const withFma = conv();
    assert.ok(removeWasmPatches(['gemm-fma']).includes('fused-layers'));
    const plain = conv();
    applyWasmPatches(['gemm-fma']);
    assertClose(
      { shape: [withFma.length], values: withFma },
      { shape: [plain.length], values: plain },
      'conv with and without FMA',
      1e-5,
    );
    // After the re-install, removing the patch must unregister the kernels, not restore ours.
    removeWasmPatches(['fused-layers']);
    try {
      for (const k of LAYER_KERNELS) assert.equal(tf.getKernel(k, 'wasm'), undefined, k);
    } finally {
      applyWasmPatches(['fused-layers']);
    }
    assert.ok(tf.getKernel(DENSE_RELU, 'wasm'));
  });
});
