/**
 * The batched simulator's training and evaluation: the simulated nodes' NodeRuntimes run every
 * phase of their rounds as in the unbatched simulator (schedule, exchange, mixing, faults, SWA,
 * checkpoints, records), except that a node's `trainer.train` only queues its local steps, and its
 * evaluator only queues the vectors to evaluate (its model, its SWA average). Once the event loop
 * has nothing else to do (every node that can is waiting for its training, or for its figures),
 * the queued nodes are trained together in one batched computation (src/learn/batched-mlp.ts), or
 * the queued vectors evaluated in one pass over the test set (src/learn/batched-eval.ts), and
 * answered.
 *
 *   const batch = new BatchedTraining(cfg);
 *   const evals = new BatchedEvaluation(ctx.test, cfg.eval.batchSize);
 *   buildNode(ctx, id, { ...parts, trainer: (n) => batch.trainerFor(n),
 *                       evaluator: (x) => evals.evaluate(model, x) });
 *
 * Which nodes share a batch depends on timing (a node in a straggler's sleep joins a later one),
 * but no result does: each node's rows, products and updates are its own.
 */
import type { Experiment } from '../config/schema.js';
import type { Dataset } from '../data/types.js';
import { evaluateStacked } from '../learn/batched-eval.js';
import { BatchedMlpTrainer, type BatchMember, batchable } from '../learn/batched-mlp.js';
import {
  checkTrainArgs,
  type EvalResult,
  type Model,
  type RoundTrainer,
  type TrainResult,
} from '../learn/index.js';
import { optimizerSpec } from '../node/build.js';

/**
 * A queue answered in one go once a whole turn of the event loop queued nothing new: the nodes still
 * on their way (a frame's delivery, a receipt) get there first, and a flush holds every item it can.
 */
class QuietQueue<T> {
  private pending: T[] = [];
  private scheduled = false;
  private seen = 0;

  constructor(private readonly flush: (items: T[]) => void) {}

  push(item: T): void {
    this.pending.push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    this.seen = this.pending.length;
    const check = () => {
      if (this.pending.length !== this.seen) {
        this.seen = this.pending.length;
        setImmediate(check);
        return;
      }
      this.scheduled = false;
      const items = this.pending;
      this.pending = [];
      this.flush(items);
    };
    setImmediate(check);
  }
}

interface Pending {
  member: BatchMember;
  steps: number;
  lr: number;
  resolve: (r: TrainResult) => void;
  reject: (e: unknown) => void;
}

/** Whether `flatmesh sim --batched` can batch this experiment's training (else it runs unbatched). */
export function batchedTrainingApplies(cfg: Experiment): boolean {
  return batchable({ kind: cfg.model.kind });
}

export class BatchedTraining {
  private readonly engine: BatchedMlpTrainer;
  private readonly queue = new QuietQueue<Pending>((all) => this.flush(all));
  /** Nodes per batch, in order (the bench reports them). */
  readonly batchSizes: number[] = [];

  constructor(cfg: Experiment) {
    this.engine = new BatchedMlpTrainer({
      optimizer: optimizerSpec(cfg),
      batchSize: cfg.train.batchSize,
    });
  }

  /** A node's trainer: its own LocalTrainer's RNG state, steps trained with the other nodes'. */
  trainerFor(member: BatchMember): RoundTrainer {
    return {
      getRngState: () => member.trainer.getRngState(),
      setRngState: (s) => member.trainer.setRngState(s),
      train: (steps, lr) => {
        checkTrainArgs(steps, lr);
        // Nothing to batch: the node's own trainer gives its (NaN, 0 samples) answer.
        if (steps === 0 || member.trainer.shardSize === 0) return member.trainer.train(steps, lr);
        return new Promise<TrainResult>((resolve, reject) => {
          this.queue.push({ member, steps, lr, resolve, reject });
        });
      },
    };
  }

  private flush(all: Pending[]): void {
    // Nodes asked for different step counts train in separate batches (one per count).
    const bySteps = new Map<number, Pending[]>();
    for (const p of all) bySteps.set(p.steps, [...(bySteps.get(p.steps) ?? []), p]);
    for (const [steps, group] of bySteps) {
      this.batchSizes.push(group.length);
      try {
        const results = this.engine.train(
          group.map((p) => p.member),
          steps,
          group.map((p) => p.lr),
        );
        group.forEach((p, i) => p.resolve(results[i]!));
      } catch (e) {
        for (const p of group) p.reject(e);
      }
    }
  }
}

interface PendingEval {
  model: Model;
  x: Float32Array;
  resolve: (r: EvalResult) => void;
  reject: (e: unknown) => void;
}

/**
 * Every node's evaluations of a round (current models and SWA averages alike) in one pass over the
 * test set (src/learn/batched-eval.ts), with `evaluateFlat`'s figures.
 */
export class BatchedEvaluation {
  private readonly queue = new QuietQueue<PendingEval>((all) => this.flush(all));
  /** Vectors per pass, in order (the bench reports them). */
  readonly passSizes: number[] = [];

  constructor(
    private readonly test: () => Dataset,
    private readonly batchSize: number,
  ) {}

  /** `evaluateFlat(model, x, test)`, answered with the other vectors queued in the same turn. */
  evaluate(model: Model, x: Float32Array): Promise<EvalResult> {
    return new Promise<EvalResult>((resolve, reject) => {
      this.queue.push({ model, x, resolve, reject });
    });
  }

  private flush(all: PendingEval[]): void {
    this.passSizes.push(all.length);
    try {
      const results = evaluateStacked(
        all[0]!.model,
        all.map((p) => p.x),
        this.test(),
        this.batchSize,
      );
      all.forEach((p, i) => p.resolve(results[i]!));
    } catch (e) {
      for (const p of all) p.reject(e);
    }
  }
}
