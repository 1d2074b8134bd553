/**
 * Normalization beyond the loaders' [0, 1] pixel scaling: per-channel standardization with
 * statistics from the training set (apply the same statistics to the test set).
 *
 *   const stats = channelStats(split.train);
 *   const train = standardize(split.train, stats), test = standardize(split.test, stats);
 */
import type { Dataset } from './types.js';

export interface ChannelStats {
  readonly mean: number[];
  readonly std: number[];
}

/** Mean and standard deviation of each channel (the last axis of the sample shape). */
export function channelStats(ds: Dataset): ChannelStats {
  const c = ds.shape[ds.shape.length - 1] ?? 1;
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  for (let i = 0; i < ds.x.length; i++) {
    const v = ds.x[i]!;
    sum[i % c]! += v;
    sq[i % c]! += v * v;
  }
  const per = ds.x.length / c;
  const mean = Array.from(sum, (s) => s / per);
  const std = Array.from(sq, (s, k) => Math.sqrt(Math.max(s / per - mean[k]! ** 2, 0)));
  return { mean, std };
}

/** (x - mean) / std per channel, into a new Dataset; a constant channel (std 0) is only centred. */
export function standardize(ds: Dataset, stats: ChannelStats): Dataset {
  const c = stats.mean.length;
  const x = new Float32Array(ds.x.length);
  for (let i = 0; i < x.length; i++) {
    const k = i % c;
    const s = stats.std[k]! > 0 ? stats.std[k]! : 1;
    x[i] = (ds.x[i]! - stats.mean[k]!) / s;
  }
  return { ...ds, x };
}
