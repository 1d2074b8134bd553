/**
 * The receive side every transport shares (one implementation, so the simulator and a real run
 * agree on what counts as late, duplicate or not-a-neighbour): decode and validate a frame, check
 * its sender, buffer it per round, and hand a round's frames to `collect`.
 *
 *   const inbox = new Inbox({ expect, roster: [1, 2] }, { metrics, events });
 *   inbox.acceptFrame(bytes, 1);                 // from the transport's receive path
 *   const r = await inbox.collect(5, [1, 2], 2000, signal);
 *   inbox.recycle(msg.weights);                  // done with a received vector: reuse its memory
 *   inbox.close();                               // on stop: a pending collect resolves 'stopped'
 *
 * Semantics:
 * - `collect(k)` resolves as soon as every expected sender's round-k frame is in, or the deadline
 *   passes, or the signal aborts (it resolves, with `ended` saying why; it never rejects for those).
 * - Frames for rounds after the last collected one are buffered within `maxBufferedBytes` (else
 *   'buffer-full'). Beyond `window` rounds past the first round still to be collected (the pending
 *   one, if any) a sender keeps only its newest frame: a node that fell behind (paused, restarted)
 *   must not throw away what its neighbours ahead sent, since their freshest models are what lets
 *   it catch up; one frame per sender bounds what the window no longer does. An older frame
 *   beyond the window is counted late, like any frame superseded before it was used.
 * - Frames for a round already collected (or skipped over) are counted late and dropped.
 * - `collect(k, ..., { since })` (catch-up and asynchronous gossip) takes, for each expected sender,
 *   its newest frame of any round from `since` on (k itself, older or newer), and while it waits
 *   a fresher frame replaces an older one. Rounds below `since` are over; so is every round up to
 *   the one taken from a sender, for that sender.
 * - A buffered frame whose sender is not in `expected` of its round is rejected 'not-neighbour'
 *   when that round is collected (the receiver only then knows the round's topology); a second
 *   frame from the same sender for the same round is rejected 'duplicate'.
 * - The received list is ordered by sender index, so mixing sums in the same order on every run.
 * - Decoded weights live in buffers from a BufferPool: a frame the inbox drops (rejected, late,
 *   duplicate, beyond the window) gives its buffer back at once, and a collected vector does when
 *   its owner calls recycle() (see pool.ts for why that matters on a busy receiver).
 */
import { type RejectReason, TransportError, WireError } from '../errors.js';
import { BufferPool, type BufferPoolOptions } from './pool.js';
import type {
  CollectOptions,
  CollectResult,
  TransportEvents,
  TransportMetrics,
  WeightsMessage,
} from './transport.js';
import {
  type DecodedFrame,
  decodeFrame,
  FrameDecoder,
  type FrameExpectations,
  type FrameSink,
} from './wire.js';

const DEFAULT_HORIZON = 10_000;

export interface InboxInit {
  /** What every frame must match (run, model signature, size, layout, max bytes). */
  readonly expect: FrameExpectations;
  /** Senders admitted at all; undefined admits any index (unknown ones are 'unknown-sender'). */
  readonly roster?: readonly number[];
  /** Rounds ahead of the last collected round that are buffered. Default 4. */
  readonly window?: number;
  /**
   * Rounds ahead of the first round still to be collected beyond which a frame is rejected
   * 'future': no honest peer runs that far ahead of a node that is still running. Default 10,000.
   */
  readonly horizon?: number;
  /** Bound on decoded bytes held in buffers. Default: 64 full-size frames, at least 64 MiB. */
  readonly maxBufferedBytes?: number;
  /** Bounds on the free receive buffers kept for reuse (see BufferPool; default 8, 256 MiB). */
  readonly pool?: BufferPoolOptions;
}

export interface InboxComponents {
  readonly metrics?: TransportMetrics;
  readonly events?: TransportEvents;
  readonly log?: (msg: string) => void;
}

interface Pending {
  readonly round: number;
  /** Freshest mode: the oldest round accepted from an expected sender (see collect). */
  readonly since: number | undefined;
  readonly expected: ReadonlySet<number>;
  readonly got: Map<number, WeightsMessage>;
  /** Resolve early once all expected, or all of `waitFor` plus a grace period, arrived. */
  check(): void;
  finish(ended: NonNullable<CollectResult['ended']>): void;
}

export class Inbox {
  private readonly window: number;
  private readonly maxBufferedBytes: number;
  private roster: Set<number> | undefined;
  /** Highest round whose collect finished; frames at or below it are late. */
  private closedRound = -1;
  /** Whether any collect has started (before that, any round may be buffered). */
  private started = false;
  /** Per sender, the round of the newest frame a collect took from it: older ones are late. */
  private readonly taken = new Map<number, number>();
  private readonly buffers = new Map<number, Map<number, WeightsMessage>>();
  private bufferedBytes = 0;
  private pending: Pending | undefined;
  private stopped = false;
  private readonly pool: BufferPool;

  constructor(
    private readonly init: InboxInit,
    private readonly components: InboxComponents = {},
  ) {
    this.window = init.window ?? 4;
    if (!Number.isInteger(this.window) || this.window < 0) {
      throw new RangeError(`inbox window must be a non-negative integer, got ${init.window}`);
    }
    this.maxBufferedBytes =
      init.maxBufferedBytes ?? Math.max(64 * 1024 * 1024, 64 * 4 * init.expect.size);
    this.roster = init.roster ? new Set(init.roster) : undefined;
    this.pool = new BufferPool(init.pool);
  }

  /**
   * Hand back a collected vector (`WeightsMessage.weights`) that nothing will read any more: a
   * later frame may be decoded into its memory. Returns false (and does nothing) for an array
   * this inbox did not hand out or one already handed back, so a stray call cannot make two
   * frames share memory; but a caller that still reads (or built a tensor on) a vector it handed
   * back will see it overwritten.
   */
  recycle(weights: Float32Array): boolean {
    return this.pool.giveArray(weights);
  }

  /** Free receive buffers held for reuse now. */
  get pooledBuffers(): number {
    return this.pool.size;
  }

  setRoster(roster: readonly number[] | undefined): void {
    this.roster = roster ? new Set(roster) : undefined;
  }

  /** Bytes of decoded weights currently held (buffers and the pending collect). */
  get heldBytes(): number {
    return this.bufferedBytes;
  }

  /**
   * The whole receive path for one frame from the peer `from` (as the transport authenticated it;
   * undefined when the peer is not in the roster), whole or as the chunks it arrived in. Never
   * throws: a bad frame is counted by reason.
   * Returns the reject reason, 'late', or 'accepted'.
   */
  acceptFrame(
    bytes: Uint8Array | readonly Uint8Array[],
    from: number | undefined,
  ): RejectReason | 'late' | 'accepted' {
    if (!this.admits(from)) return this.reject(from, 'unknown-sender', 'peer is not in the roster');
    let frame: DecodedFrame;
    try {
      frame = decodeFrame(bytes, this.init.expect, this.pool);
    } catch (e) {
      return this.decodeFailed(from, e);
    }
    return this.acceptDecoded(frame, from);
  }

  /**
   * The same receive path for a frame of `length` bytes still arriving from `from`: push its bytes
   * as they come (they are decoded and validated on the fly, never held), end() gives the verdict.
   * A peer outside the roster gets a sink that drops the bytes undecoded.
   */
  frameSink(
    from: number | undefined,
    length: number,
  ): FrameSink<RejectReason | 'late' | 'accepted'> {
    if (!this.admits(from)) {
      return {
        push: () => {},
        end: () => this.reject(from, 'unknown-sender', 'peer is not in the roster'),
      };
    }
    const decoder = new FrameDecoder(this.init.expect, length, this.pool);
    return {
      push: (part) => decoder.push(part),
      end: () => {
        let frame: DecodedFrame;
        try {
          frame = decoder.finish();
        } catch (e) {
          return this.decodeFailed(from, e);
        }
        return this.acceptDecoded(frame, from);
      },
    };
  }

  private admits(from: number | undefined): from is number {
    return from !== undefined && (!this.roster || this.roster.has(from));
  }

  private decodeFailed(from: number, e: unknown): RejectReason {
    if (e instanceof WireError) return this.reject(from, e.reason, e.message);
    return this.reject(from, 'truncated', `undecodable frame: ${String(e)}`);
  }

  private acceptDecoded(frame: DecodedFrame, from: number): RejectReason | 'late' | 'accepted' {
    if (frame.sender !== from) {
      this.pool.giveArray(frame.weights);
      return this.reject(
        from,
        'sender-mismatch',
        `header says ${frame.sender}, connection is ${from}`,
      );
    }
    return this.deliver({
      from,
      round: frame.round,
      codec: frame.codec,
      weights: frame.weights,
      mass: frame.mass,
      bytes: frame.bytes,
    });
  }

  /** Count a frame that was rejected before it could be decoded (e.g. by the stream framing). */
  reject(from: number | undefined, reason: RejectReason, detail?: string): RejectReason {
    this.components.metrics?.frameRejected(from, reason);
    this.components.events?.onReject?.(from, reason);
    this.components.log?.(`rejected frame from ${from ?? '?'}: ${detail ?? reason}`);
    return reason;
  }

  /** Route a validated message: to the pending collect, a round buffer, or the late counter. */
  deliver(msg: WeightsMessage): RejectReason | 'late' | 'accepted' {
    const verdict = this.route(msg);
    // Not kept: nobody else has seen this vector, its buffer is free again.
    if (verdict !== 'accepted') this.pool.giveArray(msg.weights);
    // After routing: a listener may end the pending collect, which must already hold the frame.
    if (verdict === 'accepted' || verdict === 'late') {
      this.components.events?.onFrame?.(msg.from, msg.round);
    }
    return verdict;
  }

  private route(msg: WeightsMessage): RejectReason | 'late' | 'accepted' {
    if (this.stopped) return 'stale';
    if (msg.round <= this.closedRound || msg.round <= (this.taken.get(msg.from) ?? -1)) {
      return this.late(msg.from, msg.round);
    }
    const p = this.pending;
    if (p?.since !== undefined && msg.round < p.since) return this.late(msg.from, msg.round);
    if (p?.since !== undefined && p.expected.has(msg.from)) {
      const had = p.got.get(msg.from);
      if (had && had.round >= msg.round) return this.late(msg.from, msg.round);
      if (!this.hold(msg)) return this.reject(msg.from, 'buffer-full');
      if (had) this.drop(had, 'late');
      p.got.set(msg.from, msg);
      p.check();
      return 'accepted';
    }
    if (p && p.round === msg.round) {
      if (!p.expected.has(msg.from)) return this.reject(msg.from, 'not-neighbour');
      if (p.got.has(msg.from)) return this.reject(msg.from, 'duplicate');
      if (!this.hold(msg)) return this.reject(msg.from, 'buffer-full');
      p.got.set(msg.from, msg);
      p.check();
      return 'accepted';
    }
    if (msg.round > this.firstOpenRound() + (this.init.horizon ?? DEFAULT_HORIZON)) {
      return this.reject(msg.from, 'future', `round ${msg.round} beyond the horizon`);
    }
    let buf = this.buffers.get(msg.round);
    if (buf?.has(msg.from)) return this.reject(msg.from, 'duplicate');
    if (this.started && msg.round > this.windowEnd()) {
      // Beyond the window a sender keeps one frame, its newest.
      const ahead = this.heldBeyondWindow(msg.from);
      if (ahead && ahead.round > msg.round) return this.late(msg.from, msg.round);
      if (!this.hold(msg)) return this.reject(msg.from, 'buffer-full');
      if (ahead) this.unbuffer(ahead, 'late');
    } else if (!this.hold(msg)) return this.reject(msg.from, 'buffer-full');
    if (!buf) {
      buf = new Map();
      this.buffers.set(msg.round, buf);
    }
    buf.set(msg.from, msg);
    return 'accepted';
  }

  /** The frame of `from` buffered beyond the window, if any (there is at most one). */
  private heldBeyondWindow(from: number): WeightsMessage | undefined {
    const limit = this.windowEnd();
    for (const [r, buf] of this.buffers) {
      if (r <= limit) continue;
      const m = buf.get(from);
      if (m) return m;
    }
    return undefined;
  }

  /** Take a buffered frame out of its round buffer and drop it. */
  private unbuffer(m: WeightsMessage, why: 'late' | 'not-neighbour'): void {
    const buf = this.buffers.get(m.round);
    buf?.delete(m.from);
    if (buf?.size === 0) this.buffers.delete(m.round);
    this.drop(m, why);
  }

  /** Drop a held frame: its bytes and buffer are free again, and it is counted. */
  private drop(m: WeightsMessage, why: 'late' | 'not-neighbour'): void {
    this.release(m);
    this.pool.giveArray(m.weights);
    if (why === 'late') this.late(m.from, m.round);
    else this.reject(m.from, why);
  }

  collect(
    round: number,
    expected: readonly number[],
    deadlineMs: number,
    signal?: AbortSignal,
    opts: CollectOptions = {},
  ): Promise<CollectResult> {
    if (this.pending) {
      throw new TransportError(`collect(${round}) while collect(${this.pending.round}) is pending`);
    }
    if (!Number.isInteger(round) || round < 0 || round <= this.closedRound) {
      throw new TransportError(
        `collect round must be an integer above the last collected round ${this.closedRound} (got ${round})`,
      );
    }
    const want = new Set(expected);
    if (this.stopped) {
      return Promise.resolve(result(round, want, new Map(), 'stopped'));
    }
    this.started = true;
    const since = opts.since;
    if (since !== undefined && (!Number.isInteger(since) || since < 0)) {
      throw new TransportError(`collect since must be a non-negative integer (got ${since})`);
    }
    // Rounds skipped over will never be collected: their frames are late now.
    const floor = Math.min(round, since ?? round);
    for (const [r, buf] of this.buffers) {
      if (r >= floor) continue;
      for (const m of buf.values()) this.drop(m, 'late');
      this.buffers.delete(r);
    }
    const got = new Map<number, WeightsMessage>();
    if (since !== undefined) {
      // Freshest mode: each expected sender's newest frame, whatever its round; its older ones
      // are superseded.
      for (const j of want) {
        const held = [...this.buffers.values()]
          .map((b) => b.get(j))
          .filter((m): m is WeightsMessage => m !== undefined)
          .sort((a, b) => b.round - a.round);
        const [newest, ...older] = held;
        for (const m of older) this.unbuffer(m, 'late');
        if (!newest) continue;
        const buf = this.buffers.get(newest.round);
        buf?.delete(j);
        if (buf?.size === 0) this.buffers.delete(newest.round);
        got.set(j, newest);
      }
    }
    const buf = this.buffers.get(round);
    this.buffers.delete(round);
    for (const m of buf?.values() ?? []) {
      if (want.has(m.from)) got.set(m.from, m);
      else this.drop(m, 'not-neighbour');
    }

    const waitFor = opts.waitFor ? new Set(opts.waitFor.filter((j) => want.has(j))) : undefined;
    const waived = new Set<number>();
    return new Promise<CollectResult>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let grace: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => pending.finish('aborted');
      const pending: Pending = {
        round,
        since,
        expected: want,
        got,
        check: () => {
          const settled = (j: number) => got.has(j) || waived.has(j);
          if (got.size === want.size || [...want].every(settled)) {
            return pending.finish('complete');
          }
          if (!waitFor || grace !== undefined) return;
          for (const j of waitFor) if (!settled(j)) return;
          grace = setTimeout(() => pending.finish('complete'), Math.max(0, opts.graceMs ?? 0));
        },
        finish: (ended) => {
          if (this.pending !== pending) return;
          this.pending = undefined;
          if (timer !== undefined) clearTimeout(timer);
          if (grace !== undefined) clearTimeout(grace);
          signal?.removeEventListener('abort', onAbort);
          // Freshest mode closes only the rounds below `since`: a slower sender's next frame may
          // still be the freshest it has to give.
          this.closedRound = since === undefined ? round : Math.max(this.closedRound, since - 1);
          for (const m of got.values()) {
            this.taken.set(m.from, Math.max(m.round, this.taken.get(m.from) ?? -1));
            this.release(m);
            this.components.metrics?.frameReceived(m.from, m.bytes);
          }
          this.pruneBeyondWindow();
          resolve(result(round, want, got, ended));
        },
      };
      this.pending = pending;
      opts.onWaiting?.(
        (j) => {
          if (this.pending !== pending || !want.has(j) || waived.has(j)) return;
          waived.add(j);
          pending.check();
        },
        (j) => {
          if (this.pending !== pending || !waitFor || !want.has(j) || got.has(j)) return;
          if (waitFor.has(j) && !waived.has(j)) return;
          waitFor.add(j);
          waived.delete(j);
          // The grace period was for senders nobody expected; this one is expected now.
          if (grace !== undefined) clearTimeout(grace);
          grace = undefined;
        },
      );
      pending.check();
      if (this.pending !== pending) return;
      if (signal?.aborted) return pending.finish('aborted');
      signal?.addEventListener('abort', onAbort, { once: true });
      if (Number.isFinite(deadlineMs)) {
        // setTimeout overflows above 2^31-1 ms (and then fires at once): clamp.
        const ms = Math.min(Math.max(0, deadlineMs), 0x7fffffff);
        timer = setTimeout(() => pending.finish('deadline'), ms);
      }
    });
  }

  /** Stop: a pending collect resolves 'stopped', buffers are dropped, later frames are ignored. */
  close(): void {
    this.stopped = true;
    this.pending?.finish('stopped');
    this.buffers.clear();
    this.bufferedBytes = 0;
    this.pool.clear();
  }

  private late(from: number, round: number): 'late' {
    this.components.metrics?.frameLate(from, round);
    this.components.events?.onLate?.(from, round);
    return 'late';
  }

  private hold(m: WeightsMessage): boolean {
    if (this.bufferedBytes + m.weights.byteLength > this.maxBufferedBytes) return false;
    this.bufferedBytes += m.weights.byteLength;
    return true;
  }

  private release(m: WeightsMessage): void {
    this.bufferedBytes -= m.weights.byteLength;
  }

  /**
   * The last round a frame may be buffered for: `window` rounds past the first round that can
   * still be collected, which is the one being collected if any. A node whose first collect is a
   * late round (it joined late) must not reject its neighbours' next round as too far ahead.
   */
  private windowEnd(): number {
    return this.firstOpenRound() + this.window;
  }

  /** The first round that can still be collected: the pending one, or the one after the last. */
  private firstOpenRound(): number {
    return this.pending?.round ?? this.closedRound + 1;
  }

  /** After the window moved: beyond it, each sender keeps only its newest frame. */
  private pruneBeyondWindow(): void {
    const limit = this.windowEnd();
    const newest = new Map<number, WeightsMessage>();
    for (const [r, buf] of this.buffers) {
      if (r <= limit) continue;
      for (const m of buf.values()) {
        const had = newest.get(m.from);
        if (had && had.round > m.round) this.unbuffer(m, 'late');
        else {
          if (had) this.unbuffer(had, 'late');
          newest.set(m.from, m);
        }
      }
    }
  }
}

function result(
  round: number,
  want: ReadonlySet<number>,
  got: ReadonlyMap<number, WeightsMessage>,
  ended: NonNullable<CollectResult['ended']>,
): CollectResult {
  const received = [...got.values()].sort((a, b) => a.from - b.from);
  const missing = [...want].filter((p) => !got.has(p)).sort((a, b) => a - b);
  return { round, received, missing, lost: [], ended };
}
