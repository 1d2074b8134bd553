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

  it('decodes x as byte / 255 in float32, the loaders own values', () => {
    const ds = make();
    assert.deepEqual(
      ds.x,
      Float32Array.from(bytes, (b) => b / 255),
    );
    assert.equal(ds.x, ds.x, 'decoded once');
    assert.equal(PIXEL_VALUES[255], 1);
    assert.equal(pixelsOf(ds), bytes);
  });

  it('subset keeps the bytes and the values; a spread with new features drops the bytes', () => {
    const ds = make();
    const part = subset(ds, Int32Array.of(3, 1));
    assert.deepEqual(
      pixelsOf(part),
      Uint8Array.of(...bytes.subarray(18, 24), ...bytes.subarray(6, 12)),
    );
    assert.deepEqual(part.x, Float32Array.of(...ds.x.subarray(18, 24), ...ds.x.subarray(6, 12)));
    assert.deepEqual([...part.y], [1, 1]);
    const changed = { ...ds, x: new Float32Array(24).fill(0.5) };
    assert.equal(pixelsOf(changed), undefined);
    const relabelled = { ...ds, y: Int32Array.of(1, 1, 1, 1) };
    assert.deepEqual(relabelled.x, ds.x, 'a spread copies the decoded features');
  });

  it('a shard of a pixel data set stores the bytes and reads back the same values', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'flatmesh-pixels-')), 'p.fmsh');
    const ds = make();
    writeShardFile(file, ds);
    const back = readShardFile(file);
    assert.deepEqual(pixelsOf(back), bytes);
    assert.deepEqual(back.x, ds.x);
    // Features that no longer match the bytes are written as they are, not as the bytes.
    writeShardFile(file, { ...ds, x: new Float32Array(24).fill(0.3) });
    assert.deepEqual(readShardFile(file).x, new Float32Array(24).fill(0.3));
  });
});
