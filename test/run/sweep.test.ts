import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { sweepCommand } from '../../src/cli/sweep.js';
import { loadExperiment, parseExperiment, readExperimentFile } from '../../src/config/index.js';
import { parsePartitionSpec } from '../../src/data/partition.js';
import { ConfigError, ConfigErrors, UsageError } from '../../src/errors.js';
import { BatchedMlpTrainer } from '../../src/learn/batched-mlp.js';
import { resolveGraph } from '../../src/node/build.js';
import { packagePath } from '../../src/paths.js';
import {
  ci95HalfWidth,
  sampleStd,
  describe as stats,
  tQuantile975,
} from '../../src/report/stats.js';
import type { RunSummary } from '../../src/run/summary.js';
import {
  cellKey,
  loadSweep,
  planSweep,
  runDir,
  runSweep,
  type SweepEvent,
  type SweepPlan,
  type SweepRunner,
} from '../../src/run/sweep.js';
import { configProblems } from '../helpers/config-errors.js';

const tmp = (tag: string) => mkdtempSync(join(tmpdir(), `flatmesh-sweep-${tag}-`));

/** The smallest real experiment: 4 digits nodes, 3 rounds. */
const tinyBase = {
  nodes: 4,
  run: { rounds: 3 },
  topology: { graph: 'ring' },
  data: { dataset: 'digits' },
  model: { hidden: [16] },
  train: { optimizer: 'sgd', localSteps: 2 },
  eval: { every: 1, limit: 200 },
};

/** A fake runner for the bookkeeping tests: a summary whose accuracy depends on the seed. */
function fakeRunner(calls: string[], failOn?: (cfg: RunSummary['config']) => Error | undefined) {
  const runner: SweepRunner = async (cfg, dir) => {
    calls.push(`${cfg.faults.loss.p}/${cfg.run.seed}`);
    const err = failOn?.(cfg);
    if (err) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'half-written'), 'x');
      throw err;
    }
    return {
      runId: cfg.run.id ?? 'x',
      mode: 'simulator',
      nodes: cfg.nodes,
      rounds: cfg.run.rounds,
      completed: true,
      wallSeconds: 0,
      meanAccuracy: 0.5 + cfg.run.seed / 100,
      meanSwaAccuracy: null,
      accuracyOfAverageModel: 0.6,
      finalDisagreement: 0.01,
      messages: { dropped: cfg.run.seed } as RunSummary['messages'],
      faults: {},
      restarts: 0,
      roundsLostToRestarts: 0,
      perNode: [],
      config: cfg,
    };
  };
  return runner;
}

/** Student t density integrated (Simpson) from 0 to q, plus 1/2: P(T <= q). */
function tCdf(q: number, df: number): number {
  const lgamma = (x: number): number => {
    // Lanczos (g = 7, n = 9).
    const c = [
      0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
      -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
      1.5056327351493116e-7,
    ];
    if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lgamma(1 - x);
    const z = x - 1;
    let a = c[0]!;
    const t = z + 7.5;
    for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
    return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
  };
  const k = Math.exp(lgamma((df + 1) / 2) - lgamma(df / 2)) / Math.sqrt(df * Math.PI);
  const f = (t: number) => k * (1 + (t * t) / df) ** (-(df + 1) / 2);
  const n = 4000;
  const h = q / n;
  let s = f(0) + f(q);
  for (let i = 1; i < n; i++) s += (i % 2 === 1 ? 4 : 2) * f(i * h);
  return 0.5 + (s * h) / 3;
}

describe('sweep statistics', () => {
  it('mean, sample std and 95% CI match hand-computed values', () => {
    const d = stats([0.6, 0.7, 0.8]);
    assert.equal(d.n, 3);
    assert.ok(Math.abs(d.mean! - 0.7) < 1e-12);
    assert.ok(Math.abs(d.std! - 0.1) < 1e-12);
    // t_{0.975,2} = 4.3027; 4.3027 * 0.1 / sqrt(3) = 0.248416
    assert.ok(Math.abs(d.ci95! - 0.248416) < 1e-5, String(d.ci95));
    assert.equal(d.min, 0.6);
    assert.equal(d.max, 0.8);
    // Two values 1 and 3: s = sqrt(2), CI = 12.7062 * sqrt(2) / sqrt(2) = 12.7062.
    assert.ok(Math.abs(ci95HalfWidth([1, 3])! - 12.7062) < 1e-9);
    assert.ok(Math.abs(sampleStd([2, 4, 4, 4, 5, 5, 7, 9])! - Math.sqrt(32 / 7)) < 1e-12);
  });

  it('skips nulls and has no spread for one value', () => {
    const d = stats([null, 0.5, undefined, Number.NaN]);
    assert.deepEqual(d, { n: 1, mean: 0.5, std: null, ci95: null, min: 0.5, max: 0.5 });
    assert.deepEqual(stats([]), { n: 0, mean: null, std: null, ci95: null, min: null, max: null });
  });

  it('the t quantiles are the 0.975 points of Student t (checked by integrating the density)', () => {
    for (const df of [...Array.from({ length: 30 }, (_, i) => i + 1), 35, 50, 90, 200, 1000]) {
      const q = tQuantile975(df);
      const p = tCdf(q, df);
      assert.ok(Math.abs(p - 0.975) < 5e-5, `df ${df}: P(T <= ${q}) = ${p}`);
    }
    assert.equal(tQuantile975(1e9) > 1.959 && tQuantile975(1e9) < 1.961, true);
    assert.throws(() => tQuantile975(0), RangeError);
  });
});

describe('sweep presets', () => {
  const dir = packagePath('scripts', 'presets');
  const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f));

  it('has the four presets', () => {
    for (const f of [
      'default.yaml',
      'fashion-mnist-ring16.yaml',
      'loss-sweep.yaml',
      'byzantine.yaml',
      'quality-study.yaml',
    ])
      assert.ok(files.includes(f), f);
  });

  for (const f of files) {
    it(`${f} is valid`, () => {
      const file = join(dir, f);
      const raw = readExperimentFile(file) as Record<string, unknown>;
      if ('grid' in raw || 'base' in raw) {
        const plan = loadSweep(file);
        assert.ok(plan.cells.length >= 1 && plan.seeds.length >= 1);
      } else {
        const cfg = loadExperiment({ file });
        parsePartitionSpec(cfg.data.partition);
        resolveGraph(cfg.topology.graph, cfg.nodes, cfg.run.seed);
      }
    });
  }

  it('default.yaml equals the schema defaults', () => {
    assert.deepEqual(loadExperiment({ file: join(dir, 'default.yaml') }), parseExperiment({}));
  });

  it('fashion-mnist-ring16.yaml is the reference protocol', () => {
    const c = loadExperiment({ file: join(dir, 'fashion-mnist-ring16.yaml') });
    assert.equal(c.nodes, 16);
    assert.equal(resolveGraph(c.topology.graph, 16, 1).edges.length, 16);
    assert.equal(c.topology.sampler, 'matcha');
    assert.equal(c.topology.budget, 0.5);
    assert.equal(c.data.dataset, 'fashion-mnist');
    assert.equal(c.data.partition, 'dirichlet:0.1');
    assert.deepEqual(c.model.hidden, [200, 200]);
    assert.equal(c.run.rounds, 150);
    assert.equal(c.train.localSteps, 10);
    assert.equal(c.train.batchSize, 32);
    assert.equal(c.train.lr, 0.05);
    assert.equal(c.train.weightDecay, 4e-4);
    assert.equal(c.train.optimizer, 'sgd');
    assert.deepEqual(c.swa, {
      enabled: true,
      start: 0.75,
      cycle: 5,
      lr2: 1e-3,
      gossip: false,
      settle: 0,
    });
  });

  it('loss-sweep.yaml is 2 x 2 cells x 3 seeds', () => {
    const plan = loadSweep(join(dir, 'loss-sweep.yaml'));
    assert.deepEqual(
      loadSweep('loss-sweep').cells.map((c) => c.key),
      plan.cells.map((c) => c.key),
      'a bare name finds the shipped preset',
    );
    assert.equal(plan.cells.length, 4);
    assert.deepEqual(plan.seeds, [1, 2, 3]);
    assert.deepEqual(plan.gridKeys, ['faults.loss.p', 'gossip.mixing']);
  });
});

describe('sweep validation', () => {
  it('a typo in a grid key fails before any run, naming the key', async () => {
    const dir = tmp('typo');
    const file = join(dir, 'sweep.json');
    writeFileSync(
      file,
      JSON.stringify({
        base: tinyBase,
        grid: { 'gossip.mixing': ['laplacian', 'push-sum'], 'faults.los.p': [0, 0.3] },
        out: join(dir, 'out'),
      }),
    );
    const calls: string[] = [];
    await assert.rejects(
      sweepCommand({ config: file, quiet: true, runner: fakeRunner(calls) }),
      (e) => {
        assert.ok(e instanceof ConfigErrors);
        assert.equal(e.problems.length, 1, e.message);
        assert.match(e.message, /^grid\["faults\.los\.p"\]: faults\.los: unknown field/);
        return true;
      },
    );
    assert.equal(calls.length, 0);
    assert.ok(!existsSync(join(dir, 'out')), 'nothing written');
  });

  it('names the bad value of a key, the seed axis, and cells that fail together', () => {
    const msgs = configProblems(() =>
      planSweep({
        base: tinyBase,
        grid: { 'faults.loss.p': [0, 1.5], 'run.seed': [1, 2] },
      }),
    );
    assert.ok(
      msgs.includes('grid["faults.loss.p"][1]: faults.loss.p: must be between 0 and 1 (got 1.5)'),
      msgs.join('\n'),
    );
    assert.ok(msgs.some((m) => m.startsWith('grid["run.seed"]: seeds are an axis')));
    assert.deepEqual(
      configProblems(() => planSweep({ base: tinyBase, grid: { 'nodes.count': [4] } })),
      [
        'grid["nodes.count"]: nodes.count: nodes is not a mapping, so this is not an experiment field',
      ],
    );
    const graph = configProblems(() =>
      planSweep({ base: tinyBase, grid: { 'topology.graph': ['ring', 'rnig'] } }),
    );
    assert.equal(graph.length, 1, graph.join('\n'));
    assert.match(graph[0]!, /^cell \{topology\.graph: rnig\}: .*must be one of/);
    const sweep = configProblems(() =>
      planSweep({ base: tinyBase, seeds: [1, 1], mode: 'cloud', x: 1 }),
    );
    assert.ok(
      sweep.includes("mode: must be one of 'sim', 'processes' (got \"cloud\")"),
      sweep.join('\n'),
    );
    assert.ok(
      sweep.some((m) => m.startsWith('seeds: must not repeat')),
      sweep.join('\n'),
    );
    assert.ok(
      sweep.some((m) => m.startsWith('x: unknown field')),
      sweep.join('\n'),
    );
  });

  it('orders cells as the cartesian product, first key slowest, with distinct keys', () => {
    const plan = planSweep({
      base: tinyBase,
      grid: { 'faults.loss.p': [0, 0.3], 'train.optimizer': ['sgd', 'sam', 'asam'] },
    });
    assert.deepEqual(
      plan.cells.map((c) => `${c.values['faults.loss.p']}/${c.values['train.optimizer']}`),
      ['0/sgd', '0/sam', '0/asam', '0.3/sgd', '0.3/sam', '0.3/asam'],
    );
    assert.equal(new Set(plan.cells.map((c) => c.key)).size, 6);
    assert.match(plan.cells[3]!.key, /^loss\.p-0\.3_optimizer-sgd-[0-9a-f]{8}$/);
    assert.equal(plan.cells[3]!.experiment.faults.loss.p, 0.3);
  });

  it('variants are an axis of named field sets, slowest, validated by name', () => {
    const plan = planSweep({
      base: tinyBase,
      variants: {
        plain: { 'swa.enabled': false },
        qg: { 'train.momentum': 0.9, 'train.quasiGlobalMomentum': true },
      },
      grid: { 'faults.loss.p': [0, 0.3] },
    });
    assert.deepEqual(plan.gridKeys, ['variant', 'faults.loss.p']);
    assert.deepEqual(
      plan.cells.map((c) => `${c.values['variant']}/${c.values['faults.loss.p']}`),
      ['plain/0', 'plain/0.3', 'qg/0', 'qg/0.3'],
    );
    assert.equal(plan.cells[0]!.experiment.swa.enabled, false);
    assert.equal(plan.cells[2]!.experiment.train.quasiGlobalMomentum, true);
    assert.equal(plan.cells[2]!.experiment.swa.enabled, true);
    assert.match(plan.cells[2]!.key, /^variant-qg_loss\.p-0-[0-9a-f]{8}$/);
    assert.deepEqual(
      configProblems(() =>
        planSweep({ base: tinyBase, variants: { bad: { 'train.quasiGlobalMomentum': true } } }),
      ),
      [
        'variants.bad: train.quasiGlobalMomentum: needs train.momentum > 0 (it is the momentum of the quasi-global buffer) (got true)',
      ],
    );
    assert.deepEqual(
      configProblems(() => planSweep({ base: tinyBase, variants: { ['x'.repeat(41)]: {} } })),
      [
        `variants.${'x'.repeat(41)}: variant names are 1-40 characters of A-Z a-z 0-9 . _ + - (got "${'x'.repeat(41)}")`,
      ],
    );
    assert.throws(
      () => planSweep({ base: tinyBase, variants: { a: {} }, grid: { variant: [1] } }),
      /grid\["variant"\]: is the axis of the variants/,
    );
  });
});

describe('sweep batching and cell identity', () => {
  it('batched: true runs the simulator batched and keeps the cells of the unbatched sweep', async () => {
    const sweep = { base: tinyBase, grid: { 'faults.loss.p': [0] }, seeds: [1] };
    const plain = planSweep(sweep);
    const out = tmp('batched');
    const batched = planSweep({ ...sweep, batched: true, out });
    assert.equal(batched.batched, true);
    // Not part of a cell's identity: a sweep resumed with batching finds the runs made without.
    assert.deepEqual(
      batched.cells.map((c) => c.key),
      plain.cells.map((c) => c.key),
    );
    let batches = 0;
    const original = BatchedMlpTrainer.prototype.train;
    BatchedMlpTrainer.prototype.train = function (members, steps, lrs) {
      batches++;
      return original.call(this, members, steps, lrs);
    };
    try {
      await runSweep(batched);
    } finally {
      BatchedMlpTrainer.prototype.train = original;
    }
    assert.ok(batches > 0, 'the batched engine trained the run');
    assert.ok(readFileSync(join(runDir(out, batched.cells[0]!, 1), 'summary.json'), 'utf8'));
    assert.deepEqual(
      configProblems(() => planSweep({ ...sweep, mode: 'processes', batched: true })),
      ["batched: only applies to mode 'sim' (got true)"],
    );
  });

  it("a field at its schema default is not part of a cell's key (new options do not orphan runs)", () => {
    const [cell] = planSweep({ base: tinyBase }).cells;
    const exp = cell!.experiment;
    // As if `backend` were an option added later, at its default: same key as with it present.
    const { backend: _b, ...without } = exp;
    assert.equal(exp.backend, 'auto');
    assert.equal(cellKey(cell!.values, without as typeof exp), cell!.key);
    assert.notEqual(cellKey(cell!.values, { ...exp, backend: 'cpu' }), cell!.key);
  });
});

describe('a sweep of real simulator runs', () => {
  const out = tmp('sim');
  let plan: SweepPlan;
  const events: SweepEvent[] = [];

  before(async () => {
    plan = planSweep({
      base: tinyBase,
      grid: { 'faults.loss.p': [0, 0.3], 'gossip.mixing': ['laplacian'] },
      seeds: [1, 2],
      out,
    });
    await runSweep(plan, { onEvent: (e) => events.push(e) });
  });

  it('runs every cell x seed once and writes one summary per run', () => {
    assert.equal(events.filter((e) => e.type === 'done').length, 4);
    for (const cell of plan.cells)
      for (const seed of [1, 2]) {
        const s = JSON.parse(readFileSync(join(runDir(out, cell, seed), 'summary.json'), 'utf8'));
        assert.equal(s.config.run.seed, seed);
        assert.equal(s.config.faults.loss.p, cell.values['faults.loss.p']);
        assert.ok(existsSync(join(runDir(out, cell, seed), 'nodes', '0', 'metrics.jsonl')));
      }
    assert.deepEqual(readdirSync(join(out, 'cells', plan.cells[0]!.key)).sort(), [
      'seed-1',
      'seed-2',
    ]);
  });

  it('writes the table with mean, std, CI, min and max over seeds', () => {
    const csv = readFileSync(join(out, 'table.csv'), 'utf8').trim().split('\n');
    assert.equal(csv.length, 3);
    const header = csv[0]!.split(',');
    for (const col of [
      'cell',
      'faults.loss.p',
      'gossip.mixing',
      'runs',
      'meanAccuracy.mean',
      'meanAccuracy.std',
      'meanAccuracy.ci95',
      'meanAccuracy.min',
      'meanAccuracy.max',
      'meanSwaAccuracy.ci95',
      'accuracyOfAverageModel.ci95',
      'finalDisagreement.ci95',
      'messages.dropped.mean',
    ])
      assert.ok(header.includes(col), col);
    const table = JSON.parse(readFileSync(join(out, 'table.json'), 'utf8'));
    assert.equal(table.rows.length, 2);
    for (const [i, row] of table.rows.entries()) {
      assert.equal(row.runs, 2);
      const accs = [1, 2].map(
        (seed) =>
          JSON.parse(readFileSync(join(runDir(out, plan.cells[i]!, seed), 'summary.json'), 'utf8'))
            .meanAccuracy,
      );
      assert.deepEqual(row.stats.meanAccuracy, stats(accs));
      assert.deepEqual(
        row.perSeed.map((p: { seed: number; meanAccuracy: number }) => [p.seed, p.meanAccuracy]),
        [
          [1, accs[0]],
          [2, accs[1]],
        ],
      );
      const line = csv[i + 1]!.split(',');
      assert.equal(Number(line[header.indexOf('meanAccuracy.ci95')]), stats(accs).ci95);
    }
    assert.equal(table.rows[0].stats['messages.dropped'].mean, 0);
    assert.ok(table.rows[1].stats['messages.dropped'].mean > 0, 'loss 0.3 drops messages');
  });

  it('refuses to run over finished runs without resume', async () => {
    await assert.rejects(
      runSweep(plan),
      (e: unknown) => e instanceof UsageError && /--resume/.test(e.message),
    );
  });

  it('resume redoes only the run whose summary is missing', async () => {
    const gone = runDir(out, plan.cells[1]!, 2);
    const kept = [
      runDir(out, plan.cells[0]!, 1),
      runDir(out, plan.cells[0]!, 2),
      runDir(out, plan.cells[1]!, 1),
    ];
    const mtimes = kept.map((d) => statSync(join(d, 'summary.json')).mtimeMs);
    const before = readFileSync(join(gone, 'summary.json'), 'utf8');
    rmSync(join(gone, 'summary.json'));
    const again: SweepEvent[] = [];
    const r = await runSweep(plan, { resume: true, onEvent: (e) => again.push(e) });
    const done = again.filter((e) => e.type === 'done');
    assert.equal(done.length, 1);
    assert.equal(done[0]!.run.dir, gone);
    assert.equal(r.ran, 1);
    assert.equal(r.skipped, 3);
    assert.deepEqual(
      kept.map((d) => statSync(join(d, 'summary.json')).mtimeMs),
      mtimes,
    );
    // The simulator is deterministic: the redone run has the same figures.
    const after = JSON.parse(readFileSync(join(gone, 'summary.json'), 'utf8'));
    const old = JSON.parse(before);
    assert.equal(after.meanAccuracy, old.meanAccuracy);
    assert.equal(after.finalDisagreement, old.finalDisagreement);
    // No metrics appended twice: the redo starts from an empty directory.
    const lines = readFileSync(join(gone, 'nodes', '0', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n');
    assert.equal(lines.length, 3);
  });
});

describe('sweep bookkeeping', () => {
  it('an interrupted sweep continues where it stopped', async () => {
    const out = tmp('interrupt');
    const plan = planSweep({
      base: tinyBase,
      grid: { 'faults.loss.p': [0, 0.3] },
      seeds: [1, 2],
      out,
    });
    const calls: string[] = [];
    const ac = new AbortController();
    await assert.rejects(
      runSweep(plan, {
        signal: ac.signal,
        runner: fakeRunner(calls, (cfg) => {
          if (cfg.faults.loss.p === 0.3) {
            ac.abort();
            return new Error('interrupted');
          }
          return undefined;
        }),
      }),
    );
    assert.deepEqual(calls, ['0/1', '0/2', '0.3/1']);
    assert.ok(
      existsSync(`${runDir(out, plan.cells[1]!, 1)}.partial`),
      'the half-done run is left aside',
    );
    assert.ok(!existsSync(runDir(out, plan.cells[1]!, 1)));
    assert.equal(JSON.parse(readFileSync(join(out, 'table.json'), 'utf8')).rows[0].runs, 2);
    calls.length = 0;
    await runSweep(plan, { resume: true, runner: fakeRunner(calls) });
    assert.deepEqual(calls, ['0.3/1', '0.3/2']);
    assert.ok(!existsSync(`${runDir(out, plan.cells[1]!, 1)}.partial`));
    assert.ok(existsSync(join(runDir(out, plan.cells[1]!, 1), 'summary.json')));
  });

  it('a run that returns after the interruption is not recorded as finished', async () => {
    const out = tmp('interrupt-returned');
    const plan = planSweep({ base: tinyBase, seeds: [1], out });
    const ac = new AbortController();
    const calls: string[] = [];
    const inner = fakeRunner(calls);
    // As the simulator does on SIGTERM: it stops its nodes and returns what it has.
    const runner: SweepRunner = async (cfg, dir, signal) => {
      ac.abort();
      return inner(cfg, dir, signal);
    };
    await assert.rejects(runSweep(plan, { signal: ac.signal, runner }));
    assert.ok(!existsSync(runDir(out, plan.cells[0]!, 1)), 'no finished run recorded');
  });

  it('only selects runs by grid value and seed', async () => {
    const out = tmp('only');
    const plan = planSweep({
      base: tinyBase,
      grid: { 'faults.loss.p': [0, 0.3] },
      seeds: [1, 2, 3],
      out,
    });
    const calls: string[] = [];
    await runSweep(plan, { only: 'faults.loss.p=0.30,seed=2,seed=3', runner: fakeRunner(calls) });
    assert.deepEqual(calls, ['0.3/2', '0.3/3']);
    const t = JSON.parse(readFileSync(join(out, 'table.json'), 'utf8'));
    assert.deepEqual(
      t.rows.map((r: { runs: number }) => r.runs),
      [0, 2],
    );
    await assert.rejects(
      runSweep(plan, { only: 'train.lr=1', runner: fakeRunner(calls) }),
      (e) => e instanceof ConfigError && e.path === '--only' && /not a grid key/.test(e.message),
    );
  });

  it('sweepCommand prints the table with intervals', async () => {
    const dir = tmp('cli');
    const file = join(dir, 'sweep.yaml');
    writeFileSync(
      file,
      [
        'base: { nodes: 4, topology: { graph: ring } }',
        'grid:',
        '  faults.loss.p: [0, 0.3]',
        'seeds: [1, 2, 3]',
        `out: ${join(dir, 'out')}`,
      ].join('\n'),
    );
    const calls: string[] = [];
    const text = await sweepCommand({ config: file, quiet: true, runner: fakeRunner(calls) });
    assert.equal(calls.length, 6);
    // Seeds 1..3 give accuracies 0.51, 0.52, 0.53: mean 52.0%, CI 4.3027 * 0.01 / sqrt(3) = 2.5%.
    assert.match(text, /52\.0 ± 2\.5/);
    assert.match(text, /faults\.loss\.p\s+runs\s+accuracy %/);
    assert.match(text, /3\/3/);
    const json = JSON.parse(
      await sweepCommand({
        config: file,
        quiet: true,
        resume: true,
        json: true,
        runner: fakeRunner(calls),
      }),
    );
    assert.equal(calls.length, 6, 'nothing rerun');
    assert.equal(json.rows.length, 2);
  });
});
