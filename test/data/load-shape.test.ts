/**
 * The shape and class count a launcher derives the model layout from before loading the data must
 * be the loaded data's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { datasetShape, findFashionMnistDir, loadDataset } from '../../src/data/index.js';
import type { DatasetSpec } from '../../src/data/types.js';

describe('datasetShape', () => {
  const specs: DatasetSpec[] = [
    { name: 'digits' },
    { name: 'synthetic', alpha: 1, beta: 1 },
    { name: 'synthetic', alpha: 0.5, beta: 0.5, dim: 12, classes: 4 },
  ];
  // Installed on CI (dataset-fashion-mnist); a limit keeps the load small.
  if (findFashionMnistDir()) specs.push({ name: 'fashion-mnist', limit: 100 });
  for (const spec of specs) {
    it(`matches what loading ${JSON.stringify(spec)} gives`, async () => {
      const split = await loadDataset(spec, { seed: 1 });
      assert.deepEqual(datasetShape(spec), {
        shape: [...split.train.shape],
        classes: split.train.classes,
      });
    });
  }
});
