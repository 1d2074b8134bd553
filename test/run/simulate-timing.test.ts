/**
 * The simulator's model of timing: asynchronous gossip on a simulated clock (exact replays,
 * staleness within its bound, stragglers cost lockstep time, not async time), and a stalled node
 * that sits out rounds and catches up, in both modes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import { simulate } from '../../src/run/simulate.js';

const exp = (extra: Record<string, unknown> = {}, gossip: Record<string, unknown> = {}) =>
  parseExperiment({
    nodes: 6,
    run: { rounds: 14, seed: 4 },
    topology: { graph: 'ring', budget: 0.5 },
    model: { hidden: [16] },
    train: { localSteps: 3, lr: 0.3 },
    swa: { enabled: false },
    eval: { every: 7 },
    faults: { loss: { p: 0.1 } },
    gossip,
    backend: 'wasm',
    ...extra,
  });

async function run(cfg: ReturnType<typeof exp>) {
  const records: RoundRecord[] = [];
  const s = await simulate(cfg, { onRound: (r) => records.push(r) });
  return { s, records };
}

const figures = (s: Awaited<ReturnType<typeof simulate>>) => [
  s.meanAccuracy,
  s.accuracyOfAverageModel,
  s.finalDisagreement,
  s.messages,
  s.simulatedTime,
  s.catchUps,
];

describe('simulator: asynchronous gossip', () => {
  const straggler = { faults: { loss: { p: 0.1 }, stragglers: [{ node: 2, factor: 3 }] } };

  it('replays exactly, never mixes a model older than the bound, and lets a straggler lag', async () => {
    const cfg = exp(straggler, { sync: 'async', staleness: 2 });
    const a = await run(cfg);
    const b = await run(cfg);
    assert.deepEqual(figures(a.s), figures(b.s));
    assert.deepEqual(
      a.records.map((r) => [r.node, r.round, r.heard, r.staleness]),
      b.records.map((r) => [r.node, r.round, r.heard, r.staleness]),
    );
    assert.equal(a.s.completed, true);
    const ages = a.records.map((r) => r.staleness!);
    assert.ok(
      ages.every((x) => x >= 0 && x <= 2),
      `staleness within 2: ${[...new Set(ages)]}`,
    );
    assert.ok(
      ages.some((x) => x > 0),
      'some rounds mix an older model',
    );
    assert.ok(a.s.meanAccuracy! > 0.15, `accuracy ${a.s.meanAccuracy} (chance 0.1)`);
    // A lockstep round lasts as long as the straggler's; async nodes keep their own pace.
    const lock = await run(exp(straggler));
    assert.equal(lock.s.simulatedTime, 14 * 3);
    assert.ok(a.s.simulatedTime! < lock.s.simulatedTime!, `async ${a.s.simulatedTime}`);
    // A straggler that falls more than the bound behind the run catches up, on the record.
    const jumps = a.records.filter((r) => r.catchUp);
    assert.equal(a.s.catchUps, jumps.length);
    // Behind by the bound plus two or more (the last round caps the jump).
    for (const r of jumps) {
      assert.ok(r.catchUp!.skipped >= 4 || r.round === 13, `skipped ${r.catchUp!.skipped}`);
    }
  });

  it('staleness 0 mixes only models of the round itself', async () => {
    const { records } = await run(exp({}, { sync: 'async', staleness: 0 }));
    assert.ok(records.every((r) => r.staleness === 0));
  });

  it('runs a consensus finish: gossip-only last rounds that bring the models together', async () => {
    const plain = await run(exp({}, { sync: 'async' }));
    const { s, records } = await run(exp({}, { sync: 'async', finish: { rounds: 4 } }));
    assert.equal(s.completed, true);
    // The last 4 rounds train nothing and still mix (the freshest models, within the bound).
    const last = records.filter((r) => r.round >= 10);
    assert.ok(last.length > 0 && last.every((r) => r.gossipOnly));
    assert.ok(last.some((r) => r.heard.length > 0));
    assert.ok(records.filter((r) => r.round < 10).every((r) => !r.gossipOnly));
    assert.ok(
      s.finalDisagreement! < plain.s.finalDisagreement!,
      `disagreement ${s.finalDisagreement} with the finish, ${plain.s.finalDisagreement} without`,
    );
  });

  it('refuses push-sum in async mode, naming the field', () => {
    assert.throws(
      () => exp({}, { sync: 'async', mixing: 'push-sum' }),
      /gossip\.sync: must be 'lockstep' with push-sum mixing/,
    );
    assert.throws(() => exp({}, { sync: 'sometimes' }), /gossip\.sync: must be one of/);
    assert.throws(() => exp({}, { staleness: -1 }), /gossip\.staleness/);
  });
});

describe('simulator: a stalled node', () => {
  for (const sync of ['lockstep', 'async'] as const) {
    it(`sits out its stall and catches up (${sync})`, async () => {
      const cfg = exp(
        { faults: { loss: { p: 0.1 }, stalls: [{ node: 3, round: 4, rounds: 5 }] } },
        { sync },
      );
      const { s, records } = await run(cfg);
      const again = await run(cfg);
      assert.deepEqual(figures(s), figures(again.s));
      assert.equal(s.completed, true);
      const mine = records.filter((r) => r.node === 3).map((r) => r.round);
      assert.deepEqual(mine, [0, 1, 2, 3, 9, 10, 11, 12, 13]);
      const back = records.find((r) => r.node === 3 && r.round === 9)!;
      assert.deepEqual(back.catchUp, { from: 4, skipped: 5 });
      assert.equal(back.faults['stall'], 1);
      assert.equal(s.catchUps, 1);
      assert.equal(s.roundsCaughtUp, 5);
      assert.equal(s.perNode[3]!.catchUps, 1);
      // Nobody expected it meanwhile.
      for (const r of records.filter((x) => x.round >= 4 && x.round < 9)) {
        assert.ok(!r.neighbours.includes(3), `node ${r.node} round ${r.round}`);
      }
    });
  }

  it('rejects a stall of a node that does not exist', () => {
    assert.throws(
      () => exp({ faults: { stalls: [{ node: 6, round: 1, rounds: 2 }] } }),
      /faults\.stalls\[0\]\.node: must be less than nodes \(6\)/,
    );
  });
});
