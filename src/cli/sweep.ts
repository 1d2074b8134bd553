/**
 * `flatmesh sweep --config FILE|PRESET [--resume] [--only KEY=VALUE,...] [--json]`: run a grid of
 * experiments over several seeds (see src/run/sweep.ts for the sweep file) and print the table of
 * cells, each figure as mean ± 95% CI over seeds. Progress goes to stderr, the table to the
 * returned text; main.ts only parses arguments into the options.
 *
 *   const text = await sweepCommand({ config: 'scripts/presets/loss-sweep.yaml', resume: true });
 */
import { RunError } from '../errors.js';
import { formatTable, SWEEP_METRICS } from '../report/sweep-table.js';
import { loadSweep, type RunSweepOptions, runSweep, type SweepEvent } from '../run/sweep.js';
import { reportAfterRun } from './report.js';

export interface SweepCommandOptions {
  /** The sweep file (YAML or JSON), or the name of a shipped preset (`loss-sweep`, `byzantine`). */
  config: string;
  /** Continue a sweep whose out already holds finished runs; they are kept. Default false. */
  resume?: boolean;
  /** Print table.json instead of the readable table. */
  json?: boolean;
  /** Run only these: `gridkey=value,seed=N` terms or a substring of the cell key. */
  only?: string;
  /** No per-run progress lines on stderr. */
  quiet?: boolean;
  /** Where progress lines go (default process.stderr). */
  progress?: { write(s: string): unknown };
  /** Replaces the simulator/launcher (tests). */
  runner?: RunSweepOptions['runner'];
}

export async function sweepCommand(
  opts: SweepCommandOptions,
  signal?: AbortSignal,
): Promise<string> {
  const plan = loadSweep(opts.config);
  const sink = opts.quiet ? undefined : (opts.progress ?? process.stderr);
  const started = performance.now();
  const result = await runSweep(plan, {
    ...(opts.resume !== undefined && { resume: opts.resume }),
    ...(opts.only !== undefined && { only: opts.only }),
    ...(opts.runner && { runner: opts.runner }),
    ...(signal && { signal }),
    ...(sink && { onEvent: (e: SweepEvent) => sink.write(progressLine(e)) }),
  });
  const { table, failures } = result;
  if (failures.length > 0) {
    throw new RunError(
      [
        `${failures.length} run(s) of the sweep failed:`,
        ...failures.map((f) => `  ${f.cell} seed ${f.seed}: ${f.error}`),
        `the table of the finished runs is in ${plan.out}/table.csv; re-run with --resume to retry the failed runs`,
      ].join('\n'),
    );
  }
  const report = await reportAfterRun(plan.out, 'sweep');
  if (opts.json) return `${JSON.stringify(table, null, 2)}\n`;
  const total = plan.cells.length * plan.seeds.length;
  const finished = table.rows.reduce((s, r) => s + r.runs, 0);
  return [
    `sweep ${plan.out}: ${plan.cells.length} cell(s) x ${plan.seeds.length} seed(s) (${plan.mode}); ${finished}/${total} runs finished, ${result.ran} run now in ${((performance.now() - started) / 1000).toFixed(1)} s, ${result.skipped} already done`,
    'each figure: mean ± 95% CI half-width over seeds (Student t)',
    '',
    formatTable(table),
    '',
    `table: ${plan.out}/table.csv, ${plan.out}/table.json`,
    report,
    '',
  ].join('\n');
}

function progressLine(e: SweepEvent): string {
  const name = `${e.run.cell.key} seed ${e.run.seed}`;
  switch (e.type) {
    case 'skip':
      return `done already: ${name}\n`;
    case 'start':
      return `[${e.index + 1}/${e.total}] ${name} ...\n`;
    case 'done': {
      const figures = SWEEP_METRICS.slice(0, 3)
        .map((m) => {
          const v = m.get(e.summary);
          return `${m.label.replace(' %', '')} ${v === null ? '-' : `${(100 * v).toFixed(1)}%`}`;
        })
        .join(', ');
      return `    ${figures} (${e.seconds.toFixed(1)} s)\n`;
    }
    case 'flatness':
      return `    flatness measured (${e.seconds.toFixed(1)} s)\n`;
    case 'fail':
      return `    FAILED: ${e.error instanceof Error ? e.error.message : String(e.error)}\n`;
    default: {
      const never: never = e;
      return String(never);
    }
  }
}
