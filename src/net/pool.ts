/**
 * Receive buffers handed back for reuse. A node receives one model-sized vector per neighbour per
 * round; allocating each afresh costs a receiver twice over (measured with `npm run bench -- net`,
 * 6.4 MB f32 frames): the fresh pages fault in on first write (~2.5 ms a frame), and a vector held
 * across two young-generation collections (a round's frames wait for the mix) is promoted, so its
 * external memory is freed only by full mark-compact collections, which V8 then runs every few
 * frames (~10 ms of receiver CPU a frame). A buffer that comes back here is never freed at all.
 *
 *   const pool = new BufferPool();
 *   const buf = pool.take(bytes);      // uninitialized: a returned buffer of that size, or a new one
 *   pool.give(buf.buffer);             // back, once nothing reads it; false if not taken from here
 *
 * Only buffers this pool handed out and that are still out are accepted back, each once: a caller
 * that gives back a foreign or already returned buffer cannot make two frames share memory.
 */
import { ConfigError } from '../errors.js';

export interface BufferPoolOptions {
  /** Free buffers kept (default 8, >= 0); beyond it a returned buffer is left to the GC. */
  readonly maxBuffers?: number;
  /** Bytes of free buffers kept (default 256 MiB, >= 0). */
  readonly maxBytes?: number;
}

export class BufferPool {
  private readonly maxBuffers: number;
  private readonly maxBytes: number;
  /** Free buffers by byte length. */
  private readonly free = new Map<number, ArrayBuffer[]>();
  /** Buffers handed out and not yet back (weak: one nobody returns is simply collected). */
  private readonly out = new WeakSet<ArrayBuffer>();
  private freeCount = 0;
  private freeBytes = 0;

  constructor(opts: BufferPoolOptions = {}) {
    this.maxBuffers = checkBound('maxBuffers', opts.maxBuffers, 8);
    this.maxBytes = checkBound('maxBytes', opts.maxBytes, 256 * 1024 * 1024);
  }

  /** Free buffers held now. */
  get size(): number {
    return this.freeCount;
  }

  /** A buffer of exactly `bytes` bytes (its own ArrayBuffer), contents unspecified. */
  take(bytes: number): Uint8Array {
    const list = this.free.get(bytes);
    let ab = list?.pop();
    if (ab) {
      this.freeCount--;
      this.freeBytes -= bytes;
    } else {
      // Not zeroed: every taker overwrites the whole buffer before anyone reads it. allocUnsafeSlow
      // gives the buffer its own ArrayBuffer (never a slice of Node's shared pool).
      const b = Buffer.allocUnsafeSlow(bytes);
      ab = b.buffer as ArrayBuffer;
    }
    this.out.add(ab);
    return new Uint8Array(ab, 0, bytes);
  }

  /**
   * Return a buffer that nothing will read any more. Returns whether it was taken back: false for
   * a buffer this pool did not hand out, one already returned, or one beyond the pool's bounds.
   */
  give(ab: ArrayBufferLike): boolean {
    if (!(ab instanceof ArrayBuffer) || !this.out.has(ab)) return false;
    this.out.delete(ab);
    const bytes = ab.byteLength;
    if (this.freeCount >= this.maxBuffers || this.freeBytes + bytes > this.maxBytes) return false;
    let list = this.free.get(bytes);
    if (!list) {
      list = [];
      this.free.set(bytes, list);
    }
    list.push(ab);
    this.freeCount++;
    this.freeBytes += bytes;
    return true;
  }

  /**
   * Return the memory of a Float32Array this pool's buffer backs whole (a decoded weights vector);
   * false for any other array.
   */
  giveArray(a: ArrayBufferView): boolean {
    const ab = a.buffer;
    if (a.byteOffset !== 0 || a.byteLength !== ab.byteLength) return false;
    return this.give(ab);
  }

  /** Drop every free buffer (to the GC); buffers still out may still be given back. */
  clear(): void {
    this.free.clear();
    this.freeCount = 0;
    this.freeBytes = 0;
  }
}

function checkBound(field: string, value: number | undefined, def: number): number {
  if (value === undefined) return def;
  if (!Number.isInteger(value) || value < 0) {
    throw new ConfigError(field, 'must be an integer >= 0', value);
  }
  return value;
}
