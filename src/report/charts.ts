/**
 * The figures as Vega-Lite specs: each a pure function of its series (src/report/series.ts), with
 * the data inline, so a spec saved beside the page redraws the figure anywhere Vega-Lite runs
 * (the online editor, Altair, vl-convert) and a live view can reuse the same functions.
 *
 *   const spec = accuracyChart(accuracySeries(run.records, run.summary));
 *   const svg = await renderSvg(spec);   // src/report/render.ts
 */
import type {
  AccuracySeries,
  Band,
  ClassCount,
  EdgeLoss,
  FateCount,
  FaultMark,
  FlatnessSeries,
  LinkDelivery,
  MatchingActivity,
  NodeFinal,
  PhaseTime,
  RoundTime,
} from './series.js';
import { FATES, PHASES } from './series.js';

/** A Vega-Lite specification (JSON). */
export type VlSpec = Record<string, unknown>;

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const WIDTH = 620;

/** Every figure's look: one font, no chart border, legends at the top right. */
const CONFIG = {
  font: 'DejaVu Sans, Helvetica, Arial, sans-serif',
  view: { stroke: null },
  axis: { labelFontSize: 10, titleFontSize: 11, grid: true, gridOpacity: 0.5 },
  axisX: { labelAngle: 0 },
  legend: { labelFontSize: 10, titleFontSize: 11 },
  title: { fontSize: 13, anchor: 'start' },
};

function top(spec: VlSpec, description: string): VlSpec {
  return { $schema: SCHEMA, description, config: CONFIG, ...spec };
}

const roundX = (title = 'round') => ({
  field: 'round',
  type: 'quantitative',
  title,
  axis: { format: 'd' },
  scale: { nice: false },
});

const pct = { format: '.0%' };

/** An ordinal round axis (one band per round) labelled about every tenth of the rounds. */
function roundBands(rounds: readonly { round: number }[]) {
  const last = rounds.reduce((m, r) => Math.max(m, r.round), 0);
  const nice = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000];
  const every = nice.find((k) => last / k <= 12) ?? Math.ceil(last / 10);
  return {
    field: 'round',
    type: 'ordinal',
    title: 'round',
    axis: {
      labelExpr: `datum.value % ${every} === 0 ? datum.label : ''`,
      labelAngle: 0,
      ticks: false,
    },
  };
}

/** Long rows (one per series and round) for a band plot. */
const bandRows = (series: string, bs: readonly Band[]) =>
  bs.map((b) => ({ series, round: b.round, mean: b.mean, min: b.min, max: b.max, n: b.n }));

/**
 * The two layers of a band plot over `bandRows`: the min-max area and the mean line with points.
 * `y` styles the axis (title, scale); `format` is the tooltip's number format.
 */
function bandLayers(y: Record<string, unknown>, color: VlSpec, format: string): VlSpec[] {
  return [
    {
      mark: { type: 'area', opacity: 0.18 },
      encoding: {
        x: roundX(),
        y: { field: 'min', type: 'quantitative', ...y },
        y2: { field: 'max' },
        color,
      },
    },
    {
      mark: { type: 'line', point: { size: 18 } },
      encoding: {
        x: roundX(),
        y: { field: 'mean', type: 'quantitative' },
        color,
        tooltip: [
          { field: 'series' },
          { field: 'round' },
          { field: 'mean', format },
          { field: 'min', format },
          { field: 'max', format },
        ],
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// 1. Accuracy and loss

export function accuracyChart(s: AccuracySeries): VlSpec {
  const rows = [...bandRows('node models', s.accuracy), ...bandRows('SWA models', s.swaAccuracy)];
  const color = {
    field: 'series',
    type: 'nominal',
    title: null,
    scale: {
      domain: ['node models', 'SWA models', 'average model'],
      range: ['#1f77b4', '#d62728', '#111111'],
    },
  };
  const layers: VlSpec[] = bandLayers({ title: 'test accuracy', axis: pct }, color, '.4f');
  if (s.swaCollections.length > 0)
    layers.unshift({
      data: { values: s.swaCollections.map((round) => ({ round, what: 'SWA collects' })) },
      mark: { type: 'rule', strokeDash: [2, 3], color: '#d62728', opacity: 0.45 },
      encoding: { x: roundX() },
    });
  if (s.averageModel)
    layers.push({
      data: {
        values: [
          { series: 'average model', round: s.averageModel.round, mean: s.averageModel.accuracy },
        ],
      },
      mark: { type: 'point', shape: 'diamond', size: 90, filled: true },
      encoding: {
        x: roundX(),
        y: { field: 'mean', type: 'quantitative' },
        color,
        tooltip: [{ field: 'series' }, { field: 'mean', format: '.4f' }],
      },
    });
  return top(
    {
      width: WIDTH,
      height: 260,
      data: { values: rows },
      layer: layers,
    },
    'Test accuracy per round: mean over nodes with a min-max band, SWA models, the average model, SWA collection rounds dashed',
  );
}

export function lossChart(s: AccuracySeries): VlSpec {
  const rows = [...bandRows('test loss', s.testLoss), ...bandRows('train loss', s.trainLoss)];
  return top(
    {
      width: WIDTH,
      height: 200,
      data: { values: rows },
      layer: [
        {
          mark: { type: 'area', opacity: 0.18 },
          encoding: {
            x: roundX(),
            y: { field: 'min', type: 'quantitative', title: 'loss', scale: { type: 'log' } },
            y2: { field: 'max' },
            color: { field: 'series', type: 'nominal', title: null },
          },
        },
        {
          mark: { type: 'line' },
          encoding: {
            x: roundX(),
            y: { field: 'mean', type: 'quantitative' },
            color: { field: 'series', type: 'nominal', title: null },
          },
        },
      ],
    },
    'Loss per round: mean over nodes with a min-max band',
  );
}

// ---------------------------------------------------------------------------------------------
// 2. Consensus distance

export function consensusChart(bs: readonly Band[]): VlSpec {
  const log = bs.every((b) => b.min > 0);
  return top(
    {
      width: WIDTH,
      height: 200,
      data: { values: bandRows('disagreement', bs) },
      layer: [
        {
          mark: { type: 'area', opacity: 0.2, color: '#9467bd' },
          encoding: {
            x: roundX(),
            y: {
              field: 'min',
              type: 'quantitative',
              title: 'RMS distance to neighbours heard',
              scale: { type: log ? 'log' : 'linear' },
            },
            y2: { field: 'max' },
          },
        },
        {
          mark: { type: 'line', color: '#9467bd' },
          encoding: {
            x: roundX(),
            y: { field: 'mean', type: 'quantitative' },
            tooltip: [{ field: 'round' }, { field: 'mean', format: '.3g' }],
          },
        },
      ],
    },
    'Consensus distance per round: mean over nodes with a min-max band',
  );
}

/**
 * In-run flatness: one panel per figure (λmax, and the trace when tracked), node models in blue
 * and SWA models in red, mean over nodes with the min-max band, log scale when all positive.
 */
export function flatnessTrackingChart(s: FlatnessSeries): VlSpec {
  const panel = (title: string, nodes: readonly Band[], swas: readonly Band[]): VlSpec => {
    const rows = [...bandRows('node models', nodes), ...bandRows('SWA models', swas)];
    const log = rows.every((r) => r.min > 0);
    const color = {
      field: 'series',
      type: 'nominal',
      title: null,
      scale: { domain: ['node models', 'SWA models'], range: ['#1f77b4', '#d62728'] },
    };
    return {
      width: WIDTH,
      height: 180,
      data: { values: rows },
      layer: bandLayers({ title, scale: log ? { type: 'log' } : { zero: false } }, color, '.4g'),
    };
  };
  const panels = [panel('Hessian λmax', s.lambdaMax, s.swaLambdaMax)];
  if (s.trace.length > 0) panels.push(panel('Hessian trace', s.trace, s.swaTrace));
  return top(
    { vconcat: panels },
    'In-run flatness per round: mean over nodes with a min-max band, node and SWA models',
  );
}

// ---------------------------------------------------------------------------------------------
// 3. Messages

const FATE_COLORS: Record<(typeof FATES)[number], string> = {
  delivered: '#2ca02c',
  dropped: '#ff7f0e',
  failed: '#8c564b',
  lost: '#e377c2',
  missing: '#d62728',
  late: '#bcbd22',
  rejected: '#111111',
};

export function fatesChart(rows: readonly FateCount[]): VlSpec {
  return top(
    {
      width: WIDTH,
      height: 200,
      data: { values: rows.map((r) => ({ ...r, fateOrder: FATES.indexOf(r.fate) })) },
      mark: { type: 'bar' },
      encoding: {
        x: roundBands(rows),
        y: { field: 'count', type: 'quantitative', stack: 'zero', title: 'messages' },
        color: {
          field: 'fate',
          type: 'nominal',
          title: 'fate',
          scale: { domain: [...FATES], range: FATES.map((f) => FATE_COLORS[f]) },
        },
        order: { field: 'fateOrder' },
        tooltip: [{ field: 'round' }, { field: 'fate' }, { field: 'count' }],
      },
    },
    'Message fates per round, summed over nodes (delivered, dropped by a fault, failed on the network, known lost, missing at the deadline, late, rejected)',
  );
}

export function linkHeatmap(links: readonly LinkDelivery[]): VlSpec {
  return top(
    {
      data: { values: links },
      mark: { type: 'rect', stroke: 'white', strokeWidth: 1.5 },
      width: { step: 22 },
      height: { step: 22 },
      encoding: {
        x: { field: 'to', type: 'ordinal', title: 'to node' },
        y: { field: 'from', type: 'ordinal', title: 'from node' },
        color: {
          field: 'rate',
          type: 'quantitative',
          title: 'delivered',
          scale: { domain: [0, 1], scheme: 'redyellowgreen' },
          legend: pct,
        },
        tooltip: [
          { field: 'from' },
          { field: 'to' },
          { field: 'sent' },
          { field: 'delivered' },
          { field: 'rate', format: '.1%' },
        ],
      },
    },
    'Delivery rate per directed link: frames delivered / frames sent',
  );
}

// ---------------------------------------------------------------------------------------------
// 4. Faults, aligned with accuracy

const FAULT_COLORS: Record<FaultMark['kind'], string> = {
  crash: '#d62728',
  down: '#f4a6a6',
  join: '#2ca02c',
  leave: '#7f7f7f',
  partition: '#9467bd',
  straggler: '#ff7f0e',
  byzantine: '#111111',
  loss: '#1f77b4',
  delay: '#17becf',
  bandwidth: '#bcbd22',
};

export function faultTimelineChart(marks: readonly FaultMark[], accuracy: readonly Band[]): VlSpec {
  const kinds = Object.keys(FAULT_COLORS).filter((k) => marks.some((m) => m.kind === k));
  return top(
    {
      vconcat: [
        {
          width: WIDTH,
          height: 110,
          data: { values: bandRows('node models', accuracy) },
          mark: { type: 'line', point: { size: 14 } },
          encoding: {
            x: { ...roundX(), title: null },
            y: { field: 'mean', type: 'quantitative', title: 'mean accuracy', axis: pct },
          },
        },
        {
          width: WIDTH,
          height: { step: 14 },
          data: {
            // Each round is a cell centred on its number, under the accuracy point of that round.
            values: marks.map((m) => ({ ...m, start: m.from - 0.5, end: m.to + 0.5 })),
          },
          mark: { type: 'rect', opacity: 0.85 },
          encoding: {
            x: { field: 'start', type: 'quantitative', title: 'round' },
            x2: { field: 'end' },
            y: { field: 'node', type: 'ordinal', title: 'node' },
            color: {
              field: 'kind',
              type: 'nominal',
              title: 'fault',
              scale: {
                domain: kinds,
                range: kinds.map((k) => FAULT_COLORS[k as FaultMark['kind']]),
              },
            },
            opacity: {
              condition: { test: 'datum.count > 1', value: 1 },
              value: 0.7,
            },
            tooltip: [
              { field: 'kind' },
              { field: 'node' },
              { field: 'from', title: 'from round' },
              { field: 'to', title: 'to round' },
              { field: 'count', title: 'counted' },
              { field: 'detail' },
            ],
          },
        },
      ],
      resolve: { scale: { x: 'shared' } },
    },
    'Fault timeline per node (planned faults and faults the records counted per round), under the mean accuracy on the same rounds',
  );
}

// ---------------------------------------------------------------------------------------------
// 5. Time

export function roundTimeHeatmap(rows: readonly RoundTime[]): VlSpec {
  return top(
    {
      width: WIDTH,
      height: { step: 12 },
      data: { values: rows },
      mark: { type: 'rect' },
      encoding: {
        x: roundBands(rows),
        y: { field: 'node', type: 'ordinal', title: 'node' },
        color: {
          field: 'ms',
          type: 'quantitative',
          title: 'round ms',
          scale: { scheme: 'viridis', type: 'sqrt' },
        },
        tooltip: [{ field: 'node' }, { field: 'round' }, { field: 'ms', format: '.0f' }],
      },
    },
    'Round time per node and round (a straggler is a bright row)',
  );
}

export function phaseChart(rows: readonly PhaseTime[]): VlSpec {
  return top(
    {
      width: WIDTH,
      height: { step: 14 },
      data: { values: rows.map((r) => ({ ...r, order: PHASES.indexOf(r.phase) })) },
      mark: { type: 'bar' },
      encoding: {
        y: { field: 'node', type: 'ordinal', title: 'node' },
        x: { field: 'ms', type: 'quantitative', stack: 'zero', title: 'mean ms per round' },
        color: {
          field: 'phase',
          type: 'nominal',
          title: 'phase',
          scale: { domain: [...PHASES], scheme: 'tableau10' },
        },
        order: { field: 'order' },
        tooltip: [{ field: 'node' }, { field: 'phase' }, { field: 'ms', format: '.1f' }],
      },
    },
    'Where the time goes: mean time per phase per node (exchange = sending and collecting, wait = waiting for the slowest neighbour)',
  );
}

// ---------------------------------------------------------------------------------------------
// 6. Topology

export interface TopologyDrawing {
  nodes: { node: number; x: number; y: number }[];
  edges: { a: number; b: number; matching: number; x: number; y: number; x2: number; y2: number }[];
}

/** Node positions: the graph file's, else evenly on a circle. */
export function drawTopology(
  n: number,
  matchings: readonly (readonly (readonly [number, number])[])[],
  positions?: readonly (readonly [number, number])[],
): TopologyDrawing {
  const pos = (i: number): [number, number] => {
    const p = positions?.[i];
    if (p) return [p[0], p[1]];
    const t = (2 * Math.PI * i) / n - Math.PI / 2;
    return [Math.round(1000 * Math.cos(t)) / 1000, Math.round(1000 * Math.sin(t)) / 1000];
  };
  return {
    nodes: Array.from({ length: n }, (_, node) => {
      const [x, y] = pos(node);
      return { node, x, y };
    }),
    edges: matchings.flatMap((m, matching) =>
      m.map(([a, b]) => {
        const [x, y] = pos(a);
        const [x2, y2] = pos(b);
        return { a, b, matching, x, y, x2, y2 };
      }),
    ),
  };
}

export function topologyChart(d: TopologyDrawing): VlSpec {
  const axisless = { axis: null, scale: { zero: false, nice: false, padding: 14 } };
  return top(
    {
      width: 300,
      height: 300,
      layer: [
        {
          data: { values: d.edges },
          mark: { type: 'rule', strokeWidth: 2.5 },
          encoding: {
            x: { field: 'x', type: 'quantitative', ...axisless },
            y: { field: 'y', type: 'quantitative', ...axisless },
            x2: { field: 'x2' },
            y2: { field: 'y2' },
            color: {
              field: 'matching',
              type: 'nominal',
              title: 'matching',
              scale: { scheme: 'category10' },
            },
            tooltip: [{ field: 'a' }, { field: 'b' }, { field: 'matching' }],
          },
        },
        {
          data: { values: d.nodes },
          mark: { type: 'circle', size: 260, color: 'white', stroke: '#333', opacity: 1 },
          encoding: {
            x: { field: 'x', type: 'quantitative' },
            y: { field: 'y', type: 'quantitative' },
          },
        },
        {
          data: { values: d.nodes },
          mark: { type: 'text', fontSize: 9 },
          encoding: {
            x: { field: 'x', type: 'quantitative' },
            y: { field: 'y', type: 'quantitative' },
            text: { field: 'node' },
          },
        },
      ],
    },
    'The base graph, one colour per matching',
  );
}

export function matchingChart(rows: readonly MatchingActivity[]): VlSpec {
  const long = rows.flatMap((r) => [
    { matching: r.matching, what: 'MATCHA probability', value: r.probability },
    { matching: r.matching, what: 'observed frequency', value: r.observed, rounds: r.rounds },
  ]);
  return top(
    {
      width: { step: 36 },
      height: 200,
      data: { values: long },
      mark: { type: 'bar' },
      encoding: {
        x: { field: 'matching', type: 'ordinal', title: 'matching' },
        xOffset: { field: 'what' },
        y: {
          field: 'value',
          type: 'quantitative',
          title: 'share of rounds on',
          scale: { domain: [0, 1] },
        },
        color: { field: 'what', type: 'nominal', title: null },
        tooltip: [{ field: 'matching' }, { field: 'what' }, { field: 'value', format: '.3f' }],
      },
    },
    "MATCHA's activation probability of each matching next to how often it was on in the run",
  );
}

export function lossiestEdgesChart(rows: readonly EdgeLoss[]): VlSpec {
  return top(
    {
      width: 300,
      height: { step: 16 },
      data: { values: rows },
      mark: { type: 'bar', color: '#ff7f0e' },
      encoding: {
        y: { field: 'edge', type: 'nominal', sort: null, title: 'edge' },
        x: { field: 'lost', type: 'quantitative', title: 'frames lost (both ways)' },
        tooltip: [
          { field: 'edge' },
          { field: 'sent' },
          { field: 'lost' },
          { field: 'rate', format: '.1%' },
        ],
      },
    },
    'The edges that lost the most frames (dropped by a fault or failed on the network)',
  );
}

// ---------------------------------------------------------------------------------------------
// 7. Nodes: final accuracy and data

export function nodesChart(finals: readonly NodeFinal[], classes: readonly ClassCount[]): VlSpec {
  // Both panels one row per node, at the same height, so a node's bars face its histogram.
  const height = Math.max(120, 18 * finals.length);
  const acc = finals.flatMap((f) => [
    ...(f.accuracy === null ? [] : [{ node: f.node, model: 'node model', accuracy: f.accuracy }]),
    ...(f.swaAccuracy === null
      ? []
      : [{ node: f.node, model: 'SWA model', accuracy: f.swaAccuracy }]),
  ]);
  const accuracy: VlSpec = {
    width: 260,
    height,
    data: { values: acc },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'node', type: 'ordinal', title: 'node' },
      yOffset: { field: 'model' },
      x: { field: 'accuracy', type: 'quantitative', title: 'final test accuracy', axis: pct },
      color: {
        field: 'model',
        type: 'nominal',
        title: null,
        scale: { domain: ['node model', 'SWA model'], range: ['#1f77b4', '#d62728'] },
      },
      tooltip: [{ field: 'node' }, { field: 'model' }, { field: 'accuracy', format: '.4f' }],
    },
  };
  if (classes.length === 0)
    return top(accuracy, 'Final test accuracy of each node (current and SWA model)');
  const data: VlSpec = {
    width: 300,
    height,
    data: { values: classes.filter((c) => c.count > 0) },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'node', type: 'ordinal', title: null },
      x: { field: 'count', type: 'quantitative', stack: 'zero', title: 'training samples' },
      color: {
        field: 'class',
        type: 'nominal',
        title: 'class',
        scale: { scheme: 'tableau10' },
      },
      order: { field: 'class' },
      tooltip: [{ field: 'node' }, { field: 'class' }, { field: 'count' }],
    },
  };
  return top(
    { hconcat: [accuracy, data], resolve: { scale: { color: 'independent' } } },
    "Each node's final test accuracy next to the class histogram of its training shard",
  );
}

// ---------------------------------------------------------------------------------------------
// 9. Comparisons

export interface CurveRow {
  label: string;
  round: number;
  mean: number;
}

export function compareChart(rows: readonly CurveRow[], title: string): VlSpec {
  return top(
    {
      width: WIDTH,
      height: 260,
      data: { values: rows },
      mark: { type: 'line', point: { size: 14 } },
      encoding: {
        x: roundX(),
        y: { field: 'mean', type: 'quantitative', title, axis: pct },
        color: {
          field: 'label',
          type: 'nominal',
          title: null,
          legend: { orient: 'bottom', columns: 2, labelLimit: 400 },
        },
        tooltip: [{ field: 'label' }, { field: 'round' }, { field: 'mean', format: '.4f' }],
      },
    },
    `Runs overlaid: ${title} per round`,
  );
}

export interface AxisPoint {
  /** The axis value, as text. */
  value: string;
  /** The other axes' values of the cell, as text (one line per combination). */
  group: string;
  metric: string;
  mean: number;
  lo: number;
  hi: number;
  n: number;
}

export function sweepAxisChart(rows: readonly AxisPoint[], axis: string): VlSpec {
  const color = {
    field: 'group',
    type: 'nominal',
    title: null,
    legend: { orient: 'bottom', labelLimit: 400 },
  };
  return top(
    {
      data: { values: rows },
      facet: {
        column: {
          field: 'metric',
          type: 'nominal',
          title: null,
          sort: ['node models', 'SWA models', 'average model'],
        },
      },
      spec: {
        width: 190,
        height: 200,
        layer: [
          {
            mark: { type: 'errorbar', ticks: true },
            encoding: {
              x: { field: 'value', type: 'ordinal', title: axis },
              xOffset: { field: 'group' },
              y: {
                field: 'lo',
                type: 'quantitative',
                title: 'mean ± 95% CI',
                scale: { zero: false },
              },
              y2: { field: 'hi' },
              color,
            },
          },
          {
            mark: { type: 'point', filled: true, size: 40 },
            encoding: {
              x: { field: 'value', type: 'ordinal' },
              xOffset: { field: 'group' },
              y: { field: 'mean', type: 'quantitative' },
              color,
              tooltip: [
                { field: 'value', title: axis },
                { field: 'group' },
                { field: 'metric' },
                { field: 'mean', format: '.4f' },
                { field: 'lo', format: '.4f' },
                { field: 'hi', format: '.4f' },
                { field: 'n', title: 'seeds' },
              ],
            },
          },
        ],
      },
      resolve: { scale: { y: 'independent' } },
    },
    `Sweep along ${axis}: each figure's mean over seeds with its 95% confidence interval`,
  );
}
