import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadDigits, parseDigitsCsv } from '../../src/data/digits.js';
import { classHistogram } from '../../src/data/subset.js';
import { DataError } from '../../src/errors.js';

describe('digits', () => {
  const a = loadDigits({ seed: 0 });

  it('loads all 1797 samples into a split whose sizes add up', () => {
    assert.equal(a.train.count + a.test.count, 1797);
    assert.equal(a.train.x.length, a.train.count * 64);
    assert.equal(a.test.y.length, a.test.count);
    assert.deepEqual(a.train.shape, [8, 8, 1]);
    assert.equal(a.train.classes, 10);
  });

  it('normalizes pixels to [0, 1] and uses all of that range', () => {
    let min = Infinity;
    let max = -Infinity;
    for (const v of a.train.x) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.equal(min, 0);
    assert.equal(max, 1);
  });

  it('is stratified: each class puts round(20%) of its samples in test', () => {
    const tr = classHistogram(a.train.y, 10);
    const te = classHistogram(a.test.y, 10);
    for (let c = 0; c < 10; c++) {
      assert.equal(te[c], Math.round((tr[c]! + te[c]!) * 0.2), `class ${c}`);
    }
  });

  it('gives the same split for the same seed and another for another seed', () => {
    const b = loadDigits({ seed: 0 });
    assert.deepEqual(b.train.y, a.train.y);
    assert.deepEqual(b.test.x, a.test.x);
    const c = loadDigits({ seed: 1 });
    assert.equal(c.test.count, a.test.count);
    assert.notDeepEqual(c.test.x, a.test.x);
  });

  it('rejects malformed rows with the line named', () => {
    assert.throws(
      () => parseDigitsCsv('1,2,3\n'),
      (e: unknown) => e instanceof DataError && /line 1/.test(e.message),
    );
    const row = `${new Array(64).fill(17).join(',')},3`;
    assert.throws(() => parseDigitsCsv(row), /\[0, 16\]/);
  });
});
