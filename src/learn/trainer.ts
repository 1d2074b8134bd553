/**
 * Local training on one node's shard: `steps` minibatch steps of the local optimizer, minibatches
 * drawn by seeded shuffled passes over the shard (a new permutation per pass, the last batch of a
 * pass may be smaller, like a PyTorch DataLoader without drop_last).
 *
 *   const trainer = new LocalTrainer({ model, optimizer, data: train, indices: shard,
 *                                      batchSize: 32, seed, node: 3 });
 *   const { loss, samples } = trainer.train(10, lr);     // mean loss at w over the samples seen
 *   const saved = trainer.getRngState(); trainer.setRngState(saved);  // checkpoint / restore
 *
 * The stream is `Rng.from(seed, 'batches', node)`. Its checkpoint state is the RNG state at the
 * start of the current pass plus the cursor in it: restoring regenerates that pass's permutation,
 * so a restored trainer draws exactly the batches the original would have.
 *
 * Per-step losses stay on the device and are read back once per `train` call (one sync per round
 * instead of one per step).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../compute/rng.js';
import type { Dataset } from '../data/types.js';
import { CheckpointError, ConfigError, ModelMismatchError } from '../errors.js';
import { crossEntropy, oneHot } from './loss.js';
import type { Model } from './model.js';
import type { LocalOptimizer } from './optim/types.js';

export interface LocalTrainerOptions {
  model: Model;
  optimizer: LocalOptimizer;
  data: Dataset;
  /** This node's sample indices into `data`. */
  indices: Int32Array;
  batchSize: number;
  seed: number;
  node: number;
}

export interface TrainerRngState {
  /** RNG state from which the current pass's permutation is drawn. */
  passStart: [number, number, number, number];
  /** Position in the current pass. */
  cursor: number;
}

export interface TrainResult {
  /** Mean training loss at w over the samples of the steps (NaN when the shard is empty). */
  loss: number;
  samples: number;
}

/**
 * What a node's round engine needs of its trainer: LocalTrainer itself, or a stand-in that trains
 * many nodes' steps together and answers once they are done (the batched simulator).
 */
export interface RoundTrainer {
  train(steps: number, lr: number): TrainResult | Promise<TrainResult>;
  getRngState(): TrainerRngState;
  setRngState(state: TrainerRngState): void;
}

/** The checks of `train`'s arguments (every trainer makes the same ones, with the same errors). */
export function checkTrainArgs(steps: number, lr: number): void {
  if (!Number.isInteger(steps) || steps < 0) {
    throw new ConfigError('train.localSteps', 'must be an integer >= 0', steps);
  }
  if (!(lr >= 0 && Number.isFinite(lr))) {
    throw new ConfigError('lr', 'must be a finite number >= 0', lr);
  }
}

export class LocalTrainer implements RoundTrainer {
  private readonly model: Model;
  private readonly optimizer: LocalOptimizer;
  private readonly data: Dataset;
  private readonly indices: Int32Array;
  private readonly batchSize: number;
  private readonly features: number;
  private rng: Rng;
  private passStart: [number, number, number, number];
  private perm: Int32Array;
  private cursor = 0;

  constructor(opts: LocalTrainerOptions) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
      throw new ConfigError('train.batchSize', 'must be an integer >= 1', opts.batchSize);
    }
    const features = opts.data.shape.reduce((a, d) => a * d, 1);
    const expected = opts.model.inputShape.reduce((a, d) => a * d, 1);
    if (features !== expected) {
      throw new ModelMismatchError(
        `data samples have shape [${opts.data.shape.join(', ')}] but the model expects [${opts.model.inputShape.join(', ')}]`,
      );
    }
    for (const i of opts.indices) {
      if (!(i >= 0 && i < opts.data.count)) {
        throw new ConfigError('indices', `must be sample indices in [0, ${opts.data.count})`, i);
      }
    }
    this.model = opts.model;
    this.optimizer = opts.optimizer;
    this.data = opts.data;
    this.indices = opts.indices.slice();
    this.batchSize = opts.batchSize;
    this.features = features;
    this.rng = Rng.from(opts.seed, 'batches', opts.node);
    this.passStart = this.rng.state();
    this.perm = this.rng.permutation(this.indices.length);
  }

  /** Number of samples in this node's shard (0: `train` does nothing and reports NaN). */
  get shardSize(): number {
    return this.indices.length;
  }

  train(steps: number, lr: number): TrainResult {
    checkTrainArgs(steps, lr);
    if (this.indices.length === 0 || steps === 0) return { loss: Number.NaN, samples: 0 };
    const losses: tf.Scalar[] = [];
    const sizes: number[] = [];
    try {
      for (let s = 0; s < steps; s++) {
        const batch = this.nextBatch();
        const { x, y } = this.batchTensors(batch);
        try {
          losses.push(this.optimizer.stepTensor(() => crossEntropy(this.model.logits(x), y), lr));
          sizes.push(batch.length);
        } finally {
          tf.dispose([x, y]);
        }
      }
      const stacked = tf.stack(losses);
      const values = stacked.dataSync();
      stacked.dispose();
      let sum = 0;
      let samples = 0;
      for (let i = 0; i < sizes.length; i++) {
        sum += values[i]! * sizes[i]!;
        samples += sizes[i]!;
      }
      return { loss: sum / samples, samples };
    } finally {
      tf.dispose(losses);
    }
  }

  getRngState(): TrainerRngState {
    return { passStart: [...this.passStart], cursor: this.cursor };
  }

  setRngState(state: TrainerRngState): void {
    if (!Number.isInteger(state.cursor) || state.cursor < 0 || state.cursor > this.indices.length) {
      throw new CheckpointError(
        `trainer cursor ${state.cursor} is outside this shard of ${this.indices.length} samples`,
      );
    }
    let rng: Rng;
    try {
      rng = Rng.restore(state.passStart);
    } catch (e) {
      throw new CheckpointError(`trainer RNG state is corrupt: ${(e as Error).message}`);
    }
    this.passStart = [...state.passStart] as [number, number, number, number];
    this.rng = rng;
    this.perm = this.rng.permutation(this.indices.length);
    this.cursor = state.cursor;
  }

  /** Sample indices of the next minibatch. */
  private nextBatch(): Int32Array {
    const n = this.indices.length;
    if (this.cursor >= n) {
      this.passStart = this.rng.state();
      this.perm = this.rng.permutation(n);
      this.cursor = 0;
    }
    const b = Math.min(this.batchSize, n - this.cursor);
    const out = new Int32Array(b);
    for (let i = 0; i < b; i++) out[i] = this.indices[this.perm[this.cursor + i]!]!;
    this.cursor += b;
    return out;
  }

  /**
   * Draws the next minibatch exactly as `train` would (same stream, same checkpointable state) and
   * writes its samples into `xs` from sample slot `at` on, its labels into `labels` from `at` on.
   * Returns the batch size. For trainers that compute the steps themselves (src/learn/batched-mlp.ts).
   */
  nextBatchInto(xs: Float32Array, labels: Int32Array, at: number): number {
    const batch = this.nextBatch();
    this.fill(batch, xs, labels, at);
    return batch.length;
  }

  private fill(batch: Int32Array, xs: Float32Array, labels: Int32Array, at: number): void {
    const f = this.features;
    for (let i = 0; i < batch.length; i++) {
      const j = batch[i]!;
      xs.set(this.data.x.subarray(j * f, (j + 1) * f), (at + i) * f);
      labels[at + i] = this.data.y[j]!;
    }
  }

  private batchTensors(batch: Int32Array): { x: tf.Tensor; y: tf.Tensor2D } {
    // A fresh array per batch: the cpu backend keeps a reference to the array a tensor is made of.
    const xs = new Float32Array(batch.length * this.features);
    const labels = new Int32Array(batch.length);
    this.fill(batch, xs, labels, 0);
    return {
      x: tf.tensor(xs, [batch.length, ...this.model.inputShape], 'float32'),
      y: oneHot(labels, this.model.classes),
    };
  }
}
