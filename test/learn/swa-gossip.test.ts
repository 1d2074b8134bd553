import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { CheckpointStore } from '../../src/node/checkpoint.js';
import { simulate } from '../../src/run/simulate.js';
import { configProblems } from '../helpers/config-errors.js';

/**
 * swa.gossip's defining properties, on two simulator runs of the same seed with and without it:
 * the models trained are the same (only the SWA averages are mixed), mixing keeps the network
 * mean of the SWA averages (doubly stochastic Laplacian weights, no loss), and pulls the nodes'
 * averages together.
 */
describe('swa.gossip', () => {
  it('mixes the SWA averages like the models: same training, same mean, smaller spread', async () => {
    const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'flatmesh-swa-gossip-')));
    try {
      const cfg = (gossip: boolean) =>
        parseExperiment({
          nodes: 6,
          run: { rounds: 12, seed: 2 },
          topology: { graph: 'ring', budget: 0.5 },
          data: { dataset: 'digits', partition: 'dirichlet:0.1' },
          model: { hidden: [16] },
          train: { optimizer: 'sgd', lr: 0.1, localSteps: 4 },
          swa: { start: 0.4, cycle: 2, gossip },
          eval: { every: 12 },
        });
      const [plain, gossiped] = [
        await simulate(cfg(false), { out: dirs[0]! }),
        await simulate(cfg(true), { out: dirs[1]! }),
      ];
      assert.deepEqual(
        gossiped.perNode.map((n) => n.accuracy),
        plain.perNode.map((n) => n.accuracy),
        'the models trained are the same',
      );
      const bytes = (r: typeof plain) => r.perNode.reduce((a, n) => a + n.bytesSent, 0);
      const ratio = bytes(gossiped) / bytes(plain);
      assert.ok(ratio > 1.95 && ratio < 2.05, `frames carry model and SWA average: ${ratio}`);
      const swas = dirs.map((d) =>
        Array.from({ length: 6 }, (_, i) => {
          const ck = new CheckpointStore(join(d, 'nodes', String(i))).load()!;
          assert.ok(ck.swa.count > 0);
          return ck.swa.mean!;
        }),
      );
      const mean = (vs: Float64Array[]) =>
        vs[0]!.map((_, k) => vs.reduce((s, v) => s + v[k]!, 0) / vs.length);
      const spread = (vs: Float64Array[]) => {
        const m = mean(vs);
        return vs.reduce((s, v) => s + Math.hypot(...v.map((x, k) => x - m[k]!)), 0) / vs.length;
      };
      const [m0, m1] = swas.map(mean);
      let worst = 0;
      for (let k = 0; k < m0!.length; k++) worst = Math.max(worst, Math.abs(m0![k]! - m1![k]!));
      assert.ok(worst < 1e-5, `network mean of the SWA averages moved by ${worst}`);
      const [s0, s1] = swas.map(spread);
      assert.ok(s1! < 0.7 * s0!, `spread of the SWA averages ${s1} with gossip, ${s0} without`);
    } finally {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  });

  it('refuses asynchronous gossip and robust mixing, naming the field', () => {
    assert.deepEqual(
      configProblems(() => parseExperiment({ swa: { gossip: true }, gossip: { sync: 'async' } })),
      [
        "swa.gossip: needs gossip.sync: 'lockstep' (averages are mixed with the models of the same round) (got true)",
      ],
    );
    assert.match(
      configProblems(() =>
        parseExperiment({ swa: { gossip: true }, gossip: { robust: { kind: 'clip' } } }),
      ).join('\n'),
      /^swa\.gossip: is not supported with gossip\.robust/,
    );
  });
});
