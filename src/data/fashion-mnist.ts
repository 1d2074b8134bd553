/**
 * Fashion-MNIST (Xiao, Rasul, Vollgraf, Zalando Research, 2017; MIT licence): 60,000 training and
 * 10,000 test images of 28x28 grey pixels in 10 classes, read from the four original IDX files
 * (gzipped or not). They are looked up in the data directory (`FLATMESH_DATA` or
 * `~/.cache/flatmesh`, with or without a `fashion-mnist/` subdirectory), then in
 * /usr/share/datasets/fashion-mnist (Debian package `dataset-fashion-mnist`).
 *
 *   const split = await loadFashionMnist({ limit: 6000, seed: 0 });  // shapes [28, 28, 1], pixels in [0,1]
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.js';
import { candidateDirs, dataDir } from './data-dir.js';
import { download, type ProgressFn } from './download.js';
import { parseIdx, readIdxFile } from './idx.js';
import { pixelDataset } from './pixels.js';
import { limitIndices, subset } from './subset.js';
import type { Dataset, DatasetSplit } from './types.js';

export const FASHION_MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** Sample shape of Fashion-MNIST images (28x28 grey). */
export const FASHION_MNIST_SHAPE = [28, 28, 1] as const;

/** Where Zalando Research publishes the files (used by `flatmesh data fetch fashion-mnist`). */
export const FASHION_MNIST_URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/';

/** The path of `base` (gzipped preferred) in `dir`, or undefined. */
function fileIn(dir: string, base: string): string | undefined {
  for (const name of [`${base}.gz`, base]) if (existsSync(join(dir, name))) return join(dir, name);
  return undefined;
}

/** The first candidate directory holding all four files, or undefined. */
export function findFashionMnistDir(dataDir?: string): string | undefined {
  return candidateDirs('fashion-mnist', dataDir).find((d) =>
    Object.values(FASHION_MNIST_FILES).every((b) => fileIn(d, b) !== undefined),
  );
}

async function readPart(
  dir: string,
  images: string,
  labels: string,
  pickRows: (n: number) => Int32Array | null,
): Promise<Dataset> {
  const imgPath = fileIn(dir, images)!;
  const lblPath = fileIn(dir, labels)!;
  const [img, lbl] = await Promise.all([readIdxFile(imgPath, 3), readIdxFile(lblPath, 1)]);
  const [n, h, w] = img.dims as [number, number, number];
  if (h !== 28 || w !== 28) {
    throw new DataError(`${imgPath}: images are ${h}x${w}, Fashion-MNIST images are 28x28`);
  }
  if (lbl.dims[0] !== n) {
    throw new DataError(`${lblPath}: ${lbl.dims[0]} labels for ${n} images in ${imgPath}`);
  }
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = lbl.data[i]!;
    if (label > 9) throw new DataError(`${lblPath}: label ${label} at row ${i} is not in [0, 9]`);
    y[i] = label;
  }
  // The image bytes as they are (see pixels.ts): x = byte / 255, decoded when first read.
  const all = pixelDataset(img.data, { y, count: n, shape: [...FASHION_MNIST_SHAPE], classes: 10 });
  const take = pickRows(n);
  return take ? subset(all, take) : all;
}

export async function loadFashionMnist(
  opts: { limit?: number; seed?: number; dataDir?: string } = {},
): Promise<DatasetSplit> {
  const dir = findFashionMnistDir(opts.dataDir);
  if (!dir) {
    const searched = candidateDirs('fashion-mnist', opts.dataDir).join(', ');
    throw new DataError(
      `Fashion-MNIST not found (searched ${searched}). Install it with ` +
        '`sudo apt-get install dataset-fashion-mnist`, or run `flatmesh data fetch fashion-mnist`, ' +
        'or put the four IDX files (train-images-idx3-ubyte.gz, ...) in $FLATMESH_DATA/fashion-mnist.',
    );
  }
  const limited = (n: number) =>
    opts.limit === undefined ? null : limitIndices(n, opts.limit, opts.seed ?? 0, 'dataset.limit');
  const [train, test] = await Promise.all([
    readPart(dir, FASHION_MNIST_FILES.trainImages, FASHION_MNIST_FILES.trainLabels, limited),
    readPart(dir, FASHION_MNIST_FILES.testImages, FASHION_MNIST_FILES.testLabels, () => null),
  ]);
  return { name: 'fashion-mnist', train, test };
}

/**
 * Download the four files from the publisher into `<dataDir>/fashion-mnist/` (each checked as IDX
 * before it is kept). Returns the directory. Not needed when the Debian package is installed.
 */
export async function fetchFashionMnist(
  opts: { dataDir?: string; signal?: AbortSignal; onProgress?: ProgressFn; baseUrl?: string } = {},
): Promise<string> {
  const dir = join(dataDir(opts.dataDir), 'fashion-mnist');
  mkdirSync(dir, { recursive: true });
  for (const base of Object.values(FASHION_MNIST_FILES)) {
    const dest = join(dir, `${base}.gz`);
    if (existsSync(dest)) continue;
    const bytes = await download(`${opts.baseUrl ?? FASHION_MNIST_URL}${base}.gz`, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
    parseIdx(bytes, base.includes('images') ? 3 : 1, `${base}.gz`);
    writeFileSync(`${dest}.tmp`, bytes);
    renameSync(`${dest}.tmp`, dest);
  }
  return dir;
}
