import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { ModelMismatchError } from '../../src/errors.js';
import {
  isGossipOnlyRound,
  isSwaCollectRound,
  learningRate,
  quasiGlobalRate,
  SwaAverage,
  swaStartRound,
} from '../../src/learn/index.js';
import { configProblems } from '../helpers/config-errors.js';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

describe('learning-rate schedules', () => {
  it('constant, step and cosine', () => {
    close(learningRate({ kind: 'constant' }, 0.1, 37, 100), 0.1);
    close(learningRate({ kind: 'step', every: 10, gamma: 0.5 }, 0.1, 9, 100), 0.1);
    close(learningRate({ kind: 'step', every: 10, gamma: 0.5 }, 0.1, 25, 100), 0.025);
    close(learningRate({ kind: 'cosine' }, 0.1, 0, 100), 0.1);
    close(learningRate({ kind: 'cosine' }, 0.1, 50, 100), 0.05);
    close(learningRate({ kind: 'cosine', minLr: 0.01 }, 0.1, 100, 100), 0.01);
  });

  it('the SWA phase cycles linearly from lr1 to lr2 and collects at the last round of a cycle', () => {
    const swa = { start: 0.75, cycle: 5, lr2: 1e-4 };
    // floor(0.75 * 150) = 112 leaves 38 rounds: 7 whole cycles, so the phase starts at 115.
    assert.equal(swaStartRound(swa, 150), 115);
    close(learningRate({ kind: 'constant' }, 0.05, 114, 150, swa), 0.05);
    const expect = [1, 2, 3, 4, 5].map((k) => (1 - k / 5) * 0.05 + (k / 5) * 1e-4);
    for (let cycle = 0; cycle < 7; cycle++) {
      for (let i = 0; i < 5; i++) {
        const r = 115 + cycle * 5 + i;
        close(learningRate({ kind: 'constant' }, 0.05, r, 150, swa), expect[i]!);
        assert.equal(isSwaCollectRound(swa, r, 150), i === 4, `round ${r}`);
      }
    }
    assert.equal(isSwaCollectRound(swa, 114, 150), false);
    assert.equal(isSwaCollectRound(swa, 4, 150), false);
    // lr1 is the underlying schedule's rate at the start round (here cosine at 115/150).
    const lr1 = (0.1 * (1 + Math.cos((Math.PI * 115) / 150))) / 2;
    close(learningRate({ kind: 'cosine' }, 0.1, 116, 150, swa), 0.6 * lr1 + 0.4 * 1e-4);
  });

  it('every run ends on a collection round at lr2, with whole cycles from the configured start on', () => {
    // 4 rounds, start 0.75, cycle 5: only round 3 is in the phase, the last round of a cycle.
    assert.equal(swaStartRound({ start: 0.75, cycle: 5, lr2: 1e-4 }, 4), 3);
    close(learningRate({ kind: 'constant' }, 0.3, 2, 4, { start: 0.75, cycle: 5, lr2: 1e-4 }), 0.3);
    for (const rounds of [1, 2, 3, 7, 10, 40, 41, 99, 150, 151]) {
      for (const cycle of [1, 2, 3, 5, 7]) {
        for (const start of [0, 0.5, 0.75, 0.9, 0.99]) {
          const swa = { start, cycle, lr2: 1e-4 };
          const s = swaStartRound(swa, rounds);
          const at = `rounds ${rounds} cycle ${cycle} start ${start}`;
          assert.ok(isSwaCollectRound(swa, rounds - 1, rounds), at);
          close(learningRate({ kind: 'constant' }, 0.05, rounds - 1, rounds, swa), 1e-4);
          const configured = Math.floor(start * rounds);
          if (rounds - configured >= cycle) {
            // Never earlier than configured, at most cycle - 1 rounds later, whole cycles.
            assert.ok(s >= configured && s < configured + cycle, at);
            assert.equal((rounds - s) % cycle, 0, at);
          } else {
            // Too few rounds left for a cycle: the end of one cycle, from the configured start.
            assert.equal(s, configured, at);
          }
          const collects = Array.from({ length: rounds }, (_, r) => r).filter((r) =>
            isSwaCollectRound(swa, r, rounds),
          );
          assert.equal(collects.length, Math.ceil((rounds - s) / cycle), at);
        }
      }
    }
  });

  it('swa.settle: 170 rounds that settle 20 train and collect as the 150-round run, then only gossip', () => {
    const plain = { start: 0.75, cycle: 5, lr2: 1e-4 };
    const settled = { ...plain, settle: 20 };
    const none = { rounds: 0, at: 'end' as const };
    assert.equal(swaStartRound(settled, 170), swaStartRound(plain, 150));
    for (let r = 0; r < 170; r++) {
      if (r < 150) {
        close(
          learningRate({ kind: 'constant' }, 0.05, r, 170, settled),
          learningRate({ kind: 'constant' }, 0.05, r, 150, plain),
        );
        assert.equal(isSwaCollectRound(settled, r, 170), isSwaCollectRound(plain, r, 150), `${r}`);
        assert.equal(isGossipOnlyRound(none, r, 170, settled), false, `${r}`);
      } else {
        assert.equal(isSwaCollectRound(settled, r, 170), false, `${r}`);
        assert.equal(isGossipOnlyRound(none, r, 170, settled), true, `${r}`);
      }
    }
    // With the consensus finish at collections as well: both kinds of gossip-only rounds.
    const atCollect = { rounds: 2, at: 'collect' as const };
    assert.equal(isGossipOnlyRound(atCollect, 148, 170, settled), true);
    assert.equal(isGossipOnlyRound(atCollect, 146, 170, settled), false);
    assert.equal(isGossipOnlyRound(atCollect, 160, 170, settled), true);
  });

  it('swa.settle needs gossiped SWA averages and a whole cycle before it', () => {
    const problems = (swa: object) =>
      configProblems(() => parseExperiment({ run: { rounds: 20 }, swa })).join('\n');
    assert.match(problems({ settle: 5 }), /swa\.settle: needs swa\.enabled and swa\.gossip/);
    assert.match(
      problems({ gossip: true, settle: 16 }),
      /swa\.settle: must leave at least one SWA cycle: at most run\.rounds - swa\.cycle \(15\)/,
    );
    assert.doesNotThrow(() =>
      parseExperiment({ run: { rounds: 20 }, swa: { gossip: true, settle: 15 } }),
    );
  });

  it("quasi-global momentum's rate: the round's, floored at a quarter of the cycle's top in the SWA phase", () => {
    const swa = { start: 0.75, cycle: 5, lr2: 1e-3 }; // the reference protocol's SWA
    const constant = { kind: 'constant' as const };
    const finish = { rounds: 2, at: 'collect' as const };
    for (let r = 0; r < 150; r++) {
      const lr = learningRate(constant, 0.05, r, 150, swa);
      const qg = quasiGlobalRate(constant, 0.05, r, 150, swa);
      // A cycle's last two rounds (lr 0.0108 and 0.001) are floored at 0.0125, no other round.
      const low = r >= 115 && (r - 115) % 5 >= 3;
      close(qg, low ? 0.0125 : lr);
      // Those are the gossip-only rounds of the consensus finish at collections: where it trains,
      // quasi-global momentum runs as before.
      if (!isGossipOnlyRound(finish, r, 150, swa)) close(qg, lr);
    }
    close(quasiGlobalRate(constant, 0.05, 140, 150), 0.05);
  });

  it('names the field on bad input', () => {
    assert.throws(() => swaStartRound({ start: 1.2, cycle: 5, lr2: 1e-4 }, 10), /swa\.start/);
    assert.throws(() => swaStartRound({ start: 0.5, cycle: 0, lr2: 1e-4 }, 10), /swa\.cycle/);
    assert.throws(() => learningRate({ kind: 'constant' }, -1, 0, 10), /lr\.base/);
  });
});

describe('swa.start', () => {
  it('the schema and the schedule agree: a fraction in [0, 1)', () => {
    assert.deepEqual(
      configProblems(() => parseExperiment({ swa: { start: 1 } })),
      ['swa.start: must be a fraction in [0, 1) (1 would leave no SWA round) (got 1)'],
    );
    const cfg = parseExperiment({ swa: { start: 0.99 }, run: { rounds: 10 } });
    assert.doesNotThrow(() => learningRate({ kind: 'constant' }, 0.1, 9, 10, cfg.swa));
  });
});

describe('SwaAverage', () => {
  it('keeps the running mean of the collected vectors', () => {
    const swa = new SwaAverage();
    assert.equal(swa.average, undefined);
    swa.update(Float32Array.of(1, 2, 3));
    swa.update(Float32Array.of(3, 4, 5));
    swa.update(Float32Array.of(5, 0, -2));
    assert.equal(swa.count, 3);
    assert.deepEqual(Array.from(swa.average!), [3, 2, 2]);
  });

  it('stays exact over many updates (float64 accumulation)', () => {
    const swa = new SwaAverage();
    let sum = 0;
    for (let i = 0; i < 1000; i++) {
      const v = Math.fround(0.1 + i * 1e-3);
      sum += v;
      swa.update(Float32Array.of(v));
    }
    assert.equal(swa.average![0], Math.fround(sum / 1000));
  });

  it('restores from its state and rejects vectors of another length', () => {
    const swa = new SwaAverage();
    swa.update(Float32Array.of(1, 1));
    swa.update(Float32Array.of(3, 5));
    const back = SwaAverage.restore(swa.state());
    back.update(Float32Array.of(5, 0));
    assert.equal(back.count, 3);
    assert.deepEqual(Array.from(back.average!), [3, 2]);
    assert.equal(swa.count, 2, 'restore copies the state');
    assert.throws(() => back.update(new Float32Array(3)), ModelMismatchError);
    assert.throws(() => SwaAverage.restore({ count: 2, mean: undefined }), ModelMismatchError);
  });

  it('once computes a figure of the average once per average', () => {
    const swa = new SwaAverage();
    const seen: number[][] = [];
    const sum = (a: Float32Array) => {
      seen.push(Array.from(a));
      return a.reduce((s, v) => s + v, 0);
    };
    assert.equal(swa.once(sum), undefined);
    swa.update(Float32Array.of(1, 3));
    assert.equal(swa.once(sum), 4);
    assert.equal(swa.once(sum), 4);
    swa.update(Float32Array.of(3, 5));
    assert.equal(swa.once(sum), 6);
    assert.deepEqual(seen, [
      [1, 3],
      [2, 4],
    ]);
  });
});
