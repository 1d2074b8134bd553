/**
 * The batched simulator's training: the simulated nodes' NodeRuntimes run every phase of their
 * rounds as in the unbatched simulator (schedule, exchange, mixing, faults, SWA, evaluation,
 * checkpoints, records), except that a node's `trainer.train` only queues its local steps. Once
 * the event loop has nothing else to do (every node that can is waiting for its training), the
 * queued nodes are trained together in one batched computation (src/learn/batched-mlp.ts) and
 * answered.
 *
 *   const batch = new BatchedTraining(cfg);
 *   buildNode(ctx, id, { ...parts, trainer: (n) => batch.trainerFor(n) });
 *
 * Which nodes share a batch depends on timing (a node in a straggler's sleep joins a later one),
 * but no result does: each node's rows, products and updates are its own.
 */
import type { Experiment } from '../config/schema.js';
import { BatchedMlpTrainer, type BatchMember, batchable } from '../learn/batched-mlp.js';
import { checkTrainArgs, type RoundTrainer, type TrainResult } from '../learn/index.js';
import { optimizerSpec } from '../node/build.js';

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
  private pending: Pending[] = [];
  private scheduled = false;
  private seen = 0;
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
          this.pending.push({ member, steps, lr, resolve, reject });
          this.schedule();
        });
      },
    };
  }

  /**
   * Flush once a whole turn of the event loop queued nobody new: the nodes still on their way
   * (a frame's delivery, a receipt) get there first, and a batch holds every node it can.
   */
  private schedule(): void {
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
      this.flush();
    };
    setImmediate(check);
  }

  private flush(): void {
    const all = this.pending;
    this.pending = [];
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
