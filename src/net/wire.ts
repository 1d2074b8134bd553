/**
 * The weights frame: a fixed-layout little-endian header followed by the codec's payload. Both
 * transports encode and decode through here, so the simulator exercises the same validation as a
 * real network. Decoding never uses a general object deserializer: every field is read at a fixed
 * offset and checked before the payload is touched, and a bad frame throws WireError(reason).
 *
 *   const bytes = encodeFrame({ runId, round, sender: 3, signature, mass: 1 }, w, 'f16', layout);
 *   const f = decodeFrame(bytes, { runId, signature, size: w.length, layout, maxBytes });
 *   f.weights; // fresh Float32Array owned by the caller
 *   decodeFrame([chunk1, chunk2], expect);  // a frame as the stream chunks it arrived in
 *
 * Header (56 bytes, little-endian):
 *   0  u32 magic 'FMWT'      4  u8 version (1)     5  u8 codec (0 f32, 1 f16, 2 int8)
 *   6  u16 flags (0)         8  8 bytes run id hash
 *   16 u32 round             20 u32 sender index   24 u32 element count   28 u32 payload bytes
 *   32 8 bytes model signature (16 hex chars)      40 f64 push-sum mass
 *   48 u32 CRC32 of the payload                    52 u32 reserved (0)
 *   56 payload
 * Flags and the reserved word must be 0 ('bad-reserved'); the mass must be finite ('non-finite')
 * and in (0, maxMass] ('bad-mass').
 */
import { endianness } from 'node:os';
import * as zlib from 'node:zlib';
import { equals } from 'uint8arrays/equals';
import { fromString } from 'uint8arrays/from-string';
import { ConfigError, WireError } from '../errors.js';
import {
  type Codec,
  checkLayout,
  decodeWeights,
  encodedSize,
  encodeWeights,
  firstNonFinite,
} from '../gossip/codecs.js';
import type { BufferPool } from './pool.js';

export const FRAME_MAGIC = 0x54574d46; // 'FMWT' read as little-endian u32
export const FRAME_VERSION = 1;
export const HEADER_BYTES = 56;

const LITTLE = endianness() === 'LE';

const CODEC_IDS: Record<Codec, number> = { f32: 0, f16: 1, int8: 2 };
const CODEC_BY_ID: readonly Codec[] = ['f32', 'f16', 'int8'];

export interface FrameHeader {
  readonly runId: string;
  readonly round: number;
  readonly sender: number;
  /** Model signature: 16 hex characters (a hash of parameter names and shapes). */
  readonly signature: string;
  /** Push-sum mass; 1 when the mixing rule does not use one. */
  readonly mass?: number;
}

export interface FrameExpectations {
  readonly runId: string;
  readonly signature: string;
  /** Element count of the model's flat parameter vector. */
  readonly size: number;
  readonly layout: readonly number[];
  /** Largest frame accepted, header included. */
  readonly maxBytes: number;
  /** Largest push-sum mass accepted (default MAX_MASS); a mass must also be above 0. */
  readonly maxMass?: number;
}

/**
 * Default bound on a frame's push-sum mass. Every node starts with mass 1 and push-sum only
 * splits and moves mass, so no share ever exceeds the number of nodes in the run; a larger (or a
 * zero or negative) mass can only come from a broken or malicious peer and would swamp the
 * receiver's ratio. 2^16 is above any roster flatmesh runs.
 */
export const MAX_MASS = 65_536;

export interface DecodedFrame {
  readonly round: number;
  readonly sender: number;
  readonly codec: Codec;
  readonly mass: number;
  readonly weights: Float32Array;
  /** Bytes the frame occupied (header + payload). */
  readonly bytes: number;
}

/** Size in bytes of a frame for `size` elements under `codec`. */
export function frameSize(codec: Codec, size: number, layout: readonly number[]): number {
  return HEADER_BYTES + encodedSize(codec, size, layout);
}

/** The largest frame any codec produces for this model (a sensible maxBytes). */
export function maxFrameSize(size: number, layout: readonly number[]): number {
  return Math.max(...CODEC_BY_ID.map((c) => frameSize(c, size, layout)));
}

export function encodeFrame(
  h: FrameHeader,
  weights: Float32Array,
  codec: Codec,
  layout: readonly number[],
): Uint8Array {
  const { header, payload } = encodeFrameParts(h, weights, codec, layout);
  const frame = new Uint8Array(header.length + payload.length);
  frame.set(header);
  frame.set(payload, header.length);
  return frame;
}

/**
 * The frame as its header and its payload, without joining them: what a stream writes. For f32 on
 * a little-endian host the payload is a view of `weights` itself (no copy, no allocation), so the
 * caller must not change `weights` while the frame may still be read (the Transport contract: not
 * until the send settles); the other codecs encode into a fresh buffer.
 */
export function encodeFrameParts(
  h: FrameHeader,
  weights: Float32Array,
  codec: Codec,
  layout: readonly number[],
): { header: Uint8Array; payload: Uint8Array } {
  checkLayout(layout, weights.length);
  const payloadBytes = encodedSize(codec, weights.length, layout);
  const payload =
    codec === 'f32' && LITTLE
      ? new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength)
      : encodeWeights(codec, weights, layout, uninitialized(payloadBytes));
  const header = new Uint8Array(HEADER_BYTES);
  const dv = new DataView(header.buffer, header.byteOffset, HEADER_BYTES);
  dv.setUint32(0, FRAME_MAGIC, true);
  dv.setUint8(4, FRAME_VERSION);
  dv.setUint8(5, CODEC_IDS[codec]);
  dv.setUint16(6, 0, true);
  header.set(runIdHash(h.runId), 8);
  dv.setUint32(16, checkU32('round', h.round), true);
  dv.setUint32(20, checkU32('sender', h.sender), true);
  dv.setUint32(24, weights.length, true);
  dv.setUint32(28, payloadBytes, true);
  header.set(signatureBytes(h.signature), 32);
  dv.setFloat64(40, h.mass ?? 1, true);
  dv.setUint32(48, crc32(payload), true);
  dv.setUint32(52, 0, true);
  return { header, payload };
}

/**
 * Validate and decode one frame; throws WireError naming the first check that failed. The frame
 * may be given as the list of chunks it arrived in (a stream reader's slices): they are fed to a
 * FrameDecoder, which copies the payload once, straight into the buffer that becomes the decoded
 * weights (f32), and validates it there before it is returned. With a `pool` the buffers come from
 * it (see FrameDecoder).
 */
export function decodeFrame(
  frame: Uint8Array | readonly Uint8Array[],
  expect: FrameExpectations,
  pool?: BufferPool,
): DecodedFrame {
  const parts: readonly Uint8Array[] = frame instanceof Uint8Array ? [frame] : frame;
  let total = 0;
  for (const p of parts) total += p.length;
  const d = new FrameDecoder(expect, total, pool);
  for (const p of parts) d.push(p);
  return d.finish();
}

/** Receives one frame's bytes in order; end() is called once all of them were pushed. */
export interface FrameSink<T> {
  push(part: Uint8Array): void;
  end(): T;
}

/**
 * Decodes one frame of known length (a stream's length prefix) as its bytes arrive, in any
 * chunking: the header is checked as soon as it is in (a frame for another run or model is not
 * copied at all), and each payload chunk is copied into the weights buffer, added to the CRC and,
 * for f32, scanned for non-finite values while it is still in the CPU cache. Holding no chunk, it
 * lets the transport drop every received buffer at once. finish() returns the frame or throws the
 * WireError of the first failed check, in the same order as decodeFrame always reported them.
 *
 *   const d = new FrameDecoder(expect, frameLength);
 *   for (const chunk of chunks) d.push(chunk);   // never throws for bad bytes
 *   const frame = d.finish();                    // WireError(reason) if invalid
 *
 * With a `pool`, the payload buffer (for f32, the weights themselves) and the decoded weights of
 * the other codecs are taken from it, and whatever the decoder does not return (a rejected frame,
 * the f16/int8 payload once decoded) goes back to it.
 */
export class FrameDecoder {
  private readonly head = new Uint8Array(HEADER_BYTES);
  private received = 0;
  private error: WireError | undefined;
  private codec: Codec = 'f32';
  private count = 0;
  /** Payload destination (the weights' own bytes for f32 on little-endian hosts). */
  private out: Uint8Array | undefined;
  private direct: Float32Array | undefined;
  private bits: Int32Array | undefined;
  private written = 0;
  private crc = 0;
  private scanned = 0;
  private nonFinite = -1;

  constructor(
    private readonly expect: FrameExpectations,
    private readonly length: number,
    private readonly pool?: BufferPool,
  ) {
    if (length > expect.maxBytes) {
      this.error = new WireError(
        'oversized',
        `frame of ${length} bytes exceeds ${expect.maxBytes}`,
      );
    } else if (length < HEADER_BYTES) {
      this.error = new WireError(
        'truncated',
        `frame of ${length} bytes is shorter than the header`,
      );
    }
  }

  /** Feed the next bytes of the frame (at most `length` in all). */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    let bytes = chunk;
    const at = this.received;
    this.received += bytes.length;
    if (this.error) return;
    if (this.received > this.length) {
      this.error = new WireError('wrong-length', 'more bytes than the frame length');
      return;
    }
    if (at < HEADER_BYTES) {
      const take = Math.min(HEADER_BYTES - at, bytes.length);
      this.head.set(take === bytes.length ? bytes : bytes.subarray(0, take), at);
      if (at + take < HEADER_BYTES) return;
      this.error = this.checkHeader();
      if (this.error) return;
      bytes = bytes.subarray(take);
      if (bytes.length === 0) return;
    }
    const out = this.out!;
    out.set(bytes, this.written);
    this.crc = crc32(bytes, this.crc);
    this.written += bytes.length;
    const bits = this.bits;
    if (bits && this.nonFinite < 0) {
      // The elements this chunk completed, while they are still in cache.
      const end = this.written >>> 2;
      this.nonFinite = scanNonFinite(bits, this.scanned, end);
      this.scanned = end;
    }
  }

  /** The decoded frame, or the WireError of the first failed check. */
  finish(): DecodedFrame {
    try {
      return this.decode();
    } catch (e) {
      this.recycle();
      throw e;
    }
  }

  /** Hand the payload buffer back to the pool (a rejected frame, or f16/int8 once decoded). */
  private recycle(): void {
    if (this.out) this.pool?.give(this.out.buffer);
    this.out = undefined;
    this.direct = undefined;
    this.bits = undefined;
  }

  private decode(): DecodedFrame {
    if (this.error) throw this.error;
    if (this.received < this.length || !this.out) {
      throw new WireError(
        'truncated',
        `frame has ${this.received} of ${this.length} announced bytes`,
      );
    }
    const dv = new DataView(this.head.buffer);
    if (this.crc !== dv.getUint32(48, true)) {
      throw new WireError('bad-checksum', 'payload CRC32 does not match the header');
    }
    const mass = dv.getFloat64(40, true);
    if (!Number.isFinite(mass)) throw new WireError('non-finite', `push-sum mass is ${mass}`);
    const maxMass = this.expect.maxMass ?? MAX_MASS;
    if (!(mass > 0) || mass > maxMass) {
      throw new WireError('bad-mass', `push-sum mass ${mass} is outside (0, ${maxMass}]`);
    }
    const { codec, count } = this;
    const bad = this.bits
      ? this.nonFinite
      : firstNonFinite(codec, this.out, count, this.expect.layout);
    if (bad >= 0) throw new WireError('non-finite', `element ${bad} is NaN or infinite`);
    let weights = this.direct;
    if (!weights) {
      const into = this.pool?.take(4 * count);
      weights = decodeWeights(
        codec,
        this.out,
        count,
        this.expect.layout,
        into && new Float32Array(into.buffer, 0, count),
      );
      this.recycle();
    }
    // The weights now belong to the caller: never handed back from here.
    this.out = undefined;
    this.direct = undefined;
    this.bits = undefined;
    return {
      round: dv.getUint32(16, true),
      sender: dv.getUint32(20, true),
      codec,
      mass,
      weights,
      bytes: this.length,
    };
  }

  /** Header checks, in decodeFrame's historical order; sets up the payload destination. */
  private checkHeader(): WireError | undefined {
    const head = this.head;
    const dv = new DataView(head.buffer);
    if (dv.getUint32(0, true) !== FRAME_MAGIC)
      return new WireError('bad-magic', 'not a weights frame');
    const version = dv.getUint8(4);
    if (version !== FRAME_VERSION) {
      return new WireError('bad-version', `frame version ${version}, expected ${FRAME_VERSION}`);
    }
    const codec = CODEC_BY_ID[dv.getUint8(5)];
    if (codec === undefined) return new WireError('unknown-codec', `codec id ${dv.getUint8(5)}`);
    const flags = dv.getUint16(6, true);
    const reserved = dv.getUint32(52, true);
    if (flags !== 0 || reserved !== 0) {
      // Version 1 defines no flag and no use of the reserved word: a peer that sets them speaks
      // something we do not understand.
      return new WireError(
        'bad-reserved',
        `header flags 0x${flags.toString(16)} and reserved word 0x${reserved.toString(16)} must be 0`,
      );
    }
    if (!sameBytes(head, 8, runIdHash(this.expect.runId))) {
      return new WireError('wrong-run', 'frame belongs to another run');
    }
    if (!sameBytes(head, 32, signatureBytes(this.expect.signature))) {
      return new WireError('wrong-signature', 'frame carries a different model signature');
    }
    const count = dv.getUint32(24, true);
    if (count !== this.expect.size) {
      return new WireError(
        'wrong-length',
        `frame has ${count} elements, model has ${this.expect.size}`,
      );
    }
    const payloadBytes = dv.getUint32(28, true);
    const want = encodedSize(codec, count, this.expect.layout);
    if (payloadBytes !== want) {
      return new WireError(
        'wrong-length',
        `${codec} payload declared ${payloadBytes} bytes, needs ${want}`,
      );
    }
    const total = this.length;
    if (total < HEADER_BYTES + payloadBytes) {
      return new WireError(
        'truncated',
        `frame has ${total - HEADER_BYTES} of ${payloadBytes} payload bytes`,
      );
    }
    if (total > HEADER_BYTES + payloadBytes) {
      return new WireError('wrong-length', `${total - HEADER_BYTES - payloadBytes} trailing bytes`);
    }
    this.codec = codec;
    this.count = count;
    // Uninitialized memory is safe here: finish() returns only once every byte was written.
    const buf = this.pool ? this.pool.take(payloadBytes) : uninitialized(payloadBytes);
    if (codec === 'f32' && LITTLE) {
      this.direct = new Float32Array(buf.buffer, buf.byteOffset, count);
      this.bits = new Int32Array(buf.buffer, buf.byteOffset, count);
    }
    this.out = buf;
    return undefined;
  }
}

/**
 * First index in [from, to) of a float32 (as its bits) that is NaN or +-Infinity (exponent bits
 * all ones), or -1. A plain function: V8 optimizes this loop far better than one on `this` fields.
 * Four at a time without a branch each: (bits & 0x7f800000) + 0x800000 reaches 2^31, the sign bit
 * of the OR, only for an all-ones exponent (~2x faster than testing each value on its own).
 */
function scanNonFinite(bits: Int32Array, from: number, to: number): number {
  let i = from;
  for (; i + 4 <= to; i += 4) {
    const any =
      ((bits[i]! & 0x7f800000) + 0x800000) |
      ((bits[i + 1]! & 0x7f800000) + 0x800000) |
      ((bits[i + 2]! & 0x7f800000) + 0x800000) |
      ((bits[i + 3]! & 0x7f800000) + 0x800000);
    if (any < 0) break;
  }
  for (; i < to; i++) if ((bits[i]! & 0x7f800000) === 0x7f800000) return i;
  return -1;
}

/**
 * A fresh buffer of `n` bytes whose contents are not zeroed (Buffer.allocUnsafeSlow: its own
 * ArrayBuffer, never the shared pool). Zeroing a multi-megabyte buffer we overwrite at once costs
 * as much as the copy (fresh zero pages fault on first write); malloc'd memory is often reused.
 */
function uninitialized(n: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/** Peek at the sender index of a frame whose header is at least present (for diagnostics). */
export function peekSender(bytes: Uint8Array): number | undefined {
  if (bytes.length < HEADER_BYTES) return undefined;
  return new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES).getUint32(20, true);
}

// ---- helpers ---------------------------------------------------------------------------------

const runIdCache = new Map<string, Uint8Array>();

/** 8 bytes identifying a run: two independent 32-bit FNV-1a style hashes of its id. */
export function runIdHash(runId: string): Uint8Array {
  const hit = runIdCache.get(runId);
  if (hit) return hit;
  let h1 = 0x811c9dc5;
  let h2 = 0x9e3779b9;
  for (let i = 0; i < runId.length; i++) {
    const c = runId.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
  }
  const out = new Uint8Array(8);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, h1 >>> 0, true);
  dv.setUint32(4, h2 >>> 0, true);
  if (runIdCache.size > 64) runIdCache.clear();
  runIdCache.set(runId, out);
  return out;
}

const SIGNATURE_RE = /^[0-9a-f]{16}$/i;

/** The 8 bytes of a 16-hex-character model signature. */
export function signatureBytes(signature: string): Uint8Array {
  if (!SIGNATURE_RE.test(signature)) {
    throw new ConfigError('signature', 'must be 16 hexadecimal characters', signature);
  }
  return fromString(signature.toLowerCase(), 'base16');
}

function sameBytes(bytes: Uint8Array, offset: number, want: Uint8Array): boolean {
  return equals(bytes.subarray(offset, offset + want.length), want);
}

function checkU32(field: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new ConfigError(field, 'must be an integer between 0 and 4294967295', v);
  }
  return v;
}

let crcTable: Int32Array | undefined;

/**
 * CRC32 (IEEE) of `bytes`, continuing from `prev` (the CRC of the bytes before them, 0 to start):
 * zlib's native one when Node has it (>= 20.15), a table fallback otherwise.
 */
export function crc32(bytes: Uint8Array, prev = 0): number {
  if (typeof zlib.crc32 === 'function') return zlib.crc32(bytes, prev) >>> 0;
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = prev ^ -1;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
