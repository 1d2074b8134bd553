import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rmsDistance } from '../../src/gossip/mixing.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import { simulate } from '../../src/run/simulate.js';
import { averageVectors } from '../../src/run/summary.js';
import { assertFatesAddUp, meanOf, smallRun, WeightsTable } from './helpers.js';

const A = [0, 1, 2, 3];
const B = [4, 5, 6, 7];

describe('partition into two halves for 10 rounds, then heal', () => {
  it('the halves drift apart during the partition and come back together after the heal', async () => {
    // A complete base graph, so the heal is not slowed by a sparse cut; the partition is [10, 20).
    const cfg = smallRun({
      run: { rounds: 30, seed: 1 },
      topology: { graph: 'complete' },
      eval: { every: 10 },
      faults: { partitions: [{ groups: [A, B], from: 10, to: 20 }] },
    });
    const weights = new WeightsTable();
    const records: RoundRecord[] = [];
    const s = await simulate(cfg, { onWeights: weights.hook, onRound: (r) => records.push(r) });
    assert.equal(s.completed, true);
    assertFatesAddUp(records, s);

    // Distance between the two halves' mean models, per round.
    const gap = Array.from({ length: 30 }, (_, k) =>
      rmsDistance(averageVectors(weights.at(k, A))!, averageVectors(weights.at(k, B))!),
    );
    const before = meanOf(gap.slice(5, 10));
    const lateIn = meanOf(gap.slice(16, 20));
    const after = meanOf(gap.slice(22, 30));
    // Grows during the partition, steadily ...
    assert.ok(lateIn > 3 * before, `gap before ${before}, at the end of the partition ${lateIn}`);
    assert.ok(gap[19]! > gap[14]! && gap[14]! > gap[10]!, `gap ${gap.slice(10, 20)}`);
    // ... and returns to its earlier level once healed.
    assert.ok(after < 2 * before, `gap before ${before}, after the heal ${after}`);
    assert.ok(after < lateIn / 3);

    // Records: no message crossed the cut during the partition, every cut one is counted.
    const cross = (r: RoundRecord) =>
      r.heard.filter((j) => A.includes(r.node) !== A.includes(j)).length;
    const during = records.filter((r) => r.round >= 10 && r.round < 20);
    assert.equal(
      during.map(cross).reduce((a, b) => a + b, 0),
      0,
    );
    const cutNeighbours = during
      .map((r) => r.neighbours.filter((j) => A.includes(r.node) !== A.includes(j)).length)
      .reduce((a, b) => a + b, 0);
    assert.ok(cutNeighbours > 0);
    assert.equal(s.faults.partition, cutNeighbours, 'each side counts its own cut sends');
    assert.equal(s.messages.lost, cutNeighbours);
    const healed = records.filter((r) => r.round >= 20);
    assert.ok(healed.map(cross).reduce((a, b) => a + b, 0) > 0, 'cross traffic after the heal');
    // Lockstep: nobody waited for a deadline, nothing arrived late.
    assert.equal(s.messages.missing, 0);
    assert.equal(s.messages.late, 0);
  });
});
