import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { finalVectors, maxDiff, meanVector, spread } from '../helpers/sim-vectors.js';

/** Each node's SWA average at the end of a simulated run. */
const swaModels = (rounds: number, settle: number) =>
  finalVectors(
    parseExperiment({
      nodes: 6,
      run: { rounds, seed: 5 },
      topology: { graph: 'ring', budget: 0.5 },
      data: { dataset: 'digits', partition: 'dirichlet:0.1' },
      model: { hidden: [16] },
      train: { optimizer: 'sgd', lr: 0.1, localSteps: 3 },
      swa: { start: 0.5, cycle: 2, gossip: true, settle },
      eval: { every: 100 },
    }),
    (ck) => ck.swa.mean,
  );

describe('swa.settle', () => {
  it('after the last collection, the gossiped SWA averages close in on their mean, which stays', async () => {
    // 8 rounds that train (SWA from round 4, collections at 5 and 7), then 6 that only gossip.
    const trained = await swaModels(8, 0);
    const settled = await swaModels(14, 6);
    const scale = Math.max(...meanVector(trained).map(Math.abs));
    assert.ok(maxDiff(meanVector(settled), meanVector(trained)) / scale < 1e-5, 'the mean moved');
    assert.ok(
      spread(settled) < 0.5 * spread(trained),
      `spread ${spread(trained)} -> ${spread(settled)}`,
    );
  });
});
