/**
 * Spectral figures of a Hessian given by its products (PyHessian's set, Yao et al. 2020):
 *
 * - `topEigenvalues`: the k largest eigenvalues by Lanczos with full reorthogonalization, grown
 *   until each of the k Ritz pairs has a residual |β·s_last| ≤ tol·|θ|, and λmax/λk;
 * - `hutchinsonTrace`: tr(H) ≈ mean of zᵀHz over Rademacher z, with its standard error, stopping
 *   early once the standard error is below `tol`·|mean|;
 * - `hutchPlusPlusTrace`: Hutch++ (Meyer, Musco, Musco, Woodruff 2021): a third of the products
 *   sketch the top of the spectrum (Q = orth(H·S)), a third take its trace exactly (tr(QᵀHQ)), the
 *   rest run Hutchinson on what Q leaves out, (I - QQᵀ)H(I - QQᵀ); far less variance per product
 *   when a few eigenvalues dominate, as in a trained net's Hessian;
 * - `spectralDensity`: stochastic Lanczos quadrature, Gaussian-smoothed on a grid.
 *
 * All draws come from `Rng.from(seed, purpose)`: the same seed gives the same figures.
 *
 *   const top = topEigenvalues(H, { k: 5, seed: 1 });   // { values: [...], converged, ratio, ... }
 *   const tr = hutchinsonTrace(H, { probes: 200, seed: 1 });
 */
import { Rng } from '../../compute/rng.js';
import { ConfigError } from '../../errors.js';
import { extend, lanczos, tridiagonalEigen } from './lanczos.js';
import { axpy, dot, norm } from './vec.js';

/** What the spectral functions need from a Hessian operator. */
export interface SymmetricOperator {
  readonly dim: number;
  hvp(v: Float32Array): Float32Array;
}

export type Progress = (done: number, total: number) => void;

export interface TopOptions {
  k: number;
  /** Relative residual each of the k Ritz values must reach. Default 1e-3. */
  tol?: number;
  /** Most Lanczos steps (products). Default max(4k + 20, 60), capped by the dimension. */
  maxSteps?: number;
  seed?: number;
  progress?: Progress;
}

export interface TopResult {
  /** The k largest eigenvalues, descending. */
  values: number[];
  /** Relative residual bound of each. */
  residuals: number[];
  converged: boolean;
  /** λmax / λk (the paper's λmax/λ5 when k = 5); NaN for k = 1. */
  ratio: number;
  /** Products used. */
  products: number;
  tol: number;
}

export function topEigenvalues(H: SymmetricOperator, opts: TopOptions): TopResult {
  const { k } = opts;
  if (!Number.isInteger(k) || k < 1 || k > H.dim) {
    throw new ConfigError('flatness.top', `must be an integer between 1 and ${H.dim}`, k);
  }
  const tol = opts.tol ?? 1e-3;
  const maxSteps = Math.min(H.dim, opts.maxSteps ?? Math.max(4 * k + 20, 60));
  const rng = Rng.from(opts.seed ?? 0, 'flatness-top');
  const start = Float32Array.from({ length: H.dim }, () => rng.normal());
  const apply = (v: Float32Array) => H.hvp(v);
  const first = Math.min(maxSteps, 2 * k + 8);
  const onStep = opts.progress && ((s: number) => opts.progress!(s, maxSteps));
  const run = lanczos(apply, { steps: first, start, ...(onStep && { onStep }) });
  for (;;) {
    const m = run.alpha.length;
    const { values, vectors } = tridiagonalEigen(run.alpha, run.beta.slice(0, m - 1));
    const last = run.beta.length >= m ? run.beta[m - 1]! : 0; // 0: invariant subspace, exact
    const top = Math.min(k, m);
    const vals: number[] = [];
    const res: number[] = [];
    for (let j = 0; j < top; j++) {
      const idx = m - 1 - j;
      const theta = values[idx]!;
      vals.push(theta);
      res.push(Math.abs(last * vectors[idx]![m - 1]!) / Math.max(Math.abs(theta), 1e-30));
    }
    const converged = top === k && res.every((r) => r <= tol);
    const finished = run.alpha.length < run.basis.length === false && last === 0;
    if (converged || m >= maxSteps || finished) {
      return {
        values: vals,
        residuals: res,
        converged,
        ratio: k > 1 && vals.length === k ? vals[0]! / vals[k - 1]! : Number.NaN,
        products: m,
        tol,
      };
    }
    extend(apply, run, Math.min(10, maxSteps - m), onStep);
    if (run.alpha.length === m) {
      // No step was possible (invariant subspace found): what we have is exact.
      return {
        values: vals,
        residuals: res.map(() => 0),
        converged: top === k,
        ratio: k > 1 && vals.length === k ? vals[0]! / vals[k - 1]! : Number.NaN,
        products: m,
        tol,
      };
    }
  }
}

export interface TraceOptions {
  /** Most probes. Default 100. */
  probes?: number;
  /** Stop once stderr ≤ tol·|mean| (after at least 10 probes). Default 0: run all probes. */
  tol?: number;
  seed?: number;
  progress?: Progress;
}

export interface TraceResult {
  /** `hutchinson` or `hutch++`. */
  method: TraceMethod;
  estimate: number;
  /** Standard error of the estimate (sample std / √probes). */
  stderr: number;
  probes: number;
}

export function hutchinsonTrace(H: SymmetricOperator, opts: TraceOptions = {}): TraceResult {
  const probes = opts.probes ?? 100;
  if (!Number.isInteger(probes) || probes < 2) {
    throw new ConfigError('flatness.probes', 'must be an integer >= 2', probes);
  }
  const rng = Rng.from(opts.seed ?? 0, 'flatness-trace');
  const z = new Float32Array(H.dim);
  let mean = 0;
  let m2 = 0;
  let n = 0;
  while (n < probes) {
    for (let i = 0; i < z.length; i++) z[i] = rng.bernoulli(0.5) ? 1 : -1;
    const hz = H.hvp(z);
    let q = 0;
    for (let i = 0; i < z.length; i++) q += z[i]! * hz[i]!;
    // Welford: a numerically stable running mean and variance.
    n++;
    const d = q - mean;
    mean += d / n;
    m2 += d * (q - mean);
    opts.progress?.(n, probes);
    const stderr = n > 1 ? Math.sqrt(m2 / (n - 1) / n) : Number.POSITIVE_INFINITY;
    if (opts.tol && n >= 10 && stderr <= opts.tol * Math.abs(mean)) break;
  }
  return { method: 'hutchinson', estimate: mean, stderr: Math.sqrt(m2 / (n - 1) / n), probes: n };
}

export type TraceMethod = 'hutchinson' | 'hutch++';

/**
 * Hutch++ with `probes` products in all: k = ⌊probes/3⌋ sketch products H·s (Rademacher s),
 * orthonormalized (twice) into Q; k products for tr(QᵀHQ), exact; probes - 2k Rademacher probes
 * g' = (I - QQᵀ)g of the rest. The standard error is that of the residual part (the sketch's part
 * has no sampling error once Q is drawn). `tol` does not apply: the split is fixed in advance.
 */
export function hutchPlusPlusTrace(H: SymmetricOperator, opts: TraceOptions = {}): TraceResult {
  const probes = opts.probes ?? 100;
  if (!Number.isInteger(probes) || probes < 4) {
    throw new ConfigError('flatness.probes', 'must be an integer >= 4 with hutch++', probes);
  }
  const k = Math.floor(probes / 3);
  const rng = Rng.from(opts.seed ?? 0, 'flatness-trace-hutch++');
  const rademacher = () => {
    const z = new Float32Array(H.dim);
    for (let i = 0; i < z.length; i++) z[i] = rng.bernoulli(0.5) ? 1 : -1;
    return z;
  };
  let done = 0;
  const step = () => opts.progress?.(++done, probes);
  // The sketch: an orthonormal basis of the range of H·S.
  const Q: Float32Array[] = [];
  for (let j = 0; j < k; j++) {
    const y = Float64Array.from(H.hvp(rademacher()));
    step();
    const n0 = norm(y);
    for (let pass = 0; pass < 2; pass++) for (const q of Q) axpy(y, -dot(y, q), q);
    const n = norm(y);
    if (n > 1e-8 * n0) Q.push(Float32Array.from(y, (v) => v / n));
  }
  let exact = 0;
  for (const q of Q) {
    exact += dot(q, H.hvp(q));
    step();
  }
  // Products the sketch could not use (a rank-deficient H·S) still count against the budget.
  done += k - Q.length;
  let mean = 0;
  let m2 = 0;
  let n = 0;
  for (let j = 0; j < probes - 2 * k; j++) {
    const g = Float64Array.from(rademacher());
    for (const q of Q) axpy(g, -dot(g, q), q);
    const g32 = Float32Array.from(g);
    const v = dot(g32, H.hvp(g32));
    step();
    n++;
    const d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
  }
  return {
    method: 'hutch++',
    estimate: exact + mean,
    stderr: n > 1 ? Math.sqrt(m2 / (n - 1) / n) : Number.NaN,
    probes,
  };
}

export interface DensityOptions {
  /** Independent Lanczos runs. Default 3. */
  runs?: number;
  /** Lanczos steps per run. Default 40. */
  steps?: number;
  /** Grid points. Default 200. */
  points?: number;
  /** Gaussian kernel width as a fraction of the spectrum's range. Default 0.01. */
  sigma?: number;
  seed?: number;
  progress?: Progress;
}

export interface DensityResult {
  /** Quadrature nodes (Ritz values) and weights of every run, weights of a run summing to 1/runs. */
  nodes: number[];
  weights: number[];
  /** The smoothed density on a grid: density[i] at grid[i]; integrates to about 1. */
  grid: number[];
  density: number[];
  sigma: number;
  runs: number;
  steps: number;
}

/**
 * Stochastic Lanczos quadrature: for a Rademacher start v (unit), the Ritz values θ_j of m
 * Lanczos steps and the squared first components τ_j² of T's eigenvectors give vᵀf(H)v ≈ Σ τ_j²
 * f(θ_j); averaged over runs, Σ τ_j² δ(t - θ_j) estimates the spectral density (1/n) Σ δ(t - λ_i).
 */
export function spectralDensity(H: SymmetricOperator, opts: DensityOptions = {}): DensityResult {
  const runs = opts.runs ?? 3;
  const steps = Math.min(H.dim, opts.steps ?? 40);
  const points = opts.points ?? 200;
  const rng = Rng.from(opts.seed ?? 0, 'flatness-density');
  const nodes: number[] = [];
  const weights: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = Float32Array.from({ length: H.dim }, () => (rng.bernoulli(0.5) ? 1 : -1));
    const onStep = opts.progress && ((s: number) => opts.progress!(r * steps + s, runs * steps));
    const run = lanczos((v) => H.hvp(v), { steps, start, ...(onStep && { onStep }) });
    const m = run.alpha.length;
    const { values, vectors } = tridiagonalEigen(run.alpha, run.beta.slice(0, m - 1));
    values.forEach((t, j) => {
      nodes.push(t);
      weights.push(vectors[j]![0]! ** 2 / runs);
    });
  }
  const lo = Math.min(...nodes);
  const hi = Math.max(...nodes);
  const span = Math.max(hi - lo, 1e-12);
  const sigma = (opts.sigma ?? 0.01) * span;
  const pad = 5 * sigma;
  const grid = Array.from(
    { length: points },
    (_, i) => lo - pad + ((hi - lo + 2 * pad) * i) / (points - 1),
  );
  const c = 1 / (sigma * Math.sqrt(2 * Math.PI));
  const density = grid.map((t) =>
    nodes.reduce(
      (s, th, j) => s + weights[j]! * c * Math.exp(-((t - th) ** 2) / (2 * sigma * sigma)),
      0,
    ),
  );
  return { nodes, weights, grid, density, sigma, runs, steps };
}
