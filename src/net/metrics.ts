/**
 * A plain counting TransportMetrics: what tests and small tools use, and a reference for the node's
 * metrics sink (which implements the same interface and emits records instead).
 *
 *   const m = countingMetrics();
 *   memoryTransport(init, { metrics: m });
 *   m.counts.rejected['wrong-signature']; // -> 1
 */
import type { RejectReason } from '../errors.js';
import type { StreamResetReason, TransportMetrics } from './transport.js';

export interface TransportCounts {
  sent: number;
  sendFailed: number;
  /** Frames sent again after their connection or stream broke. */
  resent: number;
  received: number;
  late: number;
  bytesSent: number;
  bytesReceived: number;
  rejected: Partial<Record<RejectReason, number>>;
  controlRejected: number;
  /** Incoming weights streams this node reset, by reason. */
  streamResets: Partial<Record<StreamResetReason, number>>;
}

export function countingMetrics(): TransportMetrics & { readonly counts: TransportCounts } {
  const counts: TransportCounts = {
    sent: 0,
    sendFailed: 0,
    resent: 0,
    received: 0,
    late: 0,
    bytesSent: 0,
    bytesReceived: 0,
    rejected: {},
    controlRejected: 0,
    streamResets: {},
  };
  return {
    counts,
    frameSent(_to, bytes) {
      counts.sent++;
      counts.bytesSent += bytes;
    },
    sendFailed() {
      counts.sendFailed++;
    },
    sendRetried() {
      counts.resent++;
    },
    frameReceived(_from, bytes) {
      counts.received++;
      counts.bytesReceived += bytes;
    },
    frameRejected(_from, reason) {
      counts.rejected[reason] = (counts.rejected[reason] ?? 0) + 1;
    },
    frameLate() {
      counts.late++;
    },
    controlRejected() {
      counts.controlRejected++;
    },
    streamReset(_from, reason) {
      counts.streamResets[reason] = (counts.streamResets[reason] ?? 0) + 1;
    },
  };
}
