/**
 * A small PNG decoder on node:zlib, enough for data-set sprites: 8-bit greyscale, grey+alpha, RGB
 * and RGBA, not interlaced, all five row filters (None, Sub, Up, Average, Paeth). Chunk CRCs are
 * checked, so a corrupt download is reported instead of decoded into wrong pixels.
 *
 *   const img = decodePng(readFileSync('data_batch_1.png'));  // { width, height, channels, data }
 */
import { inflateSync } from 'node:zlib';
import { DataError } from '../errors.js';

export interface DecodedImage {
  readonly width: number;
  readonly height: number;
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. */
  readonly channels: number;
  /** Row-major pixels, `channels` bytes each, no filter bytes. */
  readonly data: Uint8Array;
}

export const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
const CHANNELS: Record<number, number> = { 0: 1, 4: 2, 2: 3, 6: 4 };

let crcTable: Uint32Array | undefined;

/** CRC-32 (the PNG/zlib polynomial) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function decodePng(bytes: Uint8Array, source = 'PNG'): DecodedImage {
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== PNG_SIGNATURE[i])
      throw new DataError(`${source}: not a PNG file (bad signature)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Uint8Array[] = [];
  let pos = 8;
  let sawEnd = false;
  while (pos + 12 <= bytes.length && !sawEnd) {
    const len = view.getUint32(pos, false);
    const end = pos + 12 + len;
    if (end > bytes.length) throw new DataError(`${source}: truncated chunk at byte ${pos}`);
    const typeAndData = bytes.subarray(pos + 4, pos + 8 + len);
    const type = String.fromCharCode(...typeAndData.subarray(0, 4));
    if (crc32(typeAndData) !== view.getUint32(pos + 8 + len, false)) {
      throw new DataError(`${source}: CRC mismatch in ${type} chunk at byte ${pos} (corrupt file)`);
    }
    const data = typeAndData.subarray(4);
    if (type === 'IHDR') {
      const h = new DataView(data.buffer, data.byteOffset, data.byteLength);
      width = h.getUint32(0, false);
      height = h.getUint32(4, false);
      const [depth, colour, compression, filter, interlace] = data.subarray(8, 13);
      channels = CHANNELS[colour!] ?? 0;
      if (depth !== 8 || channels === 0 || compression !== 0 || filter !== 0 || interlace !== 0) {
        throw new DataError(
          `${source}: unsupported PNG (bit depth ${depth}, colour type ${colour}, interlace ${interlace}); ` +
            'only 8-bit grey/RGB/RGBA without interlacing is decoded',
        );
      }
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      sawEnd = true;
    }
    pos = end;
  }
  if (channels === 0) throw new DataError(`${source}: missing IHDR chunk`);
  if (!sawEnd) throw new DataError(`${source}: missing IEND chunk (truncated file)`);
  let raw: Buffer;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch (e) {
    throw new DataError(`${source}: corrupt image data (${(e as Error).message})`);
  }
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) {
    throw new DataError(
      `${source}: image data is ${raw.length} bytes, expected ${height * (stride + 1)} for ${width}x${height}`,
    );
  }
  return { width, height, channels, data: unfilter(raw, width, height, channels, source) };
}

/** Undo the per-row filters in place of a fresh output buffer. */
function unfilter(
  raw: Uint8Array,
  width: number,
  height: number,
  bpp: number,
  source: string,
): Uint8Array {
  const stride = width * bpp;
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1;
    const dst = y * stride;
    const prev = dst - stride; // row above in `out`; only read when y > 0
    switch (filter) {
      case 0:
        out.set(raw.subarray(src, src + stride), dst);
        break;
      case 1:
        for (let i = 0; i < stride; i++) {
          const a = i >= bpp ? out[dst + i - bpp]! : 0;
          out[dst + i] = raw[src + i]! + a;
        }
        break;
      case 2:
        for (let i = 0; i < stride; i++) {
          const b = y > 0 ? out[prev + i]! : 0;
          out[dst + i] = raw[src + i]! + b;
        }
        break;
      case 3:
        for (let i = 0; i < stride; i++) {
          const a = i >= bpp ? out[dst + i - bpp]! : 0;
          const b = y > 0 ? out[prev + i]! : 0;
          out[dst + i] = raw[src + i]! + ((a + b) >>> 1);
        }
        break;
      case 4:
        for (let i = 0; i < stride; i++) {
          const a = i >= bpp ? out[dst + i - bpp]! : 0;
          const b = y > 0 ? out[prev + i]! : 0;
          const c = y > 0 && i >= bpp ? out[prev + i - bpp]! : 0;
          out[dst + i] = raw[src + i]! + paeth(a, b, c);
        }
        break;
      default:
        throw new DataError(`${source}: unknown filter type ${filter} on row ${y}`);
    }
  }
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}
