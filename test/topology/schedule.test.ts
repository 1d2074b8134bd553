import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadTopologyFile } from '../../src/topology/format.js';
import { generateTopology } from '../../src/topology/generators.js';
import { matchaPlan } from '../../src/topology/matcha.js';
import { mixingMatrix, neighboursAt, roundTopology } from '../../src/topology/schedule.js';
import { expectedWtW, metropolisHastingsWeight } from '../../src/topology/spectral.js';
import { shipped } from './helpers.js';

const graph = loadTopologyFile(shipped('matcha-er-8.json'));
const plan = matchaPlan(graph, 0.5);

describe('per-round schedule', () => {
  it('is a pure function of (seed, round)', () => {
    for (let r = 0; r < 50; r++)
      assert.deepEqual(roundTopology(plan, 11, r), roundTopology(plan, 11, r));
    const a = Array.from({ length: 50 }, (_, r) =>
      roundTopology(plan, 11, r).activeMatchings.join(),
    );
    const b = Array.from({ length: 50 }, (_, r) =>
      roundTopology(plan, 12, r).activeMatchings.join(),
    );
    assert.notDeepEqual(a, b);
  });

  it('activates each matching with frequency p_j and activates exactly its edges', () => {
    const rounds = 20000;
    const count = plan.matchings.map(() => 0);
    for (let r = 0; r < rounds; r++) {
      const rt = roundTopology(plan, 3, r);
      for (const j of rt.activeMatchings) count[j]! += 1;
      assert.equal(
        rt.edges.length,
        rt.activeMatchings.reduce((s, j) => s + plan.matchings[j]!.length, 0),
      );
    }
    plan.probabilities.forEach((p, j) => {
      const sd = Math.sqrt((p * (1 - p)) / rounds);
      assert.ok(
        Math.abs(count[j]! / rounds - p) <= 5 * sd + 1e-12,
        `matching ${j}: ${count[j]! / rounds} vs ${p}`,
      );
    });
  });

  it('matches the closed-form E[W^T W] by Monte Carlo', () => {
    const n = graph.n;
    const rounds = 20000;
    const acc = new Float64Array(n * n);
    for (let r = 0; r < rounds; r++) {
      const w = mixingMatrix(roundTopology(plan, 5, r), n, {
        kind: 'laplacian',
        alpha: plan.alpha,
      });
      // W is symmetric, so W^T W = W^2.
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let k = 0; k < n; k++) s += w[i * n + k]! * w[k * n + j]!;
          acc[i * n + j]! += s / rounds;
        }
      }
    }
    const exact = expectedWtW(n, plan.matchings, plan.probabilities, plan.alpha);
    let err = 0;
    for (let i = 0; i < n * n; i++) err = Math.max(err, Math.abs(acc[i]! - exact[i]!));
    // Each entry is a mean of 20000 bounded draws (|entry| < 1.5): standard error < 0.011.
    assert.ok(err < 0.02, `max entry error ${err}`);
  });

  it('gives a symmetric mixing matrix with unit row and column sums every round', () => {
    const ring = matchaPlan(loadTopologyFile(shipped('ring-16.json')), 0.5);
    for (const [p, n] of [
      [plan, 8],
      [ring, 16],
    ] as const) {
      for (let r = 0; r < 200; r++) {
        const rt = roundTopology(p, 1, r);
        for (const rule of [
          { kind: 'laplacian', alpha: p.alpha } as const,
          { kind: 'metropolis' } as const,
        ]) {
          const w = mixingMatrix(rt, n, rule);
          for (let i = 0; i < n; i++) {
            let row = 0;
            let col = 0;
            for (let j = 0; j < n; j++) {
              assert.equal(w[i * n + j], w[j * n + i]);
              row += w[i * n + j]!;
              col += w[j * n + i]!;
            }
            assert.ok(Math.abs(row - 1) < 1e-12 && Math.abs(col - 1) < 1e-12);
          }
          if (rule.kind === 'metropolis') assert.ok(w.every((x) => x >= 0));
        }
      }
    }
  });

  it('gives the ring-16 node with both matchings on a negative self-weight (alpha > 1/2)', () => {
    const ring = matchaPlan(loadTopologyFile(shipped('ring-16.json')), 0.5);
    let seen = false;
    for (let r = 0; r < 20 && !seen; r++) {
      const rt = roundTopology(ring, 2, r);
      if (rt.activeMatchings.length === 2) {
        const w = mixingMatrix(rt, 16, { kind: 'laplacian', alpha: ring.alpha });
        assert.ok(Math.abs(w[0]! - (1 - 2 * ring.alpha)) < 1e-12 && w[0]! < 0);
        seen = true;
      }
    }
    assert.ok(seen);
  });

  it('lists sorted active neighbours and Metropolis-Hastings weights', () => {
    const g = generateTopology('complete', { n: 6 }, 0);
    const full = matchaPlan(g, 1);
    const rt = roundTopology(full, 0, 0);
    assert.deepEqual(neighboursAt(rt, 3), [0, 1, 2, 4, 5]);
    const w = mixingMatrix(rt, 6, { kind: 'metropolis' });
    assert.equal(w[1], 1 / 6);
    assert.equal(metropolisHastingsWeight(2, 5), 1 / 6);
    const none = { round: 0, activeMatchings: [], edges: [] };
    assert.deepEqual(neighboursAt(none, 0), []);
  });
});
