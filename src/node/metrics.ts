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
import { emptyCounts, type MessageCounts, type RoundRecord } from '../report/records.js';

// The record types live in the report layer, which node/, run/ and the report all share.
export {
  addCounts,
  emptyCounts,
  type MessageCounts,
  type PhaseTimes,
  type RoundRecord,
} from '../report/records.js';

/** Transport counters, tallied per round. */
export class NodeCounters implements TransportMetrics {
  private counts = emptyCounts();
  private byPeer = new Map<number, MessageCounts>();
  private reasons: Partial<Record<RejectReason, number>> = {};
  private faults: Record<string, number> = {};
  private resets: Partial<Record<StreamResetReason, number>> = {};
  private resends = 0;
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
  sendRetried(_to: number, _reason: string): void {
    this.resends++;
  }
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
    | 'resends'
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
      ...(this.resends > 0 && { resends: this.resends }),
    };
    this.counts = emptyCounts();
    this.resends = 0;
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
