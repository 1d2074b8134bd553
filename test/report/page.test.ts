/**
 * The report as a person sees it: real runs of the simulator, their report written by the same
 * code `flatmesh report` runs, opened in Debian's chromium through playwright-core. Checks that
 * the page has no console errors, that every figure is drawn with marks, and that the numbers in
 * the figures' data equal the records.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { reportCommand } from '../../src/cli/report.js';
import { simCommand } from '../../src/cli/run.js';
import { sweepCommand } from '../../src/cli/sweep.js';
import type { RunSummary } from '../../src/report/records.js';
import { readRunDir } from '../../src/report/run-dir.js';
import type { AccuracySeries, LinkDelivery } from '../../src/report/series.js';
import type { SweepTable } from '../../src/report/sweep-table.js';

const CHROMIUM = process.env.FLATMESH_CHROMIUM ?? '/usr/bin/chromium';

interface Opened {
  errors: string[];
  figures: { name: string; marks: number }[];
  data: Record<string, unknown>;
}

async function open(browser: Browser, file: string): Promise<Opened> {
  const page: Page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  // Offline: any request that leaves the file is an error.
  await page.route(/^(?!file:)/, (route) => {
    errors.push(`network request: ${route.request().url()}`);
    return route.abort();
  });
  await page.goto(`file://${file}`, { waitUntil: 'load' });
  const figures = await page.$$eval('figure[data-figure]', (els) =>
    els.map((el) => ({
      name: el.getAttribute('data-figure') ?? '',
      // Vega draws each mark item as a child of a role-mark group (axes and legends are other roles).
      marks: el.querySelectorAll('svg g.role-mark > *').length,
    })),
  );
  const data = JSON.parse((await page.textContent('#figure-data')) ?? '{}') as Record<
    string,
    unknown
  >;
  await page.close();
  return { errors, figures, data };
}

describe('report in chromium', () => {
  let browser: Browser;
  const root = mkdtempSync(join(tmpdir(), 'flatmesh-report-'));

  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM });
  });
  after(async () => {
    await browser?.close();
  });

  it('draws every figure of a run with faults, from numbers equal to its records', async () => {
    const out = join(root, 'run');
    const exp = join(root, 'exp.json');
    writeFileSync(
      exp,
      JSON.stringify({
        nodes: 6,
        run: { rounds: 12, seed: 3 },
        topology: { graph: 'ring', budget: 0.5 },
        data: { partition: 'dirichlet:0.3' },
        model: { hidden: [16] },
        train: { localSteps: 3, lr: 0.3 },
        swa: { start: 0.5, cycle: 2 },
        eval: { every: 3, limit: 300 },
        faults: {
          loss: { p: 0.2 },
          stragglers: [{ node: 2, factor: 3 }],
          crashes: [{ node: 4, round: 5, restartAfter: 2 }],
        },
      }),
    );
    const printed = await simCommand({ config: exp, out });
    // The command ends by printing where the report is.
    assert.match(printed.trimEnd().split('\n').at(-1)!, new RegExp(`^report: ${out}/report.html`));
    const file = join(out, 'report.html');
    const page = await open(browser, file);
    assert.deepEqual(page.errors, []);
    const names = page.figures.map((f) => f.name);
    for (const want of [
      'accuracy',
      'loss',
      'consensus',
      'fates',
      'links',
      'faults',
      'round-time',
      'phases',
      'topology',
      'matchings',
      'lossiest-edges',
      'nodes',
    ])
      assert.ok(names.includes(want), `figure ${want} in ${names.join(', ')}`);
    for (const f of page.figures) assert.ok(f.marks > 0, `figure ${f.name} has no marks`);
    // Each figure's spec beside the page.
    for (const n of names) assert.ok(existsSync(join(out, 'figures', `${n}.vl.json`)), n);

    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as RunSummary;
    const acc = page.data.accuracy as AccuracySeries;
    assert.equal(acc.accuracy.at(-1)!.round, 11);
    assert.equal(acc.accuracy.at(-1)!.mean, summary.meanAccuracy);
    assert.equal(acc.swaAccuracy.at(-1)!.mean, summary.meanSwaAccuracy);
    assert.equal(acc.averageModel!.accuracy, summary.accuracyOfAverageModel);
    // SWA from round 6 with a cycle of 2: each node collects at the end of each cycle.
    assert.deepEqual(acc.swaCollections, [7, 9, 11]);
    // Every link's counts add up to the summary's totals.
    const links = page.data.links as LinkDelivery[];
    assert.equal(
      links.reduce((s, l) => s + l.sent, 0),
      summary.messages.sent,
    );
    assert.equal(
      links.reduce((s, l) => s + l.delivered, 0),
      summary.messages.delivered,
    );
    const fates = page.data.fates as { fate: string; count: number }[];
    assert.equal(
      fates.filter((f) => f.fate === 'dropped').reduce((s, f) => s + f.count, 0),
      summary.messages.dropped,
    );
    const run = readRunDir(out);
    const times = page.data['round-time'] as { node: number; round: number; ms: number }[];
    assert.equal(times.length, run.records.flat().length);
    const faults = page.data.faults as { kind: string; node: number }[];
    assert.ok(faults.some((f) => f.kind === 'crash' && f.node === 4));
    assert.ok(faults.some((f) => f.kind === 'straggler' && f.node === 2));
    assert.ok(faults.some((f) => f.kind === 'loss'));
    const nodes = page.data.nodes as {
      finals: { accuracy: number }[];
      classes: { node: number; count: number }[];
    };
    assert.deepEqual(
      nodes.finals.map((f) => f.accuracy),
      summary.perNode.map((n) => n.accuracy),
    );
    // The histogram covers the whole training set (digits: 1797 rows less the test split).
    assert.ok(nodes.classes.reduce((s, c) => s + c.count, 0) > 1000);
  });

  it('draws flatness results found under the run directory', async () => {
    // Shaped as `flatmesh flatness` writes them (src/cli/flatness.ts): flatness.json with one
    // entry per model, and one file per landscape.
    const run = join(root, 'run');
    const dir = join(run, 'flatness');
    mkdirSync(dir, { recursive: true });
    const grid = [-1, -0.5, 0, 0.5, 1];
    writeFileSync(
      join(dir, 'flatness.json'),
      JSON.stringify({
        tool: 'flatmesh flatness',
        version: 1,
        models: [
          {
            model: 'swa:0',
            round: 11,
            loss: 0.4,
            top: { values: [12.5, 7.25, 3], residuals: [0, 0, 0], converged: true },
            density: { grid: [0, 5, 10], density: [0.5, 0.25, 0.125], nodes: [], weights: [] },
          },
        ],
        landscapes: [join(dir, 'landscape-1d-swa-0.json'), join(dir, 'landscape-2d-swa-0.json')],
      }),
    );
    writeFileSync(
      join(dir, 'landscape-1d-swa-0.json'),
      JSON.stringify({ model: 'swa:0', kind: '1d', x: grid, loss: grid.map((a) => 0.4 + a * a) }),
    );
    writeFileSync(
      join(dir, 'landscape-2d-swa-0.json'),
      JSON.stringify({
        model: 'swa:0',
        kind: '2d',
        x: grid,
        y: grid,
        loss: grid.map((b) => grid.map((a) => 0.4 + a * a + 2 * b * b)),
      }),
    );
    await reportCommand({ dirs: [run], out: join(root, 'flat.html') });
    const page = await open(browser, join(root, 'flat.html'));
    assert.deepEqual(page.errors, []);
    const flat = page.figures.filter((f) => f.name.startsWith('flatness-'));
    assert.deepEqual(
      flat.map((f) => f.name),
      [
        'flatness-eigenvalues',
        'flatness-density',
        'flatness-1d',
        'flatness-2d-1',
        'flatness-contour-1',
      ],
    );
    for (const f of flat) assert.ok(f.marks > 0, `figure ${f.name} has no marks`);
    const eig = page.data['flatness-eigenvalues'] as {
      source: string;
      rank: number;
      value: number;
    }[];
    assert.deepEqual(
      eig.map((e) => [e.source, e.rank, e.value]),
      [
        ['swa:0', 1, 12.5],
        ['swa:0', 2, 7.25],
        ['swa:0', 3, 3],
      ],
    );
  });

  it('compares several runs on one page and writes PNGs', async () => {
    const a = join(root, 'a');
    const b = join(root, 'b');
    const base = {
      nodes: 4,
      rounds: 6,
      set: ['model.hidden=[8]', 'eval.every=2', 'eval.limit=200'],
    };
    await simCommand({ ...base, seed: 1, out: a });
    await simCommand({ ...base, seed: 2, out: b });
    const out = join(root, 'compare.html');
    const png = join(root, 'png');
    const printed = await reportCommand({ dirs: [a, b], out, png });
    assert.match(printed, /^report: .*compare\.html/);
    const page = await open(browser, out);
    assert.deepEqual(page.errors, []);
    for (const f of page.figures) assert.ok(f.marks > 0, `figure ${f.name} has no marks`);
    const curves = page.data['compare-accuracy'] as {
      label: string;
      round: number;
      mean: number;
    }[];
    for (const [label, dir] of [
      ['a', a],
      ['b', b],
    ] as const) {
      const s = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as RunSummary;
      const last = curves.filter((c) => c.label === label).at(-1)!;
      assert.equal(last.round, 5);
      assert.equal(last.mean, s.meanAccuracy);
    }
    const first = join(png, `${page.figures[0]!.name}.png`);
    assert.deepEqual([...readFileSync(first).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.ok(statSync(first).size > 2000);
  });

  it('draws a sweep: its table and a plot along each axis with CI bars', async () => {
    const sweepFile = join(root, 'sweep.json');
    const out = join(root, 'sweep');
    writeFileSync(
      sweepFile,
      JSON.stringify({
        base: {
          nodes: 4,
          run: { rounds: 4 },
          topology: { graph: 'ring' },
          model: { hidden: [8] },
          eval: { every: 2, limit: 200 },
        },
        grid: { 'faults.loss.p': [0, 0.3], 'gossip.mixing': ['laplacian', 'push-sum'] },
        seeds: [1, 2],
        out,
      }),
    );
    const printed = await sweepCommand({ config: sweepFile, quiet: true });
    assert.match(printed, new RegExp(`report: ${out}/report.html`));
    const page = await open(browser, join(out, 'report.html'));
    assert.deepEqual(page.errors, []);
    assert.deepEqual(
      page.figures.map((f) => f.name),
      ['axis-faults-loss-p', 'axis-gossip-mixing', 'cells-accuracy'],
    );
    for (const f of page.figures) assert.ok(f.marks > 0, `figure ${f.name} has no marks`);
    const table = JSON.parse(readFileSync(join(out, 'table.json'), 'utf8')) as SweepTable;
    const points = page.data['axis-faults-loss-p'] as {
      value: string;
      group: string;
      metric: string;
      mean: number;
      lo: number;
      hi: number;
    }[];
    for (const row of table.rows) {
      const p = points.find(
        (q) =>
          q.metric === 'node models' &&
          q.value === String(row.values['faults.loss.p']) &&
          q.group === `gossip.mixing=${row.values['gossip.mixing']}`,
      )!;
      const d = row.stats.meanAccuracy;
      assert.equal(p.mean, d.mean);
      assert.ok(Math.abs(p.hi - p.mean - d.ci95!) < 1e-12);
      assert.ok(Math.abs(p.mean - p.lo - d.ci95!) < 1e-12);
    }
  });
});
