/**
 * The transport contract: how a node sends its weights to a neighbour for a round and collects the
 * weights its neighbours sent it. Two implementations satisfy it (libp2p and in-memory) and one
 * contract test suite runs against both. A transport knows bytes and peers, never tensors: the
 * payload is an already-encoded parameter vector.
 */

import type { RejectReason } from '../errors.js';

export type { Codec } from '../gossip/codecs.js';

import type { Codec } from '../gossip/codecs.js';

/** A decoded, validated weights frame. */
export interface WeightsMessage {
  readonly from: number;
  readonly round: number;
  readonly codec: Codec;
  /**
   * The decoded parameter vector, owned by the receiver (no other frame shares its memory until the
   * receiver hands it back with Transport.recycle).
   */
  readonly weights: Float32Array;
  /** Push-sum weight, when the mixing rule uses one (1 otherwise). */
  readonly mass: number;
  /** Bytes this frame occupied on the wire. */
  readonly bytes: number;
}

export type SendOutcome =
  | { readonly status: 'delivered'; readonly bytes: number }
  | { readonly status: 'dropped'; readonly bytes: number; readonly reason: string }
  | { readonly status: 'failed'; readonly bytes: number; readonly reason: string };

/** What a collect() call returns: everything that arrived for the round, and what did not. */
export interface CollectResult {
  readonly round: number;
  readonly received: readonly WeightsMessage[];
  /** Expected peers whose weights did not arrive before the deadline. */
  readonly missing: readonly number[];
  /** Expected peers the transport was told (notify-mode loss) will not send this round. */
  readonly lost: readonly number[];
  /** Why collect returned: all expected arrived, the deadline passed, the signal aborted, or stop(). */
  readonly ended?: 'complete' | 'deadline' | 'aborted' | 'stopped';
}

/** Options of a collect. */
export interface CollectOptions {
  /**
   * Stop waiting once these senders (a subset of `expected`, e.g. the neighbours believed alive)
   * have arrived, after `graceMs` more for the others. Frames from every expected sender are
   * accepted until the collect ends. Default: wait for all of `expected`.
   */
  readonly waitFor?: readonly number[];
  readonly graceMs?: number;
  /**
   * Freshest mode (catch-up, asynchronous gossip): take each expected sender's newest frame of
   * any round from `since` on, not only of `round`; see Inbox for the exact rules.
   */
  readonly since?: number;
  /**
   * Receives, when the collect starts, a function that ends the wait for one expected sender (say
   * its heartbeat shows it already passed this round, or fell behind): the collect then completes
   * once every other expected sender arrived or was waived too. A waived sender's frame is still
   * taken if it arrives while the collect lasts. The second function does the opposite: it adds
   * an expected sender to `waitFor` (say news just came that it is alive and in this round: a node
   * that joined late, whose frames its neighbours did not wait for when the collect began), and
   * ends its waiver or a grace period already running.
   */
  readonly onWaiting?: (waive: (node: number) => void, expect: (node: number) => void) => void;
}

export interface TransportEvents {
  /** A frame failed validation; it never reached the model. */
  onReject?(from: number | undefined, reason: RejectReason): void;
  /** A frame for a round already finished arrived and was dropped. */
  onLate?(from: number, round: number): void;
  /** A small control message (heartbeat etc.) arrived. */
  onControl?(msg: ControlMessage): void;
  /**
   * A valid weights frame of `round` arrived from `from` (whatever becomes of it: taken, buffered
   * or late). It tells the receiver that the sender is alive and in that round, independently of
   * the control topic.
   */
  onFrame?(from: number, round: number): void;
}

/**
 * Counters a transport reports to (injected; the node's metrics sink implements it). All methods
 * are called synchronously and must not throw.
 */
export interface TransportMetrics {
  frameSent(to: number, bytes: number): void;
  /** A send that did not reach the peer (dial/stream failure, timeout). */
  sendFailed(to: number, reason: string): void;
  /**
   * A send's connection or stream broke under it and the frame is being sent again (optional);
   * the send then ends delivered or failed as usual.
   */
  sendRetried?(to: number, reason: string): void;
  /** A frame passed validation and was handed to the inbox. */
  frameReceived(from: number, bytes: number): void;
  frameRejected(from: number | undefined, reason: RejectReason): void;
  frameLate(from: number, round: number): void;
  /** A control message failed its shape check (optional: counted under 'bad-control'). */
  controlRejected?(reason: RejectReason): void;
  /**
   * This node reset an incoming weights stream because its peer misbehaved (optional): too many
   * rejected frames in a row, receipts it does not read, a refused length prefix, a frame past
   * its deadline. `from` is the peer's roster index when known.
   */
  streamReset?(from: number | undefined, reason: StreamResetReason): void;
}

/** Why the receiver reset an incoming weights stream (see TransportMetrics.streamReset). */
export type StreamResetReason =
  | 'rejected-frames'
  | 'unread-receipts'
  | 'framing'
  | 'timeout'
  | 'stream-limit';

export interface ControlMessage {
  readonly type: 'heartbeat' | 'join' | 'leave';
  readonly node: number;
  readonly round: number;
  readonly status?: string;
  readonly accuracy?: number;
}

export interface Transport {
  readonly self: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Send this node's weights for `round` to peer `to`; resolves when the receiver has validated the
   * frame ('delivered') or the send failed. Never throws for network faults. `weights` must not
   * change until the send settles (the libp2p transport encodes a round's vector once and shares
   * the frame among that round's neighbours). `onWritten` runs once the frame has left this node
   * (written to the connection), before the receiver's answer: a receiver busy training reads it
   * late, and time after onWritten is waiting for that neighbour, not sending.
   */
  send(
    to: number,
    round: number,
    weights: Float32Array,
    opts?: { mass?: number; signal?: AbortSignal; onWritten?: () => void },
  ): Promise<SendOutcome>;
  /**
   * Wait until weights for `round` from every peer in `expected` arrived, or `deadline` (ms from now)
   * passed, or `signal` aborted. Frames for later rounds are buffered; frames for earlier rounds
   * are counted late and dropped.
   */
  collect(
    round: number,
    expected: readonly number[],
    deadlineMs: number,
    signal?: AbortSignal,
    opts?: CollectOptions,
  ): Promise<CollectResult>;
  /** Publish a small control message to every node (gossipsub on libp2p). */
  publishControl(msg: ControlMessage): Promise<void>;
  /**
   * Optional: hand back a received vector (a collected `WeightsMessage.weights`) that nothing reads
   * any more, so a later frame is decoded into its memory instead of a fresh buffer. That saves a
   * receiver of large models most of its garbage-collection and page-fault cost per frame (see
   * net/pool.ts). Only call it once the vector is dead: not while a tensor built on it (tfjs's cpu
   * backend keeps the array it was given), a checkpoint or a mixing result may still read it.
   * Returns false, doing nothing, for an array this transport did not hand out or already got
   * back.
   */
  recycle?(weights: Float32Array): boolean;
}
