/**
 * Weight codecs: how a flat parameter vector becomes payload bytes and back. Pure functions on
 * Float32Array <-> Uint8Array, no per-element allocation, little-endian on every platform.
 *
 *   const bytes = new Uint8Array(encodedSize('int8', w.length, layout));
 *   encodeWeights('int8', w, layout, bytes);
 *   const back = decodeWeights('int8', bytes, w.length, layout); // fresh Float32Array
 *
 * - `f32`: the raw IEEE single bytes; exact.
 * - `f16`: IEEE half, round-to-nearest-even. Finite values beyond the half range saturate to
 *   +-65504 (a diverging model still sends something bounded rather than turning into Infinity);
 *   NaN and +-Infinity stay NaN / +-Infinity so the receiver's validation rejects the frame.
 *   Relative error <= 2^-11 in the normal range, absolute error <= 2^-25 below it.
 * - `int8`: one float32 scale per tensor (`scale = max|x| / 127`, `q = round(x / scale)`),
 *   `layout` lists each tensor's element count so every tensor gets its own scale. Payload: the
 *   scales (float32 each) then one signed byte per element. Absolute error <= scale / 2 per tensor.
 *   An all-zero tensor has scale 0 and decodes to exact zeros.
 *
 * A layout that is empty means "one tensor of all elements".
 */
import { endianness } from 'node:os';

export type Codec = 'f32' | 'f16' | 'int8';

export const CODECS: readonly Codec[] = ['f32', 'f16', 'int8'];

const LITTLE = endianness() === 'LE';

/** Number of payload bytes `codec` produces for `n` elements split into `layout` tensors. */
export function encodedSize(codec: Codec, n: number, layout: readonly number[]): number {
  switch (codec) {
    case 'f32':
      return 4 * n;
    case 'f16':
      return 2 * n;
    case 'int8':
      return 4 * tensorCount(layout) + n;
    default: {
      const never: never = codec;
      throw new RangeError(`unknown codec ${String(never)}`);
    }
  }
}

/**
 * Encode `weights` into `out` (allocated when omitted; must be exactly encodedSize bytes when
 * given). Returns the payload bytes. Throws RangeError if `layout` does not sum to weights.length.
 */
export function encodeWeights(
  codec: Codec,
  weights: Float32Array,
  layout: readonly number[],
  out?: Uint8Array,
): Uint8Array {
  checkLayout(layout, weights.length);
  const size = encodedSize(codec, weights.length, layout);
  const bytes = out ?? new Uint8Array(size);
  if (bytes.length !== size) {
    throw new RangeError(`encodeWeights: output buffer has ${bytes.length} bytes, need ${size}`);
  }
  switch (codec) {
    case 'f32':
      encodeF32(weights, bytes);
      break;
    case 'f16':
      encodeF16(weights, bytes);
      break;
    case 'int8':
      encodeInt8(weights, layout, bytes);
      break;
    default: {
      const never: never = codec;
      throw new RangeError(`unknown codec ${String(never)}`);
    }
  }
  return bytes;
}

/**
 * Decode a payload of `n` elements into `out` (n values, all overwritten) or, without it, a fresh
 * Float32Array the caller owns. Throws RangeError when the byte count (or out's length) does not
 * match; does NOT check finiteness (the wire layer does).
 */
export function decodeWeights(
  codec: Codec,
  bytes: Uint8Array,
  n: number,
  layout: readonly number[],
  out?: Float32Array,
): Float32Array {
  checkLayout(layout, n);
  const size = encodedSize(codec, n, layout);
  if (bytes.length !== size) {
    throw new RangeError(
      `decodeWeights: ${codec} payload of ${n} values needs ${size} bytes, got ${bytes.length}`,
    );
  }
  if (out && out.length !== n) {
    throw new RangeError(`decodeWeights: out holds ${out.length} values, needs ${n}`);
  }
  const w = out ?? new Float32Array(n);
  switch (codec) {
    case 'f32':
      return decodeF32(bytes, n, w);
    case 'f16':
      return decodeF16(bytes, n, w);
    case 'int8':
      return decodeInt8(bytes, n, layout, w);
    default: {
      const never: never = codec;
      throw new RangeError(`unknown codec ${String(never)}`);
    }
  }
}

/**
 * Index of the first element that decodes to NaN or +-Infinity, or -1: checked on the encoded
 * bytes (exponent bits for f32/f16, the per-tensor scales for int8, scanning a tensor's bytes only
 * when its scale is so large that q * scale can overflow float32), which is several times cheaper
 * than scanning decoded floats.
 * Expects a payload of the right size (as decodeWeights checks).
 */
export function firstNonFinite(
  codec: Codec,
  bytes: Uint8Array,
  n: number,
  layout: readonly number[],
): number {
  switch (codec) {
    case 'f32': {
      if (LITTLE && bytes.byteOffset % 4 === 0) {
        const u = new Uint32Array(bytes.buffer, bytes.byteOffset, n);
        for (let i = 0; i < n; i++) if ((u[i]! & 0x7f800000) === 0x7f800000) return i;
        return -1;
      }
      for (let i = 0; i < n; i++)
        if ((bytes[4 * i + 3]! & 0x7f) === 0x7f && bytes[4 * i + 2]! & 0x80) return i;
      return -1;
    }
    case 'f16': {
      if (LITTLE && bytes.byteOffset % 2 === 0) {
        const h = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
        for (let i = 0; i < n; i++) if ((h[i]! & 0x7c00) === 0x7c00) return i;
        return -1;
      }
      for (let i = 0; i < n; i++) if ((bytes[2 * i + 1]! & 0x7c) === 0x7c) return i;
      return -1;
    }
    case 'int8': {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const q = new Int8Array(bytes.buffer, bytes.byteOffset + 4 * tensorCount(layout), n);
      let found = -1;
      eachTensor(layout, n, (t, start, end) => {
        if (found >= 0 || end <= start) return;
        const scale = dv.getFloat32(4 * t, true);
        if (!Number.isFinite(scale)) {
          found = start;
          return;
        }
        // The decoder stores q * scale as float32: a finite scale above ~2.7e36 overflows to
        // +-Infinity for large |q|. |q| <= 128, so the tensor is safe whenever 128 * scale is.
        if (Number.isFinite(Math.fround(128 * scale))) return;
        for (let i = start; i < end; i++) {
          if (!Number.isFinite(Math.fround(q[i]! * scale))) {
            found = i;
            return;
          }
        }
      });
      return found;
    }
    default: {
      const never: never = codec;
      throw new RangeError(`unknown codec ${String(never)}`);
    }
  }
}

function tensorCount(layout: readonly number[]): number {
  return layout.length === 0 ? 1 : layout.length;
}

/** Throws RangeError unless `layout` is empty or non-negative integers summing to `n`. */
export function checkLayout(layout: readonly number[], n: number): void {
  if (layout.length === 0) return;
  let sum = 0;
  for (const c of layout) {
    if (!Number.isInteger(c) || c < 0) {
      throw new RangeError(`layout entries must be non-negative integers, got ${c}`);
    }
    sum += c;
  }
  if (sum !== n) throw new RangeError(`layout sums to ${sum} elements, weights have ${n}`);
}

// ---- f32 -------------------------------------------------------------------------------------

function encodeF32(w: Float32Array, out: Uint8Array): void {
  if (LITTLE) {
    out.set(new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
    return;
  }
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < w.length; i++) dv.setFloat32(4 * i, w[i]!, true);
}

function decodeF32(bytes: Uint8Array, n: number, w: Float32Array): Float32Array {
  if (LITTLE) {
    new Uint8Array(w.buffer, w.byteOffset, 4 * n).set(bytes);
    return w;
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) w[i] = dv.getFloat32(4 * i, true);
  return w;
}

// ---- f16 -------------------------------------------------------------------------------------

const F16_MAX_BITS = 0x7bff; // 65504
const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

/** Half bits of one float32 given as its uint32 bit pattern (round-to-nearest-even, saturating). */
function halfBits(f: number, value: number): number {
  const sign = (f >>> 16) & 0x8000;
  let a = f & 0x7fffffff;
  if (a >= 0x7f800000) return sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00); // NaN / Inf pass through
  if (a >= 0x47800000) return sign | F16_MAX_BITS; // |x| >= 65536: saturate
  if (a < 0x38800000) {
    // Below 2^-14: a half subnormal m * 2^-24. x * 2^24 is exact in a double, so rounding it
    // half-to-even here is exact too (no double rounding through float arithmetic).
    const v = Math.abs(value) * 16777216;
    let m = Math.floor(v);
    const d = v - m;
    if (d > 0.5 || (d === 0.5 && (m & 1) === 1)) m++;
    return sign | m; // m == 1024 is the smallest normal, which is the right bit pattern
  }
  // Normal range: rebias the exponent and round the 13 dropped mantissa bits to nearest even.
  a += ((15 - 127) << 23) + 0xfff + ((a >>> 13) & 1);
  const h = a >>> 13;
  return sign | Math.min(h, F16_MAX_BITS);
}

function encodeF16(w: Float32Array, out: Uint8Array): void {
  const n = w.length;
  if (LITTLE && out.byteOffset % 2 === 0) {
    const h = new Uint16Array(out.buffer, out.byteOffset, n);
    const u = new Uint32Array(w.buffer, w.byteOffset, n);
    if (w.byteOffset % 4 === 0) {
      for (let i = 0; i < n; i++) h[i] = halfBits(u[i]!, w[i]!);
      return;
    }
  }
  for (let i = 0; i < n; i++) {
    const x = w[i]!;
    scratchF[0] = x;
    const b = halfBits(scratchU[0]!, x);
    out[2 * i] = b & 0xff;
    out[2 * i + 1] = b >>> 8;
  }
}

let halfTable: Float32Array | undefined;

/** float32 value of every half bit pattern (256 KiB, built on first use). */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m === 0 ? s * Infinity : Number.NaN;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  halfTable = t;
  return t;
}

function decodeF16(bytes: Uint8Array, n: number, w: Float32Array): Float32Array {
  const t = halfToFloatTable();
  if (LITTLE && bytes.byteOffset % 2 === 0) {
    const h = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
    for (let i = 0; i < n; i++) w[i] = t[h[i]!]!;
    return w;
  }
  for (let i = 0; i < n; i++) w[i] = t[bytes[2 * i]! | (bytes[2 * i + 1]! << 8)]!;
  return w;
}

// ---- int8 ------------------------------------------------------------------------------------

function eachTensor(
  layout: readonly number[],
  n: number,
  fn: (t: number, start: number, end: number) => void,
): void {
  if (layout.length === 0) {
    fn(0, 0, n);
    return;
  }
  let start = 0;
  for (let t = 0; t < layout.length; t++) {
    const end = start + layout[t]!;
    fn(t, start, end);
    start = end;
  }
}

function encodeInt8(w: Float32Array, layout: readonly number[], out: Uint8Array): void {
  const tensors = tensorCount(layout);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const q = new Int8Array(out.buffer, out.byteOffset + 4 * tensors, w.length);
  eachTensor(layout, w.length, (t, start, end) => {
    let max = 0;
    for (let i = start; i < end; i++) {
      const a = Math.abs(w[i]!);
      // `!(a <= max)` also catches NaN: the scale becomes NaN and the receiver rejects the frame.
      if (!(a <= max)) max = a;
    }
    // The receiver multiplies by the float32 scale it reads, so quantize with that same value.
    const scale = Math.fround(max / 127);
    dv.setFloat32(4 * t, scale, true);
    if (scale === 0 || !Number.isFinite(scale)) {
      q.fill(0, start, end);
      return;
    }
    const inv = 1 / scale;
    for (let i = start; i < end; i++) {
      const v = Math.round(w[i]! * inv);
      q[i] = v > 127 ? 127 : Math.max(v, -127);
    }
  });
}

function decodeInt8(
  bytes: Uint8Array,
  n: number,
  layout: readonly number[],
  w: Float32Array,
): Float32Array {
  const tensors = tensorCount(layout);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset + 4 * tensors, n);
  eachTensor(layout, n, (t, start, end) => {
    const scale = dv.getFloat32(4 * t, true);
    for (let i = start; i < end; i++) w[i] = q[i]! * scale;
  });
  return w;
}
