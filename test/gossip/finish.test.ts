import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { ConfigErrors } from '../../src/errors.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import { simulate } from '../../src/run/simulate.js';
import { WeightsTable } from '../faults/helpers.js';

const NODES = Array.from({ length: 8 }, (_, i) => i);

function experiment(over: Record<string, unknown>) {
  return parseExperiment({
    nodes: 8,
    run: { rounds: 16, seed: 4 },
    model: { hidden: [16] },
    train: { optimizer: 'sgd', localSteps: 3 },
    swa: { enabled: false },
    eval: { every: 4, tail: 0 },
    ...over,
  });
}

function meanOf(xs: readonly Float32Array[], weights?: readonly number[]): Float64Array {
  const out = new Float64Array(xs[0]!.length);
  xs.forEach((x, i) => {
    for (let k = 0; k < x.length; k++) out[k]! += (weights?.[i] ?? 1) * x[k]!;
  });
  return out;
}

/** RMS distance of the node models to their plain average. */
function spread(xs: readonly Float32Array[]): number {
  const m = meanOf(xs).map((v) => v / xs.length);
  let s = 0;
  for (const x of xs) for (let k = 0; k < x.length; k++) s += (x[k]! - m[k]!) ** 2;
  return Math.sqrt(s / (xs.length * m.length));
}

const maxAbsDiff = (a: Float64Array, b: Float64Array) =>
  a.reduce((d, v, k) => Math.max(d, Math.abs(v - b[k]!)), 0);

describe('consensus finish (gossip.finish)', () => {
  it('the last rounds only gossip: under MATCHA the average stays and the nodes close in on it', async () => {
    const w = new WeightsTable();
    const records: RoundRecord[] = [];
    await simulate(experiment({ gossip: { finish: { rounds: 6 } } }), {
      onWeights: w.hook,
      onRound: (r) => records.push(r),
    });
    for (const r of records) {
      assert.equal(r.gossipOnly === true, r.round >= 10, `node ${r.node} round ${r.round}`);
      assert.equal(Number.isNaN(r.trainLoss), r.round >= 10);
    }
    const before = w.at(9, NODES);
    const after = w.at(15, NODES);
    // Symmetric Laplacian mixing (every active edge both ways, one alpha) keeps the sum exactly.
    assert.ok(maxAbsDiff(meanOf(before), meanOf(after)) < 1e-4);
    assert.ok(spread(after) < 0.7 * spread(before), `${spread(before)} -> ${spread(after)}`);
  });

  it('under push-sum with 30% message loss it keeps the mass-weighted sum and still converges', async () => {
    const w = new WeightsTable();
    const mass = new Map<string, number>();
    await simulate(
      experiment({
        gossip: { mixing: 'push-sum', finish: { rounds: 6 } },
        faults: { loss: { p: 0.3 } },
      }),
      { onWeights: w.hook, onRound: (r) => mass.set(`${r.node}/${r.round}`, r.mass!) },
    );
    const massAt = (round: number) => NODES.map((i) => mass.get(`${i}/${round}`)!);
    const before = meanOf(w.at(9, NODES), massAt(9));
    const after = meanOf(w.at(15, NODES), massAt(15));
    assert.ok(maxAbsDiff(before, after) < 1e-3, `drift ${maxAbsDiff(before, after)}`);
    const [s9, s15] = [spread(w.at(9, NODES)), spread(w.at(15, NODES))];
    assert.ok(s15 < 0.8 * s9, `${s9} -> ${s15}`);
  });

  it('at: collect makes the last rounds of every SWA cycle gossip-only, collections included', async () => {
    const records: RoundRecord[] = [];
    await simulate(
      experiment({
        swa: { enabled: true, start: 0.5, cycle: 4 },
        gossip: { finish: { rounds: 2, at: 'collect' } },
      }),
      { onRound: (r) => records.push(r) },
    );
    const node0 = records.filter((r) => r.node === 0);
    // SWA from round 8: cycles 8..11 and 12..15, collections at 11 and 15.
    assert.deepEqual(
      node0.filter((r) => r.gossipOnly).map((r) => r.round),
      [10, 11, 14, 15],
    );
    assert.deepEqual(
      node0.map((r) => r.swaCount),
      [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2],
    );
  });

  it('refuses what it cannot do, naming the field', () => {
    const problems = (over: Record<string, unknown>) => {
      try {
        experiment(over);
        return '';
      } catch (e) {
        assert.ok(e instanceof ConfigErrors);
        return e.message;
      }
    };
    assert.match(
      problems({ gossip: { finish: { rounds: 2, at: 'collect' } } }),
      /gossip\.finish\.at: 'collect' needs swa\.enabled/,
    );
    assert.match(
      problems({ swa: { cycle: 3 }, gossip: { finish: { rounds: 3, at: 'collect' } } }),
      /gossip\.finish\.rounds: must be less than swa\.cycle \(3\)/,
    );
    assert.match(
      problems({ gossip: { finish: { rounds: 16 } } }),
      /gossip\.finish\.rounds: must be less than run\.rounds \(16\)/,
    );
    assert.match(
      problems({ train: { quasiGlobalMomentum: true } }),
      /train\.quasiGlobalMomentum: needs train\.momentum > 0/,
    );
  });
});
