/**
 * `flatmesh flatness RUN_DIR [--models node:0,swa:0,average,...] [--data test|train|shard:I]
 * [--samples N] [--top K] [--trace] [--probes P] [--trace-method M] [--density] [--landscape 1d|2d|path:A,B] [--json]
 * [--out DIR] [--seed S] [--weight-decay WD]`: how flat the run's models are (src/learn/flatness), read from the run
 * directory's checkpoints. A table on stdout; JSON files in DIR (default RUN_DIR/flatness):
 *
 * - `flatness.json`: { tool, version, run, runId, backend, seed, samples, models: [{ model, round,
 *   loss, gradNorm, hessian, top?, trace?, density?, sharpness, products, seconds }], landscapes }
 * - `landscape-1d-<model>.json`: { kind: '1d', model, direction: { seed, normalization }, samples,
 *   x: [a], loss: [L(w + a·d)] }
 * - `landscape-2d-<model>.json`: { kind: '2d', ..., x, y, loss: [row per y][column per x] }
 * - `path-<A>-<B>.json`: { kind: 'path', from, to, samples, t: [0..1], loss, barrier }
 *
 * Models: `node:I` (node I's current weights), `swa:I` (its SWA average), `average` (the mean of
 * all node models), `nodes` / `swas` (every node's). The sample set is the test set, the union of
 * the training shards, or one node's shard, cut to a seeded subset of --samples (default 1000).
 * The Hessian is the mean cross-entropy's; `--weight-decay WD` makes it that of the loss plus
 * WD/2·|w|² (every eigenvalue + WD, the trace + WD·dim), as in training with that decay. The loss,
 * sharpness and landscapes stay the plain loss.
 *
 *   const text = await flatnessCommand({ runDir: 'runs/sim-s1', models: 'average,swa:0', trace: true });
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../compute/backend.js';
import { CheckpointError, UsageError } from '../errors.js';
import { paramLayout } from '../learn/flat.js';
import {
  type FlatnessFigures,
  HessianOperator,
  landscape1d,
  landscape2d,
  linearPath,
  measureFlatness,
  randomDirection,
  type SampleSet,
  sampleInfo,
} from '../learn/flatness/index.js';
import { createModel, type Model } from '../learn/model.js';
import { modelSpec, prepareRun } from '../node/build.js';
import { readRunDir } from '../report/run-dir.js';
import { expandModels, type ModelRef, pickSamples, RunModels } from '../run/run-flatness.js';
import { progressReporter } from './data.js';

export interface FlatnessCommandOptions {
  runDir: string;
  /** Comma-separated model references (see the module comment). Default `average,node:0,swa:0`. */
  models?: string;
  /** `test` (default), `train` (the union of the shards) or `shard:I`. */
  data?: string;
  /** Seeded subset size; 0 = the whole set. Default 1000. */
  samples?: number;
  /** Top eigenvalues (0: none). Default 5. */
  top?: number;
  trace?: boolean;
  /** Products of the trace estimate. Default 100. */
  probes?: number;
  /** `hutchinson` or `hutch++`. Default: measure.ts's DEFAULT_TRACE_METHOD. */
  traceMethod?: string;
  density?: boolean;
  /** `1d`, `2d` (around the first model) or `path:A,B`. */
  landscape?: string;
  json?: boolean;
  /** Output directory. Default RUN_DIR/flatness. */
  out?: string;
  /** Seed of the subset, probes and directions. Default 1. */
  seed?: number;
  /** Adds WD·I to the Hessian (the curvature of L + WD/2·|w|²). Default 0: none. */
  weightDecay?: number;
  /** Where the progress bar goes (default process.stderr); none with `quiet`. */
  progress?: NodeJS.WritableStream & { isTTY?: boolean };
  quiet?: boolean;
}

type Candidate = ModelRef;

export async function flatnessCommand(opts: FlatnessCommandOptions): Promise<string> {
  const traceMethod = opts.traceMethod;
  if (traceMethod !== undefined && traceMethod !== 'hutchinson' && traceMethod !== 'hutch++') {
    throw new UsageError(
      `--trace-method: must be hutchinson or hutch++ (got ${JSON.stringify(traceMethod)})`,
    );
  }
  const wd = opts.weightDecay ?? 0;
  if (!(Number.isFinite(wd) && wd >= 0)) {
    throw new UsageError(`--weight-decay: must be a number >= 0 (got ${JSON.stringify(wd)})`);
  }
  const run = readRunDir(opts.runDir, { records: false });
  const cfg = run.config;
  const seed = opts.seed ?? 1;
  const backend = await initBackend({
    ...(cfg.backend !== 'auto' && { prefer: cfg.backend }),
    quiet: true,
  });
  const runModels = new RunModels(run);
  const measuredNames = expandModels(opts.models ?? 'average,node:0,swa:0', run.nodes.length);
  const landscape = parseLandscape(opts.landscape);
  // Path endpoints not in --models are loaded for the path only, not measured.
  const names = [...measuredNames];
  for (const n of landscape?.kind === 'path' ? [landscape.a, landscape.b] : []) {
    if (!names.includes(n)) names.push(n);
  }
  const candidates = names.map((n) => runModels.resolve(n));

  const ctx = await prepareRun(cfg, run.summary?.runId ?? 'flatness');
  const set = pickSamples(opts.data ?? 'test', ctx.data.train, ctx.test, ctx.partition, {
    limit: opts.samples ?? 1000,
    seed,
  });
  const model = createModel(modelSpec(cfg), ctx.data.train.shape, ctx.data.train.classes, seed);
  const out = opts.out ?? join(opts.runDir, 'flatness');
  const bar = opts.quiet ? undefined : progressReporter(opts.progress ?? process.stderr);
  try {
    for (const c of candidates) {
      if (c.weights.length !== model.size) {
        throw new CheckpointError(
          `${c.name} has ${c.weights.length} weights but the run's model has ${model.size}`,
        );
      }
    }
    const measured: { model: string; round: number | undefined; figures: FlatnessFigures }[] = [];
    for (const c of candidates) {
      if (!measuredNames.includes(c.name)) continue;
      const figures = measureFlatness(model, c.weights, set, {
        top: opts.top ?? 5,
        trace: opts.trace ?? false,
        ...(opts.probes !== undefined && { probes: opts.probes }),
        ...(traceMethod && { traceMethod }),
        ...(wd > 0 && { weightDecay: wd }),
        density: opts.density ?? false,
        seed,
        ...(bar && {
          progress: (task: string, done: number, total: number) =>
            bar({ phase: `${c.name} ${task}`, done, total, unit: 'items' }),
        }),
      });
      measured.push({ model: c.name, round: c.round, figures });
    }
    bar?.end();
    mkdirSync(out, { recursive: true });
    const landscapes = landscape
      ? writeLandscape(landscape, candidates, model, set, seed, out, bar)
      : [];
    bar?.end();
    const report = {
      tool: 'flatmesh flatness',
      version: 1,
      run: opts.runDir,
      runId: run.summary?.runId,
      backend: { name: backend.name, patches: backend.patches },
      seed,
      samples: sampleInfo(set),
      models: measured.map((m) => ({ model: m.model, round: m.round, ...m.figures })),
      landscapes,
    };
    writeFileSync(join(out, 'flatness.json'), `${JSON.stringify(report, null, 2)}\n`);
    if (opts.json) return `${JSON.stringify(report, null, 2)}\n`;
    return formatFlatness(report.models, set, out, landscapes);
  } finally {
    model.dispose();
  }
}

type LandscapeSpec = { kind: '1d' } | { kind: '2d' } | { kind: 'path'; a: string; b: string };

function parseLandscape(spec: string | undefined): LandscapeSpec | undefined {
  if (spec === undefined) return undefined;
  if (spec === '1d' || spec === '2d') return { kind: spec };
  const m = /^path:([^,]+),([^,]+)$/.exec(spec);
  if (!m) {
    throw new UsageError(
      `--landscape: must be 1d, 2d or path:A,B (e.g. path:node:0,swa:0) (got ${JSON.stringify(spec)})`,
    );
  }
  return { kind: 'path', a: m[1]!, b: m[2]! };
}

const fileName = (s: string) => s.replace(/[^A-Za-z0-9]+/g, '');

function writeLandscape(
  spec: LandscapeSpec,
  candidates: readonly Candidate[],
  model: Model,
  set: SampleSet,
  seed: number,
  out: string,
  bar: ReturnType<typeof progressReporter> | undefined,
): string[] {
  const H = new HessianOperator(model, set, { method: 'double-backprop' });
  const lossAt = (w: Float32Array) => H.lossAt(w);
  const progress =
    bar &&
    ((phase: string) => (done: number, total: number) =>
      bar({ phase, done, total, unit: 'items' }));
  const samples = sampleInfo(set);
  try {
    if (spec.kind === 'path') {
      const a = candidates.find((c) => c.name === spec.a)!;
      const b = candidates.find((c) => c.name === spec.b)!;
      const path = linearPath(lossAt, a.weights, b.weights, {
        ...(progress && { progress: progress(`path ${a.name} -> ${b.name}`) }),
      });
      const file = join(out, `path-${fileName(a.name)}-${fileName(b.name)}.json`);
      writeFileSync(
        file,
        `${JSON.stringify({ from: a.name, to: b.name, samples, ...path }, null, 2)}\n`,
      );
      return [file];
    }
    const c = candidates[0]!;
    const layout = paramLayout(model);
    const direction = { seed, normalization: 'filter (Li et al. 2018), biases 0' };
    const d1 = randomDirection(layout, c.weights, seed, 0);
    const grid =
      spec.kind === '1d'
        ? landscape1d(lossAt, c.weights, d1, {
            ...(progress && { progress: progress(`landscape 1d ${c.name}`) }),
          })
        : landscape2d(lossAt, c.weights, d1, randomDirection(layout, c.weights, seed, 1), {
            ...(progress && { progress: progress(`landscape 2d ${c.name}`) }),
          });
    const file = join(out, `landscape-${spec.kind}-${fileName(c.name)}.json`);
    writeFileSync(
      file,
      `${JSON.stringify({ model: c.name, direction, samples, ...grid }, null, 2)}\n`,
    );
    return [file];
  } finally {
    H.dispose();
  }
}

function fmt(v: number | undefined, digits = 4): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0)
    ? v.toExponential(2)
    : v.toPrecision(digits);
}

function formatFlatness(
  rows: ({ model: string } & FlatnessFigures)[],
  set: SampleSet,
  out: string,
  landscapes: string[],
): string {
  const k = rows.find((r) => r.top)?.top?.values.length ?? 0;
  const header = [
    'model',
    'loss',
    '|grad|',
    'λmax',
    ...(k > 1 ? [`λmax/λ${k}`] : []),
    'trace ± se',
    'SAM',
    'ASAM',
    'H·v',
    'seconds',
  ];
  const lines = rows.map((r) => [
    r.model,
    fmt(r.loss),
    fmt(r.gradNorm),
    `${fmt(r.top?.values[0])}${r.top && !r.top.converged ? '*' : ''}`,
    ...(k > 1 ? [fmt(r.top?.ratio, 3)] : []),
    r.trace ? `${fmt(r.trace.estimate)} ± ${fmt(r.trace.stderr, 2)}` : '-',
    fmt(r.sharpness?.sam.value, 3),
    fmt(r.sharpness?.asam.value, 3),
    String(r.products),
    r.seconds.toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (l: string[]) =>
    l.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const info = sampleInfo(set);
  const notes = [
    `samples: ${info.source}, ${info.count}${info.seed !== undefined ? ` (seeded subset, seed ${info.seed})` : ''}`,
    ...new Set(
      rows
        .map((r) => r.hessian.note)
        .filter((n) => n !== undefined)
        .map((n) => `H·v: ${n}`),
    ),
    ...(rows.some((r) => r.hessian.weightDecay > 0)
      ? [
          `Hessian of the loss + ${rows[0]!.hessian.weightDecay}/2·|w|² (λ and trace include the weight decay; loss and sharpness do not)`,
        ]
      : []),
    ...(rows.some((r) => r.top && !r.top.converged)
      ? ['* not converged to the tolerance within the step limit']
      : []),
    `written: ${join(out, 'flatness.json')}${landscapes.map((f) => `, ${f}`).join('')}`,
  ];
  return `${[row(header), ...lines.map(row)].join('\n')}\n\n${notes.join('\n')}\n`;
}
