/**
 * One entry point for every data set: `loadDataset(spec, { dataDir, seed })`. The seed only
 * decides what must be identical on every node of a run (the digits split, synthetic data, which
 * rows a `limit` keeps), so all nodes that load with the run seed see the same data.
 *
 *   const split = await loadDataset({ name: 'fashion-mnist', limit: 6000 }, { seed: 0 });
 */
import { ConfigError } from '../errors.js';
import { CIFAR10_SHAPE, loadCifar10 } from './cifar10.js';
import { DIGITS_SHAPE, loadDigits } from './digits.js';
import { FASHION_MNIST_SHAPE, loadFashionMnist } from './fashion-mnist.js';
import { generateSynthetic, SYNTHETIC_DEFAULTS } from './synthetic.js';
import type { DatasetSpec, DatasetSplit } from './types.js';

export interface LoadOptions {
  /** Data directory; default `FLATMESH_DATA` or `~/.cache/flatmesh`. */
  dataDir?: string;
  /** Run seed; default 0. */
  seed?: number;
}

/**
 * A data set's sample shape and class count, known without loading it: a launcher derives the
 * model layout from it while the data set is still being decoded.
 */
export function datasetShape(spec: DatasetSpec): { shape: number[]; classes: number } {
  switch (spec.name) {
    case 'digits':
      return { shape: [...DIGITS_SHAPE], classes: 10 };
    case 'synthetic':
      return {
        shape: [spec.dim ?? SYNTHETIC_DEFAULTS.dim],
        classes: spec.classes ?? SYNTHETIC_DEFAULTS.classes,
      };
    case 'fashion-mnist':
      return { shape: [...FASHION_MNIST_SHAPE], classes: 10 };
    case 'cifar10':
      return { shape: [...CIFAR10_SHAPE], classes: 10 };
  }
}

export async function loadDataset(
  spec: DatasetSpec,
  opts: LoadOptions = {},
): Promise<DatasetSplit> {
  const seed = opts.seed ?? 0;
  const where = { seed, ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) };
  switch (spec.name) {
    case 'digits':
      return loadDigits({ seed });
    case 'synthetic':
      return generateSynthetic(spec, seed);
    case 'fashion-mnist':
      return loadFashionMnist({
        ...where,
        ...(spec.limit !== undefined ? { limit: spec.limit } : {}),
      });
    case 'cifar10':
      return loadCifar10({ ...where, ...(spec.limit !== undefined ? { limit: spec.limit } : {}) });
    default: {
      const never: never = spec;
      throw new ConfigError(
        'dataset.name',
        "must be 'digits', 'synthetic', 'fashion-mnist' or 'cifar10'",
        (never as { name: unknown }).name,
      );
    }
  }
}

/**
 * Parse a dataset flag: `digits`, `fashion-mnist[:limit]`, `cifar10[:limit]`,
 * `synthetic:<alpha>,<beta>` (e.g. `synthetic:1,1`).
 */
export function parseDatasetSpec(s: string, field = 'dataset'): DatasetSpec {
  const [name = '', arg] = s.trim().toLowerCase().split(':', 2) as [string, string | undefined];
  const bad = () =>
    new ConfigError(
      field,
      "must be 'digits', 'synthetic:<alpha>,<beta>', 'fashion-mnist[:limit]' or 'cifar10[:limit]'",
      s,
    );
  const limit = (): number | undefined => {
    if (arg === undefined) return undefined;
    const v = Number(arg);
    if (!Number.isInteger(v) || v < 1) throw bad();
    return v;
  };
  switch (name) {
    case 'digits':
      if (arg !== undefined) throw bad();
      return { name: 'digits' };
    case 'fashion-mnist':
    case 'cifar10': {
      const l = limit();
      return l === undefined ? { name } : { name, limit: l };
    }
    case 'synthetic': {
      const [a, b] = (arg ?? '0,0').split(',').map(Number);
      if (a === undefined || b === undefined || !(a >= 0) || !(b >= 0)) throw bad();
      return { name: 'synthetic', alpha: a, beta: b };
    }
    default:
      throw bad();
  }
}
