import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { parseExperiment } from '../../src/config/index.js';
import { BatchedMlpTrainer } from '../../src/learn/batched-mlp.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import { BatchedEvaluation } from '../../src/run/batched-sim.js';
import { simulate } from '../../src/run/simulate.js';

/**
 * The batched simulator against the unbatched one on small seeded runs: the same minibatches (the
 * training losses of every node and round agree), the same models (weights after every round within
 * float32 rounding of the products' summation order), the same figures (test accuracy and loss of
 * the models and SWA averages, evaluated in one pass for all nodes).
 */
const run = async (extra: Record<string, unknown>, batched: boolean) => {
  const cfg = parseExperiment({
    nodes: 5,
    run: { rounds: 6, seed: 7 },
    topology: { graph: 'ring', budget: 0.5 },
    model: { hidden: [24, 16] },
    // 5 steps of 16 over shards of ~360 digits: passes end mid-batch (short last batches).
    train: { localSteps: 5, lr: 0.2, batchSize: 16 },
    swa: { cycle: 2 },
    eval: { every: 3 },
    ...extra,
  });
  const records = new Map<string, RoundRecord>();
  const weights = new Map<string, Float32Array>();
  const summary = await simulate(cfg, {
    batched,
    onRound: (r) => records.set(`${r.node}/${r.round}`, r),
    onWeights: (node, round, x) => weights.set(`${node}/${round}`, x),
  });
  return { summary, records, weights };
};

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Node-rounds the batched engine trained, and in how many batches; vectors it evaluated. */
const trained = { nodes: 0, batches: 0, evaluated: 0 };
const original = BatchedMlpTrainer.prototype.train;
BatchedMlpTrainer.prototype.train = function (members, steps, lrs) {
  trained.nodes += members.length;
  trained.batches++;
  return original.call(this, members, steps, lrs);
};
const originalEvaluate = BatchedEvaluation.prototype.evaluate;
BatchedEvaluation.prototype.evaluate = function (model, x) {
  trained.evaluated++;
  return originalEvaluate.call(this, model, x);
};

async function compare(extra: Record<string, unknown>): Promise<void> {
  const tensorsBefore = tf.memory().numTensors;
  const a = await run(extra, false);
  trained.nodes = 0;
  trained.batches = 0;
  trained.evaluated = 0;
  const b = await run(extra, true);
  // Every node-round was trained by the batched engine, several nodes at a time (gossip-only
  // rounds train nothing), and every evaluation went through the batched evaluator.
  const gossipOnly = [...b.records.values()].filter((r) => r.gossipOnly).length;
  assert.equal(trained.nodes, b.records.size - gossipOnly);
  const evaluations = [...a.records.values()].filter((r) => r.accuracy !== undefined).length;
  // SWA averages are evaluated once per change (SwaAverage.once), at most once per record.
  const swaFigures = [...a.records.values()].filter((r) => r.swaAccuracy !== undefined).length;
  assert.ok(evaluations > 0 && swaFigures > 0);
  assert.ok(
    trained.evaluated > evaluations && trained.evaluated <= evaluations + swaFigures,
    `${trained.evaluated} batched evaluations for ${evaluations} + ${swaFigures} figures`,
  );
  assert.ok(
    trained.batches < trained.nodes / 2,
    `${trained.batches} batches for ${trained.nodes} node-rounds`,
  );
  assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor outlives a run');
  assert.equal(b.records.size, a.records.size);
  for (const [key, ra] of a.records) {
    const rb = b.records.get(key);
    assert.ok(rb, `batched run has a record for node/round ${key}`);
    assert.equal(Number.isNaN(rb.trainLoss), Number.isNaN(ra.trainLoss), `${key}: gossip-only`);
    assert.ok(
      Number.isNaN(ra.trainLoss) ||
        Math.abs(ra.trainLoss - rb.trainLoss) <= 1e-4 * Math.max(1, Math.abs(ra.trainLoss)),
      `${key}: training loss ${rb.trainLoss} batched vs ${ra.trainLoss}`,
    );
    assert.deepEqual(rb.heard, ra.heard);
    assert.equal(rb.swaCount, ra.swaCount);
    assert.equal(rb.accuracy === undefined, ra.accuracy === undefined, `${key}: evaluated`);
    assert.equal(rb.swaAccuracy === undefined, ra.swaAccuracy === undefined, `${key}: SWA`);
    // Models within 1e-4 of each other may still flip a test sample or two.
    for (const f of ['accuracy', 'swaAccuracy', 'testLoss'] as const) {
      if (ra[f] === undefined) continue;
      assert.ok(Math.abs(ra[f] - rb[f]!) <= 0.01, `${key}: ${f} ${rb[f]} vs ${ra[f]}`);
    }
  }
  for (const [key, wa] of a.weights) {
    const d = maxAbsDiff(wa, b.weights.get(key)!);
    assert.ok(d <= 1e-4, `${key}: weights differ by up to ${d}`);
  }
  assert.ok(Math.abs(a.summary.meanAccuracy! - b.summary.meanAccuracy!) <= 0.01);
  if (a.summary.meanSwaAccuracy !== null) {
    assert.ok(Math.abs(a.summary.meanSwaAccuracy! - b.summary.meanSwaAccuracy!) <= 0.01);
  }
  assert.deepEqual(b.summary.messages, a.summary.messages);
}

describe('batched simulator', () => {
  it('trains SGD with momentum and weight decay as the unbatched engine does', async () => {
    await compare({
      train: { localSteps: 5, lr: 0.2, batchSize: 16, momentum: 0.9, weightDecay: 1e-3 },
    });
  });

  it("trains plain SGD with weight decay (the preset's optimizer) as the unbatched engine does", async () => {
    await compare({
      train: { localSteps: 5, lr: 0.2, batchSize: 16, weightDecay: 1e-3 },
    });
  });

  it('replays a batched run exactly (same seed: the same weights and figures, bit for bit)', async () => {
    const extra = { train: { localSteps: 5, lr: 0.2, batchSize: 16, weightDecay: 1e-3 } };
    const first = await run(extra, true);
    const second = await run(extra, true);
    for (const [key, w] of first.weights) assert.deepEqual(second.weights.get(key), w, key);
    const figures = (r: RoundRecord) => [r.trainLoss, r.accuracy, r.testLoss, r.swaAccuracy];
    for (const [key, r] of first.records) {
      assert.deepEqual(figures(second.records.get(key)!), figures(r), key);
    }
    assert.equal(second.summary.meanAccuracy, first.summary.meanAccuracy);
  });

  it('runs a consensus finish and gossiped SWA averages as the unbatched engine does', async () => {
    await compare({
      run: { rounds: 8, seed: 7 },
      swa: { cycle: 3, start: 0.25, gossip: true },
      gossip: { finish: { rounds: 1, at: 'collect' } },
      eval: { every: 2 },
    });
  });

  it('trains ASAM as the unbatched engine does, under message loss and a crash with restart', async () => {
    await compare({
      train: { optimizer: 'asam', localSteps: 5, lr: 0.2, batchSize: 16, rho: 0.5, eta: 0.2 },
      faults: {
        loss: { p: 0.2 },
        crashes: [{ node: 2, round: 2, restartAfter: 2 }],
      },
      checkpoint: { every: 1 },
    });
  });

  it('trains quasi-global momentum (fixed buffers over the steps) as the unbatched engine does', async () => {
    await compare({
      train: {
        localSteps: 5,
        lr: 0.2,
        batchSize: 16,
        momentum: 0.9,
        quasiGlobalMomentum: true,
        weightDecay: 1e-3,
      },
      faults: { loss: { p: 0.2 } },
    });
  });

  it('trains with gradient tracking (a fixed correction per node) as the unbatched engine does', async () => {
    await compare({
      train: { localSteps: 5, lr: 0.2, batchSize: 16, weightDecay: 1e-3, gradientTracking: true },
      faults: { loss: { p: 0.2 } },
    });
    await compare({
      train: {
        optimizer: 'asam',
        localSteps: 3,
        lr: 0.2,
        batchSize: 16,
        rho: 0.5,
        eta: 0.2,
        gradientTracking: true,
      },
    });
  });

  it('trains a logistic regression with SAM', async () => {
    await compare({
      model: { kind: 'logreg' },
      train: { optimizer: 'sam', localSteps: 4, lr: 0.1, batchSize: 16, rho: 0.05 },
    });
  });
});
