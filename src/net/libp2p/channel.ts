/**
 * One long-lived outbound weights stream to a peer. Frames are written back to back on the same
 * stream and the receiver answers each with a one-byte receipt, in order; so after the first
 * round a send costs neither a stream open, a protocol selection, a close handshake, nor yamux's
 * window ramp-up from 256 KiB (a fresh stream's window, which a 6.4 MB frame paid every time).
 *
 *   const ch = new OutboundChannel(await conn.newStream(WEIGHTS_PROTOCOL, opts));
 *   const code = await ch.send(frame, signal);   // receipt byte, or undefined if the stream ended
 *   if (!ch.usable) ...                           // open a new one
 *   ch.abort(err);                                 // after a failed send: FIFO state is unknown
 *
 * A send that fails (deadline, abort, stream reset) leaves the stream in an unknown state (part of
 * a frame written, a receipt maybe still in flight), so the caller aborts the channel and the next
 * send opens a fresh stream: receipts can never be matched to the wrong frame.
 */
import type { Stream } from '@libp2p/interface';
import * as lp from 'it-length-prefixed';
import { Uint8ArrayList } from 'uint8arraylist';
import { ByteQueue } from './framing.js';

export class OutboundChannel {
  private readonly queue = new ByteQueue();
  /** Receipt waiters, oldest first (one per frame written). */
  private readonly waiting: ((code: number | undefined) => void)[] = [];
  private closed = false;

  constructor(private readonly stream: Stream) {
    stream.sink(this.queue).then(
      () => {},
      () => this.shut(),
    );
    void this.readReceipts();
  }

  /** Whether a new frame may be written on this stream. */
  get usable(): boolean {
    return (
      !this.closed &&
      this.stream.status === 'open' &&
      (this.stream.writeStatus === 'ready' || this.stream.writeStatus === 'writing')
    );
  }

  /**
   * Queue one encoded frame (whole, or as consecutive parts); resolves with the receiver's receipt byte, or undefined when the
   * stream ended first. Rejects with the signal's reason when it aborts (then abort the channel).
   * `onWritten` runs when the whole frame has been handed to the stream (before the receipt).
   */
  send(
    frame: Uint8Array | readonly Uint8Array[],
    signal: AbortSignal,
    onWritten?: () => void,
  ): Promise<number | undefined> {
    if (!this.usable) return Promise.resolve(undefined);
    signal.throwIfAborted();
    return new Promise<number | undefined>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push((code) => {
        signal.removeEventListener('abort', onAbort);
        resolve(code);
      });
      // it-length-prefixed adds the varint length prefix; a frame given as parts (header,
      // payload) is written as they are: never joined here.
      const parts = frame instanceof Uint8Array ? [frame] : frame;
      const chunks = [
        ...lp.encode.single(new Uint8ArrayList(...parts), {
          maxDataLength: Number.MAX_SAFE_INTEGER,
        }),
      ];
      if (onWritten) this.queue.pushThen(chunks, onWritten);
      else this.queue.push(...chunks);
    });
  }

  /** Finish gracefully: the receiver answers what is queued, then both sides close. */
  close(): void {
    this.closed = true;
    this.queue.end();
  }

  /** Reset the stream; pending sends resolve undefined. */
  abort(err: Error): void {
    this.shut();
    this.stream.abort(err);
  }

  private async readReceipts(): Promise<void> {
    try {
      for await (const chunk of this.stream.source) {
        for (const buf of chunk) {
          for (const code of buf) {
            const w = this.waiting.shift();
            // A receipt nobody waits for: the peer does not speak this protocol as we do.
            if (!w) return this.abort(new Error('unexpected receipt on weights stream'));
            w(code);
          }
        }
      }
    } catch {
      // stream reset or aborted: handled below
    }
    this.shut();
  }

  private shut(): void {
    this.closed = true;
    this.queue.end();
    for (const w of this.waiting.splice(0)) w(undefined);
  }
}
