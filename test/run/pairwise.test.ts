import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { CheckpointStore } from '../../src/node/checkpoint.js';
import { bothWays } from '../../src/node/pairwise.js';
import { simulate } from '../../src/run/simulate.js';
import { configProblems } from '../helpers/config-errors.js';

const NODES = 6;

/** The final models of a simulated run (its checkpoints), one flat vector per node. */
async function finalModels(cfg: ReturnType<typeof parseExperiment>): Promise<Float64Array[]> {
  const out = mkdtempSync(join(tmpdir(), 'flatmesh-pairwise-'));
  try {
    const r = await simulate(cfg, { out });
    if (cfg.faults.loss.p > 0) assert.ok(r.messages.dropped > 0, 'some messages were lost');
    return Array.from({ length: NODES }, (_, i) => {
      const ck = new CheckpointStore(join(out, 'nodes', String(i))).load()!;
      return Float64Array.from(ck.weights);
    });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const mean = (xs: Float64Array[]) =>
  xs[0]!.map((_, k) => xs.reduce((s, x) => s + x[k]!, 0) / xs.length);
const maxDiff = (a: Float64Array, b: Float64Array) =>
  a.reduce((m, v, k) => Math.max(m, Math.abs(v - b[k]!)), 0);
const spread = (xs: Float64Array[]) => Math.max(...xs.map((x) => maxDiff(x, mean(xs))));

/**
 * One round of training, then `gossipRounds` gossip-only rounds (gossip.finish at the end) under
 * 30% one-way loss. The same seed trains round 0 alike whatever follows, so the runs' averages can
 * be compared: what the gossip rounds do to the average of the node models is all that differs.
 */
function cfg(pairwise: boolean, gossipRounds: number) {
  return parseExperiment({
    nodes: NODES,
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
    const scale = Math.max(...mean(start).map(Math.abs));
    const drift = (xs: Float64Array[]) => maxDiff(mean(xs), mean(start)) / scale;
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
