/**
 * `flatmesh report RUN_DIR|SWEEP_DIR [more dirs] [--out report.html] [--png DIR]`: the page of
 * plots of a run, of a sweep, or of several runs compared. `launch`, `sim` and `sweep` call
 * writeRunReport / writeSweepReport when they finish. What the records do not hold is derived
 * from the run's experiment, exactly as the run derived it: the sampling plan (matchings, MATCHA
 * probabilities) and each node's class histogram (the data set partitioned with the run's seed).
 *
 *   await reportCommand({ dirs: ['runs/run-s1'] });                  // runs/run-s1/report.html
 *   await reportCommand({ dirs: ['runs/a', 'runs/b'], out: 'ab.html', png: 'figs' });
 */
import { basename, dirname, join } from 'node:path';
import type { Experiment } from '../config/schema.js';
import {
  classHistogram,
  loadDataset,
  parsePartitionSpec,
  partitionDataset,
} from '../data/index.js';
import { UsageError } from '../errors.js';
import { datasetSpec, samplingPlan } from '../node/build.js';
import { readFlatness, readSweepFlatness } from '../report/flatness.js';
import { type WrittenReport, writeReport } from '../report/page.js';
import type { RunSummary } from '../report/records.js';
import { isRunDir, isSweepDir, type RunDir, readRunDir, readSweepDir } from '../report/run-dir.js';
import { compareReport, type RunExtras, runReport, sweepReport } from '../report/run-report.js';
import { sweepTable } from '../report/sweep-table.js';

export interface ReportOptions {
  /** Run or sweep directories: one run, one sweep, or several runs to compare. */
  dirs: string[];
  /** The page. Default: report.html in the (first) directory. */
  out?: string;
  /** Also write one PNG per figure into this directory. */
  png?: string;
}

/** The class histogram of every node's shard, as the run partitioned its data. */
async function classHistograms(cfg: Experiment): Promise<number[][]> {
  const data = await loadDataset(datasetSpec(cfg), {
    seed: cfg.run.seed,
    ...(cfg.data.dir ? { dataDir: cfg.data.dir } : {}),
  });
  const { train } = data;
  const parts = partitionDataset(
    train.y,
    train.classes,
    cfg.nodes,
    parsePartitionSpec(cfg.data.partition),
    cfg.run.seed,
    train.groups,
  );
  return parts.map((idx) =>
    classHistogram(
      Array.from(idx, (i) => train.y[i]!),
      train.classes,
    ),
  );
}

/** What the report draws beyond the records; a part that cannot be derived is left out. */
export async function runExtras(run: RunDir): Promise<RunExtras> {
  const extras: RunExtras = {};
  try {
    extras.plan = samplingPlan(run.config);
  } catch {
    // A graph file that moved since the run: the topology figures are left out.
  }
  try {
    extras.classHistogram = await classHistograms(run.config);
  } catch {
    // The data set is not on this machine: the histogram is left out.
  }
  const flatness = readFlatness(join(run.dir, 'flatness'));
  if (flatness) extras.flatness = flatness;
  return extras;
}

export async function writeRunReport(
  dir: string,
  opts: { out?: string; png?: string } = {},
): Promise<WrittenReport> {
  const run = readRunDir(dir);
  return writeReport(
    runReport(run, await runExtras(run)),
    opts.out ?? join(dir, 'report.html'),
    opts,
  );
}

export async function writeSweepReport(
  dir: string,
  opts: { out?: string; png?: string } = {},
): Promise<WrittenReport> {
  const sweep = readSweepDir(dir);
  const runs = new Map<string, RunDir>();
  for (const r of sweep.runs) if (r.done) runs.set(`${r.cell}/${r.seed}`, readRunDir(r.dir));
  const table = sweepTable(
    { ...sweep, out: dir },
    (cell, seed): RunSummary | undefined => runs.get(`${cell.key}/${seed}`)?.summary,
    (cell, seed) => {
      const run = runs.get(`${cell.key}/${seed}`);
      return run && readSweepFlatness(run.dir);
    },
  );
  const cellRuns = new Map(
    sweep.cells.map((c) => [c.key, sweep.seeds.flatMap((s) => runs.get(`${c.key}/${s}`) ?? [])]),
  );
  return writeReport(
    sweepReport(sweep, table, cellRuns),
    opts.out ?? join(dir, 'report.html'),
    opts,
  );
}

export async function reportCommand(opts: ReportOptions): Promise<string> {
  const [first, ...rest] = opts.dirs;
  if (first === undefined) throw new UsageError('report: name a run or sweep directory');
  let written: WrittenReport;
  if (rest.length === 0 && isSweepDir(first)) written = await writeSweepReport(first, opts);
  else if (rest.length === 0) written = await writeRunReport(first, opts);
  else {
    for (const d of opts.dirs)
      if (isSweepDir(d) || !isRunDir(d))
        throw new UsageError(
          `report: ${d} is not a run directory (several directories are compared as runs)`,
        );
    const runs = [];
    for (const d of opts.dirs) {
      const run = readRunDir(d);
      runs.push({ label: basename(d) || d, run, extras: await runExtras(run) });
    }
    written = await writeReport(
      compareReport(runs),
      opts.out ?? join(dirname(first), 'compare-report.html'),
      opts,
    );
  }
  return `${reportLines(written)}\n`;
}

export function reportLines(w: WrittenReport): string {
  return [
    `report: ${w.file} (${(w.bytes / 1024).toFixed(0)} KiB, ${w.specs.length} figures; specs in ${join(dirname(w.file), 'figures')})`,
    ...(w.pngs.length > 0 ? [`png: ${w.pngs.length} files in ${dirname(w.pngs[0]!)}`] : []),
  ].join('\n');
}

/**
 * The report a finished launch, sim or sweep writes into its directory: the lines to print. A
 * report that cannot be drawn never fails the run that produced the records; it says why.
 */
export async function reportAfterRun(dir: string, kind: 'run' | 'sweep' = 'run'): Promise<string> {
  try {
    const w = kind === 'sweep' ? await writeSweepReport(dir) : await writeRunReport(dir);
    return reportLines(w);
  } catch (e) {
    return `report: not written (${e instanceof Error ? e.message : String(e)}); try flatmesh report ${dir}`;
  }
}
