/**
 * A data set (or one node's shard of it) as one binary file, so that a launcher can decode and
 * partition a data set once and every node process reads just its own part: no node holds the full
 * training set, and no node pays for decompressing it. Written atomically (temp + rename) with a
 * CRC32 that is checked on load.
 *
 *   writeShardFile('run/shards/train-3.fmsh', subset(train, partition[3]));
 *   const shard = readShardFile('run/shards/train-3.fmsh');
 *
 * Layout: "FMSH" | u32 version | u32 header length | header JSON {shape, classes, count, x} |
 * features | i32 labels | u32 crc32 of everything before it.
 *
 * Features are f32 (`x: "f32"`), or one byte each (`x: "u8/255"`) when every value is a byte over
 * 255, as image pixels scaled to [0, 1] are: a quarter of the bytes to copy, checksum, write and
 * read (16 Fashion-MNIST shards: 47 MB instead of 188 MB). Reading one back gives the very same
 * float32 values (PIXEL_VALUES, decoded on first use: see pixels.ts), so runs from shards replay
 * runs from the loaders exactly.
 * Version 1 files (always f32) are still read.
 */
import { closeSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { DataError } from '../errors.js';
import { PIXEL_VALUES, pixelDataset, pixelsOf } from './pixels.js';
import type { Dataset } from './types.js';

const MAGIC = 0x48534d46; // 'FMSH' little-endian
const VERSION = 2;

type FeatureEncoding = 'f32' | 'u8/255';

const PIXEL_BITS = new Uint32Array(PIXEL_VALUES.buffer);

/** The features as bytes if every value is bit for bit one of PIXEL_VALUES, else undefined. */
function byteCodes(x: Float32Array): Uint8Array | undefined {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const codes = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const b = Math.round(x[i]! * 255);
    // Bits, not ===: -0 must stay -0 (and NaN fails the range test).
    if (!(b >= 0 && b <= 255 && PIXEL_BITS[b] === bits[i])) return undefined;
    codes[i] = b;
  }
  return codes;
}

export function writeShardFile(path: string, ds: Dataset): void {
  // A pixel data set hands over its bytes; anything else is checked value by value.
  const codes = pixelsOf(ds) ?? byteCodes(ds.x);
  const encoding: FeatureEncoding = codes ? 'u8/255' : 'f32';
  const header = Buffer.from(
    JSON.stringify({ shape: ds.shape, classes: ds.classes, count: ds.count, x: encoding }),
    'utf8',
  );
  const features = codes ?? new Uint8Array(ds.x.buffer, ds.x.byteOffset, ds.x.byteLength);
  // Labels stay 4-aligned after byte features of any length.
  const pad = (4 - ((12 + header.length) % 4)) % 4;
  const labelPad = (4 - (features.byteLength % 4)) % 4;
  const pre = Buffer.alloc(12);
  pre.writeUInt32LE(MAGIC, 0);
  pre.writeUInt32LE(VERSION, 4);
  pre.writeUInt32LE(header.length + pad, 8);
  const parts = [
    pre,
    header,
    Buffer.alloc(pad, 0x20),
    features,
    new Uint8Array(labelPad),
    new Uint8Array(ds.y.buffer, ds.y.byteOffset, ds.y.byteLength),
  ];
  let crc = 0;
  for (const p of parts) crc = crc32(p, crc);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(crc >>> 0, 0);
  const tmp = `${path}.tmp-${process.pid}`;
  // Part by part: joining them first would copy every byte once more.
  const fd = openSync(tmp, 'w');
  try {
    for (const p of [...parts, tail]) {
      for (let off = 0; off < p.byteLength; ) off += writeSync(fd, p, off);
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function readShardFile(path: string): Dataset {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new DataError(`cannot read shard ${path}: ${(e as Error).message}`);
  }
  const fail = (why: string): never => {
    throw new DataError(`shard ${path} is unusable: ${why}`);
  };
  if (buf.length < 16 || buf.readUInt32LE(0) !== MAGIC) fail('not a flatmesh shard file');
  const version = buf.readUInt32LE(4);
  if (version !== 1 && version !== VERSION) fail(`unsupported version ${version}`);
  if (crc32(buf.subarray(0, buf.length - 4)) >>> 0 !== buf.readUInt32LE(buf.length - 4))
    fail('checksum mismatch');
  const hlen = buf.readUInt32LE(8);
  let h: { shape: number[]; classes: number; count: number; x?: FeatureEncoding };
  try {
    h = JSON.parse(buf.subarray(12, 12 + hlen).toString('utf8'));
  } catch {
    return fail('unreadable header');
  }
  const encoding = h.x ?? 'f32';
  if (encoding !== 'f32' && encoding !== 'u8/255') fail(`unknown feature encoding ${String(h.x)}`);
  const per = h.shape.reduce((a, b) => a * b, 1);
  const n = h.count * per;
  const xStart = 12 + hlen;
  const xBytes = encoding === 'f32' ? n * 4 : n + ((4 - (n % 4)) % 4);
  const yStart = xStart + xBytes;
  if (yStart + h.count * 4 + 4 !== buf.length) fail('size does not match its header');
  // The file's bytes are this call's own (a large readFileSync never uses the shared pool), so
  // the arrays can view them in place when aligned: no second copy of a node's data in memory.
  const view = <T>(
    Ctor: new (b: ArrayBufferLike, o: number, n: number) => T,
    at: number,
    len: number,
  ) =>
    (buf.byteOffset + at) % 4 === 0
      ? new Ctor(buf.buffer, buf.byteOffset + at, len)
      : new Ctor(buf.buffer.slice(buf.byteOffset + at, buf.byteOffset + at + len * 4), 0, len);
  const y = view(Int32Array, yStart, h.count);
  const rest = { y, count: h.count, shape: h.shape, classes: h.classes };
  if (encoding === 'f32') return { x: view(Float32Array, xStart, n), ...rest };
  // Labels copied: a view would keep the file's bytes alive after the pixels are decoded.
  const pixels = new Uint8Array(buf.buffer, buf.byteOffset + xStart, n);
  return pixelDataset(pixels, { ...rest, y: Int32Array.from(y) });
}
