/**
 * MATCHA (Wang et al. 2019): given the base graph's matchings L_1..L_M and a communication budget
 * Cb in (0, 1], choose activation probabilities p maximizing the algebraic connectivity of the
 * expected topology, lambda_2(sum_j p_j L_j), subject to sum_j p_j <= M * Cb and 0 <= p_j <= 1,
 * then the mixing weight alpha minimizing rho = lambda_max(I - 2 alpha E[L] + alpha^2 E[L^2] - J).
 *
 *   const plan = matchaPlan(graph, 0.5);     // { matchings, probabilities, alpha, budget, graph }
 *   const full = vanillaPlan(graph);         // every matching every round, alpha = 2/(l2 + ln)
 *   const s = solveMatcha(graph, 0.5);       // plan + lambda2Expected, rho and the optimality gap
 *
 * The probabilities come from a primal barrier (interior-point) method on the SDP
 *   maximize t  s.t.  sum_j p_j L_j - t I >= 0 on 1^perp,  0 <= p <= 1,  sum p <= M Cb,
 * with Newton steps on the M + 1 variables. It stops on a certificate, not on an iteration count:
 * any Z >= 0 with trace 1 on 1^perp gives lambda_2(L(p)) <= sum_j p_j <Z, L_j> for every p, so the
 * maximum of that linear function over the feasible set (a fractional knapsack) bounds the optimum
 * from above; the barrier's Z = A^-1 / tr(A^-1) makes the bound tight. No randomness anywhere.
 */
import { ConfigError } from '../errors.js';
import {
  cholesky,
  inverseFromCholesky,
  logDetFromCholesky,
  solveDense,
  symmetricEigen,
  symmetricEigenvalues,
} from './linalg.js';
import { graphMatchings } from './matching.js';
import {
  expectedLaplacian,
  expectedLaplacianSquare,
  laplacianEigenvalues,
  rhoFromMoments,
} from './spectral.js';
import type { Edge, Graph, MatchaPlan } from './types.js';

type Matchings = readonly (readonly Edge[])[];

/** Certified tolerance on lambda_2 of E[L]: the returned p is within this of the optimum. */
export const PROBABILITY_GAP_TOLERANCE = 1e-7;

export interface ProbabilityResult {
  readonly probabilities: number[];
  /** lambda_2(sum_j p_j L_j) at the returned p. */
  readonly lambda2: number;
  /** A certified upper bound on the optimum (lambda2 <= optimum <= upperBound). */
  readonly upperBound: number;
  readonly newtonSteps: number;
}

export interface MatchaSolution {
  readonly plan: MatchaPlan;
  readonly lambda2Expected: number;
  readonly upperBound: number;
  readonly rho: number;
  readonly newtonSteps: number;
}

export function checkBudget(budget: number): void {
  if (!Number.isFinite(budget) || budget <= 0 || budget > 1) {
    throw new ConfigError(
      'budget',
      'must be a number in (0, 1] (the fraction of matchings active per round on average)',
      budget,
    );
  }
}

/** The MATCHA plan of `graph` at communication budget Cb = `budget` (alpha optimized always). */
export function matchaPlan(graph: Graph, budget: number): MatchaPlan {
  return solveMatcha(graph, budget).plan;
}

export function solveMatcha(graph: Graph, budget: number): MatchaSolution {
  checkBudget(budget);
  const matchings = graphMatchings(graph);
  const probs = optimizeProbabilities(graph.n, matchings, budget);
  const { alpha, rho } = optimizeAlpha(graph.n, matchings, probs.probabilities);
  return {
    plan: { graph, matchings, probabilities: probs.probabilities, alpha, budget },
    lambda2Expected: probs.lambda2,
    upperBound: probs.upperBound,
    rho,
    newtonSteps: probs.newtonSteps,
  };
}

/** Vanilla D-PSGD as a plan: all matchings always on, alpha = 2 / (lambda_2 + lambda_n). */
export function vanillaPlan(graph: Graph): MatchaPlan {
  const ev = laplacianEigenvalues(graph);
  return {
    graph,
    matchings: graphMatchings(graph),
    probabilities: graphMatchings(graph).map(() => 1),
    alpha: 2 / (ev[1]! + ev[graph.n - 1]!),
    budget: 1,
  };
}

/**
 * rho-optimal alpha for fixed probabilities: rho(alpha) is a maximum of convex quadratics in alpha,
 * hence convex, equals 1 at alpha = 0 and is >= 1 at 2 / lambda_max(E[L]); golden-section search
 * on that bracket. The result is NOT clamped to 1/degree (design.md: the optimum can exceed it).
 */
export function optimizeAlpha(
  n: number,
  matchings: Matchings,
  probabilities: readonly number[],
): { alpha: number; rho: number } {
  const el = expectedLaplacian(n, matchings, probabilities);
  const el2 = expectedLaplacianSquare(n, matchings, probabilities, el);
  const lmax = symmetricEigenvalues(el, n)[n - 1]!;
  if (!(lmax > 0)) return { alpha: 0, rho: 1 };
  const f = (a: number) => rhoFromMoments(el, el2, n, a);
  const g = (Math.sqrt(5) - 1) / 2;
  let lo = 0;
  let hi = 2 / lmax;
  let x1 = hi - g * (hi - lo);
  let x2 = lo + g * (hi - lo);
  let f1 = f(x1);
  let f2 = f(x2);
  while (hi - lo > 1e-11 * (2 / lmax)) {
    if (f1 <= f2) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - g * (hi - lo);
      f1 = f(x1);
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + g * (hi - lo);
      f2 = f(x2);
    }
  }
  const alpha = (lo + hi) / 2;
  return { alpha, rho: f(alpha) };
}

/** Maximizes lambda_2(sum_j p_j L_j) s.t. sum p <= M * budget, 0 <= p <= 1 (see the header). */
export function optimizeProbabilities(
  n: number,
  matchings: Matchings,
  budget: number,
): ProbabilityResult {
  checkBudget(budget);
  const m = matchings.length;
  const total = m * budget;
  if (m === 0) return { probabilities: [], lambda2: 0, upperBound: 0, newtonSteps: 0 };
  if (budget >= 1) {
    // lambda_2 is nondecreasing in every p_j, so with no binding budget every matching is always on.
    const p = matchings.map(() => 1);
    const l2 = lambda2Of(n, matchings, p);
    return { probabilities: p, lambda2: l2, upperBound: l2, newtonSteps: 0 };
  }
  return new BarrierSolver(n, matchings, total).solve();
}

function lambda2Of(n: number, matchings: Matchings, p: readonly number[]): number {
  return symmetricEigenvalues(expectedLaplacian(n, matchings, p), n)[1]!;
}

/** max sum_j g_j p_j over 0 <= p <= 1, sum p <= total: take the largest positive g_j first. */
function knapsackBound(g: readonly number[], total: number): number {
  const order = g.map((_, j) => j).sort((a, b) => g[b]! - g[a]!);
  let left = total;
  let value = 0;
  for (const j of order) {
    if (g[j]! <= 0 || left <= 0) break;
    const take = Math.min(1, left);
    value += take * g[j]!;
    left -= take;
  }
  return value;
}

interface Point {
  readonly x: Float64Array; // p_0..p_{M-1}, t
  readonly chol: Float64Array; // Cholesky factor of B(p, t)
  /** The barrier phi alone; the objective is -s t + phi, compared as differences (see center). */
  readonly phi: number;
}

/**
 * Interior-point solver. A(p, t) = sum p_j L_j - t I restricted to 1^perp is represented by the
 * full-rank B = sum p_j L_j - t I + (t + 1) J / n, which equals A on 1^perp and 1 on the all-ones
 * direction, so log det B = log det A and B^-1 = A^+ + J / n; every edge vector u = e_a - e_b is
 * orthogonal to 1, so u^T B^-1 u = u^T A^+ u.
 */
class BarrierSolver {
  private readonly m: number;
  private readonly ea: Int32Array;
  private readonly eb: Int32Array;
  private readonly ej: Int32Array;
  /** Number of barrier terms: n - 1 eigenvalues, 2 M box sides, 1 budget. */
  private readonly terms: number;
  private steps = 0;

  constructor(
    private readonly n: number,
    private readonly matchings: Matchings,
    private readonly total: number,
  ) {
    this.m = matchings.length;
    const edges = matchings.flatMap((mm, j) => mm.map((e) => [e[0], e[1], j] as const));
    this.ea = Int32Array.from(edges, (e) => e[0]);
    this.eb = Int32Array.from(edges, (e) => e[1]);
    this.ej = Int32Array.from(edges, (e) => e[2]);
    this.terms = n - 1 + 2 * this.m + 1;
  }

  solve(): ProbabilityResult {
    const { m, n } = this;
    const x = new Float64Array(m + 1);
    for (let j = 0; j < m; j++) x[j] = (0.9 * this.total) / m;
    const l2start = lambda2Of(n, this.matchings, Array.from(x.subarray(0, m)));
    x[m] = l2start / 2;
    let s = this.terms / Math.max(l2start, 1e-3);
    let pt = this.evaluate(x);
    if (!pt) throw new Error('internal: MATCHA barrier start point is infeasible');
    let best = { p: Array.from(x.subarray(0, m)), lambda2: -Infinity, upper: Infinity };
    let stalls = 0;
    for (let outer = 0; outer < 30; outer++) {
      const centred = this.center(pt, s);
      pt = centred.point;
      const cert = this.certificate(pt);
      const before = best.upper - best.lambda2;
      if (cert.lambda2 > best.lambda2) best = { ...cert, upper: Math.min(best.upper, cert.upper) };
      else best.upper = Math.min(best.upper, cert.upper);
      const gap = best.upper - best.lambda2;
      if (gap <= PROBABILITY_GAP_TOLERANCE) break;
      // Past some s the Newton systems are too ill-conditioned to make progress: stop with the
      // best certified pair rather than iterate on rounding noise.
      if (!centred.converged || gap > 0.5 * before) stalls++;
      if (stalls >= 2) break;
      s *= 8;
      pt = this.evaluate(pt.x) ?? pt;
    }
    return {
      probabilities: best.p,
      lambda2: best.lambda2,
      upperBound: best.upper,
      newtonSteps: this.steps,
    };
  }

  /** Barrier value at x (with the Cholesky factor of B), or undefined when x is not strictly feasible. */
  private evaluate(x: Float64Array): Point | undefined {
    const { m, n } = this;
    let phi = 0;
    let sum = 0;
    for (let j = 0; j < m; j++) {
      const p = x[j]!;
      if (!(p > 0 && p < 1)) return undefined;
      phi -= Math.log(p) + Math.log(1 - p);
      sum += p;
    }
    const slack = this.total - sum;
    if (!(slack > 0)) return undefined;
    phi -= Math.log(slack);
    const t = x[m]!;
    const b = new Float64Array(n * n);
    const jn = (t + 1) / n;
    for (let i = 0; i < n * n; i++) b[i] = jn;
    for (let i = 0; i < n; i++) b[i * n + i]! -= t;
    for (let e = 0; e < this.ea.length; e++) {
      const a = this.ea[e]!;
      const c = this.eb[e]!;
      const w = x[this.ej[e]!]!;
      b[a * n + a]! += w;
      b[c * n + c]! += w;
      b[a * n + c]! -= w;
      b[c * n + a]! -= w;
    }
    const chol = cholesky(b, n);
    if (!chol) return undefined;
    phi -= logDetFromCholesky(chol, n);
    return { x: Float64Array.from(x), chol, phi };
  }

  /** Damped Newton's method on -s t + phi until the Newton decrement is tiny. */
  private center(start: Point, s: number): { point: Point; converged: boolean } {
    const { m, n, ea, eb, ej } = this;
    const dim = m + 1;
    let pt = start;
    for (let iter = 0; iter < 50; iter++) {
      const { x } = pt;
      const binv = inverseFromCholesky(pt.chol, n);
      const grad = new Float64Array(dim);
      const hess = new Float64Array(dim * dim);
      const nE = ea.length;
      // Per-edge u^T A^+ u and ||A^+ u||^2.
      let sumP = 0;
      for (let j = 0; j < m; j++) sumP += x[j]!;
      const slack = this.total - sumP;
      for (let e = 0; e < nE; e++) {
        const a = ea[e]!;
        const c = eb[e]!;
        const j = ej[e]!;
        grad[j]! -= binv[a * n + a]! + binv[c * n + c]! - 2 * binv[a * n + c]!;
        let sq = 0;
        for (let i = 0; i < n; i++) {
          const d = binv[i * n + a]! - binv[i * n + c]!;
          sq += d * d;
        }
        hess[j * dim + m]! -= sq;
        hess[m * dim + j]! -= sq;
        for (let f = e; f < nE; f++) {
          const a2 = ea[f]!;
          const c2 = eb[f]!;
          const g = binv[a * n + a2]! - binv[a * n + c2]! - binv[c * n + a2]! + binv[c * n + c2]!;
          const k = ej[f]!;
          const g2 = g * g;
          hess[j * dim + k]! += g2;
          if (f !== e) hess[k * dim + j]! += g2;
        }
      }
      let tr = 0;
      let fro = 0;
      for (let i = 0; i < n; i++) tr += binv[i * n + i]!;
      for (let i = 0; i < n * n; i++) fro += binv[i]! * binv[i]!;
      grad[m] = -s + (tr - 1);
      hess[m * dim + m]! += fro - 1;
      for (let j = 0; j < m; j++) {
        const p = x[j]!;
        grad[j]! += -1 / p + 1 / (1 - p) + 1 / slack;
        hess[j * dim + j]! += 1 / (p * p) + 1 / ((1 - p) * (1 - p));
        for (let k = 0; k < m; k++) hess[j * dim + k]! += 1 / (slack * slack);
      }
      const neg = grad.map((g) => -g);
      const step = solveDense(hess, neg, dim);
      let dec = 0;
      for (let i = 0; i < dim; i++) dec -= grad[i]! * step[i]!;
      this.steps++;
      if (!(dec > 0) || dec / 2 < 1e-7) return { point: pt, converged: true };
      // Backtracking: stay strictly feasible, then require sufficient decrease.
      let h = 1;
      let next: Point | undefined;
      for (let k = 0; k < 60; k++, h *= 0.5) {
        const y = new Float64Array(dim);
        for (let i = 0; i < dim; i++) y[i] = x[i]! + h * step[i]!;
        next = this.evaluate(y);
        // The change of -s t + phi, formed from differences: -s t alone is huge at large s and
        // subtracting two such values would drown the decrease in rounding noise.
        if (next && -s * (y[m]! - x[m]!) + (next.phi - pt.phi) <= -0.25 * h * dec) break;
        next = undefined;
      }
      // No decrease found: at large s rounding noise sets a floor on the decrement; a point that
      // close to the centre is as good as centred (its objective is within dec / 2 of it).
      if (!next) return { point: pt, converged: dec < 1e-4 };
      pt = next;
    }
    return { point: pt, converged: false };
  }

  /**
   * Lower bound: lambda_2 at the point's p (tidied). Upper bound: the knapsack bound of
   * Z = sum_i c_i v_i v_i^T / sum_i c_i over the eigenvectors v_2..v_k of L(p), with the barrier's
   * weights c_i = 1 / (lambda_i - t); k = n - 1 is the barrier's own dual A^+ / tr(A^+), and
   * smaller k drop the far eigenvalues whose complementarity slack would loosen the bound. The
   * minimum over k is taken; every k gives a valid bound.
   */
  private certificate(pt: Point): { p: number[]; lambda2: number; upper: number } {
    const { m, n, ea, eb, ej } = this;
    const raw = Array.from(pt.x.subarray(0, m));
    const t = pt.x[m]!;
    const { values, vectors } = symmetricEigen(expectedLaplacian(n, this.matchings, raw), n);
    // The barrier's own dual A^+ / tr(A^+), computed from B^-1: the smoothest of the bounds.
    const binv = inverseFromCholesky(pt.chol, n);
    let tr = -1;
    for (let i = 0; i < n; i++) tr += binv[i * n + i]!;
    const gInv = new Array<number>(m).fill(0);
    for (let e = 0; e < ea.length; e++) {
      const a = ea[e]!;
      const c = eb[e]!;
      gInv[ej[e]!]! += (binv[a * n + a]! + binv[c * n + c]! - 2 * binv[a * n + c]!) / tr;
    }
    let upper = knapsackBound(gInv, this.total);
    const g = new Float64Array(m);
    let csum = 0;
    for (let i = 1; i < n; i++) {
      const gap = values[i]! - t;
      if (!(gap > 0)) continue;
      const v = vectors.subarray(i * n, (i + 1) * n);
      // Project onto 1^perp (a repeated zero eigenvalue may mix in the all-ones direction).
      let mean = 0;
      for (let k = 0; k < n; k++) mean += v[k]!;
      mean /= n;
      let norm2 = 0;
      for (let k = 0; k < n; k++) norm2 += (v[k]! - mean) ** 2;
      if (!(norm2 > 1e-12)) continue;
      const c = 1 / gap;
      csum += c;
      for (let e = 0; e < ea.length; e++) {
        const d = v[ea[e]!]! - v[eb[e]!]!;
        g[ej[e]!]! += (c * d * d) / norm2;
      }
      upper = Math.min(
        upper,
        knapsackBound(
          Array.from(g, (x) => x / csum),
          this.total,
        ),
      );
    }
    // Tidy the barrier's interior point: p_j that are numerically 0 become exactly 0 when that
    // costs nothing measurable, then p is scaled up onto the budget (or the box); lambda_2 is
    // nondecreasing in every p_j, so the scaling never lowers it.
    const snapped = raw.map((v) => (v < 1e-6 ? 0 : v));
    const rawL2 = lambda2Of(n, this.matchings, fill(raw, this.total));
    const snapL2 = lambda2Of(n, this.matchings, fill(snapped, this.total));
    const useSnapped = snapL2 >= rawL2 - 1e-10;
    return {
      p: fill(useSnapped ? snapped : raw, this.total),
      lambda2: useSnapped ? snapL2 : rawL2,
      upper,
    };
  }
}

/** p scaled by the largest factor that keeps sum p <= total and every p_j <= 1. */
function fill(p: readonly number[], total: number): number[] {
  const sum = p.reduce((a, b) => a + b, 0);
  const max = p.reduce((a, b) => Math.max(a, b), 0);
  if (!(sum > 0)) return [...p];
  const f = Math.min(total / sum, 1 / max);
  return p.map((v) => Math.min(1, v * f));
}
