import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PIXEL_VALUES, pixelDataset, pixelsOf } from '../../src/data/pixels.js';
import { readShardFile, writeShardFile } from '../../src/data/shard-file.js';
import { subset } from '../../src/data/subset.js';

describe('pixel data sets', () => {
  const bytes = Uint8Array.from({ length: 4 * 6 }, (_, i) => (i * 53) % 256);
  const make = () =>
    pixelDataset(bytes, { y: Int32Array.of(0, 1, 0, 1), count: 4, shape: [2, 3], classes: 2 });
  const values = Float32Array.from(bytes, (b) => b / 255);

  it('decodes x as byte / 255 in float32, the loaders own values, and then lets the bytes go', () => {
    const ds = make();
    assert.equal(pixelsOf(ds), bytes);
    assert.deepEqual(ds.x, values);
    assert.equal(ds.x, ds.x, 'decoded once');
    assert.equal(pixelsOf(ds), undefined);
    assert.equal(PIXEL_VALUES[255], 1);
  });

  it('subset keeps the bytes and the values; a spread with new features drops the bytes', () => {
    const part = subset(make(), Int32Array.of(3, 1));
    const rows = (a: Uint8Array | Float32Array) => [...a.subarray(18, 24), ...a.subarray(6, 12)];
    assert.deepEqual([...(pixelsOf(part) ?? [])], rows(bytes));
    assert.deepEqual([...part.x], rows(values));
    assert.deepEqual([...part.y], [1, 1]);
    // Once decoded, subsets copy the features: the same values.
    const decoded = make();
    void decoded.x;
    assert.deepEqual(subset(decoded, Int32Array.of(3, 1)).x, part.x);
    assert.equal(pixelsOf({ ...make(), x: new Float32Array(24).fill(0.5) }), undefined);
    assert.deepEqual({ ...make(), y: Int32Array.of(1, 1, 1, 1) }.x, values);
  });

  it('a shard of a pixel data set stores the bytes and reads back the same values', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'flatmesh-pixels-')), 'p.fmsh');
    writeShardFile(file, make());
    const back = readShardFile(file);
    assert.deepEqual(pixelsOf(back), bytes);
    assert.deepEqual(back.x, values);
    // Features that no longer match the bytes are written as they are, not as the bytes.
    writeShardFile(file, { ...make(), x: new Float32Array(24).fill(0.3) });
    assert.deepEqual(readShardFile(file).x, new Float32Array(24).fill(0.3));
  });
});
