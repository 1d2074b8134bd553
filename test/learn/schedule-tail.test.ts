import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { isEvalRound, isTailRound, TailMean } from '../../src/learn/index.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import { simulate } from '../../src/run/simulate.js';

describe('tail means', () => {
  it('evaluates every `every` rounds, every round of the tail and the last round', () => {
    const rounds = Array.from({ length: 20 }, (_, r) => r);
    assert.deepEqual(
      rounds.filter((r) => isEvalRound({ every: 5, tail: 3 }, r, 20)),
      [4, 9, 14, 17, 18, 19],
    );
    assert.deepEqual(
      rounds.filter((r) => isEvalRound({ every: 7, tail: 0 }, r, 20)),
      [6, 13, 19],
    );
    assert.equal(isTailRound(0, 19, 20), false);
    assert.equal(isTailRound(25, 0, 20), true);
  });

  it('TailMean ignores missing values and round-trips its state', () => {
    const t = new TailMean();
    assert.equal(t.mean, null);
    t.add(0.5);
    t.add(undefined);
    t.add(0.7);
    assert.ok(Math.abs(t.mean! - 0.6) < 1e-12);
    const u = new TailMean();
    u.restore(t.state());
    assert.deepEqual(u.state(), t.state());
    u.restore([Number.NaN, 2]); // malformed: starts empty
    assert.equal(u.mean, null);
  });

  it('a run ends on an SWA collection, and its summary gives the tail means of its records', async () => {
    const cfg = parseExperiment({
      nodes: 4,
      run: { rounds: 13, seed: 3 },
      topology: { graph: 'ring' },
      model: { hidden: [16] },
      train: { optimizer: 'sgd', localSteps: 3 },
      swa: { start: 0.5, cycle: 3 },
      eval: { every: 5, tail: 4 },
    });
    const records: RoundRecord[] = [];
    const s = await simulate(cfg, { onRound: (r) => records.push(r) });
    // floor(0.5 * 13) = 6 leaves 7 rounds: 2 whole cycles, 7..9 and 10..12.
    const swaCounts = records.filter((r) => r.node === 0).map((r) => r.swaCount);
    assert.deepEqual(swaCounts, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2]);
    const last = records.find((r) => r.node === 0 && r.round === 12)!;
    assert.ok(Math.abs(last.lr - cfg.swa.lr2) < 1e-12, 'the last round runs at lr2');
    const evaluated = records.filter((r) => r.node === 0 && r.accuracy !== undefined);
    assert.deepEqual(
      evaluated.map((r) => r.round),
      [4, 9, 10, 11, 12],
    );
    const tailOf = (node: number, key: 'accuracy' | 'swaAccuracy') => {
      const xs = records
        .filter((r) => r.node === node && r.round >= 9)
        .map((r) => r[key])
        .filter((v): v is number => v !== undefined);
      return xs.reduce((a, b) => a + b, 0) / xs.length;
    };
    const nodes = [0, 1, 2, 3];
    const mean = (f: (i: number) => number) => nodes.reduce((a, i) => a + f(i), 0) / nodes.length;
    assert.equal(s.tailRounds, 4);
    assert.ok(Math.abs(s.meanTailAccuracy! - mean((i) => tailOf(i, 'accuracy'))) < 1e-12);
    assert.ok(Math.abs(s.meanTailSwaAccuracy! - mean((i) => tailOf(i, 'swaAccuracy'))) < 1e-12);
    assert.notEqual(s.meanTailAccuracy, s.meanAccuracy, 'the tail is more than the last round');
  });
});
