import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { parseExperiment } from '../../src/config/index.js';
import { ConfigErrors } from '../../src/errors.js';
import { writeFlat } from '../../src/learn/flat.js';
import { HessianOperator, sampleSet, topEigenvalues } from '../../src/learn/flatness/index.js';
import { createModel } from '../../src/learn/model.js';
import { modelSpec, prepareRun } from '../../src/node/build.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import { launch } from '../../src/run/launcher.js';
import { simulate } from '../../src/run/simulate.js';

/**
 * In-run flatness tracking (analysis.flatness) on small seeded simulator runs: the figures are on
 * the right rounds, describe the model the round ended with (checked against an independent
 * Lanczos run on that round's weights), replay exactly, and leave no tensor behind.
 */
const experiment = (flatness: Record<string, unknown> | undefined) =>
  parseExperiment({
    nodes: 4,
    run: { rounds: 6, seed: 3 },
    topology: { graph: 'ring' },
    model: { hidden: [16] },
    train: { localSteps: 3, batchSize: 16 },
    swa: { start: 0.5, cycle: 1 },
    eval: { every: 3, tail: 0 },
    ...(flatness && { analysis: { flatness } }),
  });

const spec = { every: 2, samples: 120, top: 2, trace: true, probes: 4 };

async function run(batched = false) {
  const cfg = experiment(spec);
  const records = new Map<string, RoundRecord>();
  const weights = new Map<string, Float32Array>();
  await simulate(cfg, {
    batched,
    onRound: (r) => records.set(`${r.node}/${r.round}`, r),
    onWeights: (node, round, x) => weights.set(`${node}/${round}`, x),
  });
  return { cfg, records, weights };
}

describe('in-run flatness tracking', () => {
  it('is off by default and validates its fields with their range', () => {
    assert.equal(experiment(undefined).analysis, undefined);
    const problems = (flatness: Record<string, unknown>) => {
      try {
        experiment(flatness);
      } catch (e) {
        assert.ok(e instanceof ConfigErrors, String(e));
        return e.message;
      }
      return '';
    };
    assert.match(
      problems({ every: 0 }),
      /analysis\.flatness\.every: must be an integer between 1 and 1000000 \(got 0\)/,
    );
    assert.match(
      problems({ top: 21 }),
      /analysis\.flatness\.top: must be an integer between 1 and 20/,
    );
    assert.match(problems({ trace: 'yes' }), /analysis\.flatness\.trace: must be true or false/);
    assert.match(problems({ samples: -1 }), /analysis\.flatness\.samples/);
    assert.match(problems({ evry: 3 }), /evry/);
    const d = experiment({}).analysis?.flatness;
    assert.deepEqual(d, { every: 10, samples: 1000, top: 1, trace: false, probes: 30 });
  });

  it('adds λmax, top-k, λmax/λk and the trace of the node and SWA models on its rounds', async () => {
    const before = tf.memory().numTensors;
    const { cfg, records, weights } = await run();
    assert.equal(tf.memory().numTensors, before, 'no tensor outlives the run');
    assert.equal(records.size, 4 * 6);
    for (const r of records.values()) {
      const due = r.round % 2 === 1; // every 2 rounds, and the last round (5)
      assert.equal(r.flatness !== undefined, due, `node ${r.node} round ${r.round}`);
      if (!r.flatness) continue;
      const f = r.flatness;
      assert.equal(f.samples, 120);
      assert.ok(f.products > 0 && f.ms > 0);
      for (const m of [f.model, f.swa]) {
        if (!m) continue;
        assert.ok(Number.isFinite(m.lambdaMax) && m.lambdaMax > 0, `λmax ${m.lambdaMax}`);
        assert.equal(m.top?.length, 2);
        assert.equal(m.top![0], m.lambdaMax);
        assert.ok(m.top![1]! <= m.lambdaMax);
        assert.ok(Math.abs(m.ratio! - m.top![0]! / m.top![1]!) < 1e-9);
        assert.ok(Number.isFinite(m.trace) && Number.isFinite(m.traceStderr));
        assert.ok(Number.isFinite(m.loss) && m.loss > 0);
      }
      // SWA starts at round 3 of 6 and collects every round: its model is there from round 3 on.
      assert.equal(f.swa !== undefined, r.swaCount > 0, `swa at round ${r.round}`);
    }
    assert.ok(records.get('0/5')?.flatness?.swa, 'the last round measures the SWA model');

    // Tensor hygiene across rounds: the runtime's count at each record is the same every round.
    for (let node = 0; node < 4; node++) {
      const counts = new Set(
        [...records.values()].filter((r) => r.node === node).map((r) => r.numTensors),
      );
      assert.equal(counts.size, 1, `node ${node} live tensors per round: ${[...counts]}`);
    }

    // The figure is the round's model: an independent Lanczos run (other start vector) on node 2's
    // weights after round 3 agrees within its tolerance.
    const ctx = await prepareRun(cfg, 'check');
    const model = createModel(modelSpec(cfg), ctx.data.train.shape, ctx.data.train.classes, 1);
    writeFlat(model, weights.get('2/3')!);
    const H = new HessianOperator(model, sampleSet(ctx.test, 'test set', { limit: 120, seed: 3 }));
    try {
      const top = topEigenvalues(H, { k: 2, seed: 99, tol: 1e-4 });
      const recorded = records.get('2/3')!.flatness!.model;
      for (let j = 0; j < 2; j++) {
        const rel = Math.abs(top.values[j]! - recorded.top![j]!) / top.values[j]!;
        assert.ok(rel < 5e-3, `λ${j + 1}: recorded ${recorded.top![j]} vs ${top.values[j]}`);
      }
    } finally {
      H.dispose();
      model.dispose();
    }
  });

  it('replays exactly from the seed, batched or not', async () => {
    const a = await run();
    const b = await run(true);
    const flat = (m: Map<string, RoundRecord>) =>
      [...m.values()]
        .filter((r) => r.flatness)
        .map((r) => ({
          key: `${r.node}/${r.round}`,
          model: r.flatness!.model,
          swa: r.flatness!.swa,
        }))
        .sort((x, y) => x.key.localeCompare(y.key));
    const again = await run();
    assert.deepEqual(flat(again.records), flat(a.records), 'same seed, same figures');
    // The batched engine trains the same models within float32 rounding.
    const fa = flat(a.records);
    const fb = flat(b.records);
    assert.equal(fb.length, fa.length);
    fa.forEach((x, i) => {
      const y = fb[i]!;
      assert.equal(y.key, x.key);
      const rel = Math.abs(y.model.lambdaMax - x.model.lambdaMax) / x.model.lambdaMax;
      assert.ok(rel < 1e-2, `${x.key}: λmax ${y.model.lambdaMax} batched vs ${x.model.lambdaMax}`);
    });
  });

  it('works in a real launch: every node process records its figures', async () => {
    const out = mkdtempSync(join(tmpdir(), 'flatmesh-flatness-launch-'));
    const cfg = parseExperiment({
      nodes: 3,
      run: { rounds: 4, seed: 5 },
      topology: { graph: 'ring' },
      model: { hidden: [16] },
      train: { localSteps: 3, batchSize: 16 },
      swa: { start: 0.5, cycle: 1 },
      gossip: { deadlineMs: 15000 },
      analysis: { flatness: { every: 2, samples: 100 } },
    });
    await launch(cfg, { out, progress: false });
    for (let node = 0; node < 3; node++) {
      const recs = readFileSync(join(out, 'nodes', String(node), 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as RoundRecord);
      assert.deepEqual(
        recs.filter((r) => r.flatness).map((r) => r.round),
        [1, 3],
        `node ${node}`,
      );
      const last = recs.find((r) => r.round === 3)!.flatness!;
      assert.ok(last.model.lambdaMax > 0 && last.swa!.lambdaMax > 0);
    }
  });
});
