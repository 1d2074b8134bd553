import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RoundRecord } from '../../src/node/metrics.js';
import { simulate } from '../../src/run/simulate.js';
import { accuracyOf, smallRun } from './helpers.js';

// 16 nodes, 2 of them send -x every round (sign flip). Honest = the other 14.
const BAD = [3, 11];
const HONEST = Array.from({ length: 16 }, (_, i) => i).filter((i) => !BAD.includes(i));
// Seed 2 with MLP [64] is the case of issue 10 where the earlier adaptive radius locked honest
// nodes out (honest accuracy 91.0% clean, 68.4% clipped).
const base = {
  nodes: 16,
  run: { rounds: 40, seed: 2 },
  model: { hidden: [64] },
  eval: { every: 10 },
};
const attack = { byzantine: BAD.map((node) => ({ node, behaviour: 'sign-flip' })) };

describe('2 sign-flip byzantine nodes out of 16', () => {
  it('clipped gossip keeps the honest nodes within 5 points of the clean run; plain gossip collapses', async () => {
    const clean = await simulate(smallRun(base));
    const plain = await simulate(smallRun({ ...base, faults: attack }));
    const records: RoundRecord[] = [];
    const clipped = await simulate(
      smallRun({ ...base, faults: attack, gossip: { robust: { kind: 'clip' } } }),
      { onRound: (r) => records.push(r) },
    );
    const c = accuracyOf(clean, HONEST);
    const p = accuracyOf(plain, HONEST);
    const k = accuracyOf(clipped, HONEST);
    assert.ok(c > 0.8, `clean ${c}`);
    assert.ok(k > c - 0.05, `clipped ${k} vs clean ${c}`);
    assert.ok(p < c - 0.2, `plain ${p} vs clean ${c}`);
    // The attack is recorded: one injected fault per attacker per round.
    assert.equal(plain.faults['byzantine-sign-flip'], 2 * 40);
    assert.equal(clipped.faults['byzantine-sign-flip'], 2 * 40);
    // The records say whom each node clipped or left out: every attacker heard by an honest node
    // was left out, and no honest neighbour was.
    let attackersHeard = 0;
    for (const r of records) {
      assert.ok(r.robust, `node ${r.node} round ${r.round} has clip decisions`);
      if (BAD.includes(r.node)) continue;
      const bad = r.heard.filter((j) => BAD.includes(j));
      attackersHeard += bad.length;
      assert.deepEqual(r.robust.rejected, bad, `node ${r.node} round ${r.round}`);
      for (const j of r.robust.clipped) assert.ok(r.heard.includes(j) && !BAD.includes(j));
    }
    assert.ok(attackersHeard > 100, `attackers heard ${attackersHeard} times`);
  });

  it('clipping costs nothing measurable without attackers', async () => {
    const clean = await simulate(smallRun({ ...base, run: { rounds: 20, seed: 2 } }));
    const clipped = await simulate(
      smallRun({ ...base, run: { rounds: 20, seed: 2 }, gossip: { robust: { kind: 'clip' } } }),
    );
    const c = accuracyOf(clean, HONEST);
    const k = accuracyOf(clipped, HONEST);
    assert.ok(k > c - 0.03, `clipped ${k} vs plain ${c}`);
  });
});
