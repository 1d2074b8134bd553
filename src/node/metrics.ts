/**
 * Per-round metrics of a node: one record per round (JSON Lines on disk, progress messages to the
 * launcher, an array in the simulator: all consumers of the same record stream). `NodeCounters`
 * implements the transport's metrics interface and tallies what happens between two records,
 * including frames that arrive asynchronously (late, rejected).
 *
 *   const counters = new NodeCounters();
 *   transport = libp2pTransport(init)({ metrics: counters });
 *   ... counters.take()  // this round's tallies, reset
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RejectReason } from '../errors.js';
import type { StreamResetReason, TransportMetrics } from '../net/transport.js';

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
  trainLoss: number;
  /** Test accuracy/loss of the current model, on evaluation rounds. */
  accuracy?: number;
  testLoss?: number;
  /** Test accuracy of the node's SWA average, on evaluation rounds once it has one. */
  swaAccuracy?: number;
  swaCount: number;
  phases: PhaseTimes;
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
  /** Incoming weights streams this node reset because the peer misbehaved, by reason. */
  streamResets: Partial<Record<StreamResetReason, number>>;
  faults: Record<string, number>;
  /** Push-sum mass, when push-sum mixing is used. */
  mass?: number;
  /** Resident memory of the process (MB) and live tensors, to catch leaks across rounds. */
  rssMB: number;
  numTensors: number;
}

/** Transport counters, tallied per round. */
export class NodeCounters implements TransportMetrics {
  private counts = emptyCounts();
  private byPeer = new Map<number, MessageCounts>();
  private reasons: Partial<Record<RejectReason, number>> = {};
  private faults: Record<string, number> = {};
  private resets: Partial<Record<StreamResetReason, number>> = {};
  bytesSent = 0;
  bytesReceived = 0;

  private peer(j: number): MessageCounts {
    let c = this.byPeer.get(j);
    if (!c) {
      c = emptyCounts();
      this.byPeer.set(j, c);
    }
    return c;
  }

  /** Count one event for the node and for the peer it concerns. */
  count(kind: keyof MessageCounts, peer: number | undefined, n = 1): void {
    this.counts[kind] += n;
    if (peer !== undefined) this.peer(peer)[kind] += n;
  }

  fault(kind: string): void {
    this.faults[kind] = (this.faults[kind] ?? 0) + 1;
  }

  frameSent(_to: number, bytes: number): void {
    this.bytesSent += bytes;
  }
  sendFailed(_to: number, _reason: string): void {}
  frameReceived(_from: number, bytes: number): void {
    this.bytesReceived += bytes;
  }
  frameRejected(from: number | undefined, reason: RejectReason): void {
    this.count('rejected', from);
    this.reasons[reason] = (this.reasons[reason] ?? 0) + 1;
  }
  frameLate(from: number, _round: number): void {
    this.count('late', from);
  }
  streamReset(_from: number | undefined, reason: StreamResetReason): void {
    this.resets[reason] = (this.resets[reason] ?? 0) + 1;
  }

  /** This round's tallies; the counters restart from zero. */
  take(): Pick<
    RoundRecord,
    | 'messages'
    | 'byNeighbour'
    | 'rejectedBy'
    | 'streamResets'
    | 'faults'
    | 'bytesSent'
    | 'bytesReceived'
  > {
    const out = {
      messages: this.counts,
      byNeighbour: Object.fromEntries(
        [...this.byPeer].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v]),
      ),
      rejectedBy: this.reasons,
      streamResets: this.resets,
      faults: this.faults,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
    };
    this.counts = emptyCounts();
    this.byPeer = new Map();
    this.reasons = {};
    this.resets = {};
    this.faults = {};
    this.bytesSent = 0;
    this.bytesReceived = 0;
    return out;
  }
}

export interface MetricsSink {
  record(r: RoundRecord): void;
}

/** Appends one JSON line per record to a file (created with its directory). */
export function jsonlSink(file: string): MetricsSink {
  mkdirSync(dirname(file), { recursive: true });
  return { record: (r) => appendFileSync(file, `${JSON.stringify(r)}\n`) };
}

export function fanout(...sinks: (MetricsSink | undefined)[]): MetricsSink {
  const live = sinks.filter((s): s is MetricsSink => s !== undefined);
  return { record: (r) => live.forEach((s) => s.record(r)) };
}
