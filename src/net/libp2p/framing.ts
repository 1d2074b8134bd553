/**
 * Length-prefixed frames on a long-lived libp2p stream, without joining received chunks: the
 * reader hands each chunk slice of a frame to a per-frame sink as it arrives (the inbox's
 * FrameDecoder copies it straight into the receiver's weight buffer while it is still in cache)
 * and yields what the sink makes of the whole frame; without a sink it yields the slices. A byte
 * queue feeds a stream's sink with frames as they are sent. The prefix is an unsigned LEB128
 * varint, the same as it-length-prefixed's, so a peer that writes one `lp.encode.single` frame per
 * stream is read the same way.
 *
 *   for await (const verdict of readFrames(source, { maxBytes }, (len) => inbox.frameSink(from, len))) ...
 *   for await (const parts of readFrames(stream.source, { maxBytes, frameTimeoutMs, onTimeout })) ...
 *   const q = new ByteQueue();  void stream.sink(q);  q.push(...lp.encode.single(frame));
 */
import type { Uint8ArrayList } from 'uint8arraylist';
import { WireError } from '../../errors.js';
import type { FrameSink } from '../wire.js';

/** A varint prefix longer than this cannot describe a frame we would accept (<= 2^35). */
const MAX_PREFIX_BYTES = 5;

export interface ReadFramesOptions {
  /** Largest frame accepted (a longer prefix throws WireError 'oversized' before any payload). */
  readonly maxBytes: number;
  /**
   * Deadline for one frame, from its first prefix byte to its last byte (the stream may idle
   * between frames for as long as the connection lives). Default: none.
   */
  readonly frameTimeoutMs?: number;
  /** Called when a frame misses its deadline (abort the stream here: that ends the reader). */
  readonly onTimeout?: () => void;
  /**
   * Called instead of throwing when the source fails while no frame is in progress (the peer
   * stopped or its connection dropped between frames: nothing was lost); the reader then ends.
   * Without it such an error is thrown like any other.
   */
  readonly onIdleError?: (err: unknown) => void;
}

export type { FrameSink };

/** The default sink: the frame as the list of chunk slices it arrived in (no copy). */
function collectParts(): FrameSink<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  return { push: (p) => parts.push(p), end: () => parts };
}

/**
 * Frames of `source`: each frame's bytes go to a sink made by `begin(length)` as they arrive, and
 * the sink's end() is yielded once the frame is complete (by default the list of slices of the
 * received chunks it spans, no copy). Throws WireError 'oversized' for a prefix above maxBytes
 * (before any payload) and 'truncated' when the stream ends inside a frame. A zero-length frame
 * ends its sink at once (an empty list by default; decoders reject it as truncated).
 */
export function readFrames(
  source: AsyncIterable<Uint8ArrayList | Uint8Array>,
  opts: ReadFramesOptions,
): AsyncGenerator<Uint8Array[]>;
export function readFrames<T>(
  source: AsyncIterable<Uint8ArrayList | Uint8Array>,
  opts: ReadFramesOptions,
  begin: (length: number) => FrameSink<T>,
): AsyncGenerator<T>;
export async function* readFrames<T>(
  source: AsyncIterable<Uint8ArrayList | Uint8Array>,
  opts: ReadFramesOptions,
  begin?: (length: number) => FrameSink<T>,
): AsyncGenerator<T | Uint8Array[]> {
  const start = (begin ?? collectParts) as (length: number) => FrameSink<T | Uint8Array[]>;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const startTimer = () => {
    if (opts.frameTimeoutMs !== undefined && opts.onTimeout && timer === undefined) {
      timer = setTimeout(opts.onTimeout, opts.frameTimeoutMs);
    }
  };
  const stopTimer = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  // Prefix state (need < 0) or payload state (need = frame length).
  let need = -1;
  let len = 0;
  let scale = 1;
  let prefixBytes = 0;
  let sink: FrameSink<T | Uint8Array[]> | undefined;
  let have = 0;
  const iterator = source[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Uint8ArrayList | Uint8Array>;
      try {
        next = await iterator.next();
      } catch (e) {
        if (need < 0 && prefixBytes === 0 && opts.onIdleError) {
          opts.onIdleError(e);
          return;
        }
        throw e;
      }
      if (next.done) break;
      const chunk = next.value;
      for (const buf of chunk instanceof Uint8Array ? [chunk] : chunk) {
        let off = 0;
        while (off < buf.length) {
          if (need < 0) {
            if (prefixBytes === 0) startTimer();
            const b = buf[off++]!;
            len += (b & 0x7f) * scale;
            scale *= 0x80;
            prefixBytes++;
            if (b & 0x80) {
              if (prefixBytes >= MAX_PREFIX_BYTES) {
                throw new WireError('oversized', 'frame length prefix is too long');
              }
              continue;
            }
            if (len > opts.maxBytes) {
              throw new WireError('oversized', `frame of ${len} bytes exceeds ${opts.maxBytes}`);
            }
            need = len;
            len = 0;
            scale = 1;
            prefixBytes = 0;
            sink = start(need);
            have = 0;
            if (need === 0) {
              stopTimer();
              need = -1;
              const done = sink;
              sink = undefined;
              yield done.end();
            }
            continue;
          }
          const take = Math.min(need - have, buf.length - off);
          sink!.push(off === 0 && take === buf.length ? buf : buf.subarray(off, off + take));
          off += take;
          have += take;
          if (have === need) {
            stopTimer();
            need = -1;
            const done = sink!;
            sink = undefined;
            yield done.end();
          }
        }
      }
    }
    if (need >= 0 || prefixBytes > 0) {
      throw new WireError(
        'truncated',
        need >= 0
          ? `stream ended after ${have} of ${need} frame bytes`
          : 'stream ended inside a length prefix',
      );
    }
  } finally {
    stopTimer();
  }
}

/**
 * An unbounded FIFO of byte chunks read by one consumer (a stream's sink). push() never blocks:
 * the caller bounds what it queues (the transport queues one frame per peer per round and awaits
 * its receipt).
 */
export class ByteQueue implements AsyncIterable<Uint8Array> {
  private readonly items: { chunk: Uint8Array; onConsumed?: () => void }[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  /** Chunks queued and not yet taken by the consumer. */
  get pending(): number {
    return this.items.length;
  }

  push(...chunks: Uint8Array[]): void {
    if (this.ended) return;
    for (const chunk of chunks) this.items.push({ chunk });
    this.wake?.();
  }

  /**
   * Queue `chunks`; `onConsumed` runs once the consumer asked for what follows the last of them,
   * i.e. the sink has taken them in whole (for a stream: handed on to the muxer and the socket).
   */
  pushThen(chunks: readonly Uint8Array[], onConsumed: () => void): void {
    if (this.ended) return;
    chunks.forEach((chunk, i) =>
      this.items.push(i === chunks.length - 1 ? { chunk, onConsumed } : { chunk }),
    );
    this.wake?.();
  }

  /** No more chunks: the consumer finishes after draining what is queued. */
  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const next = this.items.shift();
      if (next) {
        yield next.chunk;
        next.onConsumed?.();
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => {
        this.wake = r;
      });
      this.wake = undefined;
    }
  }
}
