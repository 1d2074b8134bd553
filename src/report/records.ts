/**
 * The records a run leaves behind, as types: one `RoundRecord` per node and round
 * (nodes/<i>/metrics.jsonl), a `RunSummary` per run (summary.json). They live in the report layer,
 * low in the stack, because three layers share them: node/ writes round records, run/ writes the
 * summary, and the report (and anything else reading a run directory) reads both.
 *
 *   import type { RoundRecord } from '../report/records.js';
 */
import type { Experiment } from '../config/schema.js';
import type { RejectReason } from '../errors.js';

export interface MessageCounts {
  /** Frames this node tried to send. */
  sent: number;
  /** Of those, frames that reached the peer. */
  delivered: number;
  /** Of those, frames dropped by an injected fault (loss, partition). */
  dropped: number;
  /** Of those, frames whose send failed on the network (dial, stream, timeout). */
  failed: number;
  /** Valid frames received for the round they were collected in. */
  received: number;
  /** Expected frames that did not arrive by the deadline. */
  missing: number;
  /** Expected frames known lost (notify-mode loss): not waited for. */
  lost: number;
  /** Frames that arrived after their round was over. */
  late: number;
  /** Frames that failed validation. */
  rejected: number;
}

export const emptyCounts = (): MessageCounts => ({
  sent: 0,
  delivered: 0,
  dropped: 0,
  failed: 0,
  received: 0,
  missing: 0,
  lost: 0,
  late: 0,
  rejected: 0,
});

export function addCounts(into: MessageCounts, c: Readonly<MessageCounts>): MessageCounts {
  for (const k of Object.keys(into) as (keyof MessageCounts)[]) into[k] += c[k];
  return into;
}

export interface PhaseTimes {
  trainMs: number;
  exchangeMs: number;
  /** Part of exchangeMs spent waiting for the slowest neighbour after this node's sends. */
  waitMs: number;
  mixMs: number;
  evalMs: number;
  checkpointMs: number;
  roundMs: number;
}

export interface RoundRecord {
  node: number;
  round: number;
  /** Wall-clock time the round ended (ms since the epoch). */
  time: number;
  lr: number;
  /** Mean training loss of the round's local steps; NaN (null in JSON) in a gossip-only round. */
  trainLoss: number;
  /** The consensus finish's gossip-only rounds (no local training). */
  gossipOnly?: true;
  /** Test accuracy/loss of the current model, on evaluation rounds. */
  accuracy?: number;
  testLoss?: number;
  /** Test accuracy of the node's SWA average, on evaluation rounds once it has one. */
  swaAccuracy?: number;
  swaCount: number;
  phases: PhaseTimes;
  /** The deadline this round's collect ran under (adaptive in real runs, see node/deadline.ts). */
  deadlineMs?: number;
  /** Why this round's collect ended: all expected frames in (or waived), or the deadline. */
  collectEnded?: 'complete' | 'deadline' | 'aborted' | 'stopped';
  /** This node was behind the run and jumped to this round from `from`, skipping `skipped` rounds. */
  catchUp?: { from: number; skipped: number };
  /** Asynchronous gossip: how many rounds old the oldest model mixed this round was. */
  staleness?: number;
  /** Active neighbours of this round (from the shared schedule). */
  neighbours: number[];
  /** Neighbours whose weights were mixed in. */
  heard: number[];
  /**
   * Clipped gossip only: neighbours heard whose difference was clipped to the radius, and those
   * left out of the mix as too far (`heard` still lists them: their frames arrived).
   */
  robust?: { clipped: number[]; rejected: number[] };
  /** Mean RMS distance between this node's weights and those it heard, before mixing. */
  disagreement: number | null;
  bytesSent: number;
  bytesReceived: number;
  messages: MessageCounts;
  /** Per neighbour, this round's message counts (only neighbours with any traffic). */
  byNeighbour: Record<string, MessageCounts>;
  rejectedBy: Partial<Record<RejectReason, number>>;
  /** Incoming weights streams this node reset because the peer misbehaved, by reason (net's StreamResetReason). */
  streamResets: Record<string, number>;
  faults: Record<string, number>;
  /**
   * Real runs: heartbeats this node received from other nodes since its previous record (over the
   * control topic). Catch-up and the waiver of a lagging neighbour depend on them.
   */
  heartbeats?: number;
  /** The nodes those heartbeats came from. */
  heartbeatsFrom?: number[];
  /** Frames sent again this round after their connection or stream broke (redial + resend). */
  resends?: number;
  /** Push-sum mass, when push-sum mixing is used. */
  mass?: number;
  /** In-run flatness (analysis.flatness), on its rounds: see node/flatness-tracking.ts. */
  flatness?: RoundFlatness;
  /** Resident memory of the process (MB) and live tensors, to catch leaks across rounds. */
  rssMB: number;
  numTensors: number;
}

/** Hessian figures of one model at the end of a round (mean test cross-entropy, no weight decay). */
export interface ModelFlatness {
  /** Largest eigenvalue λmax. */
  lambdaMax: number;
  /** The `top` largest eigenvalues, descending, and λmax/λtop (top > 1 only). */
  top?: number[];
  ratio?: number;
  /** Trace estimate and its standard error (with `trace`; estimator: RoundFlatness.traceMethod). */
  trace?: number;
  traceStderr?: number;
  /** Test loss of the model on the same samples. */
  loss: number;
}

export interface RoundFlatness {
  /** The node's current model (after mixing), and its SWA average once it has one. */
  model: ModelFlatness;
  swa?: ModelFlatness;
  /** Test samples used (a seeded subset, the same every round and node). */
  samples: number;
  /** The trace estimator, when the trace was asked for. */
  traceMethod?: 'hutchinson' | 'hutch++';
  /** Hessian-vector products used, and the time taken (ms). */
  products: number;
  ms: number;
}

/** A node's last in-run flatness figures (summary.json), and the round they are of. */
export type LastFlatness = RoundFlatness & { round: number };

/** The mean over nodes of their last in-run flatness figures (summary.json). */
export interface MeanFlatness {
  /** Nodes that have figures, and the last round any of them measured. */
  nodes: number;
  round: number;
  model: MeanModelFlatness;
  /** Over the nodes that had an SWA model when measured. */
  swa?: MeanModelFlatness & { nodes: number };
}

export interface MeanModelFlatness {
  lambdaMax: number;
  ratio?: number;
  trace?: number;
}

export interface NodeOutcome {
  id: number;
  accuracy: number | null;
  swaAccuracy: number | null;
  /** Mean accuracy of the current and SWA models over the last `eval.tail` rounds. */
  tailAccuracy?: number | null;
  tailSwaAccuracy?: number | null;
  roundsCompleted: number;
  lastRound: number;
  restarts: number;
  roundsLostToRestarts: number;
  /** Times the node found itself behind the run and jumped forward; rounds it skipped so. */
  catchUps?: number;
  roundsCaughtUp?: number;
  messages: MessageCounts;
  bytesSent: number;
  bytesReceived: number;
  faults: Record<string, number>;
  /** Exit status for process runs: 'ok', or why it ended otherwise. */
  status: string;
  /** Process runs: times its process died (planned SIGKILLs and unplanned deaths). */
  crashes?: number;
  /** Checkpoints it could not write (it kept the previous one each time). */
  checkpointFailures?: { round: number; message: string }[];
  /** In-run flatness (analysis.flatness): the node's last figures, current and SWA model. */
  flatness?: LastFlatness;
}

/** Something that happened to a node process, planned (fault plan) or not. */
export interface ProcessEvent {
  /** Seconds since the launch started. */
  at: number;
  node: number;
  kind: 'crash' | 'restart' | 'restart-limit' | 'checkpoint-failed';
  planned: boolean;
  /** The node's latest reported round at the time (-1: none yet). */
  round: number;
  detail?: string;
}

export interface RunSummary {
  runId: string;
  mode: 'processes' | 'simulator';
  nodes: number;
  rounds: number;
  /** Every node that was meant to finish ran its last round. */
  completed: boolean;
  /** Why the run is not complete: the error, the interruption, or the nodes that did not finish. */
  reason?: string;
  /** The run was cut short (an error, Ctrl-C, `faults.onCrash: abort`): re-run it to finish it. */
  endedEarly?: boolean;
  wallSeconds: number;
  meanAccuracy: number | null;
  meanSwaAccuracy: number | null;
  /**
   * Rounds the tail means are taken over (`eval.tail`), and the mean over nodes of each node's
   * mean accuracy over them (current, SWA model). Absent in summaries of older versions.
   */
  tailRounds?: number;
  meanTailAccuracy?: number | null;
  meanTailSwaAccuracy?: number | null;
  /** Test accuracy of the plain average of the final node models. */
  accuracyOfAverageModel: number | null;
  /** Mean RMS distance of the final node models to their average (consensus distance). */
  finalDisagreement: number | null;
  messages: MessageCounts;
  faults: Record<string, number>;
  restarts: number;
  roundsLostToRestarts: number;
  /** Catch-ups of nodes that fell behind the run (paused, late), and the rounds they skipped. */
  catchUps?: number;
  roundsCaughtUp?: number;
  perNode: NodeOutcome[];
  /** In-run flatness (analysis.flatness): the mean over nodes of perNode[].flatness. */
  flatness?: MeanFlatness;
  /** Launched with several nodes per process (launch --nodes-per-process); absent: one each. */
  nodesPerProcess?: number;
  /**
   * Simulator only: the run's simulated time in rounds of local training (a straggler's round is
   * `factor` of them). Lockstep rounds last as long as their slowest node; async nodes keep their
   * own pace.
   */
  simulatedTime?: number;
  /** Simulator only: time nodes spent waiting for others (same unit, summed over nodes). */
  simulatedWait?: number;
  /** Process runs: crashes, restarts and failed checkpoints, in order (also counted in `faults`). */
  events?: ProcessEvent[];
  /** Nodes whose final model is not on disk (stale or missing checkpoint): left out of the average. */
  notInAverageModel?: number[];
  /** `flatmesh collect`: the directories the node records came from. */
  collectedFrom?: string[];
  /** Real processes only: seconds from launch until every node was... */
  startup?: {
    /** ...connected to its neighbours and in its first round. */
    allConnectedSeconds: number | null;
    /** ...done with its first round. */
    allFirstRoundSeconds: number | null;
  };
  config: Experiment;
}

/** roster.json: node index -> libp2p peer id -> addresses (the net layer's Roster, as stored). */
export interface RosterRecord {
  runId: string;
  nodes: { id: number; peerId: string; addrs: string[] }[];
}
