import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/compute/backend.js';
import { ADD_SCALED, addScaled, asamPerturb, asamSumSq } from '../../src/compute/fused.js';
import { applyWasmPatches, removeWasmPatches } from '../../src/compute/kernels/wasm-patches.js';
import { createOptimizer, type SharpnessObserver } from '../../src/learn/optim/optimizer.js';
import { randomTensor } from './helpers.js';

/** Runs `f` with the fused kernels registered and again without (the plain tfjs ops). */
function bothWays<T>(f: () => T): { fused: T; plain: T } {
  applyWasmPatches(['fused-optimizer-passes']);
  assert.ok(tf.getKernel(ADD_SCALED, 'wasm'), 'fused kernels are registered on wasm');
  const fused = f();
  removeWasmPatches(['fused-optimizer-passes']);
  try {
    return { fused, plain: f() };
  } finally {
    applyWasmPatches(['fused-optimizer-passes']);
  }
}

const values = (t: tf.Tensor) => {
  const v = t.dataSync() as Float32Array;
  t.dispose();
  return v;
};

describe('fused optimizer passes (wasm SIMD) against the same tfjs ops', () => {
  // Odd sizes: the SIMD loops' scalar tails run too.
  for (const shape of [[784, 200], [7], [3, 5, 5, 3], [1]]) {
    it(`addScaled and asamPerturb are bit-identical, asamSumSq agrees (${shape.join('x')})`, async () => {
      await initBackend({ prefer: 'wasm', quiet: true });
      const w = randomTensor(20, 'w', shape);
      const g = randomTensor(20, 'g', shape);
      const a = tf.scalar(-0.05);
      const before = tf.memory().numTensors;
      const r = bothWays(() => ({
        axpy: values(addScaled(w, g, a)),
        perturb: values(asamPerturb(w, g, 0.2, 0.37)),
        perturbBias: values(asamPerturb(w, g, undefined, 0.37)),
        sq: asamSumSq(w, g, 0.2),
        sqBias: asamSumSq(w, g, undefined),
      }));
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      assert.deepEqual(r.fused.axpy, r.plain.axpy);
      assert.deepEqual(r.fused.perturb, r.plain.perturb);
      assert.deepEqual(r.fused.perturbBias, r.plain.perturbBias);
      // The sums against a float64 reference: the fused kernel sums float32 lanes in blocks and
      // the blocks in a double; tfjs sums in float32 (off by up to ~3e-5 on 157k terms).
      const wv = w.dataSync();
      const gv = g.dataSync();
      let sq = 0;
      let sqBias = 0;
      for (let i = 0; i < gv.length; i++) {
        const t = Math.fround(gv[i]! * Math.fround(Math.abs(wv[i]!) + Math.fround(0.2)));
        sq += t * t;
        sqBias += gv[i]! * gv[i]!;
      }
      const want = { sq, sqBias };
      for (const k of ['sq', 'sqBias'] as const) {
        assert.ok(want[k] > 0);
        assert.ok(
          Math.abs(r.fused[k] - want[k]) <= 1e-6 * want[k],
          `${k}: ${r.fused[k]} vs ${want[k]}`,
        );
        assert.ok(
          Math.abs(r.plain[k] - want[k]) <= 1e-4 * want[k],
          `${k}: ${r.plain[k]} vs ${want[k]}`,
        );
      }
      tf.dispose([w, g, a]);
    });
  }

  it('an ASAM step with the fused passes lands where the observed (unfused) step does', async () => {
    await initBackend({ prefer: 'wasm', quiet: true });
    const run = (observe: boolean) => {
      const w = tf.variable(randomTensor(21, 'w', [50, 20]), true, `fused-w-${observe}`);
      const b = tf.variable(randomTensor(21, 'b', [20]), true, `fused-b-${observe}`);
      const x = randomTensor(21, 'x', [8, 50]);
      const observer: SharpnessObserver | undefined = observe ? { onPerturbed() {} } : undefined;
      const opt = createOptimizer(
        { kind: 'asam', momentum: 0.9, weightDecay: 1e-3, rho: 0.7, eta: 0.2 },
        [
          { name: 'w', kind: 'weight', variable: w },
          { name: 'b', kind: 'bias', variable: b },
        ],
        observer,
      );
      const losses: number[] = [];
      for (let s = 0; s < 3; s++) {
        losses.push(opt.step(() => tf.sum(tf.square(tf.relu(tf.add(tf.matMul(x, w), b)))), 0.01));
      }
      const out = [values(w.clone()), values(b.clone())];
      opt.dispose();
      tf.dispose([w, b, x]);
      return { losses, out };
    };
    const fused = run(false);
    const plain = run(true);
    for (let s = 0; s < 3; s++) {
      assert.ok(Math.abs(fused.losses[s]! - plain.losses[s]!) <= 1e-5 * Math.abs(plain.losses[s]!));
    }
    for (let p = 0; p < 2; p++) {
      const f = fused.out[p]!;
      const q = plain.out[p]!;
      for (let i = 0; i < q.length; i++)
        assert.ok(Math.abs(f[i]! - q[i]!) <= 1e-5, `param ${p}[${i}]`);
    }
  });
});
