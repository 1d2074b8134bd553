import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { lossAwarePlan, resolveGraph } from '../../src/node/build.js';
import { matchaPlan, optimizeAlpha } from '../../src/topology/index.js';

describe('loss-aware MATCHA alpha', () => {
  const graph = resolveGraph('ring', 16, 1);
  const plan = matchaPlan(graph, 0.5);

  it('re-optimizes alpha for matchings that survive with probability p_j (1 - loss)', () => {
    const cfg = parseExperiment({ nodes: 16, faults: { loss: { p: 0.3 } } });
    const aware = lossAwarePlan(plan, cfg);
    const expected = optimizeAlpha(
      16,
      plan.matchings,
      plan.probabilities.map((p) => p * 0.7),
    ).alpha;
    assert.equal(aware.alpha, expected);
    assert.ok(
      aware.alpha > plan.alpha,
      `${aware.alpha} > ${plan.alpha}: fewer messages, each weighs more`,
    );
    assert.deepEqual(aware.probabilities, plan.probabilities);
  });

  it('leaves the plan alone without loss, when disabled, or for bursty loss', () => {
    for (const extra of [
      {},
      { faults: { loss: { p: 0.3 } }, gossip: { lossAware: false } },
      { faults: { loss: { p: 0.3, model: 'gilbert-elliott' } } },
    ]) {
      assert.equal(lossAwarePlan(plan, parseExperiment({ nodes: 16, ...extra })).alpha, plan.alpha);
    }
  });
});
