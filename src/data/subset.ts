/**
 * Row selection on a `Dataset`: a node's shard, a capped training set, a stratified split.
 * Always copies, so the result never aliases the source's buffers.
 *
 *   const shard = subset(split.train, partition[nodeIndex]!);
 */
import { Rng } from '../compute/rng.js';
import { ConfigError } from '../errors.js';
import { pixelDataset, pixelsOf } from './pixels.js';
import type { Dataset } from './types.js';

/** Size of one sample in values (product of the shape). */
export function sampleSize(ds: Pick<Dataset, 'shape'>): number {
  return ds.shape.reduce((a, b) => a * b, 1);
}

/** The rows `indices` of `ds`, in that order (an index may repeat). */
export function subset(ds: Dataset, indices: Int32Array): Dataset {
  const d = sampleSize(ds);
  const pixels = pixelsOf(ds);
  // Pixel data sets stay bytes (see pixels.ts): their float features need not exist here.
  const rows = pixels ?? ds.x;
  const x = pixels ? new Uint8Array(indices.length * d) : new Float32Array(indices.length * d);
  const y = new Int32Array(indices.length);
  const groups = ds.groups ? new Int32Array(indices.length) : undefined;
  for (let r = 0; r < indices.length; r++) {
    const i = indices[r]!;
    if (!(i >= 0 && i < ds.count)) {
      throw new RangeError(`subset: index ${i} at position ${r} is outside [0, ${ds.count})`);
    }
    x.set(rows.subarray(i * d, (i + 1) * d), r * d);
    y[r] = ds.y[i]!;
    if (groups) groups[r] = ds.groups![i]!;
  }
  const rest = {
    y,
    count: indices.length,
    shape: [...ds.shape],
    classes: ds.classes,
    ...(groups ? { groups } : {}),
  };
  return x instanceof Uint8Array ? pixelDataset(x, rest) : { x, ...rest };
}

/**
 * Which rows a `limit` keeps: the first `limit` of a seeded permutation of `count`, returned in
 * ascending order (a random subset that keeps the source order). Same seed, same rows, on every
 * node. `undefined` limit, or one >= count, keeps everything.
 */
export function limitIndices(
  count: number,
  limit: number | undefined,
  seed: number,
  field = 'limit',
): Int32Array {
  if (limit === undefined || limit >= count) return Int32Array.from({ length: count }, (_, i) => i);
  if (!Number.isInteger(limit) || limit < 1) {
    throw new ConfigError(field, `must be a positive integer (at most ${count})`, limit);
  }
  const perm = Rng.from(seed, 'limit').permutation(count);
  return perm.slice(0, limit).sort();
}

/**
 * A seeded split that keeps class proportions: per class, a shuffled `testFraction` of its rows
 * (rounded) goes to test. Returns ascending row indices for train and test.
 */
export function stratifiedSplit(
  labels: Int32Array,
  classes: number,
  testFraction: number,
  rng: Rng,
): { train: Int32Array; test: Int32Array } {
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]!]!.push(i);
  const train: number[] = [];
  const test: number[] = [];
  for (const rows of byClass) {
    rng.shuffle(rows);
    const nTest = Math.round(rows.length * testFraction);
    test.push(...rows.slice(0, nTest));
    train.push(...rows.slice(nTest));
  }
  return {
    train: Int32Array.from(train).sort(),
    test: Int32Array.from(test).sort(),
  };
}

/** Count of each label in `labels` (length `classes`). */
export function classHistogram(labels: ArrayLike<number>, classes: number): number[] {
  const h = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    h[c] = (h[c] ?? 0) + 1;
  }
  return h;
}
