import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../../src/compute/rng.js';
import { augmentBatch } from '../../src/data/augment.js';
import { channelStats, standardize } from '../../src/data/normalize.js';

const [H, W, C] = [32, 32, 3];
const at = (x: Float32Array, n: number, y: number, col: number, c: number) =>
  x[n * H * W * C + (y * W + col) * C + c]!;

function batch(count: number): Float32Array {
  // Distinct value per (image, row, column, channel) so every move is visible.
  return Float32Array.from({ length: count * H * W * C }, (_, i) => (i % 100_003) + 1);
}

describe('augmentBatch', () => {
  it('is the identity with no padding and no flip, and never mutates its input', () => {
    const x = batch(3);
    const copy = Float32Array.from(x);
    assert.deepEqual(augmentBatch(x, 3, [H, W, C], Rng.from(0), { pad: 0, flip: false }), x);
    augmentBatch(x, 3, [H, W, C], Rng.from(0));
    assert.deepEqual(x, copy);
  });

  it('flips: each image is itself or its left-right mirror, and both happen', () => {
    const x = batch(40);
    const out = augmentBatch(x, 40, [H, W, C], Rng.from(1), { pad: 0 });
    let flipped = 0;
    for (let n = 0; n < 40; n++) {
      const mirror = at(out, n, 5, 0, 1) === at(x, n, 5, W - 1, 1);
      if (mirror) flipped++;
      for (let y = 0; y < H; y += 7) {
        for (let col = 0; col < W; col += 5) {
          assert.equal(at(out, n, y, col, 2), at(x, n, y, mirror ? W - 1 - col : col, 2));
        }
      }
    }
    assert.ok(flipped > 5 && flipped < 35, `${flipped} of 40 flipped`);
  });

  it('crops: a shift of at most pad pixels, with zeros where the padding shows', () => {
    const x = batch(20);
    const out = augmentBatch(x, 20, [H, W, C], Rng.from(2), { pad: 4, flip: false });
    let shifted = 0;
    for (let n = 0; n < 20; n++) {
      // Find the shift from the centre pixel, then check the whole image against it.
      let found: [number, number] | undefined;
      for (let dy = -4; dy <= 4 && !found; dy++) {
        for (let dx = -4; dx <= 4 && !found; dx++) {
          if (at(out, n, 16, 16, 0) === at(x, n, 16 + dy, 16 + dx, 0)) found = [dy, dx];
        }
      }
      assert.ok(found, `image ${n} is a shifted copy`);
      const [dy, dx] = found;
      if (dy !== 0 || dx !== 0) shifted++;
      for (let y = 0; y < H; y++) {
        for (let col = 0; col < W; col++) {
          const [sy, sx] = [y + dy, col + dx];
          const inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
          assert.equal(at(out, n, y, col, 1), inside ? at(x, n, sy, sx, 1) : 0);
        }
      }
    }
    assert.ok(shifted > 10);
  });

  it('replays exactly from the same seed', () => {
    const x = batch(4);
    assert.deepEqual(
      augmentBatch(x, 4, [H, W, C], Rng.from(7, 'augment', 1)),
      augmentBatch(x, 4, [H, W, C], Rng.from(7, 'augment', 1)),
    );
    assert.notDeepEqual(
      augmentBatch(x, 4, [H, W, C], Rng.from(7, 'augment', 1)),
      augmentBatch(x, 4, [H, W, C], Rng.from(7, 'augment', 2)),
    );
  });
});

describe('standardize', () => {
  it('gives each channel mean 0 and std 1 using the given statistics', () => {
    const x = Float32Array.from({ length: 300 }, (_, i) => (i % 3) * 0.5 + ((i * 37) % 11) / 20);
    const ds = { x, y: new Int32Array(100), count: 100, shape: [1, 1, 3], classes: 2 };
    const stats = channelStats(ds);
    const after = channelStats(standardize(ds, stats));
    for (let c = 0; c < 3; c++) {
      assert.ok(Math.abs(after.mean[c]!) < 1e-6);
      assert.ok(Math.abs(after.std[c]! - 1) < 1e-5);
    }
  });
});
