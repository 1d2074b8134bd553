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
  /**
   * The generating group of each sample, when the data set has one (synthetic: its device). Used
   * by the `natural` partition; absent for image data sets.
   */
  readonly groups?: Int32Array;
}

export interface DatasetSplit {
  readonly name: string;
  readonly train: Dataset;
  readonly test: Dataset;
}

/** Per-node sample indices into a training set. */
export type Partition = Int32Array[];

/** Which data set to load, and its parameters. */
export type DatasetSpec =
  | { readonly name: 'digits' }
  | {
      readonly name: 'synthetic';
      /** FedProx alpha: how much the devices' models differ (std of their mean). */
      readonly alpha: number;
      /** FedProx beta: how much the devices' inputs differ (std of their mean). */
      readonly beta: number;
      /** Total samples over all devices, train + test; default 6000. */
      readonly samples?: number;
      /** Feature dimension; default 60. */
      readonly dim?: number;
      /** Number of classes; default 10. */
      readonly classes?: number;
      /** Number of generating devices (the natural non-IID groups); default 30. */
      readonly devices?: number;
    }
  | { readonly name: 'fashion-mnist'; readonly limit?: number }
  | { readonly name: 'cifar10'; readonly limit?: number };

export type DatasetName = DatasetSpec['name'];

/**
 * How a training set is split over nodes.
 * - `iid`: a seeded shuffle cut into near-equal parts.
 * - `dirichlet`: label skew, each node's class mix drawn from Dirichlet(alpha); alpha = 0 is one
 *   class per node.
 * - `shards`: sort by label, cut into nodes * k shards, k random shards per node.
 * - `natural`: the generating devices of the synthetic data set, dealt round-robin to nodes.
 */
export type PartitionSpec =
  | { readonly kind: 'iid' }
  | { readonly kind: 'dirichlet'; readonly alpha: number }
  | { readonly kind: 'labeldir'; readonly alpha: number; readonly minSize?: number }
  | { readonly kind: 'shards'; readonly k: number }
  | { readonly kind: 'natural' };
