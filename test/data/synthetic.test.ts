import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadDataset } from '../../src/data/load.js';
import { classHistogram } from '../../src/data/subset.js';
import { generateSynthetic } from '../../src/data/synthetic.js';
import { ConfigError } from '../../src/errors.js';

describe('synthetic (FedProx Synthetic(alpha, beta))', () => {
  it('has the requested shapes and sizes, with groups on both sets', () => {
    const s = generateSynthetic(
      { alpha: 0.5, beta: 0.5, samples: 2000, dim: 20, classes: 5, devices: 8 },
      0,
    );
    assert.equal(s.train.count + s.test.count, 2000);
    assert.deepEqual(s.train.shape, [20]);
    assert.equal(s.train.classes, 5);
    assert.equal(s.train.x.length, s.train.count * 20);
    assert.equal(s.train.groups?.length, s.train.count);
    assert.equal(new Set(s.test.groups).size, 8, 'every device has test samples');
    assert.ok(Math.abs(s.test.count / 2000 - 0.2) < 0.01);
    assert.ok(s.train.y.every((c) => c >= 0 && c < 5));
    assert.ok(s.train.x.every(Number.isFinite));
  });

  it('is a pure function of the seed', async () => {
    const a = await loadDataset(
      { name: 'synthetic', alpha: 1, beta: 1, samples: 1500 },
      { seed: 4 },
    );
    const b = await loadDataset(
      { name: 'synthetic', alpha: 1, beta: 1, samples: 1500 },
      { seed: 4 },
    );
    const c = await loadDataset(
      { name: 'synthetic', alpha: 1, beta: 1, samples: 1500 },
      { seed: 5 },
    );
    assert.deepEqual(a.train.x, b.train.x);
    assert.deepEqual(a.test.y, b.test.y);
    assert.notDeepEqual(a.train.x, c.train.x);
    assert.deepEqual(a.train.shape, [60]);
  });

  it('is non-IID across devices: label mixes differ by device', () => {
    const s = generateSynthetic({ alpha: 1, beta: 1, samples: 6000, devices: 10 }, 1);
    const perDevice = Array.from({ length: 10 }, (_, k) =>
      classHistogram(
        Array.from(s.train.y).filter((_, i) => s.train.groups![i] === k),
        10,
      ),
    );
    // Each device's most common class holds a large share of its samples (argmax of one W_k).
    const shares = perDevice.map((h) => Math.max(...h) / h.reduce((a, b) => a + b, 0));
    assert.ok(shares.reduce((a, b) => a + b, 0) / shares.length > 0.3, shares.join(' '));
  });

  it('rejects parameters out of range with the field named', () => {
    assert.throws(
      () => generateSynthetic({ alpha: -1, beta: 0 }, 0),
      (e: unknown) => e instanceof ConfigError && /dataset.alpha/.test(e.message),
    );
    assert.throws(
      () => generateSynthetic({ alpha: 0, beta: 0, samples: 50, devices: 30 }, 0),
      /dataset.samples/,
    );
    assert.throws(() => generateSynthetic({ alpha: 0, beta: 0, classes: 1 }, 0), /dataset.classes/);
  });
});
