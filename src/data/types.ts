/**
 * The in-memory form of every data set: dense float32 features in NHWC order and integer labels.
 * Loaders (digits, synthetic, Fashion-MNIST, CIFAR-10) produce a `DatasetSplit` pair; partitioners
 * turn a training set into per-node index lists.
 */

export interface Dataset {
  /** Features, row-major, `count * prod(shape)` values, already normalized. */
  readonly x: Float32Array;
  /** Labels in [0, classes). */
  readonly y: Int32Array;
  readonly count: number;
  /** Shape of one sample, e.g. [8, 8, 1], [28, 28, 1], [32, 32, 3], or [d] for flat features. */
  readonly shape: readonly number[];
  readonly classes: number;
}

export interface DatasetSplit {
  readonly name: string;
  readonly train: Dataset;
  readonly test: Dataset;
}

/** Per-node sample indices into a training set. */
export type Partition = Int32Array[];
