/**
 * Graph and MATCHA types shared by the topology module and its users (node runtime, CLI).
 */

/** An undirected edge with u < v. */
export type Edge = readonly [number, number];

export interface Graph {
  readonly n: number;
  /** Undirected edges, each once, normalized with u < v, sorted. */
  readonly edges: readonly Edge[];
  /** Explicit matchings (edge-disjoint, vertex-disjoint within each), if the file gave them. */
  readonly matchings?: readonly (readonly Edge[])[];
  readonly names?: readonly string[];
  readonly positions?: readonly (readonly [number, number])[];
}

/** The MATCHA sampling plan of a graph at a communication budget. */
export interface MatchaPlan {
  readonly graph: Graph;
  readonly matchings: readonly (readonly Edge[])[];
  /** Activation probability of each matching. */
  readonly probabilities: readonly number[];
  /** Mixing weight: x_i <- x_i + alpha * sum_j (x_j - x_i). */
  readonly alpha: number;
  readonly budget: number;
}

/** The sampled topology of one round: identical on every node for the same seed and round. */
export interface RoundTopology {
  readonly round: number;
  readonly activeMatchings: readonly number[];
  readonly edges: readonly Edge[];
}
