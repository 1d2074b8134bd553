/**
 * The table of a sweep: one row per cell, each figure over the cell's seeds as mean, sample
 * standard deviation and 95% confidence interval (src/report/stats.ts), as JSON (table.json), CSV
 * (table.csv) and readable text. The sweep (src/run/sweep.ts) writes it after every run; the report
 * draws it.
 *
 *   const table = sweepTable(plan, (cell, seed) => summaryOf(cell, seed));
 *   console.log(formatTable(table));
 */
import { flatnessColumnLabel } from './flatness.js';
import type { RunSummary } from './records.js';
import { type Describe, describe } from './stats.js';

/** A grid value as text: strings bare, anything else as JSON. */
export function formatValue(v: unknown): string {
  return typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
}

export const SWEEP_METRICS = [
  { name: 'meanAccuracy', label: 'accuracy %', get: (s: RunSummary) => s.meanAccuracy },
  { name: 'meanSwaAccuracy', label: 'SWA acc. %', get: (s: RunSummary) => s.meanSwaAccuracy },
  // Absent (null) in summaries written before tail means existed.
  {
    name: 'meanTailAccuracy',
    label: 'tail acc. %',
    get: (s: RunSummary) => s.meanTailAccuracy ?? null,
  },
  {
    name: 'meanTailSwaAccuracy',
    label: 'tail SWA %',
    get: (s: RunSummary) => s.meanTailSwaAccuracy ?? null,
  },
  {
    name: 'accuracyOfAverageModel',
    label: 'avg model %',
    get: (s: RunSummary) => s.accuracyOfAverageModel,
  },
  {
    name: 'finalDisagreement',
    label: 'disagreement',
    get: (s: RunSummary) => s.finalDisagreement,
  },
  { name: 'messages.dropped', label: 'dropped', get: (s: RunSummary) => s.messages.dropped },
] as const;

export type SweepMetric = (typeof SWEEP_METRICS)[number]['name'];

export interface SweepRow {
  cell: string;
  values: Record<string, unknown>;
  /** Seeds whose run is finished. */
  seeds: number[];
  runs: number;
  /** Finished runs in which some node that should have finished did not. */
  incomplete: number;
  stats: Record<SweepMetric, Describe>;
  /** Flatness columns (the table's `flatness`), described over the seeds measured. */
  flatness?: Record<string, Describe>;
  /** Each finished run's figures, by seed (what the statistics are computed from). */
  perSeed: ({ seed: number; flatness?: Record<string, number | null> } & Record<
    SweepMetric,
    number | null
  >)[];
}

export interface SweepTable {
  out: string;
  /** `sim` or `processes`. */
  mode: string;
  gridKeys: string[];
  seeds: number[];
  metrics: SweepMetric[];
  /**
   * Flatness columns measured on the runs' checkpoints (the sweep file's `flatness`; names like
   * `node.lambdaMax`, `swa.lambdaMax/lambda5`, `average.trace`, see run/run-flatness.ts).
   */
  flatness?: string[];
  rows: SweepRow[];
}

/** What a table needs of a sweep's plan (run/sweep.ts's SweepPlan, or a sweep.json). */
export interface SweepShape<C extends SweepCellRef> {
  out: string;
  mode: string;
  gridKeys: string[];
  seeds: number[];
  cells: readonly C[];
}

export interface SweepCellRef {
  key: string;
  values: Record<string, unknown>;
}

/**
 * One row per cell from the finished runs' summaries (`summaryOf` gives undefined for a run that
 * is not finished): each figure described over seeds.
 */
export function sweepTable<C extends SweepCellRef>(
  sweep: SweepShape<C>,
  summaryOf: (cell: C, seed: number) => RunSummary | undefined,
  flatnessOf?: (cell: C, seed: number) => Record<string, number | null> | undefined,
): SweepTable {
  const columns = new Set<string>();
  const rows = sweep.cells.map((cell): SweepRow => {
    const runs = sweep.seeds
      .map((seed) => ({ seed, summary: summaryOf(cell, seed) }))
      .filter((r): r is { seed: number; summary: RunSummary } => r.summary !== undefined)
      .map((r) => ({ ...r, flatness: flatnessOf?.(cell, r.seed) }));
    const stats = Object.fromEntries(
      SWEEP_METRICS.map((m) => [m.name, describe(runs.map((r) => m.get(r.summary)))]),
    ) as Record<SweepMetric, Describe>;
    for (const r of runs) for (const k of Object.keys(r.flatness ?? {})) columns.add(k);
    const flat = runs.some((r) => r.flatness);
    return {
      cell: cell.key,
      values: cell.values,
      seeds: runs.map((r) => r.seed),
      runs: runs.length,
      incomplete: runs.filter((r) => !r.summary.completed).length,
      stats,
      ...(flat && {
        flatness: Object.fromEntries(
          [...columns].map((k) => [k, describe(runs.map((r) => r.flatness?.[k] ?? null))]),
        ),
      }),
      perSeed: runs.map((r) => ({
        seed: r.seed,
        ...(r.flatness && { flatness: r.flatness }),
        ...(Object.fromEntries(SWEEP_METRICS.map((m) => [m.name, m.get(r.summary)])) as Record<
          SweepMetric,
          number | null
        >),
      })),
    };
  });
  return {
    out: sweep.out,
    mode: sweep.mode,
    gridKeys: sweep.gridKeys,
    seeds: sweep.seeds,
    metrics: SWEEP_METRICS.map((m) => m.name),
    ...(columns.size > 0 && { flatness: [...columns] }),
    rows,
  };
}

const STAT_FIELDS = ['mean', 'std', 'ci95', 'min', 'max', 'n'] as const;

export function tableCsv(t: SweepTable): string {
  const header = [
    'cell',
    ...t.gridKeys,
    'runs',
    'incomplete',
    ...t.metrics.flatMap((m) => STAT_FIELDS.map((f) => `${m}.${f}`)),
    ...(t.flatness ?? []).flatMap((m) => STAT_FIELDS.map((f) => `flatness.${m}.${f}`)),
  ];
  const lines = t.rows.map((r) => [
    r.cell,
    ...t.gridKeys.map((k) => formatValue(r.values[k])),
    String(r.runs),
    String(r.incomplete),
    ...t.metrics.flatMap((m) => STAT_FIELDS.map((f) => String(r.stats[m][f] ?? ''))),
    ...(t.flatness ?? []).flatMap((m) =>
      STAT_FIELDS.map((f) => String(r.flatness?.[m]?.[f] ?? '')),
    ),
  ]);
  return `${[header, ...lines].map((l) => l.map(csvField).join(',')).join('\n')}\n`;
}

/** A flatness figure over seeds: mean ± 95% CI half-width, 3 significant digits. */
export function formatFigure(d: Describe | undefined): string {
  if (!d || d.mean === null) return '-';
  return d.ci95 === null
    ? d.mean.toPrecision(3)
    : `${d.mean.toPrecision(3)} ± ${d.ci95.toPrecision(2)}`;
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A readable table: one line per cell, each figure as mean ± 95% CI half-width over seeds. */
export function formatTable(t: SweepTable): string {
  const fmt = (m: SweepMetric, d: Describe): string => {
    if (d.mean === null) return '-';
    const pct = m !== 'finalDisagreement' && m !== 'messages.dropped';
    const f = (v: number) =>
      pct ? (100 * v).toFixed(1) : m === 'messages.dropped' ? v.toFixed(1) : v.toPrecision(3);
    return d.ci95 === null ? f(d.mean) : `${f(d.mean)} ± ${f(d.ci95)}`;
  };
  const header = [
    ...t.gridKeys,
    'runs',
    ...SWEEP_METRICS.filter((m) => t.metrics.includes(m.name)).map((m) => m.label),
    ...(t.flatness ?? []).map(flatnessColumnLabel),
  ];
  const rows = t.rows.map((r) => [
    ...t.gridKeys.map((k) => formatValue(r.values[k])),
    `${r.runs}/${t.seeds.length}${r.incomplete > 0 ? ` (${r.incomplete} incomplete)` : ''}`,
    ...t.metrics.map((m) => fmt(m, r.stats[m])),
    ...(t.flatness ?? []).map((m) => formatFigure(r.flatness?.[m])),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cols: string[]) =>
    cols
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
