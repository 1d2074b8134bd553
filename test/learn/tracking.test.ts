import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/compute/rng.js';
import { parseExperiment } from '../../src/config/index.js';
import { laplacianMix } from '../../src/gossip/mixing.js';
import { createOptimizer, readCorrection } from '../../src/learn/index.js';
import type { WeightsMessage } from '../../src/net/transport.js';
import { CheckpointStore } from '../../src/node/checkpoint.js';
import { TrackingRound } from '../../src/node/tracking.js';
import { simulate } from '../../src/run/simulate.js';
import { configProblems } from '../helpers/config-errors.js';

/**
 * Gradient tracking's defining properties on a heterogeneous quadratic, through the code a node
 * runs (the optimizer's correction, TrackingRound's frame and tracker mixing, Laplacian mixing):
 * 6 nodes on a ring, f_i(x) = a_i ||x - b_i||^2 / 2 with different curvatures a_i and optima b_i,
 * 5 local steps per round, each ring edge active with probability 1/2 per round (MATCHA-like
 * sampling) and, optionally, each message lost one way with probability `loss`. The global optimum
 * is x* = sum a_i b_i / sum a_i. D-SGD with local steps settles away from it (the heterogeneity
 * bias); gradient tracking converges to it, and the corrections sum to zero at every round.
 */
function run(opts: { tracking: boolean; loss: number; rounds: number }) {
  const n = 6;
  const d = 2;
  const lr = 0.1;
  const steps = 5;
  const alpha = 1 / 3;
  const a = [0.5, 2, 1, 1.5, 0.7, 1.8];
  const b = a.map((_, i) => [
    8 * Math.cos((2 * Math.PI * i) / n),
    8 * Math.sin((2 * Math.PI * i) / n) + 2,
  ]);
  const sumA = a.reduce((s, v) => s + v, 0);
  const xStar = [0, 1].map((k) => a.reduce((s, ai, i) => s + ai * b[i]![k]!, 0) / sumA);
  const vars = a.map(() => tf.variable(tf.zeros([d])));
  const spec = {
    kind: 'sgd' as const,
    momentum: 0,
    weightDecay: 0,
    rho: 0,
    eta: 0,
    correction: opts.tracking,
  };
  const optimizers = vars.map((v) => createOptimizer(spec, [{ name: 'x', variable: v }]));
  const tracking = optimizers.map((o) => new TrackingRound(o));
  const rng = Rng.from(5, 'tracking-test');
  const rand = () => rng.float();
  const correctionSums: number[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    const starts = vars.map((v) => v.dataSync().slice() as Float32Array);
    vars.forEach((v, i) => {
      const target = tf.tensor1d(b[i]!);
      const loss = () =>
        tf.tidy(() => tf.mul(0.5 * a[i]!, tf.sum(tf.square(tf.sub(v, target))))) as tf.Scalar;
      for (let s = 0; s < steps; s++) optimizers[i]!.step(loss, lr);
      target.dispose();
    });
    const xs = vars.map((v) => v.dataSync().slice() as Float32Array);
    const ys = xs.map((x, i) => tracking[i]!.tracker(x, starts[i]!, lr, steps)!);
    // This round's active ring edges, and which directions arrive.
    const active = Array.from({ length: n }, () => rand() < 0.5); // edge i -- i+1
    const arrives = new Map<string, boolean>();
    const neighboursOf = (i: number) =>
      [(i + 1) % n, (i + n - 1) % n].filter((j) => active[j === (i + 1) % n ? i : j]);
    for (let i = 0; i < n; i++)
      for (const j of neighboursOf(i)) arrives.set(`${i}>${j}`, rand() >= opts.loss);
    xs.forEach((x, i) => {
      const heard = neighboursOf(i).filter((j) => arrives.get(`${j}>${i}`));
      const message = (j: number, weights: Float32Array): WeightsMessage => ({
        from: j,
        round: r,
        codec: 'f32',
        weights,
        mass: 1,
        bytes: 0,
      });
      const models = heard.map((j) => message(j, xs[j]!));
      vars[i]!.assign(tf.tensor1d(laplacianMix(x, models, alpha)));
      if (!opts.tracking) return;
      const outcomes = neighboursOf(i).map((j) => ({
        to: j,
        outcome: arrives.get(`${i}>${j}`)
          ? { status: 'delivered' as const, bytes: 0 }
          : { status: 'dropped' as const, bytes: 0, reason: 'loss' },
      }));
      const trackers = heard.map((j) => message(j, ys[j]!));
      tracking[i]!.end(trackers, outcomes, (y, trackers) => laplacianMix(y, trackers, alpha));
    });
    if (opts.tracking) {
      const cs = optimizers.map((o) => readCorrection(o));
      correctionSums.push(
        Math.max(...[0, 1].map((k) => Math.abs(cs.reduce((s, c) => s + c[k]!, 0)))),
      );
    }
  }
  const final = vars.map((v) => Array.from(v.dataSync()));
  const error = Math.max(...final.map((x) => Math.hypot(x[0]! - xStar[0]!, x[1]! - xStar[1]!)));
  tf.dispose(vars);
  optimizers.forEach((o) => o.dispose());
  return { error, correctionSums };
}

describe('gradient tracking', () => {
  it('converges to the global optimum where D-SGD keeps its heterogeneity bias', () => {
    const dsgd = run({ tracking: false, loss: 0, rounds: 350 });
    const gt = run({ tracking: true, loss: 0, rounds: 350 });
    assert.ok(dsgd.error > 0.3, `D-SGD's nodes end ${dsgd.error} from the optimum`);
    assert.ok(gt.error < 1e-3, `gradient tracking's nodes end ${gt.error} from the optimum`);
  });

  it('keeps the corrections summing to zero (mean tracker = mean own gradient) under one-way loss', () => {
    // Fewer edges mixed per round: slower, to the same point (0.47 at 250 rounds, 0.015 at 500).
    const gt = run({ tracking: true, loss: 0.3, rounds: 500 });
    // Corrections reach |c| ~ 10 here; their sum stays at float32 rounding.
    assert.ok(
      Math.max(...gt.correctionSums) < 1e-4,
      `largest |sum of corrections| ${Math.max(...gt.correctionSums)}`,
    );
    assert.ok(gt.error < 0.05, `under loss the nodes end ${gt.error} from the optimum`);
  });

  it('in the simulator: frames carry x and y, the corrections sum to zero under MATCHA and loss', async () => {
    const out = mkdtempSync(join(tmpdir(), 'flatmesh-gt-'));
    try {
      const cfg = (tracking: boolean) =>
        parseExperiment({
          nodes: 6,
          run: { rounds: 6, seed: 3 },
          topology: { graph: 'ring', budget: 0.5 },
          data: { dataset: 'digits', partition: 'dirichlet:0.1' },
          model: { hidden: [16] },
          train: { optimizer: 'sgd', lr: 0.1, localSteps: 4, gradientTracking: tracking },
          faults: { loss: { p: 0.3 } },
          eval: { every: 6 },
        });
      const plain = await simulate(cfg(false));
      const gt = await simulate(cfg(true), { out });
      assert.ok(gt.messages.dropped > 0, 'some messages were lost');
      // The same messages, each carrying the model and its tracker: twice the bytes.
      assert.deepEqual(gt.messages, plain.messages);
      const bytes = (r: typeof gt) => r.perNode.reduce((a, n) => a + n.bytesSent, 0);
      const ratio = bytes(gt) / bytes(plain);
      assert.ok(ratio > 1.95 && ratio < 2.05, `bytes ratio ${ratio}`);
      const corrections = Array.from({ length: 6 }, (_, i) => {
        const ck = new CheckpointStore(join(out, 'nodes', String(i))).load()!;
        return Object.entries(ck.optimizer)
          .filter(([k]) => k.endsWith('.correction'))
          .flatMap(([, v]) => Array.from(v));
      });
      let worst = 0;
      let scale = 0;
      for (let k = 0; k < corrections[0]!.length; k++) {
        const col = corrections.map((c) => c[k]!);
        worst = Math.max(worst, Math.abs(col.reduce((a, v) => a + v, 0)));
        scale = Math.max(scale, ...col.map(Math.abs));
      }
      assert.ok(scale > 1e-3, `corrections are not all zero (largest ${scale})`);
      assert.ok(worst < 1e-5 * Math.max(1, scale) * 6, `|sum of corrections| up to ${worst}`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('refuses what would break the sum of the corrections, naming the field', () => {
    const base = { train: { gradientTracking: true, optimizer: 'sgd' } };
    const problems = configProblems(() =>
      parseExperiment({
        ...base,
        gossip: { mixing: 'push-sum' },
        faults: { crashes: [{ node: 1, round: 2 }] },
      }),
    );
    assert.ok(
      problems.some((p) =>
        p.startsWith('gossip.mixing: is not supported with train.gradientTracking'),
      ),
    );
    assert.ok(problems.some((p) => p.startsWith('faults.crashes: is not supported')));
    assert.match(
      configProblems(() =>
        parseExperiment({ train: { gradientTracking: true, momentum: 0.9 } }),
      ).join('\n'),
      /train\.momentum: is not supported with train\.gradientTracking/,
    );
    assert.doesNotThrow(() => parseExperiment({ ...base, faults: { loss: { p: 0.3 } } }));
  });
});
