/**
 * topology/: base graphs (file format, generators), spectra, MATCHA's matching decomposition and
 * probability/alpha optimization, and the per-round schedule every node evaluates identically.
 *
 *   import { loadTopologyFile, matchaPlan, roundTopology, neighboursAt } from '../topology/index.js';
 *   const plan = matchaPlan(loadTopologyFile('topologies/ring-16.json'), 0.5);
 *   const rt = roundTopology(plan, runSeed, round);
 *   for (const j of neighboursAt(rt, myIndex)) send(j);
 */
export { drawTopologySvg, matchingColour } from './draw.js';
export {
  loadTopologyFile,
  parseTopology,
  serializeTopology,
  type TopologyFile,
  type TopologyMeta,
  topologyFileSchema,
  topologyJsonSchema,
} from './format.js';
export {
  canonicalKind,
  type GeneratorParams,
  generateTopology,
  TOPOLOGY_KINDS,
  type TopologyKind,
} from './generators.js';
export { adjacency, checkMatchings, degrees, isConnected, makeGraph, maxDegree } from './graph.js';
export { DEFAULT_BUDGET, formatInspect, type InspectResult, inspectTopology } from './inspect.js';
export { cholesky, symmetricEigen, symmetricEigenvalues } from './linalg.js';
export {
  type MatchaSolution,
  matchaPlan,
  optimizeAlpha,
  optimizeProbabilities,
  PROBABILITY_GAP_TOLERANCE,
  type ProbabilityResult,
  solveMatcha,
  vanillaPlan,
} from './matcha.js';
export { decomposeMatchings, graphMatchings, isBipartite } from './matching.js';
export { type MixingRule, mixingMatrix, neighboursAt, roundTopology } from './schedule.js';
export {
  algebraicConnectivity,
  convergenceFactor,
  edgeWeightMatrix,
  expectedLaplacian,
  expectedLaplacianSquare,
  expectedWtW,
  fixedMatrixRho,
  laplacianEigenvalues,
  laplacianMatrix,
  metropolisHastingsWeight,
  metropolisMatrix,
  type SpectralSummary,
  spectralSummary,
  vanillaMixing,
} from './spectral.js';
export type { Edge, Graph, MatchaPlan, RoundTopology } from './types.js';
