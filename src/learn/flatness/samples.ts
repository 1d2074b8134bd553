/**
 * The sample set a flatness figure is measured on, split into chunks for the chunked loss,
 * gradient and Hessian passes. Every figure carries `source` (e.g. "test set", "shard 3", "union
 * of shards") and the count, so a number is never separated from the data behind it.
 *
 *   const set = sampleSet(test, 'test set', { limit: 1000, seed: 7 });   // seeded subset
 *   const chunks = new Chunks(set, 256);
 *   chunks.forEach((x, y, count) => ...);   // x, y tensors valid only inside the callback
 *   chunks.dispose();
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../compute/rng.js';
import type { Dataset } from '../../data/types.js';
import { ConfigError } from '../../errors.js';
import { oneHot } from '../loss.js';

export interface SampleSet {
  readonly data: Dataset;
  /** What the samples are: "test set", "shard 3", "union of shards", ... */
  readonly source: string;
  /** Seed of the subset draw, when the set is a seeded subset of `source`. */
  readonly seed?: number;
}

/** What a figure reports about its samples. */
export interface SampleInfo {
  source: string;
  count: number;
  seed?: number;
}

export function sampleInfo(s: SampleSet): SampleInfo {
  return {
    source: s.source,
    count: s.data.count,
    ...(s.seed !== undefined && { seed: s.seed }),
  };
}

/**
 * `data` itself, or a seeded subset of `limit` samples (drawn without replacement, kept in their
 * original order so the subset of a larger limit contains the smaller one's draw order-free).
 */
export function sampleSet(
  data: Dataset,
  source: string,
  opts: { limit?: number; seed?: number } = {},
): SampleSet {
  const limit = opts.limit ?? 0;
  if (!Number.isInteger(limit) || limit < 0) {
    throw new ConfigError('flatness.samples', 'must be an integer >= 0 (0 = all)', limit);
  }
  if (data.count === 0) throw new ConfigError('flatness.samples', `${source} is empty`, 0);
  if (limit === 0 || limit >= data.count) return { data, source };
  const seed = opts.seed ?? 0;
  const rng = Rng.from(seed, 'flatness-samples');
  const order = Int32Array.from({ length: data.count }, (_, i) => i);
  for (let i = 0; i < limit; i++) {
    const j = i + rng.int(data.count - i);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  const picked = order.subarray(0, limit).sort();
  const f = data.shape.reduce((a, d) => a * d, 1);
  const x = new Float32Array(limit * f);
  const y = new Int32Array(limit);
  picked.forEach((idx, k) => {
    x.set(data.x.subarray(idx * f, (idx + 1) * f), k * f);
    y[k] = data.y[idx]!;
  });
  return {
    data: { x, y, count: limit, shape: data.shape, classes: data.classes },
    source,
    seed,
  };
}

/** Bytes of chunk tensors kept resident between passes; larger sets are re-uploaded each pass. */
const RESIDENT_BYTES = 64 * 2 ** 20;

/**
 * The sample set as chunks of at most `size` samples. Small sets keep their chunk tensors between
 * passes (each Hessian-vector product is one pass); larger ones build each chunk when it is used,
 * so memory stays bounded by one chunk whatever the set size.
 */
export class Chunks {
  readonly count: number;
  private readonly resident: [tf.Tensor, tf.Tensor2D][] | undefined;
  private readonly features: number;

  constructor(
    private readonly set: SampleSet,
    readonly size: number,
    private readonly classes: number,
  ) {
    if (!Number.isInteger(size) || size < 1) {
      throw new ConfigError('flatness.chunk', 'must be an integer >= 1', size);
    }
    this.count = set.data.count;
    this.features = set.data.shape.reduce((a, d) => a * d, 1);
    const bytes = this.count * (this.features + classes) * 4;
    if (bytes <= RESIDENT_BYTES) {
      this.resident = [];
      for (let s = 0; s < this.count; s += size) this.resident.push(this.build(s));
    }
  }

  /** Calls `f` for each chunk; the tensors are disposed (or kept resident) afterwards. */
  forEach(f: (x: tf.Tensor, y: tf.Tensor2D, count: number) => void): void {
    for (let s = 0, k = 0; s < this.count; s += this.size, k++) {
      const n = Math.min(this.size, this.count - s);
      const cached = this.resident?.[k];
      const [x, y] = cached ?? this.build(s);
      try {
        f(x, y, n);
      } finally {
        if (!cached) tf.dispose([x, y]);
      }
    }
  }

  dispose(): void {
    if (this.resident) for (const t of this.resident) tf.dispose(t);
  }

  private build(start: number): [tf.Tensor, tf.Tensor2D] {
    const n = Math.min(this.size, this.count - start);
    const { data } = this.set;
    const f = this.features;
    // slice, not subarray: the cpu backend keeps a reference to the array a tensor is built from.
    const x = tf.tensor(data.x.slice(start * f, (start + n) * f), [n, ...data.shape], 'float32');
    return [x, oneHot(data.y.subarray(start, start + n), this.classes)];
  }
}
