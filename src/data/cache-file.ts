/**
 * The compact on-disk form of a decoded image data set: uint8 pixels and labels for train and test,
 * with a sha256 over everything that is checked on every load, so a truncated or bit-flipped cache
 * is refetched rather than trained on.
 *
 * Layout: "FMDS" | uint32 LE version (1) | uint32 LE header length | header JSON (name, shape,
 * classes, train and test counts) | train pixels | train labels | test pixels | test labels |
 * 32-byte sha256 of all preceding bytes. Pixels are in NHWC order.
 *
 *   writeCacheFile(path, { name: 'cifar10', shape: [32, 32, 3], classes: 10, train, test });
 *   const c = readCacheFile(path);  // throws DataError on a checksum mismatch
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { DataError } from '../errors.js';

export interface CachedPart {
  readonly pixels: Uint8Array;
  readonly labels: Uint8Array;
}

export interface CachedDataset {
  readonly name: string;
  readonly shape: readonly number[];
  readonly classes: number;
  readonly train: CachedPart;
  readonly test: CachedPart;
}

const MAGIC = 'FMDS';
const VERSION = 1;
const DIGEST = 32;

interface Header {
  name: string;
  shape: number[];
  classes: number;
  train: number;
  test: number;
}

function checkPart(part: CachedPart, size: number, which: string): number {
  const n = part.labels.length;
  if (part.pixels.length !== n * size) {
    throw new RangeError(`${which}: ${part.pixels.length} pixel bytes for ${n} labels of ${size}`);
  }
  return n;
}

/** Write atomically (temp file, fsync, rename), so a crash never leaves a half-written cache. */
export function writeCacheFile(path: string, ds: CachedDataset): void {
  const size = ds.shape.reduce((a, b) => a * b, 1);
  const header: Header = {
    name: ds.name,
    shape: [...ds.shape],
    classes: ds.classes,
    train: checkPart(ds.train, size, 'train'),
    test: checkPart(ds.test, size, 'test'),
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(12);
  pre.write(MAGIC, 0, 'latin1');
  pre.writeUInt32LE(VERSION, 4);
  pre.writeUInt32LE(json.length, 8);
  const chunks = [pre, json, ds.train.pixels, ds.train.labels, ds.test.pixels, ds.test.labels];
  const hash = createHash('sha256');
  for (const c of chunks) hash.update(c);
  chunks.push(hash.digest());
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    for (const c of chunks) writeSync(fd, c);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function readCacheFile(path: string): CachedDataset {
  const buf = readFileSync(path);
  const bad = (why: string) =>
    new DataError(`${path}: ${why}; delete it and run \`flatmesh data fetch\` again`);
  if (buf.length < 12 + DIGEST || buf.toString('latin1', 0, 4) !== MAGIC) {
    throw bad('not a flatmesh data cache file');
  }
  if (buf.readUInt32LE(4) !== VERSION) throw bad(`cache version ${buf.readUInt32LE(4)} is unknown`);
  const body = buf.subarray(0, buf.length - DIGEST);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(buf.subarray(buf.length - DIGEST)))
    throw bad('checksum mismatch (corrupt file)');
  const hlen = buf.readUInt32LE(8);
  let h: Header;
  try {
    h = JSON.parse(buf.toString('utf8', 12, 12 + hlen)) as Header;
  } catch {
    throw bad('unreadable header');
  }
  const size = h.shape.reduce((a, b) => a * b, 1);
  let pos = 12 + hlen;
  const take = (n: number) => {
    const out = body.subarray(pos, pos + n);
    pos += n;
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  };
  const train = { pixels: take(h.train * size), labels: take(h.train) };
  const test = { pixels: take(h.test * size), labels: take(h.test) };
  if (pos !== body.length) throw bad(`size does not match its header`);
  return { name: h.name, shape: h.shape, classes: h.classes, train, test };
}
