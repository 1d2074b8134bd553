/**
 * `flatmesh data ...` commands as plain async functions (the lead's main.ts parses the flags):
 *
 *   await dataInspect({ dataset: 'fashion-mnist', partition: 'dirichlet:0.1', nodes: 16 });
 *   // -> a table: node, size, class histogram (or the same as JSON with json: true)
 *   await dataFetch({ dataset: 'cifar10' });  // progress on stderr, returns a summary line
 *
 * Data set flags: `digits`, `synthetic:<alpha>,<beta>`, `fashion-mnist[:limit]`, `cifar10[:limit]`.
 */

import {
  classHistogram,
  DEBIAN_FASHION_MNIST_DIR,
  type FetchProgress,
  fetchCifar10,
  fetchFashionMnist,
  findFashionMnistDir,
  formatPartitionSpec,
  loadDataset,
  type ProgressFn,
  parseDatasetSpec,
  parsePartitionSpec,
  partitionDataset,
} from '../data/index.js';
import { ConfigError } from '../errors.js';

export interface DataInspectOptions {
  dataset: string;
  partition: string;
  nodes: number;
  seed?: number;
  json?: boolean;
  dataDir?: string;
}

export interface NodeShardSummary {
  node: number;
  size: number;
  histogram: number[];
}

export async function dataInspect(opts: DataInspectOptions): Promise<string> {
  const seed = opts.seed ?? 0;
  const spec = parseDatasetSpec(opts.dataset);
  const pspec = parsePartitionSpec(opts.partition);
  const split = await loadDataset(spec, {
    seed,
    ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
  });
  const { train } = split;
  const parts = partitionDataset(train.y, train.classes, opts.nodes, pspec, seed, train.groups);
  const nodes: NodeShardSummary[] = parts.map((idx, node) => ({
    node,
    size: idx.length,
    histogram: classHistogram(
      Array.from(idx, (i) => train.y[i]!),
      train.classes,
    ),
  }));
  if (opts.json) {
    return JSON.stringify(
      {
        dataset: split.name,
        partition: formatPartitionSpec(pspec),
        seed,
        shape: train.shape,
        classes: train.classes,
        train: train.count,
        test: split.test.count,
        nodes,
      },
      null,
      2,
    );
  }
  return formatTable(
    split.name,
    formatPartitionSpec(pspec),
    seed,
    train.count,
    split.test.count,
    train.classes,
    nodes,
  );
}

function formatTable(
  name: string,
  partition: string,
  seed: number,
  trainCount: number,
  testCount: number,
  classes: number,
  nodes: NodeShardSummary[],
): string {
  const header = ['node', 'size', 'classes', ...Array.from({ length: classes }, (_, c) => `c${c}`)];
  const rows = nodes.map((n) => [
    String(n.node),
    String(n.size),
    String(n.histogram.filter((h) => h > 0).length),
    ...n.histogram.map((h) => (h === 0 ? '.' : String(h))),
  ]);
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j]!.length)));
  const line = (cells: string[]) => cells.map((c, j) => c.padStart(widths[j]!)).join('  ');
  const sizes = nodes.map((n) => n.size);
  return [
    `${name}: ${trainCount} train / ${testCount} test, ${classes} classes; partition ${partition} over ${nodes.length} nodes (seed ${seed})`,
    `node sizes: min ${Math.min(...sizes)}, max ${Math.max(...sizes)}, mean ${(trainCount / nodes.length).toFixed(1)}`,
    '',
    line(header),
    ...rows.map(line),
  ].join('\n');
}

export interface DataFetchOptions {
  dataset: string;
  dataDir?: string;
  /** Where progress goes; default process.stderr (a bar on a TTY, a few plain lines otherwise). */
  progress?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  signal?: AbortSignal;
}

export async function dataFetch(opts: DataFetchOptions): Promise<string> {
  const name = opts.dataset.trim().toLowerCase();
  const onProgress = progressReporter(opts.progress ?? process.stderr);
  const where = {
    ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    onProgress,
  };
  switch (name) {
    case 'cifar10': {
      const r = await fetchCifar10(where);
      onProgress.end();
      const fell = r.failures.length ? ` (after: ${r.failures.join('; ')})` : '';
      return `cifar10: ${r.train} train / ${r.test} test images cached in ${r.path} from ${r.source} in ${r.seconds.toFixed(1)} s${fell}`;
    }
    case 'fashion-mnist': {
      const found = findFashionMnistDir(opts.dataDir);
      if (found) return `fashion-mnist: already available in ${found}`;
      try {
        const dir = await fetchFashionMnist(where);
        onProgress.end();
        return `fashion-mnist: downloaded to ${dir}`;
      } catch (e) {
        onProgress.end();
        throw new ConfigError(
          'dataset',
          `fetch failed (${(e as Error).message}); on Debian/Ubuntu install it with \`sudo apt-get install dataset-fashion-mnist\` (files go to ${DEBIAN_FASHION_MNIST_DIR})`,
          opts.dataset,
        );
      }
    }
    case 'digits':
      return 'digits: embedded in flatmesh, nothing to fetch';
    case 'synthetic':
      return 'synthetic: generated from the seed, nothing to fetch';
    default:
      throw new ConfigError(
        'dataset',
        "must be 'cifar10', 'fashion-mnist', 'digits' or 'synthetic'",
        opts.dataset,
      );
  }
}

const MB = 1024 * 1024;

function amount(v: number, unit: FetchProgress['unit']): string {
  return unit === 'bytes' ? `${(v / MB).toFixed(1)} MB` : String(v);
}

/**
 * A progress view over `FetchProgress` events: a redrawn bar (at most 10 times a second) on a
 * TTY; otherwise one plain line when a phase starts and at each further quarter (or every 25 MB
 * when the total is unknown), so logs stay short.
 */
export function progressReporter(
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
): ProgressFn & { end(): void } {
  let phase = '';
  let phaseStart = 0;
  let lastDraw = 0;
  let lastMark = -1;
  let open = false;
  const tty = out.isTTY === true;
  const report = (p: FetchProgress) => {
    const now = performance.now();
    if (p.phase !== phase) {
      if (open) out.write('\n');
      open = false;
      phase = p.phase;
      phaseStart = now;
      lastMark = -1;
      lastDraw = 0;
    }
    const secs = (now - phaseStart) / 1000;
    const rate =
      p.unit === 'bytes' && secs > 0.5 ? `  ${(p.done / MB / secs).toFixed(1)} MB/s` : '';
    const frac = p.total ? Math.min(p.done / p.total, 1) : undefined;
    const of = p.total
      ? `${amount(p.done, p.unit)} / ${amount(p.total, p.unit)}`
      : amount(p.done, p.unit);
    if (tty) {
      if (now - lastDraw < 100 && frac !== 1) return;
      lastDraw = now;
      const width = 30;
      const bar =
        frac === undefined
          ? '[' +
            ' '
              .repeat(width)
              .split('')
              .map((_, i) => (i === Math.floor(secs * 4) % width ? '=' : ' '))
              .join('') +
            ']'
          : '[' + '#'.repeat(Math.round(frac * width)).padEnd(width, '.') + ']';
      const pct = frac === undefined ? '' : ` ${(frac * 100).toFixed(0).padStart(3)}%`;
      out.write(`\r${phase} ${bar}${pct} ${of}${rate}\x1b[K`);
      open = true;
    } else {
      const mark = frac === undefined ? Math.floor(p.done / (25 * MB)) : Math.floor(frac * 4);
      if (mark === lastMark) return;
      lastMark = mark;
      const pct = frac === undefined ? '' : ` ${(frac * 100).toFixed(0)}%`;
      out.write(`${phase}:${pct} ${of}${rate}\n`);
    }
  };
  return Object.assign(report, {
    end() {
      if (open) out.write('\n');
      open = false;
    },
  });
}
