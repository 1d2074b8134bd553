import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../../src/compute/rng.js';

describe('Rng', () => {
  it('replays the same stream from the same seed and labels', () => {
    const a = Rng.from(7, 'data', 3);
    const b = Rng.from(7, 'data', 3);
    for (let i = 0; i < 100; i++) assert.equal(a.nextU32(), b.nextU32());
  });

  it('gives independent streams for different labels', () => {
    const a = Array.from({ length: 8 }, (_, i) => Rng.from(1, 'data', 0).nextU32() + i);
    const b = Array.from({ length: 8 }, (_, i) => Rng.from(1, 'data', 1).nextU32() + i);
    assert.notDeepEqual(a, b);
  });

  it('restores from its state', () => {
    const a = Rng.from(42, 'faults');
    a.float();
    const b = Rng.restore(a.state());
    for (let i = 0; i < 50; i++) assert.equal(a.float(), b.float());
  });

  it('draws floats in [0,1) with the right mean and normals with unit variance', () => {
    const r = Rng.from(3);
    let s = 0;
    let s2 = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const u = r.float();
      assert.ok(u >= 0 && u < 1);
      s += u;
      const z = r.normal();
      s2 += z * z;
    }
    assert.ok(Math.abs(s / n - 0.5) < 0.01);
    assert.ok(Math.abs(s2 / n - 1) < 0.05);
  });

  it('draws gamma variates with mean equal to the shape', () => {
    const r = Rng.from(5);
    for (const k of [0.1, 0.5, 2]) {
      let s = 0;
      for (let i = 0; i < 20000; i++) s += r.gamma(k);
      assert.ok(Math.abs(s / 20000 - k) < 0.05 * Math.max(1, k), `gamma(${k}) mean ${s / 20000}`);
    }
  });

  it('rejects an invalid state', () => {
    assert.throws(() => Rng.restore([1, 2, 3]), RangeError);
  });
});
