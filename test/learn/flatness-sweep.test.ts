import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigErrors } from '../../src/errors.js';
import { writeFlat } from '../../src/learn/flat.js';
import { HessianOperator, sampleSet, topEigenvalues } from '../../src/learn/flatness/index.js';
import { createModel } from '../../src/learn/model.js';
import { modelSpec, prepareRun } from '../../src/node/build.js';
import { SWEEP_FLATNESS_FILE, type SweepFlatnessFile } from '../../src/report/flatness.js';
import { readRunDir } from '../../src/report/run-dir.js';
import { formatTable } from '../../src/report/sweep-table.js';
import { RunModels } from '../../src/run/run-flatness.js';
import { planSweep, runDir, runSweep, type SweepEvent } from '../../src/run/sweep.js';

/**
 * Flatness columns of a sweep table: each finished run's models measured from its checkpoints,
 * per-run means over nodes, mean ± 95% CI over seeds per cell; measured once per settings.
 */
const sweep = (out: string, flatness: Record<string, unknown>) =>
  planSweep({
    base: {
      nodes: 3,
      run: { rounds: 4 },
      topology: { graph: 'ring' },
      model: { hidden: [12] },
      train: { localSteps: 3, batchSize: 16 },
      swa: { start: 0.5, cycle: 1 },
      eval: { every: 2, tail: 0 },
    },
    variants: { sgd: { 'train.optimizer': 'sgd' }, asam: { 'train.optimizer': 'asam' } },
    seeds: [1, 2],
    batched: true,
    out,
    flatness,
  });

const spec = { samples: 100, top: 2, trace: true, probes: 4 };

describe('sweep flatness columns', () => {
  it('validates the flatness settings with the field and its range', () => {
    const problem = (flatness: Record<string, unknown>) => {
      try {
        sweep('unused', flatness);
      } catch (e) {
        assert.ok(e instanceof ConfigErrors, String(e));
        return e.message;
      }
      return '';
    };
    assert.match(problem({ top: 0 }), /flatness\.top: must be an integer between 1 and 20/);
    assert.match(problem({ models: ['nodes'] }), /flatness\.models\[0\]: must be 'node', 'swa'/);
    assert.match(problem({ data: 'shard' }), /flatness\.data: must be test, train or shard:I/);
    assert.match(problem({ probs: 3 }), /probs/);
  });

  it('adds λmax, λmax/λk and the trace of node, SWA and average models with CIs over seeds', async () => {
    const out = mkdtempSync(join(tmpdir(), 'flatmesh-flatness-sweep-'));
    const plan = sweep(out, spec);
    const events: SweepEvent[] = [];
    const { table, failures } = await runSweep(plan, { onEvent: (e) => events.push(e) });
    assert.deepEqual(failures, []);
    assert.equal(events.filter((e) => e.type === 'flatness').length, 4);
    const columns = ['node', 'swa', 'average'].flatMap((k) => [
      `${k}.lambdaMax`,
      `${k}.lambdaMax/lambda2`,
      `${k}.trace`,
    ]);
    assert.deepEqual(table.flatness, columns);
    for (const row of table.rows) {
      const cell = plan.cells.find((c) => c.key === row.cell)!;
      for (const c of columns) {
        const d = row.flatness![c]!;
        assert.equal(d.n, 2, `${row.cell} ${c}`);
        assert.ok(d.mean !== null && Number.isFinite(d.mean) && d.ci95 !== null);
      }
      for (const p of row.perSeed) {
        const dir = runDir(out, cell, p.seed);
        const file = JSON.parse(
          readFileSync(join(dir, SWEEP_FLATNESS_FILE), 'utf8'),
        ) as SweepFlatnessFile;
        assert.equal(file.models.length, 3 + 3 + 1, 'every node model, SWA model, the average');
        assert.equal(file.samples.count, 100);
        // A run's node column is the mean over its nodes' models.
        const nodes = file.models.filter((m) => m.model.startsWith('node:'));
        const mean = nodes.reduce((s, m) => s + m.top[0]!, 0) / nodes.length;
        assert.ok(Math.abs(p.flatness!['node.lambdaMax']! - mean) < 1e-9);
        // The average model's λmax, checked by an independent Lanczos run from another start.
        const run = readRunDir(dir, { records: false });
        const avg = new RunModels(run).resolve('average');
        const ctx = await prepareRun(run.config, 'check');
        const model = createModel(modelSpec(run.config), ctx.data.train.shape, 10, 1);
        writeFlat(model, avg.weights);
        const H = new HessianOperator(
          model,
          sampleSet(ctx.test, 'test set', { limit: 100, seed: 1 }),
        );
        try {
          const top = topEigenvalues(H, { k: 1, seed: 42, tol: 1e-5 });
          const rel = Math.abs(top.values[0]! - p.flatness!['average.lambdaMax']!) / top.values[0]!;
          assert.ok(
            rel < 5e-3,
            `average λmax ${p.flatness!['average.lambdaMax']} vs ${top.values[0]}`,
          );
        } finally {
          H.dispose();
          model.dispose();
        }
      }
    }
    assert.match(formatTable(table), /SWA λmax\/λ2/);
    assert.match(readFileSync(join(out, 'table.csv'), 'utf8'), /flatness\.swa\.trace\.ci95/);

    // Resumed with the same settings: nothing is measured again; with others: every run is.
    const again: SweepEvent[] = [];
    await runSweep(sweep(out, spec), { resume: true, onEvent: (e) => again.push(e) });
    assert.equal(again.filter((e) => e.type === 'flatness').length, 0);
    const changed: SweepEvent[] = [];
    const r = await runSweep(sweep(out, { ...spec, top: 1, models: ['swa'] }), {
      resume: true,
      onEvent: (e) => changed.push(e),
    });
    assert.equal(changed.filter((e) => e.type === 'flatness').length, 4);
    assert.deepEqual(r.table.flatness, ['swa.lambdaMax', 'swa.trace']);
  });
});
