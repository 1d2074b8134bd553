import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../../src/compute/rng.js';
import { generateTopology } from '../../src/topology/generators.js';
import {
  cholesky,
  inverseFromCholesky,
  solveDense,
  symmetricEigen,
  symmetricEigenvalues,
} from '../../src/topology/linalg.js';
import { laplacianEigenvalues } from '../../src/topology/spectral.js';
import { maxAbsDiff } from './helpers.js';

function randomSymmetric(n: number, seed: number): Float64Array {
  const rng = Rng.from(seed, 'test');
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      const x = rng.normal();
      a[i * n + j] = x;
      a[j * n + i] = x;
    }
  }
  return a;
}

describe('symmetric eigensolver', () => {
  for (const n of [1, 2, 3, 7, 40, 120]) {
    it(`diagonalizes a random ${n}x${n} matrix: A v = lambda v, V orthonormal`, () => {
      const a = randomSymmetric(n, n);
      const { values, vectors } = symmetricEigen(a, n);
      for (let k = 1; k < n; k++) assert.ok(values[k]! >= values[k - 1]!);
      let resid = 0;
      let orth = 0;
      for (let k = 0; k < n; k++) {
        for (let i = 0; i < n; i++) {
          let s = 0;
          for (let j = 0; j < n; j++) s += a[i * n + j]! * vectors[k * n + j]!;
          resid = Math.max(resid, Math.abs(s - values[k]! * vectors[k * n + i]!));
        }
        for (let l = 0; l < n; l++) {
          let s = 0;
          for (let i = 0; i < n; i++) s += vectors[k * n + i]! * vectors[l * n + i]!;
          orth = Math.max(orth, Math.abs(s - (k === l ? 1 : 0)));
        }
      }
      assert.ok(resid < 1e-11 * n, `residual ${resid}`);
      assert.ok(orth < 1e-12 * n, `orthogonality ${orth}`);
      assert.ok(maxAbsDiff(symmetricEigenvalues(a, n), values) < 1e-12 * n);
    });
  }

  it('reproduces known Laplacian spectra (ring, complete, hypercube, star)', () => {
    const ring = laplacianEigenvalues(generateTopology('ring', { n: 16 }, 0));
    const expected = Array.from(
      { length: 16 },
      (_, k) => 2 - 2 * Math.cos((2 * Math.PI * k) / 16),
    ).sort((a, b) => a - b);
    assert.ok(maxAbsDiff(ring, expected) < 1e-12);
    const complete = laplacianEigenvalues(generateTopology('complete', { n: 9 }, 0));
    assert.ok(maxAbsDiff(complete, [0, 9, 9, 9, 9, 9, 9, 9, 9]) < 1e-12);
    // Hypercube Q3: eigenvalue 2k with multiplicity C(3, k).
    const cube = laplacianEigenvalues(generateTopology('hypercube', { n: 8 }, 0));
    assert.ok(maxAbsDiff(cube, [0, 2, 2, 2, 4, 4, 4, 6]) < 1e-12);
    const star = laplacianEigenvalues(generateTopology('star', { n: 6 }, 0));
    assert.ok(maxAbsDiff(star, [0, 1, 1, 1, 1, 6]) < 1e-12);
  });
});

describe('Cholesky and dense solves', () => {
  it('inverts an SPD matrix and rejects an indefinite one', () => {
    const n = 12;
    const a = randomSymmetric(n, 5);
    const spd = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += a[i * n + k]! * a[j * n + k]!;
        spd[i * n + j] = s + (i === j ? 0.5 : 0);
      }
    }
    const inv = inverseFromCholesky(cholesky(spd, n)!, n);
    let err = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += spd[i * n + k]! * inv[k * n + j]!;
        err = Math.max(err, Math.abs(s - (i === j ? 1 : 0)));
      }
    }
    assert.ok(err < 1e-9, `inverse error ${err}`);
    assert.equal(cholesky(a, n), undefined);
    const b = Float64Array.from({ length: n }, (_, i) => i + 1);
    const x = solveDense(spd, b, n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += spd[i * n + k]! * x[k]!;
      assert.ok(Math.abs(s - b[i]!) < 1e-9);
    }
  });
});
