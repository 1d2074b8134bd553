/**
 * Data sets, partitioners and augmentation: the public API of src/data.
 *
 *   const split = await loadDataset({ name: 'digits' }, { seed });
 *   const parts = partitionDataset(split.train.y, split.train.classes, 16, parsePartitionSpec('dirichlet:0.1'), seed);
 *   const shard = subset(split.train, parts[nodeIndex]!);
 */
export { type AugmentOptions, augmentBatch } from './augment.js';
export { type CachedDataset, readCacheFile, writeCacheFile } from './cache-file.js';
export {
  CIFAR10_CLASS_NAMES,
  cifar10CachePath,
  type FetchOptions,
  type FetchResult,
  fetchCifar10,
  loadCifar10,
} from './cifar10.js';
export { candidateDirs, DEBIAN_FASHION_MNIST_DIR, dataDir } from './data-dir.js';
export { loadDigits } from './digits.js';
export type { FetchProgress, ProgressFn } from './download.js';
export { fetchFashionMnist, findFashionMnistDir, loadFashionMnist } from './fashion-mnist.js';
export { datasetShape, type LoadOptions, loadDataset, parseDatasetSpec } from './load.js';
export { type ChannelStats, channelStats, standardize } from './normalize.js';
export { formatPartitionSpec, parsePartitionSpec, partitionDataset } from './partition.js';
export { readShardFile, writeShardFile } from './shard-file.js';
export { classHistogram, limitIndices, sampleSize, subset } from './subset.js';
export { generateSynthetic, type SyntheticOptions } from './synthetic.js';
export type {
  Dataset,
  DatasetName,
  DatasetSpec,
  DatasetSplit,
  Partition,
  PartitionSpec,
} from './types.js';
