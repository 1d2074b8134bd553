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
 */
import { endianness } from 'node:os';
import * as zlib from 'node:zlib';
import { ConfigError, WireError } from '../errors.js';
import {
  type Codec,
  decodeWeights,
  encodedSize,
  encodeWeights,
  firstNonFinite,
} from '../gossip/codecs.js';

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
}

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
  const payloadBytes = encodedSize(codec, weights.length, layout);
  const frame = new Uint8Array(HEADER_BYTES + payloadBytes);
  const payload = frame.subarray(HEADER_BYTES);
  encodeWeights(codec, weights, layout, payload);
  const dv = new DataView(frame.buffer, frame.byteOffset, HEADER_BYTES);
  dv.setUint32(0, FRAME_MAGIC, true);
  dv.setUint8(4, FRAME_VERSION);
  dv.setUint8(5, CODEC_IDS[codec]);
  dv.setUint16(6, 0, true);
  frame.set(runIdHash(h.runId), 8);
  dv.setUint32(16, checkU32('round', h.round), true);
  dv.setUint32(20, checkU32('sender', h.sender), true);
  dv.setUint32(24, weights.length, true);
  dv.setUint32(28, payloadBytes, true);
  frame.set(signatureBytes(h.signature), 32);
  dv.setFloat64(40, h.mass ?? 1, true);
  dv.setUint32(48, crc32(payload), true);
  dv.setUint32(52, 0, true);
  return frame;
}

/**
 * Validate and decode one frame; throws WireError naming the first check that failed. The frame
 * may be given as the list of chunks it arrived in (a stream reader's slices): the payload is then
 * copied once, straight into the buffer that becomes the decoded weights (f32), and validated
 * there before it is returned.
 */
export function decodeFrame(
  frame: Uint8Array | readonly Uint8Array[],
  expect: FrameExpectations,
): DecodedFrame {
  const parts: readonly Uint8Array[] = frame instanceof Uint8Array ? [frame] : frame;
  let total = 0;
  for (const p of parts) total += p.length;
  if (total > expect.maxBytes) {
    throw new WireError('oversized', `frame of ${total} bytes exceeds ${expect.maxBytes}`);
  }
  if (total < HEADER_BYTES) {
    throw new WireError('truncated', `frame of ${total} bytes is shorter than the header`);
  }
  const first = parts[0]!;
  const head = first.length >= HEADER_BYTES ? first : gather(parts, 0, HEADER_BYTES);
  const dv = new DataView(head.buffer, head.byteOffset, HEADER_BYTES);
  if (dv.getUint32(0, true) !== FRAME_MAGIC)
    throw new WireError('bad-magic', 'not a weights frame');
  const version = dv.getUint8(4);
  if (version !== FRAME_VERSION) {
    throw new WireError('bad-version', `frame version ${version}, expected ${FRAME_VERSION}`);
  }
  const codec = CODEC_BY_ID[dv.getUint8(5)];
  if (codec === undefined) throw new WireError('unknown-codec', `codec id ${dv.getUint8(5)}`);
  if (!sameBytes(head, 8, runIdHash(expect.runId))) {
    throw new WireError('wrong-run', 'frame belongs to another run');
  }
  if (!sameBytes(head, 32, signatureBytes(expect.signature))) {
    throw new WireError('wrong-signature', 'frame carries a different model signature');
  }
  const count = dv.getUint32(24, true);
  if (count !== expect.size) {
    throw new WireError('wrong-length', `frame has ${count} elements, model has ${expect.size}`);
  }
  const payloadBytes = dv.getUint32(28, true);
  const want = encodedSize(codec, count, expect.layout);
  if (payloadBytes !== want) {
    throw new WireError(
      'wrong-length',
      `${codec} payload declared ${payloadBytes} bytes, needs ${want}`,
    );
  }
  if (total < HEADER_BYTES + payloadBytes) {
    throw new WireError(
      'truncated',
      `frame has ${total - HEADER_BYTES} of ${payloadBytes} payload bytes`,
    );
  }
  if (total > HEADER_BYTES + payloadBytes) {
    throw new WireError('wrong-length', `${total - HEADER_BYTES - payloadBytes} trailing bytes`);
  }
  const crc = dv.getUint32(48, true);
  // One contiguous frame: validate the payload in place (decodeWeights copies it out). A chunked
  // one: copy the payload once into a fresh buffer (for f32 on a little-endian host, the decoded
  // weights themselves) and validate that copy before anyone sees it.
  let payload: Uint8Array;
  let direct: Float32Array | undefined;
  if (parts.length === 1) payload = first.subarray(HEADER_BYTES);
  else {
    if (codec === 'f32' && LITTLE) {
      direct = new Float32Array(count);
      payload = new Uint8Array(direct.buffer);
    } else payload = new Uint8Array(payloadBytes);
    copyRange(parts, HEADER_BYTES, payload);
  }
  if (crc32(payload) !== crc) {
    throw new WireError('bad-checksum', 'payload CRC32 does not match the header');
  }
  const mass = dv.getFloat64(40, true);
  if (!Number.isFinite(mass)) throw new WireError('non-finite', `push-sum mass is ${mass}`);
  const bad = firstNonFinite(codec, payload, count, expect.layout);
  if (bad >= 0) throw new WireError('non-finite', `element ${bad} is NaN or infinite`);
  const weights = direct ?? decodeWeights(codec, payload, count, expect.layout);
  return {
    round: dv.getUint32(16, true),
    sender: dv.getUint32(20, true),
    codec,
    mass,
    weights,
    bytes: total,
  };
}

/** Bytes [start, start + n) of a chunked frame, copied into one array. */
function gather(parts: readonly Uint8Array[], start: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  copyRange(parts, start, out);
  return out;
}

/** Copy the chunked frame's bytes from offset `start` on into `out` (exactly out.length bytes). */
function copyRange(parts: readonly Uint8Array[], start: number, out: Uint8Array): void {
  let skip = start;
  let at = 0;
  for (const p of parts) {
    if (at >= out.length) break;
    if (skip >= p.length) {
      skip -= p.length;
      continue;
    }
    const take = Math.min(p.length - skip, out.length - at);
    out.set(skip === 0 && take === p.length ? p : p.subarray(skip, skip + take), at);
    at += take;
    skip = 0;
  }
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
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) out[i] = Number.parseInt(signature.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function sameBytes(bytes: Uint8Array, offset: number, want: Uint8Array): boolean {
  for (let i = 0; i < want.length; i++) if (bytes[offset + i] !== want[i]) return false;
  return true;
}

function checkU32(field: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new ConfigError(field, 'must be an integer between 0 and 4294967295', v);
  }
  return v;
}

let crcTable: Int32Array | undefined;

/** CRC32 (IEEE): zlib's native one when Node has it (>= 20.15), a table fallback otherwise. */
export function crc32(bytes: Uint8Array): number {
  if (typeof zlib.crc32 === 'function') return zlib.crc32(bytes) >>> 0;
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = -1;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
