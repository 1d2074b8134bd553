import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type CachedDataset, readCacheFile, writeCacheFile } from '../../src/data/cache-file.js';
import { CIFAR10_CACHE_FILE, loadCifar10 } from '../../src/data/cifar10.js';
import { pixelsOf } from '../../src/data/pixels.js';
import { DataError } from '../../src/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'flatmesh-cache-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function sample(train: number, test: number): CachedDataset {
  const part = (n: number, off: number) => ({
    pixels: Uint8Array.from({ length: n * 12 }, (_, i) => (i * 7 + off) & 0xff),
    labels: Uint8Array.from({ length: n }, (_, i) => (i + off) % 3),
  });
  return { name: 'toy', shape: [2, 2, 3], classes: 3, train: part(train, 0), test: part(test, 1) };
}

describe('data cache file', () => {
  it('round-trips pixels, labels and header', () => {
    const p = join(tmp, 'a.fmds');
    const ds = sample(5, 2);
    writeCacheFile(p, ds);
    const back = readCacheFile(p);
    assert.equal(back.name, 'toy');
    assert.deepEqual(back.shape, [2, 2, 3]);
    assert.equal(back.classes, 3);
    assert.deepEqual(back.train.pixels, ds.train.pixels);
    assert.deepEqual(back.train.labels, ds.train.labels);
    assert.deepEqual(back.test.pixels, ds.test.pixels);
    assert.deepEqual(back.test.labels, ds.test.labels);
  });

  it('detects any flipped byte and a truncated file', () => {
    const p = join(tmp, 'b.fmds');
    writeCacheFile(p, sample(4, 3));
    const bytes = readFileSync(p);
    for (const at of [20, 60, bytes.length - 40, bytes.length - 1]) {
      const bad = Buffer.from(bytes);
      bad[at] = bad[at]! ^ 0x10;
      writeFileSync(p, bad);
      assert.throws(
        () => readCacheFile(p),
        (e: unknown) => e instanceof DataError && /checksum|header|version/.test(e.message),
        `byte ${at}`,
      );
    }
    writeFileSync(p, bytes.subarray(0, bytes.length - 5));
    assert.throws(() => readCacheFile(p), DataError);
    writeFileSync(p, Buffer.from('not a cache'));
    assert.throws(() => readCacheFile(p), /not a flatmesh data cache/);
  });

  it('refuses parts whose pixel count does not match the labels', () => {
    const ds = sample(2, 1);
    assert.throws(() =>
      writeCacheFile(join(tmp, 'c.fmds'), {
        ...ds,
        train: { ...ds.train, labels: new Uint8Array(3) },
      }),
    );
  });

  it('loads a cached CIFAR-10 as pixels over 255, whole or limited', () => {
    const dir = join(tmp, 'cifar');
    const image = 32 * 32 * 3;
    const part = (n: number, off: number) => ({
      // Rows differ in their first bytes (row * 37), so a row can be told by its start.
      pixels: Uint8Array.from(
        { length: n * image },
        (_, i) => (Math.floor(i / image) * 37 + (i % image) * 13 + off) & 0xff,
      ),
      labels: Uint8Array.from({ length: n }, (_, i) => (i + off) % 10),
    });
    const cached = {
      name: 'cifar10',
      shape: [32, 32, 3],
      classes: 10,
      train: part(6, 0),
      test: part(2, 5),
    };
    mkdirSync(dir, { recursive: true });
    writeCacheFile(join(dir, CIFAR10_CACHE_FILE), cached);
    const split = loadCifar10({ dataDir: dir });
    assert.equal(split.train.count, 6);
    assert.deepEqual(split.train.shape, [32, 32, 3]);
    assert.deepEqual(
      split.train.x,
      Float32Array.from(cached.train.pixels, (b) => b / 255),
    );
    assert.deepEqual([...split.test.y], [...cached.test.labels]);
    assert.ok(pixelsOf(split.test), 'kept as bytes until read');
    // A limit keeps a seeded subset of training rows, the test set whole.
    const lim = loadCifar10({ dataDir: dir, limit: 3, seed: 2 });
    assert.equal(lim.train.count, 3);
    assert.equal(lim.test.count, 2);
    for (let r = 0; r < 3; r++) {
      const row = [...lim.train.x.subarray(r * image, r * image + 5)];
      const i = [...Array(6).keys()].find((k) =>
        row.every((v, j) => v === Math.fround(cached.train.pixels[k * image + j]! / 255)),
      );
      assert.ok(i !== undefined, `row ${r} is one of the cached rows`);
      assert.equal(lim.train.y[r], cached.train.labels[i]);
    }
  });

  it('tells the user to run the fetch when CIFAR-10 is not cached', () => {
    assert.throws(
      () => loadCifar10({ dataDir: join(tmp, 'nothing') }),
      (e: unknown) => e instanceof DataError && e.message.includes('flatmesh data fetch cifar10'),
    );
  });
});

describe('fetchCifar10', () => {
  it('lists every source that failed, with why, when none works', async () => {
    const { fetchCifar10 } = await import('../../src/data/cifar10.js');
    await assert.rejects(
      fetchCifar10({
        dataDir: join(tmp, 'fetch'),
        sources: ['http://127.0.0.1:9/cifar.tar.gz'],
        connectTimeoutMs: 2000,
      }),
      (e: unknown) =>
        e instanceof DataError &&
        /any source/.test(e.message) &&
        e.message.includes('127.0.0.1:9/cifar.tar.gz'),
    );
  });
});
