/**
 * `flatmesh flatness` on a real (small, simulated) run directory: the models come from the nodes'
 * checkpoints, the figures and landscapes land as JSON beside the table, and bad options are
 * refused with the option named.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { flatnessCommand } from '../../src/cli/flatness.js';
import { parseExperiment } from '../../src/config/index.js';
import { simulate } from '../../src/run/simulate.js';

describe('flatmesh flatness', () => {
  it('measures node, SWA and average models of a simulated run and writes its JSON files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatness-'));
    await simulate(
      parseExperiment({
        nodes: 3,
        run: { rounds: 6, seed: 2 },
        topology: { graph: 'ring' },
        model: { hidden: [16] },
        train: { localSteps: 3, lr: 0.3, optimizer: 'sgd' },
        swa: { start: 0.5, cycle: 1 },
        eval: { every: 6 },
      }),
      { out: dir },
    );
    for (const i of [0, 1, 2])
      assert.ok(existsSync(join(dir, 'nodes', String(i), 'checkpoint.bin')));

    const text = await flatnessCommand({
      runDir: dir,
      models: 'average,node:0,swa:1',
      samples: 200,
      top: 2,
      trace: true,
      probes: 5,
      landscape: 'path:node:0,node:1',
      quiet: true,
    });
    assert.match(text, /^model\s+loss/);
    assert.match(text, /samples: test set, 200 \(seeded subset, seed 1\)/);
    const report = JSON.parse(readFileSync(join(dir, 'flatness', 'flatness.json'), 'utf8'));
    assert.equal(report.tool, 'flatmesh flatness');
    assert.deepEqual(report.samples, { source: 'test set', count: 200, seed: 1 });
    assert.deepEqual(
      report.models.map((m: { model: string }) => m.model),
      ['average', 'node:0', 'swa:1'],
    );
    for (const m of report.models) {
      assert.equal(m.round, 5);
      assert.equal(m.hessian.method, 'double-backprop');
      assert.equal(m.top.values.length, 2);
      assert.ok(m.top.values[0] >= m.top.values[1]);
      assert.equal(m.trace.probes, 5);
      assert.ok(m.sharpness.asam.value >= 0 && m.sharpness.sam.value >= 0);
    }
    // The path's endpoints are the models' own losses on the same samples.
    const path = JSON.parse(readFileSync(join(dir, 'flatness', 'path-node0-node1.json'), 'utf8'));
    assert.equal(path.kind, 'path');
    assert.equal(path.from, 'node:0');
    assert.deepEqual(path.samples, report.samples);
    const node0 = report.models.find((m: { model: string }) => m.model === 'node:0');
    assert.ok(Math.abs(path.loss[0] - node0.loss) < 1e-6, `${path.loss[0]} vs ${node0.loss}`);
    assert.equal(path.t.at(-1), 1);

    // Deterministic from the seed: the same command gives the same figures.
    const again = await flatnessCommand({
      runDir: dir,
      models: 'node:0',
      samples: 200,
      top: 2,
      json: true,
      landscape: '1d',
      quiet: true,
      out: join(dir, 'again'),
    });
    const second = JSON.parse(again);
    assert.deepEqual(second.models[0].top.values, node0.top.values);
    const grid = JSON.parse(readFileSync(join(dir, 'again', 'landscape-1d-node0.json'), 'utf8'));
    assert.equal(grid.kind, '1d');
    assert.ok(Math.abs(grid.loss[(grid.x.length - 1) / 2] - node0.loss) < 1e-5);

    // --weight-decay: the Hessian of L + wd/2·|w|² is H + wd·I: every eigenvalue moves up by wd
    // (the same Lanczos run, shifted) and the trace by wd·dim (each Rademacher zᵀz is dim).
    const wd = 0.05;
    const decayed = JSON.parse(
      await flatnessCommand({
        runDir: dir,
        models: 'node:0',
        samples: 200,
        top: 2,
        trace: true,
        probes: 5,
        weightDecay: wd,
        json: true,
        quiet: true,
        out: join(dir, 'decayed'),
      }),
    ).models[0];
    assert.equal(decayed.hessian.weightDecay, wd);
    assert.equal(decayed.loss, node0.loss, 'the loss stays the plain loss');
    node0.top.values.forEach((v: number, j: number) => {
      const got = decayed.top.values[j];
      assert.ok(Math.abs(got - (v + wd)) <= 2e-3 * v, `λ${j + 1}: ${got} vs ${v} + ${wd}`);
    });
    const dim = (decayed.trace.estimate - node0.trace.estimate) / wd;
    const params = 64 * 16 + 16 + 16 * 10 + 10; // MLP 64-16-10 on the default dataset's 64 features
    assert.ok(
      Math.abs(dim - params) < 1e-3 * params,
      `trace moved by wd x ${dim}, not x ${params}`,
    );

    await assert.rejects(
      flatnessCommand({ runDir: dir, weightDecay: -1, quiet: true }),
      /--weight-decay: must be a number >= 0 \(got -1\)/,
    );
    await assert.rejects(
      flatnessCommand({ runDir: dir, data: 'shard:7', quiet: true }),
      /--data: must be test, train or shard:I with I in 0\.\.2/,
    );
    await assert.rejects(
      flatnessCommand({ runDir: dir, models: 'node:9', quiet: true }),
      /--models: node:9: the run has nodes 0\.\.2/,
    );
    await assert.rejects(
      flatnessCommand({ runDir: dir, landscape: '3d', quiet: true }),
      /--landscape: must be 1d, 2d or path:A,B/,
    );
  });
});
