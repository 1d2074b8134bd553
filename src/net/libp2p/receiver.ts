/**
 * The receive side of one incoming weights stream: read length-prefixed frames until the peer
 * closes the stream, decode and validate each on the fly through the inbox, and answer each with
 * a one-byte receipt, in order. The stream is reset (and the reset counted by reason) when the
 * peer misbehaves in a way that would otherwise cost this node without bound:
 * - 'rejected-frames': `maxConsecutiveRejects` frames in a row were rejected (a peer flooding
 *   tiny or broken frames made the node validate and count thousands a second);
 * - 'unread-receipts': more than `maxUnreadReceipts` receipts wait to be written because the peer
 *   does not read them (the receipt queue would grow for as long as the peer keeps writing);
 * - 'framing' / 'timeout': a length prefix above the frame bound, or a frame that missed its
 *   deadline.
 * - 'stream-limit': the peer already has `maxStreamsPerPeer` weights streams open (counted per
 *   peer by `PeerStreams`, before this function runs).
 *
 *   if (!peers.admit(remotePeerId)) { reset it; return; }
 *   try { await serveWeightsStream(stream, from, { inbox, stop, limits, metrics }); }
 *   finally { peers.release(remotePeerId); }
 */
import type { Stream } from '@libp2p/interface';
import { ConfigError, TransportError, WireError } from '../../errors.js';
import type { Inbox } from '../inbox.js';
import type { StreamResetReason, TransportMetrics } from '../transport.js';
import { ByteQueue, readFrames } from './framing.js';

/**
 * Receipt byte the receiver writes after it has read and validated a frame: the sender's
 * 'delivered' then means the frame reached the receiver's inbox (or was counted late there).
 */
export const RECEIPT_OK = 0x01;
export const RECEIPT_REJECTED = 0x02;
/**
 * The frame was rejected as a duplicate: this receiver already has the sender's frame for that
 * round. For a resend after a torn connection (the first copy arrived, its receipt did not) that
 * means delivered.
 */
export const RECEIPT_DUPLICATE = 0x03;

/** Default for ReceiveLimits.maxConsecutiveRejects. */
export const MAX_CONSECUTIVE_REJECTS = 16;
/** Default for ReceiveLimits.maxUnreadReceipts. */
export const MAX_UNREAD_RECEIPTS = 64;
/** Default for ReceiveLimits.maxStreamsPerPeer. */
export const MAX_STREAMS_PER_PEER = 4;

export interface ReceiveLimits {
  /** Largest frame accepted (a longer length prefix ends the stream). */
  readonly maxBytes: number;
  /** Deadline for one frame, first byte to last (default 30 s). */
  readonly frameTimeoutMs?: number;
  /**
   * Rejected frames in a row after which the stream is reset (default 16, at least 1). An honest
   * peer's frames are rejected only now and then (late topology, a stale round), never in runs.
   */
  readonly maxConsecutiveRejects?: number;
  /**
   * Receipts waiting to be written because the peer does not read them, beyond which the stream
   * is reset (default 64, at least 1). A sender reads each receipt as it comes, so its queue is
   * empty but for a moment; yamux's window already holds 256 KiB of them unread.
   */
  readonly maxUnreadReceipts?: number;
  /**
   * Weights streams one peer may have open at once (default 4, at least 1). A node sends over one
   * long-lived stream per neighbour and opens a new one only after the old one failed; each open
   * stream may hold a frame buffer and yamux's receive window, so the bound is on memory.
   */
  readonly maxStreamsPerPeer?: number;
}

/** Open weights streams per peer, for one node (peers by peer id). */
export class PeerStreams {
  private readonly open = new Map<string, number>();
  private readonly max: number;

  constructor(limits: Pick<ReceiveLimits, 'maxStreamsPerPeer'> = {}) {
    this.max = checkLimit('maxStreamsPerPeer', limits.maxStreamsPerPeer, MAX_STREAMS_PER_PEER);
  }

  /** Count a new stream from `peer`; false (not counted) when it has too many open. */
  admit(peer: string): boolean {
    const n = this.open.get(peer) ?? 0;
    if (n >= this.max) return false;
    this.open.set(peer, n + 1);
    return true;
  }

  /** The stream admitted for `peer` is done. */
  release(peer: string): void {
    const n = this.open.get(peer) ?? 0;
    if (n <= 1) this.open.delete(peer);
    else this.open.set(peer, n - 1);
  }

  openStreams(peer: string): number {
    return this.open.get(peer) ?? 0;
  }
}

/** The parts of a libp2p stream this module uses (tests hand in fakes). */
export type WeightsStream = Pick<Stream, 'source' | 'sink' | 'abort'>;

export interface ServeDeps {
  readonly inbox: Inbox;
  /** Aborts when the node stops: the stream is then reset and nothing more is counted. */
  readonly stop: AbortSignal;
  readonly limits: ReceiveLimits;
  readonly metrics?: TransportMetrics;
}

/** Check a limit option: an integer >= 1 (names the field and its range otherwise). */
export function checkLimit(field: string, value: number | undefined, def: number): number {
  if (value === undefined) return def;
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigError(field, 'must be an integer >= 1', value);
  }
  return value;
}

/**
 * Serve one incoming weights stream from the roster peer `from` (undefined: not in the roster;
 * its frames are counted 'unknown-sender'). Resolves when the stream is done; never throws.
 */
export async function serveWeightsStream(
  stream: WeightsStream,
  from: number | undefined,
  deps: ServeDeps,
): Promise<void> {
  const { inbox, stop, limits, metrics } = deps;
  const maxRejects = checkLimit(
    'maxConsecutiveRejects',
    limits.maxConsecutiveRejects,
    MAX_CONSECUTIVE_REJECTS,
  );
  const maxUnread = checkLimit('maxUnreadReceipts', limits.maxUnreadReceipts, MAX_UNREAD_RECEIPTS);
  const onStop = () => stream.abort(new TransportError('node stopped'));
  stop.addEventListener('abort', onStop, { once: true });
  const receipts = new ByteQueue();
  const sinking = stream.sink(receipts).then(
    () => true,
    () => false,
  );
  let clean = false;
  let dropped = false;
  let timedOut = false;
  const reset = (reason: StreamResetReason) => {
    if (!stop.aborted) metrics?.streamReset?.(from, reason);
  };
  try {
    let frames = 0;
    let rejectedInRow = 0;
    for await (const verdict of readFrames(
      stream.source,
      {
        maxBytes: limits.maxBytes,
        frameTimeoutMs: limits.frameTimeoutMs ?? 30_000,
        onTimeout: () => {
          timedOut = true;
          stream.abort(new TransportError('frame read timed out'));
        },
        // The peer stopped or its connection dropped between frames: nothing to count.
        onIdleError: () => {
          dropped = true;
        },
      },
      (length) => inbox.frameSink(from, length),
    )) {
      frames++;
      const accepted = verdict === 'accepted' || verdict === 'late';
      rejectedInRow = accepted ? 0 : rejectedInRow + 1;
      receipts.push(
        Uint8Array.of(
          accepted ? RECEIPT_OK : verdict === 'duplicate' ? RECEIPT_DUPLICATE : RECEIPT_REJECTED,
        ),
      );
      if (rejectedInRow >= maxRejects) {
        reset('rejected-frames');
        return;
      }
      if (receipts.pending > maxUnread) {
        reset('unread-receipts');
        return;
      }
    }
    if (dropped) return;
    if (frames === 0) {
      inbox.reject(from, 'truncated', 'stream ended before a frame');
      return;
    }
    clean = true;
  } catch (e) {
    if (!stop.aborted) {
      const reason = framingReason(e);
      inbox.reject(from, reason, errMessage(e));
      // Ours to reset: a frame past its deadline, a length prefix we refuse. (A stream that ended
      // inside a frame was closed or reset by the peer.)
      if (timedOut) reset('timeout');
      else if (reason === 'oversized') reset('framing');
    }
  } finally {
    stop.removeEventListener('abort', onStop);
    receipts.end();
    // Clean end: the receipts drain, then our write side closes. Otherwise reset the stream.
    if (!clean || !(await sinking)) stream.abort(new TransportError('weights stream failed'));
  }
}

/** Map framing errors (ours, or it-length-prefixed's names) to reject reasons. */
export function framingReason(e: unknown): WireError['reason'] {
  if (e instanceof WireError) return e.reason;
  const name = (e as { name?: string } | undefined)?.name;
  switch (name) {
    case 'InvalidDataLengthError':
    case 'InvalidDataLengthLengthError':
      return 'oversized';
    case 'InvalidMessageLengthError':
      return 'wrong-length';
    default:
      return 'truncated';
  }
}

function errMessage(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
