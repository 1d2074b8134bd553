import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readShardFile, writeShardFile } from '../../src/data/shard-file.js';
import { DataError } from '../../src/errors.js';

describe('shard files', () => {
  const ds = {
    x: Float32Array.from({ length: 3 * 4 }, (_, i) => i / 7),
    y: Int32Array.of(2, 0, 1),
    count: 3,
    shape: [2, 2, 1],
    classes: 3,
  };

  it('round-trips features, labels, shape and classes exactly', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'flatmesh-shard-')), 's.fmsh');
    writeShardFile(file, ds);
    const back = readShardFile(file);
    assert.deepEqual([...back.x], [...ds.x]);
    assert.deepEqual([...back.y], [...ds.y]);
    assert.deepEqual(back.shape, ds.shape);
    assert.equal(back.classes, 3);
    assert.equal(back.count, 3);
  });

  it('refuses a corrupt or truncated shard with a DataError', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'flatmesh-shard-')), 's.fmsh');
    writeShardFile(file, ds);
    const bytes = readFileSync(file);
    const bad = Buffer.from(bytes);
    bad[bad.length - 10] = bad[bad.length - 10]! ^ 1;
    writeFileSync(file, bad);
    assert.throws(() => readShardFile(file), DataError);
    writeFileSync(file, bytes.subarray(0, 20));
    assert.throws(() => readShardFile(file), DataError);
  });
});
