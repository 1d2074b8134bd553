import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { loadTopologyFile } from '../../src/topology/format.js';
import { generateTopology } from '../../src/topology/generators.js';
import { symmetricEigenvalues } from '../../src/topology/linalg.js';
import {
  matchaPlan,
  optimizeAlpha,
  optimizeProbabilities,
  solveMatcha,
  vanillaPlan,
} from '../../src/topology/matcha.js';
import { decomposeMatchings } from '../../src/topology/matching.js';
import {
  convergenceFactor,
  expectedLaplacian,
  vanillaMixing,
} from '../../src/topology/spectral.js';
import { matchaReference, maxAbsDiff, shipped } from './helpers.js';

describe('MATCHA on the reference graph (matcha_graph0, Cb = 0.5)', () => {
  const ref = matchaReference();
  const graph = loadTopologyFile(shipped('matcha-er-8.json'));
  const sol = solveMatcha(graph, 0.5);

  it('finds the optimal lambda_2 of E[L] with a certificate', () => {
    assert.ok(Math.abs(sol.lambda2Expected - ref.lambda2_expected_laplacian) < 1e-5);
    assert.ok(sol.upperBound - sol.lambda2Expected <= 1e-6, 'certified within 1e-6');
    assert.ok(
      sol.upperBound >= ref.lambda2_expected_laplacian - 1e-9,
      'the bound is an upper bound',
    );
    // The optimum is unique here, so the probabilities match too.
    assert.ok(maxAbsDiff(sol.plan.probabilities, ref.probabilities) < 1e-4);
    assert.ok(sol.plan.probabilities.reduce((a, b) => a + b, 0) <= 5 * 0.5 + 1e-12);
  });

  it('finds the rho-optimal alpha and rho', () => {
    assert.ok(Math.abs(sol.plan.alpha - ref.alpha) < 1e-4, `alpha ${sol.plan.alpha}`);
    assert.ok(Math.abs(sol.rho - ref.rho) < 1e-4, `rho ${sol.rho}`);
    assert.ok(
      Math.abs(
        convergenceFactor(8, sol.plan.matchings, sol.plan.probabilities, sol.plan.alpha) - sol.rho,
      ) < 1e-12,
    );
    // alpha is a minimizer: nearby alphas are no better.
    for (const d of [-1e-3, 1e-3]) {
      assert.ok(
        convergenceFactor(8, sol.plan.matchings, sol.plan.probabilities, sol.plan.alpha + d) >=
          sol.rho,
      );
    }
  });

  it('gives vanilla D-PSGD alpha = 2/7 and rho = 0.6537772', () => {
    const v = vanillaPlan(graph);
    assert.ok(Math.abs(v.alpha - 2 / 7) < 1e-12);
    assert.deepEqual(v.probabilities, [1, 1, 1, 1, 1]);
    assert.ok(Math.abs(vanillaMixing(graph).rho - ref.vanilla_dpsgd_all_edges.rho) < 1e-6);
    assert.ok(
      Math.abs(convergenceFactor(8, v.matchings, v.probabilities, v.alpha) - 0.6537772) < 1e-6,
    );
  });
});

describe('MATCHA optimization', () => {
  it('gives the 16-node ring at Cb = 0.5 alpha 0.650, above 1/degree, unclamped', () => {
    const plan = matchaPlan(loadTopologyFile(shipped('ring-16.json')), 0.5);
    assert.equal(plan.matchings.length, 2);
    assert.ok(maxAbsDiff(plan.probabilities, [0.5, 0.5]) < 1e-6);
    assert.ok(Math.abs(plan.alpha - 0.65) < 1e-3, `alpha ${plan.alpha}`);
    assert.ok(plan.alpha > 0.5, 'self-weight 1 - 2 alpha is negative when both matchings are on');
  });

  it('with budget 1 switches every matching on and recovers the vanilla alpha', () => {
    const g = generateTopology('erdos-renyi', { n: 14, p: 0.3 }, 4);
    const plan = matchaPlan(g, 1);
    assert.ok(plan.probabilities.every((p) => p === 1));
    assert.ok(Math.abs(plan.alpha - vanillaMixing(g).alpha) < 1e-7);
  });

  it('is certified within 1e-6 on random graphs and beats uniform probabilities', () => {
    for (let seed = 0; seed < 4; seed++) {
      const g = generateTopology('erdos-renyi', { n: 16 + 4 * seed, p: 0.3 }, seed);
      const ms = decomposeMatchings(g);
      for (const budget of [0.2, 0.5, 0.8]) {
        const r = optimizeProbabilities(g.n, ms, budget);
        assert.ok(r.upperBound - r.lambda2 <= 1e-6, `gap ${r.upperBound - r.lambda2}`);
        assert.ok(r.probabilities.every((p) => p >= 0 && p <= 1));
        assert.ok(r.probabilities.reduce((a, b) => a + b, 0) <= ms.length * budget + 1e-9);
        const uniform = symmetricEigenvalues(
          expectedLaplacian(
            g.n,
            ms,
            ms.map(() => budget),
          ),
          g.n,
        )[1]!;
        assert.ok(r.lambda2 >= uniform - 1e-9);
        // And no feasible random probability vector beats it.
        for (let k = 0; k < 5; k++) {
          const q = ms.map((_, j) => ((j * 7 + k * 3 + seed) % 11) / 10);
          const s = q.reduce((a, b) => a + b, 0);
          const f = Math.min(1, (ms.length * budget) / s);
          const l2 = symmetricEigenvalues(
            expectedLaplacian(
              g.n,
              ms,
              q.map((x) => x * f),
            ),
            g.n,
          )[1]!;
          assert.ok(l2 <= r.upperBound + 1e-9);
        }
      }
    }
  });

  it('optimizes alpha for fixed probabilities as the minimizer of the convex rho(alpha)', () => {
    const g = generateTopology('torus', { n: 16 }, 0);
    const ms = decomposeMatchings(g);
    const p = [0.3, 0.6, 0.9, 0.2];
    const { alpha, rho } = optimizeAlpha(16, ms, p);
    let best = Infinity;
    for (let a = 0.001; a < 1; a += 0.001) best = Math.min(best, convergenceFactor(16, ms, p, a));
    assert.ok(rho <= best + 1e-12);
    assert.ok(rho < 1 && alpha > 0);
  });

  it('rejects a budget outside (0, 1] naming the field', () => {
    const g = generateTopology('ring', { n: 6 }, 0);
    for (const b of [0, -0.1, 1.5, Number.NaN]) {
      assert.throws(
        () => matchaPlan(g, b),
        (e: unknown) =>
          e instanceof ConfigError && /^budget: must be a number in \(0, 1\]/.test(e.message),
      );
    }
  });

  it('is deterministic', () => {
    const g = generateTopology('erdos-renyi', { n: 20, p: 0.3 }, 9);
    assert.deepEqual(matchaPlan(g, 0.4), matchaPlan(g, 0.4));
  });
});
