import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RoundRecord } from '../../src/node/metrics.js';
import { simulate } from '../../src/run/simulate.js';
import { assertFatesAddUp, smallRun } from './helpers.js';

describe('every fault kind runs in the simulator and is recorded', () => {
  it('loss, delay, bandwidth, stragglers, partition, byzantine, late join and leave together', async () => {
    const cfg = smallRun({
      run: { rounds: 12, seed: 4 },
      topology: { graph: 'complete', sampler: 'vanilla' },
      eval: { every: 4 },
      faults: {
        loss: { p: 0.2 },
        delay: { ms: 2, jitterMs: 1 },
        bandwidthMbps: 200,
        stragglers: [{ node: 1, factor: 2 }],
        partitions: [
          {
            groups: [
              [0, 1, 2, 3],
              [4, 5, 6, 7],
            ],
            from: 2,
            to: 4,
          },
        ],
        byzantine: [
          { node: 2, behaviour: 'noise', sigma: 0.01 },
          { node: 3, behaviour: 'scale', scale: 1.1 },
          { node: 4, behaviour: 'label-flip' },
          { node: 5, behaviour: 'sign-flip', scale: 0.01 },
        ],
        joins: [{ node: 6, round: 4 }],
        leaves: [{ node: 7, round: 8 }],
      },
    });
    const records: RoundRecord[] = [];
    const s = await simulate(cfg, { onRound: (r) => records.push(r) });
    assert.equal(s.completed, true, 'the leaver is expected not to finish');
    assertFatesAddUp(records, s);
    const f = s.faults;
    const m = s.messages;
    assert.ok((f.loss ?? 0) > 0 && (f.partition ?? 0) > 0);
    assert.equal((f.loss ?? 0) + (f.partition ?? 0), m.dropped);
    // Every message that got past loss and partition was delayed and went through the cap.
    assert.equal(f.delay, m.sent - m.dropped);
    assert.equal(f.bandwidth, m.sent - m.dropped);
    assert.equal(f.straggler, 12);
    for (const b of ['noise', 'scale', 'label-flip', 'sign-flip'])
      assert.equal(f[`byzantine-${b}`], 12, `byzantine-${b}`);

    // Late join: node 6 runs rounds 4..11; leave: node 7 runs rounds 0..7.
    const rounds = (n: number) => records.filter((r) => r.node === n).map((r) => r.round);
    assert.deepEqual(rounds(6), [4, 5, 6, 7, 8, 9, 10, 11]);
    assert.deepEqual(rounds(7), [0, 1, 2, 3, 4, 5, 6, 7]);
    const p6 = s.perNode[6]!;
    const p7 = s.perNode[7]!;
    assert.equal(p6.roundsCompleted, 8);
    assert.equal(p6.lastRound, 11);
    assert.equal(p7.lastRound, 7);
    // Both are counted as faults: in the joiner's first record and in the leaver's last.
    assert.equal(f.join, 1);
    assert.equal(f.leave, 1);
    assert.equal(records.find((r) => r.node === 6 && r.round === 4)?.faults['join'], 1);
    assert.equal(records.find((r) => r.node === 7 && r.round === 7)?.faults['leave'], 1);
    // Nobody expects the absent: 6 before it joins, 7 after it leaves.
    for (const r of records) {
      if (r.round < 4) assert.ok(!r.neighbours.includes(6));
      if (r.round >= 8) assert.ok(!r.neighbours.includes(7));
    }
    // The joiner mixes in with the others once it is there.
    assert.ok(records.some((r) => r.node === 6 && r.heard.length > 0));
    assert.ok(s.meanAccuracy !== null && s.meanAccuracy > 0.2);
    assert.equal(m.missing, 0);
  });

  it('bursty Gilbert-Elliott loss runs and counts its losses', async () => {
    const cfg = smallRun({
      run: { rounds: 10, seed: 2 },
      topology: { graph: 'complete', sampler: 'vanilla' },
      eval: { every: 5 },
      faults: {
        loss: { model: 'gilbert-elliott', goodToBad: 0.2, badToGood: 0.3, lossBad: 1 },
      },
    });
    const records: RoundRecord[] = [];
    const s = await simulate(cfg, { onRound: (r) => records.push(r) });
    assert.equal(s.completed, true);
    assertFatesAddUp(records, s);
    assert.ok((s.faults.loss ?? 0) > 0);
    assert.equal(s.faults.loss, s.messages.lost);
    // Per-neighbour records carry each link's fate: some link lost two rounds in a row (a burst).
    const lostBy = new Map<string, number[]>();
    for (const r of records)
      for (const [j, c] of Object.entries(r.byNeighbour))
        if (c.lost > 0)
          lostBy.set(`${j}>${r.node}`, [...(lostBy.get(`${j}>${r.node}`) ?? []), r.round]);
    const burst = [...lostBy.values()].some((rs) => rs.some((k, i) => rs[i + 1] === k + 1));
    assert.ok(burst);
  });
});
