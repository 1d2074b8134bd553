import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deflateSync } from 'node:zlib';
import { Rng } from '../../src/compute/rng.js';
import { decodePng } from '../../src/data/png.js';
import { DataError } from '../../src/errors.js';

// An independent, bit-at-a-time CRC-32 so the encoder below does not reuse the decoder's code.
function crc(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Encode 8-bit pixels; row y uses filter filters[y % filters.length]; IDAT split in `parts`. */
function encodePng(
  width: number,
  height: number,
  channels: number,
  px: Uint8Array,
  filters: number[],
  parts = 1,
): Buffer {
  const colour = { 1: 0, 2: 4, 3: 2, 4: 6 }[channels]!;
  const stride = width * channels;
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const f = filters[y % filters.length]!;
    raw[y * (stride + 1)] = f;
    for (let i = 0; i < stride; i++) {
      const x = px[y * stride + i]!;
      const a = i >= channels ? px[y * stride + i - channels]! : 0;
      const b = y > 0 ? px[(y - 1) * stride + i]! : 0;
      const c = y > 0 && i >= channels ? px[(y - 1) * stride + i - channels]! : 0;
      const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][f]!;
      raw[y * (stride + 1) + 1 + i] = (x - pred) & 0xff;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = colour;
  const z = deflateSync(raw);
  const idats = Array.from({ length: parts }, (_, k) =>
    chunk(
      'IDAT',
      z.subarray(Math.floor((k * z.length) / parts), Math.floor(((k + 1) * z.length) / parts)),
    ),
  );
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('tEXt', Buffer.from('Comment\0flatmesh test')),
    ...idats,
    chunk('IEND', new Uint8Array(0)),
  ]);
}

function randomPixels(n: number, seed: number): Uint8Array {
  const rng = Rng.from(seed, 'png-test');
  // Smooth-ish content (so filters predict something) plus noise (so they must be exact).
  return Uint8Array.from({ length: n }, (_, i) => (Math.floor(i / 7) * 3 + rng.int(40)) & 0xff);
}

describe('decodePng', () => {
  for (const channels of [1, 2, 3, 4]) {
    it(`decodes ${channels}-channel images under every filter type`, () => {
      const [w, h] = [13, 10];
      const px = randomPixels(w * h * channels, channels);
      for (const filters of [[0], [1], [2], [3], [4], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]) {
        const img = decodePng(encodePng(w, h, channels, px, filters, 3));
        assert.equal(img.width, w);
        assert.equal(img.height, h);
        assert.equal(img.channels, channels);
        assert.deepEqual(img.data, px, `filters ${filters.join(',')}`);
      }
    });
  }

  it('decodes a CIFAR-style sprite row: one 32x32 RGB image per 1024-pixel row', () => {
    const px = randomPixels(1024 * 3 * 2, 9);
    const img = decodePng(encodePng(1024, 2, 3, px, [4, 1]));
    assert.deepEqual(img.data.subarray(3072, 6144), px.subarray(3072));
  });

  it('detects corruption: signature, CRC, truncation, unsupported formats', () => {
    const good = encodePng(4, 4, 3, randomPixels(48, 1), [0, 4]);
    const notPng = Buffer.from(good);
    notPng[1] = 0;
    assert.throws(() => decodePng(notPng), /signature/);
    const flipped = Buffer.from(good);
    flipped[good.length - 20] = flipped[good.length - 20]! ^ 0x01; // inside IDAT
    assert.throws(
      () => decodePng(flipped),
      (e: unknown) => e instanceof DataError && /CRC/.test(e.message),
    );
    assert.throws(() => decodePng(good.subarray(0, good.length - 12)), /IEND/);
    const sixteen = Buffer.from(good);
    sixteen[24] = 16; // IHDR bit depth
    sixteen.writeUInt32BE(crc(sixteen.subarray(12, 29)), 29);
    assert.throws(() => decodePng(sixteen), /bit depth 16/);
  });
});
