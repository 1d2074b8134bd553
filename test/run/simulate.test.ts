import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { parseExperiment } from '../../src/config/index.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import { simulate } from '../../src/run/simulate.js';

const small = (extra: Record<string, unknown> = {}) =>
  parseExperiment({
    nodes: 6,
    run: { rounds: 12, seed: 3 },
    topology: { graph: 'ring', budget: 0.5 },
    model: { hidden: [32] },
    train: { localSteps: 5, lr: 0.3 },
    swa: { cycle: 3 },
    eval: { every: 4 },
    faults: { loss: { p: 0.2 } },
    ...extra,
  });

describe('simulator', () => {
  it('replays a seeded run exactly', async () => {
    const a = await simulate(small());
    const b = await simulate(small());
    const figures = (s: typeof a) => [
      s.meanAccuracy,
      s.meanSwaAccuracy,
      s.accuracyOfAverageModel,
      s.finalDisagreement,
      s.messages,
    ];
    assert.deepEqual(figures(a), figures(b));
    const c = await simulate(small({ run: { rounds: 12, seed: 4 } }));
    assert.notDeepEqual(figures(a), figures(c));
  });

  it('completes, learns above chance, shrinks disagreement and records every message fate', async () => {
    const out = mkdtempSync(join(tmpdir(), 'flatmesh-sim-'));
    const records: RoundRecord[] = [];
    const tensors: number[] = [];
    const s = await simulate(small(), {
      out,
      onRound: (r) => {
        records.push(r);
        if (r.node === 0) tensors.push(tf.memory().numTensors);
      },
    });
    assert.equal(s.completed, true);
    assert.equal(records.length, 6 * 12);
    assert.ok(s.meanAccuracy! > 0.3, `mean accuracy ${s.meanAccuracy}`);
    assert.ok(s.meanSwaAccuracy! > 0.3, `mean SWA accuracy ${s.meanSwaAccuracy}`);
    const dis = (from: number, to: number) => {
      const v = records
        .filter((r) => r.round >= from && r.round < to && r.disagreement !== null)
        .map((r) => r.disagreement!);
      return v.reduce((a, b) => a + b, 0) / v.length;
    };
    // At the low end of the last SWA cycle local drift is tiny and gossip contracts the models.
    assert.ok(dis(11, 12) < dis(0, 3) / 2, `disagreement ${dis(0, 3)} -> ${dis(11, 12)}`);
    // Every directed message is accounted for: delivered or dropped at the sender, received or lost at the receiver.
    const m = s.messages;
    assert.equal(m.sent, m.delivered + m.dropped + m.failed);
    assert.equal(m.dropped, m.lost);
    assert.equal(m.delivered, m.received);
    assert.ok(m.dropped > 0 && s.faults['loss'] === m.dropped);
    // No tensor leak across rounds (after the first rounds warmed up the kernels' caches).
    assert.equal(new Set(tensors.slice(2)).size, 1, `numTensors over rounds: ${tensors.join(',')}`);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.perNode.length, 6);
    const lines = readFileSync(join(out, 'nodes', '0', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n');
    assert.equal(lines.length, 12);
  });

  it('runs push-sum and Metropolis-Hastings mixing', async () => {
    for (const mixing of ['push-sum', 'metropolis'] as const) {
      const s = await simulate(small({ gossip: { mixing }, run: { rounds: 8, seed: 3 } }));
      assert.equal(s.completed, true);
      assert.ok(s.meanAccuracy! > 0.25, `${mixing}: ${s.meanAccuracy}`);
    }
  });

  it('emulates a crash and restart: the node is absent, then resumes from its last checkpoint', async () => {
    const records: RoundRecord[] = [];
    const cfg = small({
      checkpoint: { every: 2 },
      faults: { crashes: [{ node: 2, round: 4, restartAfter: 3 }] },
    });
    const s = await simulate(cfg, { onRound: (r) => records.push(r) });
    assert.equal(s.completed, true);
    assert.equal(s.perNode[2]!.restarts, 1);
    assert.equal(s.restarts, 1);
    // Down for rounds 5-7; its last checkpoint was after round 3, so round 4's work is lost too.
    assert.equal(s.perNode[2]!.roundsLostToRestarts, 4);
    const mine = records.filter((r) => r.node === 2).map((r) => r.round);
    assert.deepEqual(mine, [0, 1, 2, 3, 4, 8, 9, 10, 11]);
    // Nobody expected it while it was down.
    assert.ok(
      records.filter((r) => r.round >= 5 && r.round <= 7).every((r) => !r.neighbours.includes(2)),
    );
    const again = await simulate(cfg);
    assert.equal(again.meanAccuracy, s.meanAccuracy);
  });
});
