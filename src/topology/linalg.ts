/**
 * Dense linear algebra for the small symmetric matrices of graph spectra (up to a few hundred
 * nodes): a symmetric eigensolver (Householder reduction to tridiagonal form, then the implicit QL
 * iteration with Wilkinson-style shifts, as in EISPACK's tred2/tql2), a Cholesky factorization
 * that doubles as a positive-definiteness test, and the inverse built from it.
 *
 *   const { values, vectors } = symmetricEigen(a, n);   // a: n*n row-major, values ascending
 *   const v0 = vectors.subarray(0, n);                  // NOT a column: vectors are stored one per row
 *   const lmax = symmetricEigenvalues(a, n).at(-1);
 *
 * Matrices are Float64Array in row-major order; inputs are never modified.
 */

export interface SymmetricEigen {
  /** Eigenvalues in ascending order. */
  readonly values: Float64Array;
  /** Eigenvectors, one per row, in the order of `values` (row k is the unit vector of values[k]). */
  readonly vectors: Float64Array;
}

/** All eigenvalues and unit eigenvectors of the symmetric n*n matrix `a` (row-major). */
export function symmetricEigen(a: Float64Array, n: number): SymmetricEigen {
  const { d, v } = diagonalize(a, n, true);
  // v holds eigenvectors as columns; sort ascending and transpose into rows.
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[x]! - d[y]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const c = order[k]!;
    values[k] = d[c]!;
    for (let i = 0; i < n; i++) vectors[k * n + i] = v[i * n + c]!;
  }
  return { values, vectors };
}

/** Eigenvalues only (ascending); skips the eigenvector rotations of the QL sweep. */
export function symmetricEigenvalues(a: Float64Array, n: number): Float64Array {
  const { d } = diagonalize(a, n, false);
  return d.sort();
}

function diagonalize(a: Float64Array, n: number, wantVectors: boolean) {
  if (a.length !== n * n) throw new RangeError(`matrix has ${a.length} entries, expected ${n * n}`);
  const v = Float64Array.from(a);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (n === 0) return { d, v };
  tridiagonalize(v, d, e, n, wantVectors);
  qlImplicit(v, d, e, n, wantVectors);
  return { d, v };
}

/**
 * Householder reduction of the symmetric matrix in `v` to tridiagonal form: on return `d` is the
 * diagonal, `e[1..n-1]` the subdiagonal and `v` the accumulated orthogonal transformation.
 */
function tridiagonalize(
  v: Float64Array,
  d: Float64Array,
  e: Float64Array,
  n: number,
  accumulate: boolean,
): void {
  for (let j = 0; j < n; j++) d[j] = v[(n - 1) * n + j]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = v[(i - 1) * n + j]!;
        v[i * n + j] = 0;
        v[j * n + i] = 0;
      }
    } else {
      // Scale the row to avoid under/overflow, then build the Householder vector in d.
      for (let k = 0; k < i; k++) {
        d[k] = d[k]! / scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      // e <- A u (using the lower triangle held in v).
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        v[j * n + i] = f;
        g = e[j]! + v[j * n + j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += v[k * n + j]! * d[k]!;
          e[k] = e[k]! + v[k * n + j]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] = e[j]! / h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] = e[j]! - hh * d[j]!;
      // Rank-2 update of the remaining lower triangle.
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) v[k * n + j] = v[k * n + j]! - (f * e[k]! + g * d[k]!);
        d[j] = v[(i - 1) * n + j]!;
        v[i * n + j] = 0;
      }
    }
    d[i] = h;
  }
  if (!accumulate) {
    // The reduction leaves the tridiagonal's diagonal on v's diagonal; skip building the
    // transformation (two thirds of the work) when only eigenvalues are wanted.
    for (let j = 0; j < n; j++) d[j] = v[j * n + j]!;
    e[0] = 0;
    return;
  }
  // Accumulate the transformations.
  for (let i = 0; i < n - 1; i++) {
    v[(n - 1) * n + i] = v[i * n + i]!;
    v[i * n + i] = 1;
    const h = d[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = v[k * n + i + 1]! / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += v[k * n + i + 1]! * v[k * n + j]!;
        for (let k = 0; k <= i; k++) v[k * n + j] = v[k * n + j]! - g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) v[k * n + i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = v[(n - 1) * n + j]!;
    v[(n - 1) * n + j] = 0;
  }
  v[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

/** Implicit QL iteration on the tridiagonal (d, e); rotations are applied to v's columns. */
function qlImplicit(
  v: Float64Array,
  d: Float64Array,
  e: Float64Array,
  n: number,
  wantVectors: boolean,
): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]!) > eps * tst1) m++;
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 60) throw new Error(`symmetric eigensolver did not converge (n = ${n})`);
        // Shift from the leading 2x2 block.
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i] = d[i]! - h;
        f += h;
        // QL sweep from m up to l.
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          if (wantVectors) {
            for (let k = 0; k < n; k++) {
              const vk = k * n;
              h = v[vk + i + 1]!;
              v[vk + i + 1] = s * v[vk + i]! + c * h;
              v[vk + i] = c * v[vk + i]! - s * h;
            }
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
}

/**
 * Lower-triangular Cholesky factor of the symmetric matrix `a`, or undefined when `a` is not
 * (numerically) positive definite. Used as the feasibility test of the MATCHA barrier method.
 */
export function cholesky(a: Float64Array, n: number): Float64Array | undefined {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let s = a[j * n + j]!;
    for (let k = 0; k < j; k++) s -= l[j * n + k]! * l[j * n + k]!;
    if (!(s > 0)) return undefined;
    const ljj = Math.sqrt(s);
    l[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let t = a[i * n + j]!;
      for (let k = 0; k < j; k++) t -= l[i * n + k]! * l[j * n + k]!;
      l[i * n + j] = t / ljj;
    }
  }
  return l;
}

/** log det of the matrix whose Cholesky factor is `l`. */
export function logDetFromCholesky(l: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.log(l[i * n + i]!);
  return 2 * s;
}

/** Inverse of a symmetric positive definite matrix from its Cholesky factor: (L L^T)^-1. */
export function inverseFromCholesky(l: Float64Array, n: number): Float64Array {
  // Invert L (lower triangular) in place into li, then A^-1 = li^T li.
  const li = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    li[j * n + j] = 1 / l[j * n + j]!;
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s -= l[i * n + k]! * li[k * n + j]!;
      li[i * n + j] = s / l[i * n + i]!;
    }
  }
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < n; k++) s += li[k * n + i]! * li[k * n + j]!;
      inv[i * n + j] = s;
      inv[j * n + i] = s;
    }
  }
  return inv;
}

/** Solves the small dense system A x = b by Gaussian elimination with partial pivoting. */
export function solveDense(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const m = Float64Array.from(a);
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++)
      if (Math.abs(m[r * n + c]!) > Math.abs(m[piv * n + c]!)) piv = r;
    if (m[piv * n + c] === 0) throw new Error('singular system');
    if (piv !== c) {
      for (let k = 0; k < n; k++) {
        const t = m[c * n + k]!;
        m[c * n + k] = m[piv * n + k]!;
        m[piv * n + k] = t;
      }
      const t = x[c]!;
      x[c] = x[piv]!;
      x[piv] = t;
    }
    for (let r = c + 1; r < n; r++) {
      const f = m[r * n + c]! / m[c * n + c]!;
      if (f === 0) continue;
      for (let k = c; k < n; k++) m[r * n + k] = m[r * n + k]! - f * m[c * n + k]!;
      x[r] = x[r]! - f * x[c]!;
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let s = x[r]!;
    for (let k = r + 1; k < n; k++) s -= m[r * n + k]! * x[k]!;
    x[r] = s / m[r * n + r]!;
  }
  return x;
}
