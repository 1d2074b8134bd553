import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { DEBIAN_FASHION_MNIST_DIR } from '../../src/data/data-dir.js';
import {
  FASHION_MNIST_FILES,
  findFashionMnistDir,
  loadFashionMnist,
} from '../../src/data/fashion-mnist.js';
import { encodeIdx, parseIdx, readIdxFile } from '../../src/data/idx.js';
import { pixelsOf } from '../../src/data/pixels.js';
import { DataError } from '../../src/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'flatmesh-fm-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Write a small Fashion-MNIST-shaped data set: image i is filled with value i, label i % 10. */
function writeSmall(dir: string, nTrain: number, nTest: number, gz: boolean): void {
  mkdirSync(dir, { recursive: true });
  const put = (base: string, dims: number[], data: Uint8Array) => {
    const bytes = encodeIdx(dims, data);
    writeFileSync(join(dir, gz ? `${base}.gz` : base), gz ? gzipSync(bytes) : bytes);
  };
  for (const [images, labels, n] of [
    [FASHION_MNIST_FILES.trainImages, FASHION_MNIST_FILES.trainLabels, nTrain],
    [FASHION_MNIST_FILES.testImages, FASHION_MNIST_FILES.testLabels, nTest],
  ] as const) {
    const px = new Uint8Array(n * 784);
    for (let i = 0; i < n; i++) px.fill(i * 10, i * 784, (i + 1) * 784);
    put(images, [n, 28, 28], px);
    put(
      labels,
      [n],
      Uint8Array.from({ length: n }, (_, i) => i % 10),
    );
  }
}

describe('Fashion-MNIST', () => {
  it('reads the real IDX files installed by dataset-fashion-mnist', async () => {
    const split = await loadFashionMnist({ dataDir: join(tmp, 'empty') });
    // Bytes kept as they are until read (shards and subsets copy them, not float32 features).
    assert.equal(pixelsOf(split.train)?.length, 60000 * 784);
    assert.equal(split.train.count, 60000);
    assert.equal(split.test.count, 10000);
    assert.deepEqual(split.train.shape, [28, 28, 1]);
    assert.equal(split.train.x.length, 60000 * 784);
    // The published first training labels: ankle boot, T-shirt, T-shirt, dress, ...
    assert.deepEqual(Array.from(split.train.y.subarray(0, 10)), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    let max = 0;
    for (let i = 0; i < 784 * 100; i++) max = Math.max(max, split.train.x[i]!);
    assert.equal(max, 1);
    assert.equal(findFashionMnistDir(join(tmp, 'empty')), DEBIAN_FASHION_MNIST_DIR);
    // Rows decoded after the loader yielded to the event loop are right too: the last row.
    const raw = parseIdx(
      readFileSync(join(DEBIAN_FASHION_MNIST_DIR, `${FASHION_MNIST_FILES.trainImages}.gz`)),
      3,
      'raw',
    );
    const last = 59999 * 784;
    for (let j = 0; j < 784; j++)
      assert.equal(split.train.x[last + j], Math.fround(raw.data[last + j]! / 255));
  });

  it('reads small IDX files from the data directory, gzipped or not', async () => {
    for (const gz of [true, false]) {
      const dir = join(tmp, gz ? 'gz' : 'plain');
      writeSmall(join(dir, 'fashion-mnist'), 12, 5, gz);
      const split = await loadFashionMnist({ dataDir: dir });
      assert.equal(split.train.count, 12);
      assert.equal(split.test.count, 5);
      assert.deepEqual(Array.from(split.train.y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
      assert.equal(split.train.x[3 * 784 + 100], Math.fround(30 / 255));
    }
  });

  it('limit keeps a seeded random subset, the same for the same seed', async () => {
    const dir = join(tmp, 'gz');
    const a = await loadFashionMnist({ dataDir: dir, limit: 5, seed: 3 });
    const b = await loadFashionMnist({ dataDir: dir, limit: 5, seed: 3 });
    const c = await loadFashionMnist({ dataDir: dir, limit: 5, seed: 4 });
    assert.equal(a.train.count, 5);
    assert.equal(a.test.count, 5, 'limit leaves the test set whole');
    assert.deepEqual(a.train.x, b.train.x);
    assert.notDeepEqual(a.train.x, c.train.x);
    // Rows stay in source order: pixel value (row * 10) increases.
    const firsts = Array.from({ length: 5 }, (_, r) => a.train.x[r * 784]!);
    assert.deepEqual(
      firsts,
      [...firsts].sort((p, q) => p - q),
    );
  });

  it('rejects corrupt IDX files with a DataError', async () => {
    const good = encodeIdx([2, 28, 28], new Uint8Array(2 * 784));
    assert.equal(parseIdx(good, 3, 'x').dims[0], 2);
    const badMagic = Uint8Array.from(good);
    badMagic[2] = 0x0d;
    assert.throws(
      () => parseIdx(badMagic, 3, 'x'),
      (e: unknown) => e instanceof DataError && /magic/.test(e.message),
    );
    assert.throws(() => parseIdx(good, 1, 'x'), DataError);
    assert.throws(
      () => parseIdx(good.subarray(0, good.length - 1), 3, 'x'),
      /1568 values, file holds 1567/,
    );
    assert.throws(() => parseIdx(Uint8Array.of(0x1f, 0x8b, 1, 2, 3), 3, 'x'), /gzip/);
    const corrupt = join(tmp, 'corrupt.gz');
    writeFileSync(corrupt, Uint8Array.of(0x1f, 0x8b, 1, 2, 3));
    await assert.rejects(
      readIdxFile(corrupt, 3),
      (e: unknown) => e instanceof DataError && /gzip/.test(e.message),
    );
  });

  it('reports labels and images that disagree', async () => {
    const dir = join(tmp, 'mismatch', 'fashion-mnist');
    writeSmall(dir, 4, 2, false);
    writeFileSync(join(dir, FASHION_MNIST_FILES.trainLabels), encodeIdx([3], new Uint8Array(3)));
    await assert.rejects(
      loadFashionMnist({ dataDir: join(tmp, 'mismatch') }),
      /3 labels for 4 images/,
    );
  });
});
