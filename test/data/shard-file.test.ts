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

  it('stores pixels scaled to [0, 1] as one byte each and reads back the same float32 values', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-shard-'));
    // 5 samples of 3 values: 15 bytes of features, so the labels after them need padding.
    const pixels = {
      x: Float32Array.from({ length: 5 * 3 }, (_, i) => ((i * 37) % 256) / 255),
      y: Int32Array.of(4, 3, 2, 1, 0),
      count: 5,
      shape: [3],
      classes: 5,
    };
    writeShardFile(join(dir, 'u8.fmsh'), pixels);
    const bytes = readFileSync(join(dir, 'u8.fmsh'));
    assert.match(bytes.toString('latin1'), /"x":"u8\/255"/);
    const back = readShardFile(join(dir, 'u8.fmsh'));
    // Header, 15 feature bytes + 1 byte of padding, 5 i32 labels, the CRC.
    assert.equal(bytes.length, 12 + bytes.readUInt32LE(8) + 16 + 5 * 4 + 4);
    assert.deepEqual(back.x, pixels.x);
    assert.deepEqual([...back.y], [...pixels.y]);
    // One value off the byte grid (a NaN, -0): the whole shard stays f32, bit for bit.
    const bits = (a: Float32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
    for (const odd of [0.5, Number.NaN, -0, 2]) {
      const x = Float32Array.from(pixels.x);
      x[7] = odd;
      writeShardFile(join(dir, 'f32.fmsh'), { ...pixels, x });
      assert.match(readFileSync(join(dir, 'f32.fmsh')).toString('latin1'), /"x":"f32"/);
      assert.deepEqual(bits(readShardFile(join(dir, 'f32.fmsh')).x), bits(x), `with ${odd}`);
    }
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
