/**
 * The IDX file format of MNIST and Fashion-MNIST: a 4-byte magic (0, 0, type, number of
 * dimensions), one big-endian uint32 size per dimension, then the values. Only unsigned bytes
 * (type 0x08) are used by these data sets, so only they are accepted. Gzipped files (magic 1f 8b)
 * are inflated first.
 *
 *   const { dims, data } = parseIdx(readFileSync('train-labels-idx1-ubyte.gz'), 1, 'labels');
 *   const images = await readIdxFile('train-images-idx3-ubyte.gz', 3);   // inflates off-thread
 */
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip, gunzipSync } from 'node:zlib';
import { DataError } from '../errors.js';

const gunzipAsync = promisify(gunzip);

export interface IdxArray {
  readonly dims: number[];
  readonly data: Uint8Array;
}

const UBYTE = 0x08;

const isGzip = (b: Uint8Array) => b[0] === 0x1f && b[1] === 0x8b;

/**
 * Read and parse an IDX file, inflating it on libuv's thread pool: a launcher decoding a data set
 * while its node processes start keeps its event loop free to answer them.
 */
export async function readIdxFile(path: string, ndims: number): Promise<IdxArray> {
  let buf: Uint8Array = await readFile(path);
  if (isGzip(buf)) {
    try {
      buf = await gunzipAsync(buf);
    } catch (e) {
      throw new DataError(`${path}: corrupt gzip stream (${(e as Error).message})`);
    }
  }
  return parseIdx(buf, ndims, path);
}

/** Parse an IDX file (optionally gzipped) that must have `ndims` dimensions of unsigned bytes. */
export function parseIdx(bytes: Uint8Array, ndims: number, source: string): IdxArray {
  let buf = bytes;
  if (isGzip(buf)) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      throw new DataError(`${source}: corrupt gzip stream (${(e as Error).message})`);
    }
  }
  if (buf.length < 4 + 4 * ndims) {
    throw new DataError(`${source}: ${buf.length} bytes is too short for an IDX header`);
  }
  if (buf[0] !== 0 || buf[1] !== 0 || buf[2] !== UBYTE || buf[3] !== ndims) {
    const got = Array.from(buf.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new DataError(
      `${source}: bad IDX magic ${got}, expected 00 00 08 0${ndims} (unsigned bytes, ${ndims} dimensions)`,
    );
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  let size = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    size *= d;
  }
  const header = 4 + 4 * ndims;
  if (buf.length - header !== size) {
    throw new DataError(
      `${source}: header says ${dims.join(' x ')} = ${size} values, file holds ${buf.length - header}`,
    );
  }
  return { dims, data: buf.subarray(header) };
}

/** Encode an IDX file of unsigned bytes (used by tests and by tools that write small subsets). */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out[2] = UBYTE;
  out[3] = dims.length;
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
