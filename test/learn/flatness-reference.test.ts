/**
 * The Hessian of a 64-32-10 ReLU MLP against exact float64 reference values
 * (test/fixtures/hessian_mlp.json, a copy of ../shared/reference/hessian_mlp.json): H·v, the top-5
 * eigenvalues and the trace, on the cpu backend (tfjs's own kernels) and on wasm (flatmesh's
 * patched kernels).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../../src/compute/backend.js';
import {
  hutchinsonTrace,
  hutchPlusPlusTrace,
  topEigenvalues,
} from '../../src/learn/flatness/index.js';
import { norm } from '../../src/learn/flatness/vec.js';
import { reference as ref, referenceModel, withHessian } from '../helpers/hessian.js';

function relError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let e = 0;
  let n = 0;
  for (let i = 0; i < want.length; i++) {
    e += (got[i]! - want[i]!) ** 2;
    n += want[i]! ** 2;
  }
  return Math.sqrt(e / n);
}

for (const backend of ['cpu', 'wasm'] as BackendName[]) {
  describe(`Hessian of the reference MLP (${backend})`, () => {
    it('loss, gradient norm and H·v match the float64 reference within float32 tolerance', async () => {
      // Chunks of 100 over 256 samples: the chunked sum must equal the whole-batch product.
      await withHessian(
        backend,
        referenceModel,
        (H) => {
          assert.equal(H.method, 'double-backprop', H.note);
          const { loss, grad } = H.lossAndGradient();
          assert.ok(Math.abs(loss - ref.facts.loss) < 1e-5, `loss ${loss}`);
          assert.ok(Math.abs(norm(grad) - ref.facts.gradNorm) < 1e-5, `grad norm ${norm(grad)}`);
          const before = tf.memory().numTensors;
          const hv = H.hvp(Float32Array.from(ref.v.flat()));
          assert.equal(tf.memory().numTensors, before, 'a product leaves no tensor behind');
          const err = relError(hv, ref.facts.hv.flat());
          assert.ok(err < 1e-5, `relative error of H·v ${err}`);
        },
        { chunk: 100 },
      );
    });
  });
}

describe('spectrum of the reference MLP (wasm)', () => {
  it('top-5 eigenvalues within 1%, and λmax/λ5', async () => {
    await withHessian('wasm', referenceModel, (H) => {
      const top = topEigenvalues(H, { k: 5, tol: 1e-4, seed: 3 });
      assert.ok(top.converged, `residuals ${top.residuals}`);
      top.values.forEach((l, i) => {
        const want = ref.facts.top5[i]!;
        assert.ok(Math.abs(l - want) <= 0.01 * Math.abs(want), `λ${i + 1} = ${l}, want ${want}`);
      });
      assert.ok(Math.abs(top.ratio - ref.facts.top5[0]! / ref.facts.top5[4]!) < 0.03);
      assert.equal(top.products, H.products);
      // Same seed, same figures.
      assert.deepEqual(topEigenvalues(H, { k: 5, tol: 1e-4, seed: 3 }).values, top.values);
    });
  });

  it('Hutchinson trace at 500 probes: within 3 standard errors and 5% of the exact trace', async () => {
    await withHessian('wasm', referenceModel, (H) => {
      const tr = hutchinsonTrace(H, { probes: 500, seed: 11 });
      const want = ref.facts.trace;
      assert.equal(tr.probes, 500);
      assert.ok(tr.stderr > 0);
      assert.ok(
        Math.abs(tr.estimate - want) <= 3 * tr.stderr,
        `${tr.estimate} ± ${tr.stderr} vs ${want}`,
      );
      assert.ok(Math.abs(tr.estimate - want) <= 0.05 * want, `${tr.estimate} vs ${want}`);
    });
  });

  it('Hutch++ trace at 300 products: within 3 standard errors and 5% of the exact trace', async () => {
    await withHessian('wasm', referenceModel, (H) => {
      const before = H.products;
      const tr = hutchPlusPlusTrace(H, { probes: 300, seed: 11 });
      const want = ref.facts.trace;
      assert.equal(tr.method, 'hutch++');
      assert.equal(H.products - before, 300, 'exactly the budget of products');
      assert.ok(tr.stderr > 0);
      assert.ok(
        Math.abs(tr.estimate - want) <= 3 * tr.stderr,
        `${tr.estimate} ± ${tr.stderr} vs ${want}`,
      );
      assert.ok(Math.abs(tr.estimate - want) <= 0.05 * want, `${tr.estimate} vs ${want}`);
    });
  });

  it('Hutch++ is exact on an operator whose rank its sketch covers', () => {
    // H = Σ_j c_j u_j u_jᵀ, rank 4, dimension 40: a sketch of 10 products spans its range.
    const dim = 40;
    const us = Array.from({ length: 4 }, (_, j) =>
      Float32Array.from({ length: dim }, (_, i) => Math.sin((i + 1) * (j + 2))),
    );
    const cs = [5, -2, 1.5, 0.25];
    const op = {
      dim,
      hvp(v: Float32Array) {
        const out = new Float32Array(dim);
        us.forEach((u, j) => {
          let d = 0;
          for (let i = 0; i < dim; i++) d += u[i]! * v[i]!;
          for (let i = 0; i < dim; i++) out[i]! += cs[j]! * d * u[i]!;
        });
        return out;
      },
    };
    const exact = us.reduce((s, u, j) => s + cs[j]! * u.reduce((a, x) => a + x * x, 0), 0);
    const tr = hutchPlusPlusTrace(op, { probes: 30, seed: 2 });
    assert.ok(Math.abs(tr.estimate - exact) < 1e-4 * Math.abs(exact), `${tr.estimate} vs ${exact}`);
    assert.ok(tr.stderr < 1e-4 * Math.abs(exact));
  });
});
