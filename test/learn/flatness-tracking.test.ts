import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { parseExperiment } from '../../src/config/index.js';
import { ConfigErrors } from '../../src/errors.js';
import { writeFlat } from '../../src/learn/flat.js';
import {
  HessianOperator,
  hutchinsonTrace,
  sampleSet,
  topEigenvalues,
} from '../../src/learn/flatness/index.js';
import { createModel } from '../../src/learn/model.js';
import { modelSpec, prepareRun } from '../../src/node/build.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import type { RunSummary } from '../../src/report/records.js';
import { formatSummary } from '../../src/report/summary-text.js';
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

async function run(batched = false, s: Record<string, unknown> = spec) {
  const cfg = experiment(s);
  const records = new Map<string, RoundRecord>();
  const weights = new Map<string, Float32Array>();
  const summary = await simulate(cfg, {
    batched,
    onRound: (r) => records.set(`${r.node}/${r.round}`, r),
    onWeights: (node, round, x) => weights.set(`${node}/${round}`, x),
  });
  return { cfg, records, weights, summary };
}

/** summary.json holds each node's last figures (its last round's record) and their mean. */
function assertSummaryFlatness(summary: RunSummary, records: Map<string, RoundRecord>) {
  const last = summary.rounds - 1;
  for (const o of summary.perNode) {
    assert.deepEqual(
      o.flatness,
      { round: last, ...records.get(`${o.id}/${last}`)!.flatness! },
      `node ${o.id}`,
    );
  }
  const f = summary.flatness!;
  assert.equal(f.nodes, summary.nodes);
  assert.equal(f.round, last);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const per = summary.perNode.map((o) => o.flatness!);
  assert.ok(Math.abs(f.model.lambdaMax - mean(per.map((p) => p.model.lambdaMax))) < 1e-9);
  assert.ok(Math.abs(f.swa!.lambdaMax - mean(per.map((p) => p.swa!.lambdaMax))) < 1e-9);
  assert.equal(f.swa!.nodes, summary.nodes);
  if (per[0]!.model.trace !== undefined)
    assert.ok(Math.abs(f.model.trace! - mean(per.map((p) => p.model.trace!))) < 1e-6);
  else assert.equal(f.model.trace, undefined);
  assert.match(
    formatSummary(summary),
    new RegExp(
      `flatness at round ${last} \\(mean of ${summary.nodes} nodes\\): λmax [0-9.]+.*\\| SWA λmax`,
    ),
  );
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
    assert.match(
      problems({ traceMethod: 'hutch+' }),
      /analysis\.flatness\.traceMethod: must be 'hutchinson' or 'hutch\+\+'/,
    );
    assert.match(
      problems({ traceMethod: 'hutch++', probes: 3 }),
      /analysis\.flatness\.probes: must be at least 4 with traceMethod 'hutch\+\+' \(got 3\)/,
    );
    const d = experiment({}).analysis?.flatness;
    assert.deepEqual(d, {
      every: 10,
      samples: 1000,
      top: 1,
      trace: false,
      probes: 30,
      traceMethod: 'hutchinson',
    });
  });

  it('adds λmax, top-k, λmax/λk and the trace of the node and SWA models on its rounds', async () => {
    const before = tf.memory().numTensors;
    const { cfg, records, weights, summary } = await run();
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
    assert.equal(records.get('0/5')?.flatness?.traceMethod, 'hutchinson');
    assertSummaryFlatness(summary, records);

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

  it('estimates the trace by Hutch++ when asked, and agrees with a long Hutchinson run', async () => {
    const hpp = { every: 3, samples: 120, top: 1, trace: true, probes: 12, traceMethod: 'hutch++' };
    const { cfg, records, weights, summary } = await run(false, hpp);
    const plain = await run(false, { ...hpp, traceMethod: 'hutchinson' });
    for (const key of ['1/2', '3/5']) {
      const f = records.get(key)!.flatness!;
      assert.equal(f.traceMethod, 'hutch++', key);
      // Same models, same λmax; another estimator of the trace, so other figures.
      const p = plain.records.get(key)!.flatness!;
      assert.equal(f.model.lambdaMax, p.model.lambdaMax, key);
      assert.notEqual(f.model.trace, p.model.trace, key);
    }
    assertSummaryFlatness(summary, records);

    // The Hutch++ figure of node 3's last model is its trace: a 300-probe Hutchinson estimate of
    // the same Hessian (other probes) agrees within 4 combined standard errors.
    const ctx = await prepareRun(cfg, 'check');
    const model = createModel(modelSpec(cfg), ctx.data.train.shape, ctx.data.train.classes, 1);
    writeFlat(model, weights.get('3/5')!);
    const H = new HessianOperator(model, sampleSet(ctx.test, 'test set', { limit: 120, seed: 3 }));
    try {
      const ref = hutchinsonTrace(H, { probes: 300, seed: 99 });
      const m = records.get('3/5')!.flatness!.model;
      const se = Math.hypot(ref.stderr, m.traceStderr!);
      assert.ok(
        Math.abs(m.trace! - ref.estimate) <= 4 * se,
        `Hutch++ ${m.trace} ± ${m.traceStderr} vs Hutchinson ${ref.estimate} ± ${ref.stderr}`,
      );
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
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as RunSummary;
    const recorded = (node: number) =>
      readFileSync(join(out, 'nodes', String(node), 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as RoundRecord);
    const records = new Map(
      [0, 1, 2].flatMap((n) => recorded(n).map((r) => [`${n}/${r.round}`, r] as const)),
    );
    assertSummaryFlatness(summary, records);
  });
});
