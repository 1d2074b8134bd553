import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import type { Experiment } from '../../src/config/schema.js';
import { bothWays } from '../../src/node/pairwise.js';
import { configProblems } from '../helpers/config-errors.js';
import { finalVectors, maxDiff, meanVector, spread } from '../helpers/sim-vectors.js';

/** The final models of a simulated run. */
const finalModels = (cfg: Experiment) => finalVectors(cfg, (ck) => ck.weights);

/**
 * One round of training, then `gossipRounds` gossip-only rounds (gossip.finish at the end) under
 * 30% one-way loss. The same seed trains round 0 alike whatever follows, so the runs' averages can
 * be compared: what the gossip rounds do to the average of the node models is all that differs.
 */
function cfg(pairwise: boolean, gossipRounds: number) {
  return parseExperiment({
    nodes: 6,
    run: { rounds: 1 + gossipRounds, seed: 7 },
    topology: { graph: 'ring', budget: 0.5 },
    data: { dataset: 'digits', partition: 'dirichlet:0.1' },
    model: { hidden: [16] },
    train: { optimizer: 'sgd', lr: 0.1, localSteps: 3 },
    swa: { enabled: false }, // else a 1-round run is all SWA phase, at another learning rate
    gossip: { pairwise, finish: { rounds: gossipRounds, at: 'end' } },
    faults: { loss: { p: 0.3 } },
    eval: { every: 100 },
  });
}

describe('gossip.pairwise', () => {
  it('mixes only the neighbours whose frame arrived and to which this node delivered', () => {
    const received = [{ from: 1 }, { from: 2 }, { from: 4 }];
    const outcomes = [
      { to: 1, outcome: { status: 'delivered' as const, bytes: 10 } },
      { to: 2, outcome: { status: 'dropped' as const, bytes: 0, reason: 'loss' } },
      { to: 3, outcome: { status: 'delivered' as const, bytes: 10 } },
    ];
    assert.deepEqual(bothWays(received, outcomes), [{ from: 1 }]);
  });

  it('keeps the average of the node models through lossy gossip rounds; one-sided mixing drifts it', async () => {
    const start = await finalModels(cfg(true, 0));
    const pairwise = await finalModels(cfg(true, 6));
    const oneSided = await finalModels(cfg(false, 6));
    const scale = Math.max(...meanVector(start).map(Math.abs));
    const drift = (xs: Float64Array[]) => maxDiff(meanVector(xs), meanVector(start)) / scale;
    // float32 mixing: the average moves by rounding only.
    assert.ok(drift(pairwise) < 1e-5, `pairwise: the average moved by ${drift(pairwise)}`);
    assert.ok(drift(oneSided) > 100 * drift(pairwise), `one-sided drift ${drift(oneSided)}`);
    // And the gossip rounds did bring the models together.
    assert.ok(
      spread(pairwise) < 0.5 * spread(start),
      `spread ${spread(start)} -> ${spread(pairwise)}`,
    );
  });

  it('refuses push-sum and async gossip, naming the field', () => {
    const problems = configProblems(() =>
      parseExperiment({ gossip: { pairwise: true, mixing: 'push-sum', sync: 'async' } }),
    );
    assert.ok(
      problems.some((p) => p.startsWith('gossip.pairwise: is not supported with push-sum')),
    );
    assert.ok(problems.some((p) => p.startsWith("gossip.pairwise: needs gossip.sync: 'lockstep'")));
  });
});
