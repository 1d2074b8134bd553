/**
 * Flatness results in a report: what `flatmesh flatness` wrote as JSON under RUN_DIR/flatness/
 * (flatness.json with one entry per model, landscape-*.json, path-*.json; src/cli/flatness.ts),
 * found by shape wherever it sits in a file and labelled by the model it measured: top Hessian eigenvalues ({ top: { values } }) as bars, the SLQ spectral density
 * ({ density: { grid, density } }) as a line, 1-D landscapes and linear paths ({ kind: '1d', x,
 * loss }, { kind: 'path', t, loss }) as lines, 2-D landscapes ({ kind: '2d', x, y, loss[y][x] })
 * as a heat map with contour lines.
 *
 *   const f = readFlatness(join(runDir, 'flatness'));
 *   if (f) sections.push(...flatnessFigures(f));
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { VlSpec } from './charts.js';
import type { Figure } from './page.js';

export interface FlatnessReport {
  eigenvalues: { source: string; rank: number; value: number }[];
  densities: { source: string; eigenvalue: number; density: number }[];
  lines: { source: string; kind: '1d' | 'path'; x: number; loss: number }[];
  surfaces: { source: string; x: number[]; y: number[]; loss: number[][] }[];
}

const isNums = (v: unknown): v is number[] =>
  Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number');

/** Collect every recognised result in `json`, labelled by file and key path. */
export function collectFlatness(json: unknown, source: string, into: FlatnessReport): void {
  const walk = (v: unknown, path: string, depth: number) => {
    if (!v || typeof v !== 'object' || depth > 5) return;
    const o = v as Record<string, unknown>;
    // The flatness command names what it measured: a model, or a path between two.
    const where =
      typeof o.model === 'string'
        ? o.model
        : typeof o.from === 'string' && typeof o.to === 'string'
          ? `${o.from} to ${o.to}`
          : path
            ? `${source} ${path}`
            : source;
    const top = o.top as Record<string, unknown> | undefined;
    if (top && isNums(top.values))
      top.values.forEach((value, rank) =>
        into.eigenvalues.push({ source: where, rank: rank + 1, value }),
      );
    const d = o.density as Record<string, unknown> | undefined;
    if (d && isNums(d.grid) && isNums(d.density) && d.grid.length === d.density.length)
      d.grid.forEach((eigenvalue, i) =>
        into.densities.push({ source: where, eigenvalue, density: (d.density as number[])[i]! }),
      );
    if (o.kind === '1d' && isNums(o.x) && isNums(o.loss))
      o.x.forEach((x, i) =>
        into.lines.push({ source: where, kind: '1d', x, loss: (o.loss as number[])[i]! }),
      );
    if (o.kind === 'path' && isNums(o.t) && isNums(o.loss))
      o.t.forEach((x, i) =>
        into.lines.push({ source: where, kind: 'path', x, loss: (o.loss as number[])[i]! }),
      );
    if (
      o.kind === '2d' &&
      isNums(o.x) &&
      isNums(o.y) &&
      Array.isArray(o.loss) &&
      o.loss.every(isNums)
    )
      into.surfaces.push({ source: where, x: o.x, y: o.y, loss: o.loss as number[][] });
    for (const [k, child] of Object.entries(o))
      if (k !== 'top' && k !== 'density') walk(child, path ? `${path}.${k}` : k, depth + 1);
  };
  walk(json, '', 0);
}

/** Every flatness result under `dir` (its *.json files), or undefined when there is none. */
export function readFlatness(dir: string): FlatnessReport | undefined {
  if (!existsSync(dir)) return undefined;
  const report: FlatnessReport = { eigenvalues: [], densities: [], lines: [], surfaces: [] };
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .sort()) {
    try {
      collectFlatness(
        JSON.parse(readFileSync(join(dir, name), 'utf8')),
        basename(name, '.json'),
        report,
      );
    } catch {
      // A file being written or not JSON: not a result.
    }
  }
  const any =
    report.eigenvalues.length +
    report.densities.length +
    report.lines.length +
    report.surfaces.length;
  return any > 0 ? report : undefined;
}

/**
 * A sweep's flatness figures of one run (written by run/run-flatness.ts): what was measured
 * (`spec`), on which samples, every model's figures, and the run's columns for the sweep table
 * (`node.lambdaMax`, `swa.lambdaMax/lambda5`, `average.trace`, ...: means over the nodes' models).
 */
export const SWEEP_FLATNESS_FILE = join('flatness', 'sweep.json');

export interface SweepFlatnessFile {
  spec: object;
  samples: { source: string; count: number; seed?: number };
  columns: Record<string, number | null>;
  models: {
    model: string;
    round: number | undefined;
    loss: number;
    /** Top eigenvalues, descending, and whether Lanczos reached its tolerance. */
    top: number[];
    converged: boolean;
    ratio?: number;
    trace?: number;
    traceStderr?: number;
    products: number;
    seconds: number;
  }[];
}

/** The sweep columns of the run in `runDir`, or undefined when it has not been measured. */
export function readSweepFlatness(runDir: string): Record<string, number | null> | undefined {
  try {
    const f = JSON.parse(
      readFileSync(join(runDir, SWEEP_FLATNESS_FILE), 'utf8'),
    ) as SweepFlatnessFile;
    return f.columns;
  } catch {
    return undefined;
  }
}

/** `swa.lambdaMax/lambda5` -> `SWA λmax/λ5`: a sweep column's label. */
export function flatnessColumnLabel(name: string): string {
  const [kind = '', figure = ''] = name.split('.');
  const who = kind === 'swa' ? 'SWA' : kind === 'average' ? 'avg model' : kind;
  return `${who} ${figure.replace(/lambdaMax/g, 'λmax').replace(/lambda(\d+)/g, 'λ$1')}`;
}

/** Iso-lines of a grid by marching squares: segments at each of `levels`. */
export function contourSegments(
  x: readonly number[],
  y: readonly number[],
  z: readonly (readonly number[])[],
  levels: readonly number[],
): { level: number; x: number; y: number; x2: number; y2: number }[] {
  const out: { level: number; x: number; y: number; x2: number; y2: number }[] = [];
  const lerp = (a: number, b: number, za: number, zb: number, l: number) =>
    za === zb ? (a + b) / 2 : a + ((l - za) / (zb - za)) * (b - a);
  for (let j = 0; j + 1 < y.length; j++) {
    for (let i = 0; i + 1 < x.length; i++) {
      const z00 = z[j]![i]!;
      const z10 = z[j]![i + 1]!;
      const z01 = z[j + 1]![i]!;
      const z11 = z[j + 1]![i + 1]!;
      const [x0, x1, y0, y1] = [x[i]!, x[i + 1]!, y[j]!, y[j + 1]!];
      for (const l of levels) {
        // Crossing points on the cell's four sides, in order bottom, right, top, left.
        const pts: [number, number][] = [];
        if (z00 < l !== z10 < l) pts.push([lerp(x0, x1, z00, z10, l), y0]);
        if (z10 < l !== z11 < l) pts.push([x1, lerp(y0, y1, z10, z11, l)]);
        if (z01 < l !== z11 < l) pts.push([lerp(x0, x1, z01, z11, l), y1]);
        if (z00 < l !== z01 < l) pts.push([x0, lerp(y0, y1, z00, z01, l)]);
        for (let k = 0; k + 1 < pts.length; k += 2)
          out.push({
            level: l,
            x: pts[k]![0],
            y: pts[k]![1],
            x2: pts[k + 1]![0],
            y2: pts[k + 1]![1],
          });
      }
    }
  }
  return out;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const base = (spec: VlSpec, description: string): VlSpec => ({
  $schema: SCHEMA,
  description,
  config: { font: 'DejaVu Sans, Helvetica, Arial, sans-serif', view: { stroke: null } },
  ...spec,
});

/** One colour per measured model, legend below: sources are long names (`node:3 (test, 1000)`). */
const BY_SOURCE = {
  field: 'source',
  type: 'nominal',
  title: null,
  legend: { orient: 'bottom', labelLimit: 400 },
};

export function flatnessFigures(f: FlatnessReport): Figure[] {
  const figures: Figure[] = [];
  if (f.eigenvalues.length > 0)
    figures.push({
      name: 'flatness-eigenvalues',
      title: 'Top Hessian eigenvalues',
      caption:
        'The largest eigenvalues of the loss Hessian (Lanczos); a flatter minimum has smaller ones.',
      data: f.eigenvalues,
      spec: base(
        {
          width: { step: 14 },
          height: 200,
          data: { values: f.eigenvalues },
          mark: 'bar',
          encoding: {
            x: { field: 'rank', type: 'ordinal', title: 'rank' },
            xOffset: { field: 'source' },
            y: { field: 'value', type: 'quantitative', title: 'eigenvalue' },
            color: BY_SOURCE,
          },
        },
        'Top Hessian eigenvalues',
      ),
    });
  if (f.densities.length > 0)
    figures.push({
      name: 'flatness-density',
      title: 'Hessian spectral density',
      caption: 'Stochastic Lanczos quadrature estimate of the eigenvalue density, smoothed.',
      data: f.densities,
      spec: base(
        {
          width: 420,
          height: 200,
          data: { values: f.densities },
          mark: 'line',
          encoding: {
            x: { field: 'eigenvalue', type: 'quantitative' },
            y: { field: 'density', type: 'quantitative', scale: { type: 'symlog' } },
            color: BY_SOURCE,
          },
        },
        'Hessian spectral density',
      ),
    });
  if (f.lines.length > 0)
    figures.push({
      name: 'flatness-1d',
      title: 'Loss along a direction',
      caption:
        '1-D landscapes (loss at w + a·d along a filter-normalized random direction) and linear paths between two models (t from 0 to 1).',
      data: f.lines,
      spec: base(
        {
          width: 420,
          height: 220,
          data: { values: f.lines },
          mark: 'line',
          encoding: {
            x: { field: 'x', type: 'quantitative', title: 'a (1-D) or t (path)' },
            y: { field: 'loss', type: 'quantitative' },
            color: BY_SOURCE,
          },
        },
        'Loss along a direction',
      ),
    });
  f.surfaces.forEach((s, k) => {
    const cells = s.y.flatMap((y, j) => s.x.map((x, i) => ({ x, y, loss: s.loss[j]![i]! })));
    const zs = cells.map((c) => c.loss).filter(Number.isFinite);
    const lo = Math.min(...zs);
    const hi = Math.max(...zs);
    const levels = Array.from({ length: 8 }, (_, i) => lo + ((hi - lo) * (i + 1)) / 9);
    const segments = contourSegments(s.x, s.y, s.loss, levels);
    figures.push({
      name: `flatness-2d-${k + 1}`,
      title: `Loss surface: ${s.source}`,
      caption:
        'Loss at w + a·d₁ + b·d₂ over two filter-normalized random directions, with 8 contour lines.',
      data: { cells, segments },
      spec: base(
        {
          width: 300,
          height: 300,
          layer: [
            {
              data: { values: cells },
              mark: 'rect',
              encoding: {
                x: {
                  field: 'x',
                  type: 'ordinal',
                  title: 'a',
                  axis: { format: '.2f', labelOverlap: 'greedy' },
                },
                y: {
                  field: 'y',
                  type: 'ordinal',
                  title: 'b',
                  sort: 'descending',
                  axis: { format: '.2f', labelOverlap: 'greedy' },
                },
                color: { field: 'loss', type: 'quantitative', scale: { scheme: 'viridis' } },
              },
            },
          ],
        },
        'Loss surface',
      ),
    });
    // Contours on a continuous scale, over the same ranges as the heat map.
    figures.push({
      name: `flatness-contour-${k + 1}`,
      title: `Contours: ${s.source}`,
      caption: 'Contour lines of the same surface (marching squares on its grid).',
      data: segments,
      spec: base(
        {
          width: 300,
          height: 300,
          data: { values: segments },
          mark: { type: 'rule', strokeWidth: 1.2 },
          encoding: {
            x: {
              field: 'x',
              type: 'quantitative',
              title: 'a',
              scale: { domain: [s.x[0], s.x.at(-1)] },
            },
            y: {
              field: 'y',
              type: 'quantitative',
              title: 'b',
              scale: { domain: [s.y[0], s.y.at(-1)] },
            },
            x2: { field: 'x2' },
            y2: { field: 'y2' },
            color: {
              field: 'level',
              type: 'quantitative',
              title: 'loss',
              scale: { scheme: 'viridis' },
            },
          },
        },
        'Loss contours',
      ),
    });
  });
  return figures;
}
