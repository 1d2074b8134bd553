/**
 * Second derivatives through every kernel a model's Hessian passes: the gradients of gradient
 * kernels that src/compute/kernels/second-order.ts registers (checked against central differences,
 * which are exact up to rounding here because each function is linear in what is differentiated),
 * and whole H·v products of the conv nets and the Fashion-MNIST MLP on the wasm backend (flatmesh's
 * patched MatMul, Conv2D backprop and MaxPoolGrad kernels) against the cpu backend (tfjs's own).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { type BackendName, initBackend } from '../../src/compute/backend.js';
import { registerSecondOrderGradients } from '../../src/compute/kernels/second-order.js';
import { Rng } from '../../src/compute/rng.js';
import { HessianOperator } from '../../src/learn/flatness/index.js';
import { createModel, type ModelSpec } from '../../src/learn/model.js';

function randn(shape: number[], seed: number, label: string): tf.Tensor {
  const rng = Rng.from(seed, label);
  const n = shape.reduce((a, d) => a * d, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => rng.normal()),
    shape,
    'float32',
  );
}

/** |analytic directional derivative - central difference| relative to its size. */
function directionalCheck(f: (t: tf.Tensor) => tf.Scalar, at: tf.Tensor, dir: tf.Tensor): number {
  return tf.tidy(() => {
    const g = tf.grad(f)(at);
    const analytic = tf.sum(tf.mul(g, dir)).dataSync()[0]!;
    const h = 0.5; // f is linear in `at`: any step is exact up to rounding
    const fd =
      (f(tf.add(at, tf.mul(dir, h))).dataSync()[0]! -
        f(tf.sub(at, tf.mul(dir, h))).dataSync()[0]!) /
      (2 * h);
    return Math.abs(analytic - fd) / Math.max(Math.abs(fd), 1e-6);
  });
}

for (const backend of ['cpu', 'wasm'] as BackendName[]) {
  describe(`second-order gradients (${backend})`, () => {
    const convCases = [
      { stride: 1, pad: 'same' as const, x: [2, 7, 7, 3], f: [3, 3, 3, 4] },
      { stride: 1, pad: 'valid' as const, x: [2, 9, 9, 2], f: [5, 5, 2, 3] },
      { stride: 2, pad: 'same' as const, x: [2, 8, 8, 2], f: [3, 3, 2, 3] },
    ];
    for (const c of convCases) {
      it(`Conv2DBackpropFilter, ${c.f[0]}x${c.f[1]} stride ${c.stride} ${c.pad}: gradients in x and dy`, async () => {
        await initBackend({ prefer: backend, quiet: true });
        registerSecondOrderGradients();
        const before = tf.memory().numTensors;
        tf.tidy(() => {
          const x = randn(c.x, 1, 'x') as tf.Tensor4D;
          const filterShape = c.f as [number, number, number, number];
          const dyShape = tf.conv2d(x, tf.zeros(filterShape) as tf.Tensor4D, c.stride, c.pad).shape;
          const dy = randn(dyShape, 2, 'dy') as tf.Tensor4D;
          const G = randn(filterShape, 3, 'G');
          // tfjs does not export the gradient ops: take them as gradients of the forward ops.
          const backpropFilter = (xx: tf.Tensor4D, dyy: tf.Tensor4D) =>
            tf.grad((w) => tf.sum(tf.mul(dyy, tf.conv2d(xx, w as tf.Tensor4D, c.stride, c.pad))))(
              tf.zeros(filterShape),
            );
          const inX = (t: tf.Tensor) =>
            tf.sum(tf.mul(G, backpropFilter(t as tf.Tensor4D, dy))) as tf.Scalar;
          const inDy = (t: tf.Tensor) =>
            tf.sum(tf.mul(G, backpropFilter(x, t as tf.Tensor4D))) as tf.Scalar;
          assert.ok(directionalCheck(inX, x, randn(c.x, 4, 'dx')) < 1e-3);
          assert.ok(directionalCheck(inDy, dy, randn(dyShape, 5, 'ddy')) < 1e-3);
        });
        assert.equal(tf.memory().numTensors, before);
      });
    }

    const poolCases = [
      // The model zoo's pools: 2x2 stride 2, 'same' on odd sizes (padding) and 'valid'.
      { x: [2, 5, 5, 3], size: 2, stride: 2, pad: 'same' as const },
      { x: [2, 6, 6, 2], size: 2, stride: 2, pad: 'valid' as const },
      // Overlapping windows (each input can be the maximum of several).
      { x: [1, 7, 7, 2], size: 3, stride: 2, pad: 'valid' as const },
    ];
    for (const c of poolCases) {
      it(`MaxPoolGrad ${c.size}x${c.size} stride ${c.stride} ${c.pad}: gradient in dy, negative inputs included`, async () => {
        await initBackend({ prefer: backend, quiet: true });
        registerSecondOrderGradients();
        tf.tidy(() => {
          // Mostly negative values: the case the wasm backend's own MaxPoolGrad got wrong.
          const x = tf.sub(randn(c.x, 6, 'px'), 1) as tf.Tensor4D;
          const y = tf.maxPool(x, c.size, c.stride, c.pad);
          const dy = randn(y.shape, 7, 'pdy') as tf.Tensor4D;
          const G = randn(c.x, 8, 'pG');
          const poolGrad = (dyy: tf.Tensor) =>
            tf.grad((xx) =>
              tf.sum(tf.mul(dyy, tf.maxPool(xx as tf.Tensor4D, c.size, c.stride, c.pad))),
            )(x);
          const f = (t: tf.Tensor) => tf.sum(tf.mul(G, poolGrad(t))) as tf.Scalar;
          assert.ok(directionalCheck(f, dy, randn(y.shape, 9, 'pdir')) < 1e-4);
        });
      });
    }
  });
}

describe('H·v of the conv nets and the MLP: wasm (patched kernels) agrees with cpu', () => {
  const cases: { spec: ModelSpec; shape: number[]; batch: number }[] = [
    // 10x10: the second pool of cnn-small pads an odd size ('same').
    { spec: { kind: 'cnn-small' }, shape: [10, 10, 1], batch: 6 },
    // 16x16x3: the smallest input with both 5x5 valid convs and pools (16 -> 12 -> 6 -> 2 -> 1),
    // so the cpu reference stays quick; the kernels are the same as on 32x32.
    { spec: { kind: 'cnn-fedavg' }, shape: [16, 16, 3], batch: 2 },
    // The Fashion-MNIST MLP at full size: wasm's patched MatMul (transposed operands read by
    // strides) in both passes of double backprop, at the shapes the flatness study uses.
    { spec: { kind: 'mlp', hidden: [200, 200] }, shape: [28, 28, 1], batch: 8 },
  ];
  for (const c of cases) {
    it(`${c.spec.kind} on [${c.shape.join(', ')}]`, async () => {
      const f = c.shape.reduce((a, d) => a * d, 1);
      const rng = Rng.from(5, 'cnn-hv');
      const x = Float32Array.from({ length: c.batch * f }, () => rng.normal());
      const y = Int32Array.from({ length: c.batch }, (_, i) => i % 10);
      const set = {
        data: { x, y, count: c.batch, shape: c.shape, classes: 10 },
        source: 'random batch',
      };
      const results: Record<string, { hv: Float32Array; method: string; note?: string }> = {};
      let v: Float32Array | undefined;
      for (const backend of ['cpu', 'wasm'] as BackendName[]) {
        await initBackend({ prefer: backend, quiet: true });
        const model = createModel(c.spec, c.shape, 10, 3);
        v ??= Float32Array.from({ length: model.size }, () => rng.normal());
        // cpu is the reference: exact double backprop. wasm checks itself and may fall back.
        const H = new HessianOperator(model, set, {
          chunk: 2,
          ...(backend === 'cpu' && { method: 'double-backprop' as const }),
        });
        try {
          const hv = H.hvp(v);
          results[backend] = { hv, method: H.method, ...(H.note && { note: H.note }) };
        } finally {
          H.dispose();
          model.dispose();
        }
      }
      const cpu = results['cpu']!;
      const wasm = results['wasm']!;
      // Either both products are exact double backprop and agree, or the fallback was taken and
      // says so.
      if (wasm.method === 'finite-difference') {
        assert.match(wasm.note ?? '', /central differences/);
        return;
      }
      assert.equal(cpu.method, 'double-backprop', cpu.note);
      let e = 0;
      let n = 0;
      for (let i = 0; i < cpu.hv.length; i++) {
        e += (wasm.hv[i]! - cpu.hv[i]!) ** 2;
        n += cpu.hv[i]! ** 2;
      }
      assert.ok(n > 0);
      assert.ok(Math.sqrt(e / n) < 1e-4, `relative difference ${Math.sqrt(e / n)}`);
    });
  }
});
