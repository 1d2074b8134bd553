/**
 * learn/flatness/: how flat a model's minimum is, measured on a chosen sample set. Hessian-vector
 * products by double backprop (hessian.ts), the top eigenvalues, trace and spectral density
 * (spectrum.ts), SAM/ASAM sharpness (sharpness.ts), and loss landscapes along filter-normalized
 * directions and linear paths between models (landscape.ts). Pure: no files, no processes.
 *
 *   const set = sampleSet(test, 'test set', { limit: 1000, seed: 1 });
 *   const figures = measureFlatness(model, weights, set, { top: 5, trace: true, seed: 1 });
 */
export { type HessianMethod, HessianOperator, type HessianOptions } from './hessian.js';
export {
  type GridOptions,
  type Landscape1d,
  type Landscape2d,
  type LinearPath,
  landscape1d,
  landscape2d,
  linearPath,
  randomDirection,
} from './landscape.js';
export {
  DEFAULT_TRACE_METHOD,
  type FlatnessFigures,
  type FlatnessOptions,
  measureFlatness,
} from './measure.js';
export { Chunks, type SampleInfo, type SampleSet, sampleInfo, sampleSet } from './samples.js';
export { type SharpnessOptions, type SharpnessResult, sharpness } from './sharpness.js';
export {
  type DensityResult,
  hutchinsonTrace,
  hutchPlusPlusTrace,
  type SymmetricOperator,
  spectralDensity,
  type TopResult,
  type TraceMethod,
  type TraceResult,
  topEigenvalues,
} from './spectrum.js';
