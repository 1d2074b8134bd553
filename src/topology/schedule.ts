/**
 * The per-round topology: a pure function of (seed, round) and the plan, so every node computes the
 * same sampled graph without talking to anyone. Each matching j is switched on with probability
 * p_j by a Bernoulli flag drawn from `Rng.from(seed, 'topology', round)`, in matching order (one
 * draw per matching, always, so a plan with some p_j = 1 keeps the same stream layout).
 *
 *   const rt = roundTopology(plan, seed, 17);     // { round, activeMatchings, edges }
 *   neighboursAt(rt, 3);                          // sorted active neighbours of node 3
 *   mixingMatrix(rt, n, { kind: 'laplacian', alpha: plan.alpha });   // W of this round
 */
import { Rng } from '../compute/rng.js';
import { compareEdges } from './graph.js';
import { edgeWeightMatrix, metropolisMatrix } from './spectral.js';
import type { Edge, MatchaPlan, RoundTopology } from './types.js';

export type MixingRule = { kind: 'laplacian'; alpha: number } | { kind: 'metropolis' };

export function roundTopology(plan: MatchaPlan, seed: number, round: number): RoundTopology {
  const rng = Rng.from(seed, 'topology', round);
  const activeMatchings: number[] = [];
  const edges: Edge[] = [];
  plan.matchings.forEach((m, j) => {
    if (rng.bernoulli(plan.probabilities[j] ?? 0)) {
      activeMatchings.push(j);
      edges.push(...m);
    }
  });
  edges.sort(compareEdges);
  return { round, activeMatchings, edges };
}

/** Active neighbours of `node` in this round, sorted. */
export function neighboursAt(rt: RoundTopology, node: number): number[] {
  const out: number[] = [];
  for (const [a, b] of rt.edges) {
    if (a === node) out.push(b);
    else if (b === node) out.push(a);
  }
  return out.sort((x, y) => x - y);
}

/**
 * The round's mixing matrix (n*n row-major). Laplacian: W = I - alpha L_active (self-weight
 * 1 - alpha deg, which is negative when alpha > 1/deg, as MATCHA's optimum allows). Metropolis:
 * W_ij = 1 / (1 + max(deg_i, deg_j)) on active edges with degrees in the active graph.
 * Both are symmetric with unit row and column sums.
 */
export function mixingMatrix(rt: RoundTopology, n: number, rule: MixingRule): Float64Array {
  switch (rule.kind) {
    case 'laplacian':
      return edgeWeightMatrix(n, rt.edges, () => rule.alpha);
    case 'metropolis':
      return metropolisMatrix(n, rt.edges);
    default: {
      const never: never = rule;
      throw new Error(`unknown mixing rule ${JSON.stringify(never)}`);
    }
  }
}
