/**
 * Hostile weights frames for the fuzz tests: a seeded generator of random and mutated frames, and
 * an independent reference reading of the wire format (header layout of src/net/wire.ts, element
 * decoding written out here from the IEEE formats) that says whether a frame is valid.
 *
 *   const gen = frameFuzzer({ runId, signature, size, layout, sender: 1, round: 3, maxBytes });
 *   const f = gen.next(Rng.from(seed, 'fuzz', i));   // { kind, bytes, lp }
 *   referenceDecode(f.bytes, spec);                   // { ok: true, weights } | { ok: false, why }
 *
 * The reference reads every field by its byte offset and decodes every element on its own (a
 * float32 DataView read, a half-float formula, q * scale rounded to float32), so a fast path in the
 * real decoder (exponent-bit scans, aligned typed-array views) is checked against plain arithmetic.
 */
import * as zlib from 'node:zlib';
import type { Rng } from '../../src/compute/rng.js';
import type { Codec } from '../../src/gossip/codecs.js';
import {
  encodeFrame,
  FRAME_MAGIC,
  HEADER_BYTES,
  MAX_MASS,
  runIdHash,
  signatureBytes,
} from '../../src/net/wire.js';

export interface FrameSpec {
  readonly runId: string;
  readonly signature: string;
  readonly size: number;
  readonly layout: readonly number[];
  /** The largest frame the receiver reads (its maxBytes). */
  readonly maxBytes: number;
}

export type Reference =
  | { readonly ok: true; readonly weights: Float32Array; readonly sender: number }
  | { readonly ok: false; readonly why: string };

const CODECS: readonly Codec[] = ['f32', 'f16', 'int8'];

function tensors(layout: readonly number[], n: number): number[] {
  return layout.length === 0 ? [n] : [...layout];
}

function payloadSize(codec: Codec, n: number, layout: readonly number[]): number {
  if (codec === 'f32') return 4 * n;
  if (codec === 'f16') return 2 * n;
  return 4 * tensors(layout, n).length + n;
}

function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m === 0 ? s * Infinity : Number.NaN;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** The wire format read field by field; `ok` only when every rule of design.md holds. */
export function referenceDecode(bytes: Uint8Array, spec: FrameSpec): Reference {
  const no = (why: string): Reference => ({ ok: false, why });
  if (bytes.length > spec.maxBytes) return no('oversized');
  if (bytes.length < HEADER_BYTES) return no('short');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== FRAME_MAGIC) return no('magic');
  if (bytes[4] !== 1) return no('version');
  const codec = CODECS[bytes[5]!];
  if (!codec) return no('codec');
  if (dv.getUint16(6, true) !== 0 || dv.getUint32(52, true) !== 0) return no('reserved');
  const run = runIdHash(spec.runId);
  const sig = signatureBytes(spec.signature);
  for (let i = 0; i < 8; i++) {
    if (bytes[8 + i] !== run[i]) return no('run');
    if (bytes[32 + i] !== sig[i]) return no('signature');
  }
  const n = dv.getUint32(24, true);
  if (n !== spec.size) return no('count');
  const declared = dv.getUint32(28, true);
  if (declared !== payloadSize(codec, n, spec.layout)) return no('payload size');
  if (bytes.length !== HEADER_BYTES + declared) return no('length');
  const payload = bytes.subarray(HEADER_BYTES);
  if (zlib.crc32(payload) >>> 0 !== dv.getUint32(48, true)) return no('crc');
  const mass = dv.getFloat64(40, true);
  if (!Number.isFinite(mass)) return no('mass');
  if (!(mass > 0) || mass > MAX_MASS) return no('mass range');
  const w = new Float32Array(n);
  const p = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  if (codec === 'f32') for (let i = 0; i < n; i++) w[i] = p.getFloat32(4 * i, true);
  else if (codec === 'f16') for (let i = 0; i < n; i++) w[i] = half(p.getUint16(2 * i, true));
  else {
    const ts = tensors(spec.layout, n);
    let at = 0;
    ts.forEach((len, t) => {
      const scale = p.getFloat32(4 * t, true);
      for (let i = at; i < at + len; i++) w[i] = Math.fround(p.getInt8(4 * ts.length + i) * scale);
      at += len;
    });
  }
  for (let i = 0; i < n; i++) if (!Number.isFinite(w[i]!)) return no(`element ${i}`);
  return { ok: true, weights: w, sender: dv.getUint32(20, true) };
}

export interface FuzzTarget extends FrameSpec {
  /** Sender index the receiver authenticates the attacker as. */
  readonly sender: number;
  /** Round the victim is collecting (valid-looking frames use it). */
  readonly round: number;
}

export interface FuzzFrame {
  /** Mutation family (for diagnostics). */
  readonly kind: string;
  readonly bytes: Uint8Array;
  /** Send verbatim, without a length prefix (the bytes carry their own, possibly lying, one). */
  readonly raw: boolean;
}

/** Unsigned LEB128, the length prefix it-length-prefixed uses. */
/** The varint length prefix of an `n`-byte frame, as bytes (what it-length-prefixed writes). */
export const lengthPrefix = (n: number): Uint8Array => Uint8Array.from(varint(n));

export function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function randomBytes(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

/** Recompute the header CRC over whatever payload the frame now has. */
export function fixCrc(frame: Uint8Array): Uint8Array {
  if (frame.length >= HEADER_BYTES) {
    const dv = new DataView(frame.buffer, frame.byteOffset, HEADER_BYTES);
    dv.setUint32(48, zlib.crc32(frame.subarray(HEADER_BYTES)) >>> 0, true);
  }
  return frame;
}

const U32_EDGES = [0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const NON_FINITE = [Number.NaN, Infinity, -Infinity];

/**
 * A generator of hostile frames aimed at `target`. Every family starts from a frame a rostered
 * peer could send (random weights, any codec) and breaks it in one way or several; whether the
 * result is actually invalid is for `referenceDecode` to say (a flipped bit in the round or the
 * push-sum mass can leave a valid frame).
 */
export function frameFuzzer(target: FuzzTarget) {
  const { runId, signature, size, layout, sender, round, maxBytes } = target;
  const valid = (rng: Rng, codec: Codec = pick(rng, CODECS)): Uint8Array => {
    const w = new Float32Array(size);
    const scale = pick(rng, [1e-3, 1, 100]);
    for (let i = 0; i < size; i++) w[i] = rng.normal() * scale;
    return encodeFrame({ runId, round, sender, signature, mass: 1 }, w, codec, layout);
  };
  const header = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset, HEADER_BYTES);

  const families: Record<string, (rng: Rng) => FuzzFrame> = {
    random: (rng) => {
      const n = rng.bernoulli(0.3) ? rng.int(HEADER_BYTES + 8) : rng.int(maxBytes + 64);
      return { kind: 'random', bytes: randomBytes(rng, n), raw: false };
    },
    'random-header': (rng) => {
      const f = valid(rng);
      f.set(randomBytes(rng, HEADER_BYTES));
      return { kind: 'random-header', bytes: f, raw: false };
    },
    bitflip: (rng) => {
      const f = valid(rng);
      const flips = 1 + rng.int(8);
      // Half of the flips land in the header, where every bit means something.
      for (let i = 0; i < flips; i++) {
        const at = rng.bernoulli(0.5) ? rng.int(HEADER_BYTES) : rng.int(f.length);
        f[at]! ^= 1 << rng.int(8);
      }
      return { kind: 'bitflip', bytes: f, raw: false };
    },
    truncate: (rng) => {
      const f = valid(rng);
      return { kind: 'truncate', bytes: f.slice(0, rng.int(f.length)), raw: false };
    },
    extend: (rng) => {
      const f = valid(rng);
      const out = new Uint8Array(f.length + 1 + rng.int(64));
      out.set(f);
      out.set(randomBytes(rng, out.length - f.length), f.length);
      return { kind: 'extend', bytes: rng.bernoulli(0.5) ? fixCrc(out) : out, raw: false };
    },
    field: (rng) => {
      const f = valid(rng);
      const dv = header(f);
      const u32 = () => (rng.bernoulli(0.5) ? pick(rng, U32_EDGES) : rng.int(0x100000000));
      // A rewrite must change the field (re-draw when it picked the value already there).
      const other = (now: number, draw: () => number): number => {
        for (;;) {
          const v = draw();
          if (v !== now) return v;
        }
      };
      const field = pick(rng, [
        'magic',
        'version',
        'codec',
        'run',
        'round',
        'sender',
        'count',
        'payload',
        'signature',
        'mass',
        'crc',
      ]);
      switch (field) {
        case 'magic':
          dv.setUint32(0, other(FRAME_MAGIC, u32), true);
          break;
        case 'version':
          dv.setUint8(
            4,
            other(1, () => pick(rng, [0, 2, 255, rng.int(256)])),
          );
          break;
        case 'codec':
          dv.setUint8(
            5,
            other(f[5]!, () => pick(rng, [0, 1, 2, 3, 255, rng.int(256)])),
          );
          break;
        case 'run':
          f.set(runIdHash(`${runId}-${rng.int(1000)}`), 8);
          break;
        case 'round':
          // Any round with an otherwise valid frame is a valid frame: break the payload too.
          dv.setUint32(16, other(round, u32), true);
          f[HEADER_BYTES + rng.int(f.length - HEADER_BYTES)]! ^= 0x01;
          break;
        case 'sender':
          dv.setUint32(
            20,
            other(sender, () => pick(rng, [sender + 1, 0xffffffff, u32()])),
            true,
          );
          break;
        case 'count':
          dv.setUint32(
            24,
            other(size, () => pick(rng, [0, size - 1, size + 1, 2 * size, u32()])),
            true,
          );
          break;
        case 'payload':
          dv.setUint32(28, other(dv.getUint32(28, true), u32), true);
          break;
        case 'signature':
          f.set(randomBytes(rng, 8), 32); // equal to the real one with probability 2^-64
          break;
        case 'mass':
          dv.setFloat64(40, pick(rng, NON_FINITE), true);
          break;
        case 'crc':
          dv.setUint32(48, other(dv.getUint32(48, true), u32), true);
          break;
      }
      return { kind: `field-${field}`, bytes: f, raw: false };
    },
    'non-finite': (rng) => {
      const codec = pick(rng, CODECS);
      const f = valid(rng, codec);
      const p = f.subarray(HEADER_BYTES);
      const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
      const bad = 1 + rng.int(3);
      for (let k = 0; k < bad; k++) {
        if (codec === 'f32') dv.setFloat32(4 * rng.int(size), pick(rng, NON_FINITE), true);
        else if (codec === 'f16')
          dv.setUint16(
            2 * rng.int(size),
            pick(rng, [0x7c00, 0xfc00, 0x7e00, 0x7c01 + rng.int(0x3fe)]),
            true,
          );
        else {
          // A NaN/Inf scale, or a finite scale so large that q * scale overflows float32.
          const full = tensors(layout, size).flatMap((len, t) => (len > 0 ? [t] : []));
          const t = pick(rng, full); // an empty tensor's scale multiplies nothing
          const huge = pick(rng, [3e38, 3.4e38, 1e37, 2.7e36]) * (rng.bernoulli(0.5) ? 1 : -1);
          dv.setFloat32(4 * t, pick(rng, [...NON_FINITE, huge]), true);
        }
      }
      return { kind: `non-finite-${codec}`, bytes: fixCrc(f), raw: false };
    },
    'random-payload': (rng) => {
      const f = valid(rng, 'f32');
      f.set(randomBytes(rng, f.length - HEADER_BYTES), HEADER_BYTES);
      return { kind: 'random-payload', bytes: fixCrc(f), raw: false };
    },
    'wrong-codec': (rng) => {
      // A correct f16/int8 frame whose header claims another codec (payload size then lies).
      const f = valid(rng);
      f[5] = (f[5]! + 1 + rng.int(2)) % 3;
      return { kind: 'wrong-codec', bytes: f, raw: false };
    },
    'lying-prefix': (rng) => {
      const f = valid(rng);
      const claim = pick(rng, [
        f.length + 1 + rng.int(1000), // promises more than follows: the stream ends inside it
        maxBytes + 1 + rng.int(1 << 20), // more than the receiver reads at all
        rng.int(f.length), // less: the receiver reads a truncated frame
      ]);
      const prefix = rng.bernoulli(0.1) ? new Array<number>(10).fill(0xff) : varint(claim); // or no valid varint
      const bytes = new Uint8Array(prefix.length + f.length);
      bytes.set(prefix);
      bytes.set(f, prefix.length);
      return { kind: 'lying-prefix', bytes, raw: true };
    },
  };
  const names = Object.keys(families);
  return {
    families: names,
    /** One hostile frame; `family` picks the mutation, otherwise a seeded choice. */
    next(rng: Rng, family: string = pick(rng, names)): FuzzFrame {
      const make = families[family];
      if (!make) throw new Error(`unknown fuzz family ${family}`);
      return make(rng);
    },
  };
}

export interface ReceiverView {
  /** The complete frames the receiver will delimit and validate, in order. */
  readonly frames: Uint8Array[];
  /** A framing error that ends the stream after those frames (counted as one more rejection). */
  readonly error?: 'oversized' | 'truncated';
}

/**
 * How a receiver delimits a stream's bytes into frames (unsigned LEB128 prefix, at most 5 prefix
 * bytes, a prefix above `maxBytes` refused before its payload, the stream ending inside a prefix
 * or a payload an error), written out from the protocol's description for the fuzz tests' books.
 */
export function receiverView(stream: Uint8Array, maxBytes: number): ReceiverView {
  const frames: Uint8Array[] = [];
  let at = 0;
  while (at < stream.length) {
    let len = 0;
    let scale = 1;
    let prefix = 0;
    for (;;) {
      if (at >= stream.length) return { frames, error: 'truncated' };
      const b = stream[at++]!;
      len += (b & 0x7f) * scale;
      scale *= 128;
      prefix++;
      if (!(b & 0x80)) break;
      if (prefix >= 5) return { frames, error: 'oversized' };
    }
    if (len > maxBytes) return { frames, error: 'oversized' };
    if (at + len > stream.length) return { frames, error: 'truncated' };
    frames.push(stream.subarray(at, at + len));
    at += len;
  }
  // A stream that ends before any frame is itself counted (as truncated).
  return frames.length === 0 ? { frames, error: 'truncated' } : { frames };
}
