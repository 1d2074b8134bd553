/**
 * A data set (or one node's shard of it) as one binary file, so that a launcher can decode and
 * partition a data set once and every node process reads just its own part: no node holds the full
 * training set, and no node pays for decompressing it. Written atomically (temp + rename) with a
 * CRC32 that is checked on load.
 *
 *   writeShardFile('run/shards/train-3.fmsh', subset(train, partition[3]));
 *   const shard = readShardFile('run/shards/train-3.fmsh');
 *
 * Layout: "FMSH" | u32 version | u32 header length | header JSON {shape, classes, count} |
 * f32 features | i32 labels | u32 crc32 of everything before it.
 */
import { closeSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { DataError } from '../errors.js';
import type { Dataset } from './types.js';

const MAGIC = 0x48534d46; // 'FMSH' little-endian
const VERSION = 1;

export function writeShardFile(path: string, ds: Dataset): void {
  const header = Buffer.from(
    JSON.stringify({ shape: ds.shape, classes: ds.classes, count: ds.count }),
    'utf8',
  );
  const pad = (4 - ((12 + header.length) % 4)) % 4;
  const pre = Buffer.alloc(12);
  pre.writeUInt32LE(MAGIC, 0);
  pre.writeUInt32LE(VERSION, 4);
  pre.writeUInt32LE(header.length + pad, 8);
  const parts = [
    pre,
    header,
    Buffer.alloc(pad, 0x20),
    new Uint8Array(ds.x.buffer, ds.x.byteOffset, ds.x.byteLength),
    new Uint8Array(ds.y.buffer, ds.y.byteOffset, ds.y.byteLength),
  ];
  let crc = 0;
  for (const p of parts) crc = crc32(p, crc);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(crc >>> 0, 0);
  const tmp = `${path}.tmp-${process.pid}`;
  // Part by part: joining them first would copy every byte once more (a launcher writes ~200 MB).
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
  if (buf.readUInt32LE(4) !== VERSION) fail(`unsupported version ${buf.readUInt32LE(4)}`);
  if (crc32(buf.subarray(0, buf.length - 4)) >>> 0 !== buf.readUInt32LE(buf.length - 4))
    fail('checksum mismatch');
  const hlen = buf.readUInt32LE(8);
  const h = JSON.parse(buf.subarray(12, 12 + hlen).toString('utf8')) as {
    shape: number[];
    classes: number;
    count: number;
  };
  const per = h.shape.reduce((a, b) => a * b, 1);
  const xStart = 12 + hlen;
  const xBytes = h.count * per * 4;
  if (xStart + xBytes + h.count * 4 + 4 !== buf.length) fail('size does not match its header');
  // The file's bytes are this call's own (a large readFileSync never uses the shared pool), so
  // the arrays can view them in place when aligned: no second copy of a node's data in memory.
  const xOff = buf.byteOffset + xStart;
  const yOff = xOff + xBytes;
  const x =
    xOff % 4 === 0
      ? new Float32Array(buf.buffer, xOff, h.count * per)
      : new Float32Array(buf.buffer.slice(xOff, xOff + xBytes));
  const y =
    yOff % 4 === 0
      ? new Int32Array(buf.buffer, yOff, h.count)
      : new Int32Array(buf.buffer.slice(yOff, yOff + h.count * 4));
  return { x, y, count: h.count, shape: h.shape, classes: h.classes };
}
