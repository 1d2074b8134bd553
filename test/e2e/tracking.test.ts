/**
 * End-to-end: gradient tracking in real node processes over libp2p. The tracker travels in the
 * frame beside the model (frames of twice the model's size), and the corrections the nodes end
 * with, read from their checkpoints, sum to zero under (silent) message loss.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { CheckpointStore } from '../../src/node/checkpoint.js';
import { launch } from '../../src/run/launcher.js';

describe('gradient tracking (real processes)', () => {
  it('4 nodes gossip model and tracker; their corrections sum to zero under loss', async () => {
    const out = mkdtempSync(join(tmpdir(), 'flatmesh-e2e-gt-'));
    const cfg = parseExperiment({
      nodes: 4,
      run: { rounds: 6, seed: 4 },
      topology: { graph: 'ring', budget: 0.5 },
      data: { partition: 'dirichlet:0.1' },
      model: { hidden: [32] },
      train: { optimizer: 'sgd', localSteps: 5, lr: 0.2, gradientTracking: true },
      swa: { enabled: false },
      eval: { every: 6 },
      faults: { loss: { p: 0.2, mode: 'silent' } },
      gossip: { deadlineMs: 3000 },
      backend: 'wasm',
    });
    const s = await launch(cfg, { out, progress: false });
    assert.equal(s.completed, true);
    assert.equal(s.messages.rejected, 0);
    assert.ok(s.messages.dropped > 0, 'some messages were lost');
    // MLP 64-32-10 on digits: 2,410 parameters; a frame carries 2 x 2,410 float32 and a header.
    const params = 64 * 32 + 32 + 32 * 10 + 10;
    const sent = s.perNode.reduce((a, n) => a + n.bytesSent, 0);
    const perFrame = sent / s.messages.delivered;
    assert.ok(
      perFrame > 2 * params * 4 && perFrame < 2 * params * 4 + 512,
      `${perFrame} bytes per delivered frame`,
    );
    const corrections = s.perNode.map((n) => {
      const ck = new CheckpointStore(join(out, 'nodes', String(n.id))).load()!;
      return Object.entries(ck.optimizer)
        .filter(([k]) => k.endsWith('.correction'))
        .flatMap(([, v]) => Array.from(v));
    });
    assert.equal(corrections[0]!.length, params);
    let worst = 0;
    let scale = 0;
    for (let k = 0; k < params; k++) {
      const col = corrections.map((c) => c[k]!);
      worst = Math.max(worst, Math.abs(col.reduce((a, v) => a + v, 0)));
      scale = Math.max(scale, ...col.map(Math.abs));
    }
    assert.ok(scale > 1e-3, `corrections are not all zero (largest ${scale})`);
    assert.ok(worst < 1e-4 * Math.max(1, scale), `|sum of corrections| up to ${worst}`);
  });
});
