/** Experiment configuration: schema, loading with overrides, validation with paths. */

export type { LoadOptions } from './load.js';
export { formatPath, loadExperiment, parseExperiment, readExperimentFile } from './load.js';
export {
  type Experiment,
  type ExperimentInput,
  experimentSchema,
  type FaultsConfig,
  MAX_NODES,
} from './schema.js';
