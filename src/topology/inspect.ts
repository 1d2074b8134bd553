/**
 * What `flatmesh topology inspect` shows: the base graph, its spectrum, vanilla D-PSGD's mixing
 * (all edges every round) and MATCHA's plan at a budget, with the expected communication per round.
 *
 *   const r = inspectTopology(loadTopologyFile('topologies/matcha-er-8.json'), { budget: 0.5 });
 *   r.matcha.lambda2Expected;   // 0.5612...
 *   formatInspect(r);           // the human-readable table
 */
import { solveMatcha } from './matcha.js';
import { spectralSummary } from './spectral.js';
import type { Edge, Graph } from './types.js';

/** Budget used when none is given. */
export const DEFAULT_BUDGET = 0.5;

export interface InspectResult {
  readonly nodes: number;
  readonly edges: number;
  readonly maxDegree: number;
  /** Number of matchings. */
  readonly matchings: number;
  readonly matchingsSource: 'file' | 'computed';
  readonly decomposition: Edge[][];
  readonly lambda2: number;
  readonly lambdaMax: number;
  readonly laplacianEigenvalues: number[];
  readonly vanilla: {
    readonly alpha: number;
    readonly rho: number;
    readonly edgesPerRound: number;
    readonly messagesPerRound: number;
  };
  readonly metropolis: { readonly rho: number };
  readonly matcha: {
    readonly budget: number;
    readonly probabilities: number[];
    readonly lambda2Expected: number;
    /** Certified upper bound on the optimal lambda_2 (the optimization's gap is the difference). */
    readonly lambda2UpperBound: number;
    readonly alpha: number;
    readonly rho: number;
    readonly expectedEdgesPerRound: number;
    /** Two messages per active edge (one each way). */
    readonly expectedMessagesPerRound: number;
    /** expectedEdgesPerRound / vanilla edgesPerRound. */
    readonly communicationRatio: number;
  };
}

export function inspectTopology(graph: Graph, opts: { budget?: number } = {}): InspectResult {
  const budget = opts.budget ?? DEFAULT_BUDGET;
  const spec = spectralSummary(graph);
  const sol = solveMatcha(graph, budget);
  const { plan } = sol;
  const expectedEdges = plan.matchings.reduce(
    (s, m, j) => s + m.length * plan.probabilities[j]!,
    0,
  );
  return {
    nodes: graph.n,
    edges: graph.edges.length,
    maxDegree: spec.maxDegree,
    matchings: plan.matchings.length,
    matchingsSource: graph.matchings ? 'file' : 'computed',
    decomposition: plan.matchings.map((m) => m.map((e) => [e[0], e[1]] as const)),
    lambda2: spec.lambda2,
    lambdaMax: spec.lambdaMax,
    laplacianEigenvalues: spec.laplacianEigenvalues,
    vanilla: {
      alpha: spec.vanilla.alpha,
      rho: spec.vanilla.rho,
      edgesPerRound: graph.edges.length,
      messagesPerRound: 2 * graph.edges.length,
    },
    metropolis: spec.metropolis,
    matcha: {
      budget,
      probabilities: [...plan.probabilities],
      lambda2Expected: sol.lambda2Expected,
      lambda2UpperBound: sol.upperBound,
      alpha: plan.alpha,
      rho: sol.rho,
      expectedEdgesPerRound: expectedEdges,
      expectedMessagesPerRound: 2 * expectedEdges,
      communicationRatio: expectedEdges / graph.edges.length,
    },
  };
}

/** A plain-text report of an inspect result. */
export function formatInspect(r: InspectResult, title?: string): string {
  const f = (x: number, d = 6) => x.toFixed(d);
  const lines: string[] = [];
  if (title) lines.push(title);
  lines.push(
    `nodes ${r.nodes}   edges ${r.edges}   max degree ${r.maxDegree}   matchings ${r.matchings} (${r.matchingsSource})`,
    `lambda_2 ${f(r.lambda2)}   lambda_max ${f(r.lambdaMax)}`,
    '',
    'vanilla D-PSGD (all edges every round)',
    `  alpha ${f(r.vanilla.alpha)}   rho ${f(r.vanilla.rho)}   messages/round ${r.vanilla.messagesPerRound}`,
    `Metropolis-Hastings (all edges)   rho ${f(r.metropolis.rho)}`,
    '',
    `MATCHA at budget Cb = ${r.matcha.budget}`,
    '  matching  edges  probability',
  );
  r.decomposition.forEach((m, j) => {
    lines.push(
      `  ${String(j).padStart(8)}  ${String(m.length).padStart(5)}  ${f(r.matcha.probabilities[j]!)}`,
    );
  });
  const m = r.matcha;
  lines.push(
    `  lambda_2 of E[L] ${f(m.lambda2Expected)} (optimum <= ${f(m.lambda2UpperBound, 8)})`,
    `  alpha ${f(m.alpha)}   rho ${f(m.rho)}`,
    `  expected messages/round ${m.expectedMessagesPerRound.toFixed(2)} vs ${r.vanilla.messagesPerRound} (${(100 * m.communicationRatio).toFixed(1)}%)`,
  );
  return `${lines.join('\n')}\n`;
}
