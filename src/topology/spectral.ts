/**
 * Spectra of graphs and of gossip mixing schemes: Laplacian eigenvalues, the algebraic
 * connectivity lambda_2, mixing weights (Laplacian with a uniform alpha, Metropolis–Hastings) and
 * the convergence factor rho = ||E[W^T W] - J||_2 of a randomized mixing matrix W = I - alpha L,
 * L = sum_j B_j L_j with B_j ~ Bernoulli(p_j) (the MATCHA paper's rho; smaller is faster mixing).
 *
 *   laplacianEigenvalues(graph);             // ascending, first is 0
 *   const { alpha, rho } = vanillaMixing(graph);   // D-PSGD: all edges, alpha = 2/(l2 + ln)
 *   convergenceFactor(n, matchings, p, alpha);     // rho of the MATCHA scheme
 *
 * For a deterministic W (all p = 1) rho is the squared second-largest |eigenvalue| of W.
 */
import { adjacency, degrees } from './graph.js';
import { symmetricEigenvalues } from './linalg.js';
import type { Edge, Graph } from './types.js';

type Matchings = readonly (readonly Edge[])[];

/** Graph Laplacian D - A (n*n row-major), optionally with one weight per edge. */
export function laplacianMatrix(
  n: number,
  edges: readonly Edge[],
  weights?: readonly number[],
): Float64Array {
  const l = new Float64Array(n * n);
  edges.forEach(([a, b], i) => addEdge(l, n, a, b, weights?.[i] ?? 1));
  return l;
}

function addEdge(l: Float64Array, n: number, a: number, b: number, w: number): void {
  l[a * n + a]! += w;
  l[b * n + b]! += w;
  l[a * n + b]! -= w;
  l[b * n + a]! -= w;
}

export function laplacianEigenvalues(g: Pick<Graph, 'n' | 'edges'>): Float64Array {
  return symmetricEigenvalues(laplacianMatrix(g.n, g.edges), g.n);
}

/** lambda_2 of the Laplacian: > 0 exactly when the graph is connected. */
export function algebraicConnectivity(g: Pick<Graph, 'n' | 'edges'>): number {
  return laplacianEigenvalues(g)[1] ?? 0;
}

/** E[L] = sum_j p_j L_j. */
export function expectedLaplacian(
  n: number,
  matchings: Matchings,
  p: readonly number[],
): Float64Array {
  const l = new Float64Array(n * n);
  matchings.forEach((m, j) => {
    const pj = p[j] ?? 0;
    if (pj !== 0) for (const [a, b] of m) addEdge(l, n, a, b, pj);
  });
  return l;
}

/**
 * E[L^2] = E[L]^2 + 2 Var[L] with Var[L] = sum_j p_j (1 - p_j) L_j: the flags are independent and
 * a matching's Laplacian satisfies L_j^2 = 2 L_j.
 */
export function expectedLaplacianSquare(
  n: number,
  matchings: Matchings,
  p: readonly number[],
  expected = expectedLaplacian(n, matchings, p),
): Float64Array {
  const q = square(expected, n);
  matchings.forEach((m, j) => {
    const pj = p[j] ?? 0;
    const v = 2 * pj * (1 - pj);
    if (v !== 0) for (const [a, b] of m) addEdge(q, n, a, b, v);
  });
  return q;
}

/** E[W^T W] for W = I - alpha L (closed form; tests compare it with a Monte Carlo estimate). */
export function expectedWtW(
  n: number,
  matchings: Matchings,
  p: readonly number[],
  alpha: number,
): Float64Array {
  const el = expectedLaplacian(n, matchings, p);
  const el2 = expectedLaplacianSquare(n, matchings, p, el);
  const out = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) out[i] = -2 * alpha * el[i]! + alpha * alpha * el2[i]!;
  for (let i = 0; i < n; i++) out[i * n + i]! += 1;
  return out;
}

/**
 * rho(alpha) = lambda_max(I - 2 alpha E[L] + alpha^2 E[L^2] - J) from precomputed E[L] and E[L^2].
 * The matrix is PSD on the complement of the all-ones vector and 0 on it, so lambda_max is its norm.
 */
export function rhoFromMoments(
  el: Float64Array,
  el2: Float64Array,
  n: number,
  alpha: number,
): number {
  const m = new Float64Array(n * n);
  const j = 1 / n;
  for (let i = 0; i < n * n; i++) m[i] = -2 * alpha * el[i]! + alpha * alpha * el2[i]! - j;
  for (let i = 0; i < n; i++) m[i * n + i]! += 1;
  const ev = symmetricEigenvalues(m, n);
  return ev[n - 1]!;
}

/** The MATCHA paper's convergence factor rho = ||E[W^T W] - J||_2 of a sampling plan. */
export function convergenceFactor(
  n: number,
  matchings: Matchings,
  p: readonly number[],
  alpha: number,
): number {
  const el = expectedLaplacian(n, matchings, p);
  return rhoFromMoments(el, expectedLaplacianSquare(n, matchings, p, el), n, alpha);
}

/** Vanilla D-PSGD: every edge every round, alpha = 2 / (lambda_2 + lambda_n), and its rho. */
export function vanillaMixing(g: Pick<Graph, 'n' | 'edges'>): { alpha: number; rho: number } {
  const ev = laplacianEigenvalues(g);
  const l2 = ev[1]!;
  const ln = ev[g.n - 1]!;
  const alpha = 2 / (l2 + ln);
  // W = I - alpha L is deterministic: rho = max over i >= 2 of (1 - alpha lambda_i)^2.
  const rho = Math.max((1 - alpha * l2) ** 2, (1 - alpha * ln) ** 2);
  return { alpha, rho };
}

/** Metropolis–Hastings weight of edge i-j: 1 / (1 + max(deg_i, deg_j)). */
export function metropolisHastingsWeight(degI: number, degJ: number): number {
  return 1 / (1 + Math.max(degI, degJ));
}

/**
 * The symmetric mixing matrix (n*n row-major) with weight(a, b, degrees) on each edge and the
 * diagonal making every row sum to 1.
 */
export function edgeWeightMatrix(
  n: number,
  edges: readonly Edge[],
  weight: (a: number, b: number, deg: Int32Array) => number,
): Float64Array {
  const deg = degrees({ n, edges });
  const w = new Float64Array(n * n);
  for (const [a, b] of edges) {
    const x = weight(a, b, deg);
    w[a * n + b] = x;
    w[b * n + a] = x;
  }
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < n; k++) if (k !== i) s += w[i * n + k]!;
    w[i * n + i] = 1 - s;
  }
  return w;
}

/** The Metropolis–Hastings mixing matrix of a graph (symmetric, doubly stochastic, nonnegative). */
export function metropolisMatrix(n: number, edges: readonly Edge[]): Float64Array {
  return edgeWeightMatrix(n, edges, (a, b, deg) => metropolisHastingsWeight(deg[a]!, deg[b]!));
}

/** rho of a fixed mixing matrix W: lambda_max(W^T W - J) = (second largest |eigenvalue|)^2. */
export function fixedMatrixRho(w: Float64Array, n: number): number {
  const m = square(w, n);
  for (let i = 0; i < n * n; i++) m[i]! -= 1 / n;
  return symmetricEigenvalues(m, n)[n - 1]!;
}

export interface SpectralSummary {
  readonly nodes: number;
  readonly edges: number;
  readonly maxDegree: number;
  readonly laplacianEigenvalues: number[];
  readonly lambda2: number;
  readonly lambdaMax: number;
  readonly vanilla: { readonly alpha: number; readonly rho: number };
  readonly metropolis: { readonly rho: number };
}

/** Spectral facts of a base graph: Laplacian spectrum, D-PSGD and Metropolis–Hastings rho. */
export function spectralSummary(g: Pick<Graph, 'n' | 'edges'>): SpectralSummary {
  const ev = laplacianEigenvalues(g);
  const adj = adjacency(g.n, g.edges);
  return {
    nodes: g.n,
    edges: g.edges.length,
    maxDegree: adj.reduce((m, l) => Math.max(m, l.length), 0),
    laplacianEigenvalues: Array.from(ev, (x) => (Math.abs(x) < 1e-12 ? 0 : x)),
    lambda2: ev[1]!,
    lambdaMax: ev[g.n - 1]!,
    vanilla: vanillaMixing(g),
    metropolis: { rho: fixedMatrixRho(metropolisMatrix(g.n, g.edges), g.n) },
  };
}

function square(a: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j]! += aik * a[k * n + j]!;
    }
  }
  return out;
}
