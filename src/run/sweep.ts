/**
 * Sweeps: `flatmesh sweep`. A sweep file names a base experiment, a grid of experiment fields and
 * a list of seeds; every cell of the grid (the cartesian product, first key slowest) runs once per
 * seed, in the simulator or as real processes. Each run lands in
 * `OUT/cells/<cell-key>/seed-<s>/` and is only moved there (one directory rename) once its
 * summary.json is complete, so an interrupted sweep re-run with `resume` redoes exactly the runs
 * that had not finished. `OUT/table.csv` and `OUT/table.json` give one row per cell with, for each
 * figure, the mean over seeds, the sample standard deviation and a 95% confidence interval: in
 * this field single-seed differences mislead.
 *
 *   # sweep.yaml
 *   base: { nodes: 8, data: { dataset: digits }, run: { rounds: 20 } }   # or a file path
 *   grid: { faults.loss.p: [0, 0.3], gossip.mixing: [laplacian, push-sum] }
 *   variants:                       # optional: named sets of fields, an axis called `variant`
 *     d-sgd: { swa.enabled: false }
 *     qg-swa: { train.momentum: 0.9, train.quasiGlobalMomentum: true }
 *   seeds: [1, 2, 3]
 *   mode: sim                       # or processes
 *   batched: true                   # sim: train a round's nodes together (flatmesh sim --batched)
 *   out: runs/loss-sweep
 *
 *   const plan = loadSweep('sweep.yaml');            // validates every cell before anything runs
 *   const result = await runSweep(plan, { resume: true });
 *   console.log(formatTable(result.table));   // src/report/sweep-table.ts
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseExperiment, readExperimentFile } from '../config/load.js';
import type { Experiment } from '../config/schema.js';
import { parsePartitionSpec } from '../data/partition.js';
import { ConfigError, ConfigErrors, isFlatmeshError, UsageError } from '../errors.js';
import { DEFAULT_TRACE_METHOD } from '../learn/flatness/index.js';
import { resolveGraph } from '../node/build.js';
import { packagePath } from '../paths.js';
import { readSweepFlatness } from '../report/flatness.js';
import type { RunSummary } from '../report/records.js';
import { formatValue, type SweepTable, sweepTable, tableCsv } from '../report/sweep-table.js';
import { measureRunFlatness, type RunFlatnessSpec, runFlatnessUpToDate } from './run-flatness.js';

/** A variant's name: it becomes part of its cells' directory names. */
const VARIANT_NAME = /^[A-Za-z0-9._+-]{1,40}$/;

// ---------------------------------------------------------------------------------------------
// The sweep file

const seedSchema = z
  .number({ error: 'must be an integer between 0 and 2147483647' })
  .int({ error: 'must be an integer between 0 and 2147483647' })
  .gte(0, { error: 'must be an integer between 0 and 2147483647' })
  .lte(2 ** 31 - 1, { error: 'must be an integer between 0 and 2147483647' });

function count(min: number, max: number) {
  const error = `must be an integer between ${min} and ${max}`;
  return z.number({ error }).int({ error }).gte(min, { error }).lte(max, { error });
}

export const sweepFileSchema = z
  .object({
    /** The base experiment: an experiment object, or the path of an experiment file (relative to the sweep file). Default: the schema defaults. */
    base: z
      .union([z.string().min(1), z.record(z.string(), z.unknown())], {
        error: 'must be an experiment mapping or the path of an experiment file',
      })
      .default({}),
    /** Experiment field path -> the values it takes. Default: no grid (one cell, the base). */
    grid: z
      .record(
        z.string().min(1),
        z.array(z.unknown(), { error: 'must be a list of values' }).min(1, {
          error: 'must list at least one value',
        }),
      )
      .default({}),
    /**
     * Named variants, each a mapping of experiment field paths to values: an axis of its own
     * (`variant`, the slowest), for methods that differ in several fields at once. Default: none.
     */
    variants: z
      .record(
        // Names are checked in loadSweep: a record key's own message does not reach the user.
        z.string(),
        z.record(z.string().min(1), z.unknown(), {
          error: 'must be a mapping of experiment field paths to values',
        }),
      )
      .optional(),
    /** Seeds: an axis of their own (`run.seed` of every run). Default [1, 2, 3]. */
    seeds: z
      .array(seedSchema)
      .min(1, { error: 'must list at least one seed' })
      .refine((s) => new Set(s).size === s.length, { error: 'must not repeat a seed' })
      .default([1, 2, 3]),
    /** `sim`: the in-process simulator; `processes`: one real process per node. Default sim. */
    mode: z
      .enum(['sim', 'processes'], { error: "must be one of 'sim', 'processes'" })
      .default('sim'),
    /** Output directory. Default: runs/sweep-<sweep file name>. */
    out: z.string().min(1).optional(),
    /**
     * sim mode: train all nodes of a round in one batched computation where the model allows it
     * (`flatmesh sim --batched`; same figures within float32 rounding, several times faster).
     * Not part of a cell's identity: a sweep resumed with or without it keeps its runs. Default false.
     */
    batched: z.boolean({ error: 'must be true or false' }).default(false),
    /**
     * Flatness columns: after each run, measure the Hessian of its final models from their
     * checkpoints (run/run-flatness.ts) and add, per cell, mean ± 95% CI over seeds of λmax, λmax/λtop
     * (top > 1) and the trace (`trace`) of `node` (mean over the node models), `swa` (over the SWA
     * models) and `average` (the mean of the node models). A resumed sweep measures finished runs
     * that lack these figures or were measured with other settings. Default: none.
     */
    flatness: z
      .object({
        models: z
          .array(
            z.enum(['node', 'swa', 'average'], { error: "must be 'node', 'swa' or 'average'" }),
          )
          .min(1, { error: 'must list at least one of node, swa, average' })
          .default(['node', 'swa', 'average']),
        /** Seeded subset of the sample set (0 = all of it). */
        samples: count(0, 10_000_000).default(1000),
        top: count(1, 20).default(5),
        /** Relative residual each of the top eigenvalues must reach (Lanczos). */
        tol: z
          .number({ error: 'must be a number between 1e-8 and 0.5' })
          .gte(1e-8, { error: 'must be a number between 1e-8 and 0.5' })
          .lte(0.5, { error: 'must be a number between 1e-8 and 0.5' })
          .default(1e-3),
        trace: z.boolean({ error: 'must be true or false' }).default(true),
        probes: count(4, 10_000).default(30),
        /** The trace estimator (learn/flatness/spectrum.ts). */
        traceMethod: z
          .enum(['hutchinson', 'hutch++'], { error: "must be 'hutchinson' or 'hutch++'" })
          .default(DEFAULT_TRACE_METHOD),
        /** `test`, `train` (the union of the shards) or `shard:I`. */
        data: z
          .string()
          .regex(/^(test|train|shard:\d+)$/, { error: 'must be test, train or shard:I' })
          .default('test'),
        /** Seed of the subset, the Lanczos start and the trace probes (the same for every run). */
        seed: count(0, 2 ** 31 - 1).default(1),
      })
      .strict()
      .optional(),
  })
  .strict();

export type SweepFile = z.output<typeof sweepFileSchema>;
export type SweepMode = SweepFile['mode'];

/** Grid keys that are not axes: the seed has its own list, id and out are set per run. */
const RESERVED_KEYS: Record<string, string> = {
  'run.seed': 'seeds are an axis of their own: list them under seeds',
  'run.id': 'is set per run by the sweep',
  'run.out': 'is set per run by the sweep (use the sweep out)',
};

export interface SweepCell {
  /** Position in the stable cell order. */
  index: number;
  /** Directory name: a short readable slug of the values and a hash of the cell's experiment. */
  key: string;
  /** Grid key -> this cell's value, in grid order. */
  values: Record<string, unknown>;
  /** The validated experiment of this cell (run.seed is replaced per run). */
  experiment: Experiment;
}

export interface SweepPlan {
  /** The sweep file, if the plan came from one. */
  source?: string;
  out: string;
  mode: SweepMode;
  /** sim mode: batched training (SweepFile.batched). */
  batched?: boolean;
  /** Flatness columns (SweepFile.flatness). */
  flatness?: RunFlatnessSpec;
  seeds: number[];
  gridKeys: string[];
  cells: SweepCell[];
}

/**
 * Read and validate a sweep file (YAML or JSON). Every cell is checked before anything runs. A
 * bare name that is not a file names a shipped preset: `loss-sweep` is
 * scripts/presets/loss-sweep.yaml.
 */
export function loadSweep(name: string): SweepPlan {
  const preset = [name, `${name}.yaml`].map((n) => packagePath('scripts', 'presets', n));
  const file =
    existsSync(name) || /[\\/]/.test(name) ? name : (preset.find((p) => existsSync(p)) ?? name);
  const raw = readExperimentFile(file);
  return planSweep(raw, {
    source: file,
    baseDir: dirname(resolve(file)),
    defaultOut: join('runs', `sweep-${basename(file, extname(file))}`),
  });
}

/**
 * Validate a sweep object and expand its grid. Throws ConfigErrors naming every problem: sweep
 * fields by path (`seeds[1]`), grid keys as `grid["faults.loss.p"]`, whole cells by their values.
 */
export function planSweep(
  input: unknown,
  opts: { source?: string; baseDir?: string; defaultOut?: string } = {},
): SweepPlan {
  const r = sweepFileSchema.safeParse(input ?? {}, { reportInput: true });
  if (!r.success) {
    throw new ConfigErrors(
      r.error.issues.map((i) =>
        i.code === 'unrecognized_keys'
          ? new ConfigError(
              `${sweepPath(i.path) === '(sweep)' ? '' : `${sweepPath(i.path)}.`}${i.keys.join(', ')}`,
              'unknown field of a sweep file (base, grid, variants, seeds, mode, out, batched, flatness)',
            )
          : new ConfigError(sweepPath(i.path), i.message, (i as { input?: unknown }).input),
      ),
    );
  }
  const file = r.data;
  if (file.batched && file.mode !== 'sim')
    throw new ConfigErrors([
      new ConfigError('batched', "only applies to mode 'sim'", file.batched),
    ]);
  const base = resolveBase(file.base, opts.baseDir);
  const problems: ConfigError[] = [];
  const baseProblems = problemsOf(() => parseExperiment(base));
  if (baseProblems.length > 0)
    throw new ConfigErrors(baseProblems.map((m) => new ConfigError('base', m)));

  const variants = file.variants ?? {};
  const variantNames = Object.keys(variants);
  for (const name of variantNames) {
    if (!VARIANT_NAME.test(name)) {
      problems.push(
        new ConfigError(
          `variants.${name}`,
          'variant names are 1-40 characters of A-Z a-z 0-9 . _ + -',
          name,
        ),
      );
      continue;
    }
    for (const m of problemsOf(() =>
      parseExperiment(withValues(base, Object.entries(variants[name]!))),
    ))
      problems.push(new ConfigError(`variants.${name}`, m));
  }
  const gridKeys = [...(variantNames.length > 0 ? ['variant'] : []), ...Object.keys(file.grid)];
  const axisValues = (k: string): unknown[] =>
    k === 'variant' && variantNames.length > 0 ? variantNames : file.grid[k]!;
  // A cell's fields: its variant's, then its grid values.
  const fieldsOf = (entries: readonly [string, unknown][]): [string, unknown][] =>
    entries.flatMap(([k, v]): [string, unknown][] =>
      k === 'variant' && variantNames.length > 0
        ? Object.entries(variants[v as string]!)
        : [[k, v]],
    );
  // Each key on its own first, so a typo is reported once, against the key that has it.
  for (const key of Object.keys(file.grid)) {
    const where = `grid[${JSON.stringify(key)}]`;
    const reserved =
      key === 'variant' && variantNames.length > 0
        ? 'is the axis of the variants: list them under variants'
        : RESERVED_KEYS[key];
    if (reserved) {
      problems.push(new ConfigError(where, reserved));
      continue;
    }
    const values = file.grid[key]!;
    const byMessage = new Map<string, number[]>();
    values.forEach((v, i) => {
      for (const m of problemsOf(() => parseExperiment(withValues(base, [[key, v]]))))
        byMessage.set(m, [...(byMessage.get(m) ?? []), i]);
    });
    for (const [m, idx] of byMessage)
      problems.push(
        new ConfigError(idx.length === values.length ? where : `${where}[${idx[0]}]`, m),
      );
  }
  if (problems.length > 0) throw new ConfigErrors(problems);

  const cells: SweepCell[] = [];
  const graphsChecked = new Set<string>();
  for (const combo of cartesian(gridKeys.map(axisValues))) {
    const entries = gridKeys.map((k, i): [string, unknown] => [k, combo[i]]);
    const values = Object.fromEntries(entries);
    const where = `cell {${entries.map(([k, v]) => `${k}: ${formatValue(v)}`).join(', ')}}`;
    let experiment: Experiment;
    try {
      experiment = parseExperiment(withValues(base, fieldsOf(entries)));
    } catch (e) {
      for (const m of errorProblems(e)) problems.push(new ConfigError(where, m));
      continue;
    }
    // Checks the schema cannot make: the partition spec and the graph (for every seed, since a
    // random generator draws its graph from the seed).
    const semantic = [
      () => parsePartitionSpec(experiment.data.partition, 'data.partition'),
      ...file.seeds.map((seed) => () => {
        const k = `${experiment.topology.graph}|${experiment.nodes}|${seed}`;
        if (graphsChecked.has(k)) return;
        resolveGraph(experiment.topology.graph, experiment.nodes, seed);
        graphsChecked.add(k);
      }),
    ];
    for (const check of semantic) {
      for (const m of problemsOf(check)) {
        const msg = /^(topology\.|data\.|nodes:)/.test(m)
          ? m
          : `topology.graph ${experiment.topology.graph}: ${m}`;
        if (!problems.some((p) => p.path === where && p.problem === msg))
          problems.push(new ConfigError(where, msg));
      }
    }
    cells.push({
      index: cells.length,
      key: cellKey(values, experiment, file.mode),
      values,
      experiment,
    });
  }
  if (problems.length > 0) throw new ConfigErrors(problems);

  return {
    ...(opts.source && { source: opts.source }),
    out: file.out ?? opts.defaultOut ?? join('runs', 'sweep'),
    mode: file.mode,
    ...(file.batched && { batched: true }),
    ...(file.flatness && { flatness: file.flatness }),
    seeds: file.seeds,
    gridKeys,
    cells,
  };
}

function resolveBase(base: SweepFile['base'], baseDir?: string): Record<string, unknown> {
  if (typeof base !== 'string') return structuredClone(base);
  const candidates = isAbsolute(base)
    ? [base]
    : [
        ...(baseDir ? [join(baseDir, base)] : []),
        resolve(base),
        packagePath('scripts', 'presets', base),
      ];
  const file = candidates.find((c) => existsSync(c));
  if (!file) throw new ConfigError('base', 'experiment file not found', base);
  const raw = readExperimentFile(file) ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new ConfigError('base', `${file} must hold a mapping of experiment fields`);
  return raw as Record<string, unknown>;
}

function withValues(
  base: Record<string, unknown>,
  entries: readonly [string, unknown][],
): Record<string, unknown> {
  const obj = structuredClone(base);
  for (const [path, value] of entries) setPath(obj, path, value);
  return obj;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  if (keys.some((k) => k === '' || k === '__proto__' || k === 'constructor' || k === 'prototype'))
    throw new ConfigError(path, 'is not a valid experiment field path');
  let cur: Record<string, unknown> = obj;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (next === undefined || next === null) cur[k] = {};
    else if (typeof next !== 'object' || Array.isArray(next))
      throw new ConfigError(path, `${k} is not a mapping, so this is not an experiment field`);
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]!] = structuredClone(value);
}

/** The messages of the config problems `fn` throws (none if it does not throw). */
function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
    return [];
  } catch (e) {
    return errorProblems(e);
  }
}

function errorProblems(e: unknown): string[] {
  if (e instanceof ConfigErrors) return e.problems.map((p) => p.message);
  if (isFlatmeshError(e)) return [e.message];
  throw e;
}

function sweepPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(sweep)';
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else if (s === 'grid') s += `[${JSON.stringify(String(p))}]`;
    else s += s === '' ? String(p) : `.${String(p)}`;
  }
  return s;
}

function* cartesian(axes: readonly (readonly unknown[])[]): Generator<unknown[]> {
  const idx = axes.map(() => 0);
  if (axes.some((a) => a.length === 0)) return;
  for (;;) {
    yield idx.map((i, a) => axes[a]![i]);
    // The last axis varies fastest, so the first grid key is the slowest-varying column.
    let a = axes.length - 1;
    while (a >= 0 && ++idx[a]! === axes[a]!.length) idx[a--] = 0;
    if (a < 0) return;
  }
}

/** Canonical JSON (sorted keys) for hashing. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/**
 * `loss.p-0.3_mixing-push-sum-1a2b3c4d`: the values, readable, then 8 hex digits of a hash of the
 * cell's whole experiment without seed, id and out (and of the mode), so a changed base or mode
 * never reuses old runs. Fields at their schema default are left out of the hash: a new option
 * added to the schema (off by default) does not orphan the runs of a sweep under way, which
 * `--resume --only` can then extend with variants using it.
 */
export function cellKey(
  values: Record<string, unknown>,
  experiment: Experiment,
  mode: SweepMode = 'sim',
): string {
  const parts = Object.entries(values).map(([k, v]) => {
    const segs = k.split('.');
    const last = segs[segs.length - 1]!;
    const name = last.length <= 2 && segs.length > 1 ? segs.slice(-2).join('.') : last;
    return `${name}-${slug(formatValue(v))}`;
  });
  const text = (parts.join('_') || 'base').slice(0, 60).replace(/[-_.]+$/, '');
  const { seed: _s, id: _i, out: _o, ...run } = experiment.run;
  const hash = createHash('sha256')
    .update(canonical({ ...withoutDefaults({ ...experiment, run }, schemaDefaults()), mode }))
    .digest('hex')
    .slice(0, 8);
  return `${text}-${hash}`;
}

let defaults: Experiment | undefined;
function schemaDefaults(): Experiment {
  defaults ??= parseExperiment({});
  return defaults;
}

/** `value` without the fields (at any depth) equal to those of `base`. */
function withoutDefaults(value: object, base: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const b = (base && typeof base === 'object' ? base : {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(value)) {
    if (canonical(v) === canonical(b[k])) continue;
    out[k] = v && typeof v === 'object' && !Array.isArray(v) ? withoutDefaults(v, b[k]) : v;
  }
  return out;
}

function slug(s: string): string {
  return (
    s
      .replace(/[^A-Za-z0-9.]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 24) || 'empty'
  );
}

// ---------------------------------------------------------------------------------------------
// Running

/** Runs one experiment, writing everything into `dir` (summary.json last). */
export type SweepRunner = (
  cfg: Experiment,
  dir: string,
  signal?: AbortSignal,
) => Promise<RunSummary>;

export interface SweepRun {
  cell: SweepCell;
  seed: number;
  /** Final directory: OUT/cells/<cell key>/seed-<s>. */
  dir: string;
}

export type SweepEvent =
  | { type: 'skip'; run: SweepRun }
  | { type: 'start'; run: SweepRun; index: number; total: number }
  | { type: 'done'; run: SweepRun; summary: RunSummary; seconds: number }
  | { type: 'fail'; run: SweepRun; error: unknown }
  | { type: 'flatness'; run: SweepRun; seconds: number };

export interface RunSweepOptions {
  /** Continue a sweep whose out already holds finished runs (they are kept). Default false. */
  resume?: boolean;
  /** Select runs: comma-separated `gridkey=value` or `seed=N` terms (same key: any of; different keys: all of), or a substring of the cell key. */
  only?: string;
  /** Default: the simulator or the launcher, after the plan's mode. */
  runner?: SweepRunner;
  /** Every run skipped, started, finished or failed. */
  onEvent?: (e: SweepEvent) => void;
  signal?: AbortSignal;
}

export interface SweepFailure {
  cell: string;
  seed: number;
  error: string;
}

export interface SweepResult {
  table: SweepTable;
  /** Runs done by this call. */
  ran: number;
  /** Selected runs found finished and skipped. */
  skipped: number;
  failures: SweepFailure[];
}

export function runDir(out: string, cell: SweepCell, seed: number): string {
  return join(out, 'cells', cell.key, `seed-${seed}`);
}

/**
 * A run is done when its directory holds a complete summary.json of a run that was not cut short
 * (a launch writes one with `endedEarly` when it is interrupted).
 */
export function readDoneSummary(dir: string): RunSummary | undefined {
  const file = join(dir, 'summary.json');
  if (!existsSync(file)) return undefined;
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as RunSummary;
    return s.endedEarly ? undefined : s;
  } catch {
    return undefined;
  }
}

export function defaultRunner(mode: SweepMode, opts: { batched?: boolean } = {}): SweepRunner {
  switch (mode) {
    case 'sim':
      return async (cfg, dir, signal) => {
        const { simulate } = await import('./simulate.js');
        return simulate(cfg, {
          out: dir,
          ...(signal && { signal }),
          ...(opts.batched && { batched: true }),
        });
      };
    case 'processes':
      return async (cfg, dir, signal) => {
        const { launch } = await import('./launcher.js');
        // A run cut short is continued from its checkpoints (a launch refuses a used directory).
        const resume = existsSync(join(dir, 'config.json'));
        return launch(cfg, { out: dir, progress: false, resume, ...(signal && { signal }) });
      };
    default: {
      const never: never = mode;
      throw new ConfigError('mode', "must be one of 'sim', 'processes'", never);
    }
  }
}

/** The experiment of one run: the cell's, with the seed, a stable run id and the final out. */
export function runExperiment(run: SweepRun): Experiment {
  const hash = run.cell.key.slice(-8);
  return {
    ...run.cell.experiment,
    run: {
      ...run.cell.experiment.run,
      seed: run.seed,
      id: `sweep-${hash}-s${run.seed}`,
      out: run.dir,
    },
  };
}

export async function runSweep(plan: SweepPlan, opts: RunSweepOptions = {}): Promise<SweepResult> {
  const selected = selectRuns(plan, opts.only);
  const done = selected.filter((r) => readDoneSummary(r.dir));
  if (done.length > 0 && !opts.resume) {
    throw new UsageError(
      `${plan.out} already holds ${done.length} finished run(s) of this sweep; pass --resume to continue it (finished runs are kept), or choose another out`,
    );
  }
  mkdirSync(plan.out, { recursive: true });
  writeAtomic(join(plan.out, 'sweep.json'), `${JSON.stringify(describePlan(plan), null, 2)}\n`);
  const runner = opts.runner ?? defaultRunner(plan.mode, { batched: plan.batched ?? false });
  const todo = selected.filter((r) => !readDoneSummary(r.dir));
  for (const r of selected) if (readDoneSummary(r.dir)) opts.onEvent?.({ type: 'skip', run: r });

  const failures: SweepFailure[] = [];
  let ran = 0;
  const writeTables = () => {
    const table = buildTable(plan);
    writeAtomic(join(plan.out, 'table.json'), `${JSON.stringify(table, null, 2)}\n`);
    writeAtomic(join(plan.out, 'table.csv'), tableCsv(table));
    return table;
  };
  const failed = (r: SweepRun, e: unknown) => {
    opts.onEvent?.({ type: 'fail', run: r, error: e });
    // Stop at once on an interruption and on failures every other run would repeat too.
    if (opts.signal?.aborted || !isFlatmeshError(e) || e.exitCode === 2 || e.exitCode === 3) {
      writeTables();
      throw e;
    }
    failures.push({ cell: r.cell.key, seed: r.seed, error: e.message });
  };
  // Flatness columns: measured once per finished run and settings, from its checkpoints.
  const measure = async (r: SweepRun) => {
    if (!plan.flatness || runFlatnessUpToDate(r.dir, plan.flatness)) return;
    const t0 = performance.now();
    await measureRunFlatness(r.dir, plan.flatness);
    opts.onEvent?.({ type: 'flatness', run: r, seconds: (performance.now() - t0) / 1000 });
  };
  for (const r of selected.filter((x) => !todo.includes(x))) {
    opts.signal?.throwIfAborted();
    try {
      await measure(r);
    } catch (e) {
      failed(r, e);
    }
  }
  if (plan.flatness) writeTables();
  for (const [i, r] of todo.entries()) {
    opts.signal?.throwIfAborted();
    // Work in a side directory; the finished run is moved into place in one rename, so its
    // summary.json either exists complete or not at all.
    const partial = `${r.dir}.partial`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial, { recursive: true });
    opts.onEvent?.({ type: 'start', run: r, index: i, total: todo.length });
    const t0 = performance.now();
    try {
      const summary = await runner(runExperiment(r), partial, opts.signal);
      // A simulator stopped by the signal returns the summary of the rounds it ran: not a result.
      opts.signal?.throwIfAborted();
      if (!existsSync(join(partial, 'summary.json')))
        writeAtomic(join(partial, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
      rmSync(r.dir, { recursive: true, force: true });
      renameSync(partial, r.dir);
      ran++;
      opts.onEvent?.({
        type: 'done',
        run: r,
        summary,
        seconds: (performance.now() - t0) / 1000,
      });
      await measure(r);
      writeTables();
    } catch (e) {
      failed(r, e);
    }
  }
  const table = writeTables();
  return { table, ran, skipped: selected.length - todo.length, failures };
}

function selectRuns(plan: SweepPlan, only?: string): SweepRun[] {
  const all = plan.cells.flatMap((cell) =>
    plan.seeds.map((seed) => ({ cell, seed, dir: runDir(plan.out, cell, seed) })),
  );
  if (!only?.trim()) return all;
  const byKey = new Map<string, string[]>();
  const substrings: string[] = [];
  for (const term of only
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)) {
    const eq = term.indexOf('=');
    if (eq < 0) {
      substrings.push(term);
      continue;
    }
    const key = term.slice(0, eq).trim();
    if (key !== 'seed' && !plan.gridKeys.includes(key))
      throw new ConfigError(
        '--only',
        `${key} is not a grid key (grid keys: ${plan.gridKeys.join(', ') || 'none'}; or seed)`,
        term,
      );
    byKey.set(key, [...(byKey.get(key) ?? []), term.slice(eq + 1).trim()]);
  }
  const picked = all.filter(
    (r) =>
      substrings.every((s) => r.cell.key.includes(s)) &&
      [...byKey].every(([k, vs]) =>
        vs.some((v) => sameValue(v, k === 'seed' ? r.seed : r.cell.values[k])),
      ),
  );
  if (picked.length === 0) throw new ConfigError('--only', 'selects no run of this sweep', only);
  return picked;
}

/** `0.30` selects 0.3, `ring` selects 'ring', `[16]` selects [16]. */
function sameValue(term: string, value: unknown): boolean {
  if (term === formatValue(value)) return true;
  try {
    return canonical(parseYaml(term)) === canonical(value);
  } catch {
    return false;
  }
}

function describePlan(plan: SweepPlan) {
  return {
    ...(plan.source && { source: plan.source }),
    out: plan.out,
    mode: plan.mode,
    seeds: plan.seeds,
    gridKeys: plan.gridKeys,
    cells: plan.cells.map((c) => ({ key: c.key, values: c.values })),
  };
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

// ---------------------------------------------------------------------------------------------
// The table (its statistics and formats are the report layer's)

/** The table of a sweep from the runs finished on disk (any call, any `only`). */
export function buildTable(plan: SweepPlan): SweepTable {
  return sweepTable(
    plan,
    (cell, seed) => readDoneSummary(runDir(plan.out, cell, seed)),
    plan.flatness && ((cell, seed) => readSweepFlatness(runDir(plan.out, cell, seed))),
  );
}
