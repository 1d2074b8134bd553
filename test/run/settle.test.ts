import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { CheckpointStore } from '../../src/node/checkpoint.js';
import { simulate } from '../../src/run/simulate.js';

const NODES = 6;

/** Each node's SWA average at the end of a simulated run (from its checkpoint). */
async function swaModels(rounds: number, settle: number): Promise<Float64Array[]> {
  const out = mkdtempSync(join(tmpdir(), 'flatmesh-settle-'));
  try {
    await simulate(
      parseExperiment({
        nodes: NODES,
        run: { rounds, seed: 5 },
        topology: { graph: 'ring', budget: 0.5 },
        data: { dataset: 'digits', partition: 'dirichlet:0.1' },
        model: { hidden: [16] },
        train: { optimizer: 'sgd', lr: 0.1, localSteps: 3 },
        swa: { start: 0.5, cycle: 2, gossip: true, settle },
        eval: { every: 100 },
      }),
      { out },
    );
    return Array.from({ length: NODES }, (_, i) =>
      Float64Array.from(new CheckpointStore(join(out, 'nodes', String(i))).load()!.swa.mean!),
    );
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const mean = (xs: Float64Array[]) =>
  xs[0]!.map((_, k) => xs.reduce((s, x) => s + x[k]!, 0) / xs.length);
const maxDiff = (a: Float64Array, b: Float64Array) =>
  a.reduce((m, v, k) => Math.max(m, Math.abs(v - b[k]!)), 0);
const spread = (xs: Float64Array[]) => Math.max(...xs.map((x) => maxDiff(x, mean(xs))));

describe('swa.settle', () => {
  it('after the last collection, the gossiped SWA averages close in on their mean, which stays', async () => {
    // 8 rounds that train (SWA from round 4, collections at 5 and 7), then 6 that only gossip.
    const trained = await swaModels(8, 0);
    const settled = await swaModels(14, 6);
    const scale = Math.max(...mean(trained).map(Math.abs));
    assert.ok(maxDiff(mean(settled), mean(trained)) / scale < 1e-5, 'the mean moved');
    assert.ok(
      spread(settled) < 0.5 * spread(trained),
      `spread ${spread(trained)} -> ${spread(settled)}`,
    );
  });
});
