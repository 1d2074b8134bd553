/**
 * Lanczos iteration with full reorthogonalization on a symmetric operator given by its products,
 * and the eigen-decomposition of the small tridiagonal matrix it builds (cyclic Jacobi: exact
 * enough and simple at the sizes used here, at most a few hundred steps).
 *
 *   const run = lanczos((v) => H.hvp(v), dim, { steps: 30, start });
 *   const { values, vectors } = tridiagonalEigen(run.alpha, run.beta);   // ascending
 *
 * Full reorthogonalization keeps every Lanczos vector (float32, `steps × dim`) and subtracts the
 * projections on all of them twice per step, so the Ritz values have no spurious copies; the cost
 * beside the products is O(steps² · dim).
 */
import { axpy, dot, norm, type Vec } from './vec.js';

export interface LanczosRun {
  /** Diagonal of T. */
  alpha: number[];
  /** Off-diagonal of T (beta[i] couples steps i and i+1); one longer than alpha when unfinished. */
  beta: number[];
  /** The orthonormal Lanczos vectors, one per step. */
  basis: Float32Array[];
}

export interface LanczosOptions {
  steps: number;
  /** Start vector (normalized here). */
  start: Vec;
  /** Called after every step with the number of steps done (progress). */
  onStep?: (step: number) => void;
}

/** Runs `steps` Lanczos steps, or fewer when an invariant subspace is found (beta ≈ 0). */
export function lanczos(
  apply: (v: Float32Array) => Float32Array,
  opts: LanczosOptions,
): LanczosRun {
  const run: LanczosRun = { alpha: [], beta: [], basis: [] };
  const q = Float32Array.from(opts.start);
  const n0 = norm(q);
  for (let i = 0; i < q.length; i++) q[i]! /= n0;
  run.basis.push(q);
  extend(apply, run, opts.steps, opts.onStep);
  return run;
}

/** Adds up to `more` steps to a run (the basis's last vector is the next one to apply). */
export function extend(
  apply: (v: Float32Array) => Float32Array,
  run: LanczosRun,
  more: number,
  onStep?: (step: number) => void,
): void {
  for (let s = 0; s < more; s++) {
    if (run.alpha.length === run.basis.length) return; // invariant subspace: nothing left to add
    const k = run.alpha.length;
    const qk = run.basis[k]!;
    const w = Float64Array.from(apply(qk));
    const a = dot(w, qk);
    run.alpha.push(a);
    axpy(w, -a, qk);
    if (k > 0) axpy(w, -run.beta[k - 1]!, run.basis[k - 1]!);
    // Full reorthogonalization, twice ("twice is enough", Kahan-Parlett).
    for (let pass = 0; pass < 2; pass++) {
      for (const b of run.basis) axpy(w, -dot(w, b), b);
    }
    const bk = norm(w);
    onStep?.(k + 1);
    if (bk <= 1e-10 * Math.max(1, Math.abs(a))) return;
    run.beta.push(bk);
    const next = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) next[i] = w[i]! / bk;
    run.basis.push(next);
  }
}

export interface TridiagonalEigen {
  /** Eigenvalues, ascending. */
  values: number[];
  /** vectors[j] is the unit eigenvector of values[j] (length m). */
  vectors: number[][];
}

/** Eigen-decomposition of the symmetric tridiagonal matrix with diagonal `alpha`, off-diagonal `beta`. */
export function tridiagonalEigen(
  alpha: readonly number[],
  beta: readonly number[],
): TridiagonalEigen {
  const m = alpha.length;
  const A = Array.from({ length: m }, (_, i) =>
    Array.from({ length: m }, (_, j) =>
      i === j ? alpha[i]! : Math.abs(i - j) === 1 ? beta[Math.min(i, j)]! : 0,
    ),
  );
  const V = Array.from({ length: m }, (_, i) =>
    Array.from({ length: m }, (_, j) => (i === j ? 1 : 0)),
  );
  jacobi(A, V);
  const order = Array.from({ length: m }, (_, i) => i).sort((i, j) => A[i]![i]! - A[j]![j]!);
  return {
    values: order.map((i) => A[i]![i]!),
    vectors: order.map((i) => V.map((row) => row[i]!)),
  };
}

/** Cyclic Jacobi rotations until the off-diagonal mass is negligible; A becomes diagonal, V its eigenvectors (columns). */
function jacobi(A: number[][], V: number[][]): void {
  const m = A.length;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < m; i++) {
      diag += A[i]![i]! ** 2;
      for (let j = i + 1; j < m; j++) off += A[i]![j]! ** 2;
    }
    if (off <= 1e-30 * Math.max(diag, 1e-300)) return;
    for (let p = 0; p < m; p++) {
      for (let r = p + 1; r < m; r++) {
        const apr = A[p]![r]!;
        if (apr === 0) continue;
        const theta = (A[r]![r]! - A[p]![p]!) / (2 * apr);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < m; k++) {
          const akp = A[k]![p]!;
          const akr = A[k]![r]!;
          A[k]![p] = c * akp - s * akr;
          A[k]![r] = s * akp + c * akr;
        }
        for (let k = 0; k < m; k++) {
          const apk = A[p]![k]!;
          const ark = A[r]![k]!;
          A[p]![k] = c * apk - s * ark;
          A[r]![k] = s * apk + c * ark;
        }
        for (let k = 0; k < m; k++) {
          const vkp = V[k]![p]!;
          const vkr = V[k]![r]!;
          V[k]![p] = c * vkp - s * vkr;
          V[k]![r] = s * vkp + c * vkr;
        }
      }
    }
  }
}
