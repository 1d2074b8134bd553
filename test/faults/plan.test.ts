import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import type { FaultsConfig } from '../../src/config/schema.js';
import { FaultPlan } from '../../src/faults/plan.js';

const faults = (f: unknown): FaultsConfig => parseExperiment({ nodes: 16, faults: f }).faults;

function fates(plan: FaultPlan, n: number, rounds: number): string[] {
  const out: string[] = [];
  for (let k = 0; k < rounds; k++)
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) if (i !== j) out.push(plan.messageFate(i, j, k));
  return out;
}

describe('FaultPlan decisions', () => {
  it('are a pure function of seed and config: two ends computing separately agree', () => {
    const f = faults({ loss: { p: 0.3 }, delay: { ms: 10, jitterMs: 5 } });
    // The sender and the receiver each build their own plan (separate processes in a real run).
    const sender = new FaultPlan(f, 7, 16);
    const receiver = new FaultPlan(f, 7, 16);
    // Asked in a different order, too: no hidden stream position.
    const a = fates(sender, 16, 10);
    const b: string[] = [];
    for (let k = 9; k >= 0; k--) {
      const row: string[] = [];
      for (let i = 0; i < 16; i++)
        for (let j = 0; j < 16; j++) if (i !== j) row.push(receiver.messageFate(i, j, k));
      b.unshift(...row);
    }
    assert.deepEqual(a, b);
    assert.equal(sender.delayMs(3, 4, 5), receiver.delayMs(3, 4, 5));
    const other = fates(new FaultPlan(f, 8, 16), 16, 10);
    assert.notDeepEqual(a, other, 'another seed gives other decisions');
  });

  it('Bernoulli loss drops about p of the messages, independently per direction', () => {
    const plan = new FaultPlan(faults({ loss: { p: 0.3 } }), 1, 16);
    const f = fates(plan, 16, 40);
    const rate = f.filter((x) => x === 'loss').length / f.length;
    assert.ok(Math.abs(rate - 0.3) < 0.02, `loss rate ${rate}`);
    let oneWay = 0;
    for (let k = 0; k < 40; k++)
      for (let i = 0; i < 16; i++)
        for (let j = i + 1; j < 16; j++)
          if ((plan.messageFate(i, j, k) === 'loss') !== (plan.messageFate(j, i, k) === 'loss'))
            oneWay++;
    // Independent directions: P(exactly one lost) = 2 p (1 - p) = 0.42.
    const frac = oneWay / (40 * 120);
    assert.ok(Math.abs(frac - 0.42) < 0.03, `one-way fraction ${frac}`);
  });

  it('per-link overrides replace p on that directed link only', () => {
    const plan = new FaultPlan(
      faults({ loss: { p: 0, links: [{ from: 2, to: 5, p: 1 }] } }),
      1,
      16,
    );
    for (let k = 0; k < 20; k++) {
      assert.equal(plan.messageFate(2, 5, k), 'loss');
      assert.equal(plan.messageFate(5, 2, k), 'deliver');
      assert.equal(plan.messageFate(2, 6, k), 'deliver');
    }
  });

  it('Gilbert-Elliott loss comes in bursts of mean length 1/badToGood', () => {
    // Loss only in the bad state, always: a burst of losses is a stay in the bad state.
    const f = faults({
      loss: { model: 'gilbert-elliott', goodToBad: 0.05, badToGood: 0.25, lossGood: 0, lossBad: 1 },
    });
    const plan = new FaultPlan(f, 3, 16);
    const bursts: number[] = [];
    let lost = 0;
    let total = 0;
    for (let i = 0; i < 8; i++) {
      let run = 0;
      for (let k = 0; k < 2000; k++) {
        const l = plan.messageFate(i, i + 8, k) === 'loss';
        total++;
        if (l) {
          lost++;
          run++;
        } else if (run > 0) {
          bursts.push(run);
          run = 0;
        }
      }
    }
    const meanBurst = bursts.reduce((a, b) => a + b, 0) / bursts.length;
    assert.ok(Math.abs(meanBurst - 4) < 0.5, `mean burst ${meanBurst} (expected 4)`);
    // Stationary share of the bad state: g2b / (g2b + b2g) = 0.05 / 0.3.
    assert.ok(Math.abs(lost / total - 1 / 6) < 0.03, `loss rate ${lost / total}`);
    // Bursty: much longer runs than Bernoulli at the same rate (mean 1 / (1 - 1/6) = 1.2).
    const bern = new FaultPlan(faults({ loss: { p: 1 / 6 } }), 3, 16);
    let runs = 0;
    let losses = 0;
    let prev = false;
    for (let k = 0; k < 16000; k++) {
      const l = bern.messageFate(0, 8, k) === 'loss';
      if (l) losses++;
      if (l && !prev) runs++;
      prev = l;
    }
    assert.ok(losses / runs < 1.5, `Bernoulli mean run ${losses / runs}`);
  });

  it('Gilbert-Elliott state is the same whichever round is asked first', () => {
    const f = faults({ loss: { model: 'gilbert-elliott' } });
    const fwd = new FaultPlan(f, 5, 16);
    const a = Array.from({ length: 300 }, (_, k) => fwd.messageFate(1, 2, k));
    const back = new FaultPlan(f, 5, 16);
    back.messageFate(1, 2, 299);
    const b = Array.from({ length: 300 }, (_, k) => back.messageFate(1, 2, k));
    assert.deepEqual(a, b);
  });

  it('delay is ms plus jitter in [-jitter, +jitter], never negative', () => {
    const plan = new FaultPlan(faults({ delay: { ms: 20, jitterMs: 5 } }), 1, 16);
    const ds = Array.from({ length: 500 }, (_, k) => plan.delayMs(0, 1, k));
    assert.ok(ds.every((d) => d >= 15 && d <= 25));
    assert.ok(Math.max(...ds) - Math.min(...ds) > 8, 'jitter spreads the delays');
    const neg = new FaultPlan(faults({ delay: { ms: 1, jitterMs: 10 } }), 1, 16);
    assert.ok(Array.from({ length: 200 }, (_, k) => neg.delayMs(0, 1, k)).every((d) => d >= 0));
    assert.equal(new FaultPlan(faults({}), 1, 16).delayMs(0, 1, 0), 0);
  });

  it('partitions cut exactly the cross-group links in [from, to), unlisted nodes stand alone', () => {
    const plan = new FaultPlan(
      faults({
        partitions: [
          {
            groups: [
              [0, 1, 2],
              [3, 4],
            ],
            from: 5,
            to: 8,
          },
        ],
        loss: { p: 0 },
      }),
      1,
      16,
    );
    assert.equal(plan.messageFate(0, 3, 4), 'deliver');
    assert.equal(plan.messageFate(0, 3, 5), 'partition');
    assert.equal(plan.messageFate(3, 0, 7), 'partition');
    assert.equal(plan.messageFate(0, 3, 8), 'deliver');
    assert.equal(plan.messageFate(0, 2, 6), 'deliver');
    assert.equal(plan.messageFate(3, 4, 6), 'deliver');
    assert.equal(plan.messageFate(9, 0, 6), 'partition', 'node 9 is in no group');
    assert.equal(plan.messageFate(9, 10, 6), 'deliver', 'unlisted nodes form one group');
    assert.deepEqual(plan.partitionAt(6), [
      [0, 1, 2],
      [3, 4],
    ]);
    assert.equal(plan.partitionAt(8), undefined);
  });

  it('a partition wins over loss in the fate (the receiver learns why)', () => {
    const plan = new FaultPlan(
      faults({ loss: { p: 1 }, partitions: [{ groups: [[0], [1]], from: 0, to: 2 }] }),
      1,
      16,
    );
    assert.equal(plan.messageFate(0, 1, 1), 'partition');
    assert.equal(plan.messageFate(0, 1, 2), 'loss');
  });

  it('knows stragglers, byzantine nodes, late joins and leaves', () => {
    const plan = new FaultPlan(
      faults({
        stragglers: [{ node: 2, factor: 3 }],
        byzantine: [{ node: 4, behaviour: 'noise', sigma: 0.5 }],
        joins: [{ node: 5, round: 10 }],
        leaves: [{ node: 6, round: 12 }],
      }),
      1,
      16,
    );
    assert.equal(plan.stragglerFactor(2), 3);
    assert.equal(plan.stragglerFactor(3), 1);
    assert.equal(plan.byzantine(4)?.behaviour, 'noise');
    assert.equal(plan.byzantine(3), undefined);
    assert.equal(plan.joinRound(5), 10);
    assert.equal(plan.joinRound(6), 0);
    assert.equal(plan.present(5, 9), false);
    assert.equal(plan.present(5, 10), true);
    assert.equal(plan.leaveRound(6), 12);
    assert.equal(plan.present(6, 11), true);
    assert.equal(plan.present(6, 12), false);
    assert.equal(plan.present(7, 100), true);
  });
});
