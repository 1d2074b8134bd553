/**
 * What a report shows: the sections of one run (accuracy and loss, consensus, messages, faults,
 * time, topology, nodes and their data, flatness), of several runs side by side, and of a sweep.
 * Pure: records and context in, a ReportDoc (specs and the series they draw) out; page.ts renders.
 * What the records cannot give (the topology's matchings and MATCHA probabilities, the class
 * histogram of each shard) comes in `RunExtras`, derived from the run's experiment by the caller.
 *
 *   const doc = runReport(readRunDir(dir), { plan, classHistogram });
 *   await writeReport(doc, join(dir, 'report.html'));
 */
import { basename } from 'node:path';
import type { MatchaPlan } from '../topology/types.js';
import {
  type AxisPoint,
  accuracyChart,
  type CurveRow,
  compareChart,
  consensusChart,
  drawTopology,
  fatesChart,
  faultTimelineChart,
  flatnessTrackingChart,
  linkHeatmap,
  lossChart,
  lossiestEdgesChart,
  matchingChart,
  nodesChart,
  phaseChart,
  roundTimeHeatmap,
  sweepAxisChart,
  topologyChart,
} from './charts.js';
import { type FlatnessReport, flatnessColumnLabel, flatnessFigures } from './flatness.js';
import type { Figure, ReportDoc, Section } from './page.js';
import type { RunDir, SweepDir } from './run-dir.js';
import {
  accuracySeries,
  classCounts,
  consensusSeries,
  faultTimeline,
  finalAccuracies,
  flatnessSeries,
  linkDelivery,
  lossiestEdges,
  matchingActivity,
  messageFates,
  phaseTimes,
} from './series.js';
import { formatSummary } from './summary-text.js';
import { formatFigure, formatValue, SWEEP_METRICS, type SweepTable } from './sweep-table.js';

export interface RunExtras {
  /** The sampling plan the run used (matchings, activation probabilities, alpha). */
  plan?: Pick<MatchaPlan, 'matchings' | 'probabilities' | 'alpha' | 'budget'> & {
    graph: Pick<MatchaPlan['graph'], 'n' | 'positions'>;
  };
  /** node x class: training samples of each class in each node's shard. */
  classHistogram?: number[][];
  /** Flatness results found under the run's flatness/ directory. */
  flatness?: FlatnessReport;
}

const fig = (
  prefix: string,
  name: string,
  title: string,
  caption: string,
  spec: Figure['spec'],
  data: unknown,
): Figure => ({ name: `${prefix}${name}`, title, caption, spec, data });

/** The sections of one run; `prefix` keeps figure names unique when several runs share a page. */
export function runSections(run: RunDir, extras: RunExtras = {}, prefix = ''): Section[] {
  const recs = run.records;
  const sections: Section[] = [];
  const id = (s: string) => `${prefix}${s}`;
  const acc = accuracySeries(recs, run.summary);
  const cfg = run.config;

  sections.push({
    id: id('summary'),
    title: 'Summary',
    text: [
      run.summary
        ? formatSummary(run.summary)
        : `no summary.json: the run did not finish (records of ${recs.filter((r) => r.length > 0).length} node(s) read)`,
      `experiment: ${cfg.nodes} nodes, ${cfg.run.rounds} rounds, seed ${cfg.run.seed}; ${cfg.data.dataset} split ${cfg.data.partition}; ${cfg.model.kind}; ${cfg.train.optimizer} lr ${cfg.train.lr}; topology ${cfg.topology.graph} (${cfg.topology.sampler}, budget ${cfg.topology.budget}); mixing ${cfg.gossip.mixing}; loss p ${cfg.faults.loss.p}`,
      ...(run.skippedLines > 0
        ? [`${run.skippedLines} record line(s) cut short (a node killed mid-write) were skipped`]
        : []),
    ].join('\n'),
    figures: [],
  });

  sections.push({
    id: id('accuracy'),
    title: 'Accuracy and loss',
    figures: [
      fig(
        prefix,
        'accuracy',
        'Test accuracy per round',
        'Mean over nodes (line) with the min–max band over nodes; SWA models in red; the diamond is the accuracy of the average of the final node models; dashed rules mark the rounds where SWA collected a model.',
        accuracyChart(acc),
        acc,
      ),
      fig(
        prefix,
        'loss',
        'Loss per round',
        'Training loss (every round) and test loss (evaluation rounds), mean over nodes with the min–max band, log scale.',
        lossChart(acc),
        { testLoss: acc.testLoss, trainLoss: acc.trainLoss },
      ),
    ],
  });

  const consensus = consensusSeries(recs);
  sections.push({
    id: id('consensus'),
    title: 'Consensus distance',
    ...(consensus.length === 0 && { note: 'No node heard a neighbour: no distance recorded.' }),
    figures:
      consensus.length === 0
        ? []
        : [
            fig(
              prefix,
              'consensus',
              'Disagreement per round',
              `Each node's mean RMS distance to the weights it heard, before mixing; mean over nodes with the min–max band.${run.summary?.finalDisagreement != null ? ` Final distance of the node models to their average: ${run.summary.finalDisagreement.toPrecision(3)}.` : ''}`,
              consensusChart(consensus),
              consensus,
            ),
          ],
  });

  const fates = messageFates(recs);
  const links = linkDelivery(recs);
  sections.push({
    id: id('messages'),
    title: 'Messages',
    figures: [
      ...(fates.length > 0
        ? [
            fig(
              prefix,
              'fates',
              'Message fates per round',
              'Every weights message of the round, summed over nodes, by what became of it.',
              fatesChart(fates),
              fates,
            ),
          ]
        : []),
      ...(links.length > 0
        ? [
            fig(
              prefix,
              'links',
              'Delivery rate per link',
              'Frames delivered / frames sent, per directed link, over the whole run.',
              linkHeatmap(links),
              links,
            ),
          ]
        : []),
    ],
  });

  const faults = faultTimeline(recs, cfg);
  sections.push({
    id: id('faults'),
    title: 'Faults',
    ...(faults.length === 0 && { note: 'No fault was injected in this run.' }),
    figures:
      faults.length === 0
        ? []
        : [
            fig(
              prefix,
              'faults',
              'Fault timeline',
              'Per node: faults of the experiment plan (crashes, rounds down, joins, leaves, partitions, stragglers, byzantine nodes) and faults the records counted per round (messages lost, delayed, throttled), under the mean accuracy on the same rounds.',
              faultTimelineChart(faults, acc.accuracy),
              faults,
            ),
          ],
  });

  const time = phaseTimes(recs);
  sections.push({
    id: id('time'),
    title: 'Where the time goes',
    figures: [
      fig(
        prefix,
        'round-time',
        'Round time per node and round',
        'Wall time of each node-round; a straggler stands out as a bright row, a slow round as a column.',
        roundTimeHeatmap(time.perRound),
        time.perRound,
      ),
      fig(
        prefix,
        'phases',
        'Time per phase',
        "Each node's mean time per round in each phase.",
        phaseChart(time.perNode),
        time.perNode,
      ),
    ],
  });

  const topo: Figure[] = [];
  if (extras.plan) {
    const p = extras.plan;
    const drawing = drawTopology(p.graph.n, p.matchings, p.graph.positions);
    topo.push(
      fig(
        prefix,
        'topology',
        'Topology and its matchings',
        `${p.graph.n} nodes, ${drawing.edges.length} edges in ${p.matchings.length} matchings; alpha ${p.alpha.toFixed(3)}, budget ${p.budget}.`,
        topologyChart(drawing),
        drawing,
      ),
    );
    const activity = matchingActivity(recs, p);
    topo.push(
      fig(
        prefix,
        'matchings',
        'Matching activation: planned and observed',
        'The probability MATCHA gave each matching (as the run used it) next to the share of rounds it was on.',
        matchingChart(activity),
        activity,
      ),
    );
  }
  const lossy = lossiestEdges(recs).filter((e) => e.lost > 0);
  if (lossy.length > 0)
    topo.push(
      fig(
        prefix,
        'lossiest-edges',
        'Lossiest edges',
        'The edges that lost the most frames, both directions together.',
        lossiestEdgesChart(lossy),
        lossy,
      ),
    );
  sections.push({
    id: id('topology'),
    title: 'Topology',
    ...(topo.length === 0 && { note: 'No topology plan and no lost frame to draw.' }),
    figures: topo,
  });

  const finals = finalAccuracies(recs, run.summary);
  const classes = extras.classHistogram ? classCounts(extras.classHistogram) : [];
  sections.push({
    id: id('nodes'),
    title: 'Nodes and their data',
    figures: finals.some((f) => f.accuracy !== null || f.swaAccuracy !== null)
      ? [
          fig(
            prefix,
            'nodes',
            'Final accuracy and class histogram per node',
            "Each node's final test accuracy (node model, SWA model) next to the classes of its training shard: how non-IID the split is.",
            nodesChart(finals, classes),
            { finals, classes },
          ),
        ]
      : [],
  });

  const tracked = flatnessSeries(recs);
  if (extras.flatness || tracked.lambdaMax.length > 0) {
    const figures = [
      ...(tracked.lambdaMax.length > 0
        ? [
            fig(
              prefix,
              'flatness-rounds',
              'Flatness during the run',
              `Largest Hessian eigenvalue${tracked.trace.length > 0 ? ' and Hessian trace' : ''} of the node models and of their SWA models on the rounds analysis.flatness measured them (test cross-entropy, ${recs.flat().find((r) => r.flatness)?.flatness?.samples ?? '?'} test samples); mean over nodes with the min–max band. Lower is flatter.`,
              flatnessTrackingChart(tracked),
              tracked,
            ),
          ]
        : []),
      ...(extras.flatness ? flatnessFigures(extras.flatness) : []).map((f) => ({
        ...f,
        name: `${prefix}${f.name}`,
      })),
    ];
    sections.push({ id: id('flatness'), title: 'Flatness', figures });
  }
  return sections;
}

export function runReport(run: RunDir, extras: RunExtras = {}): ReportDoc {
  return {
    title: `flatmesh run ${run.summary?.runId ?? basename(run.dir)}`,
    subtitle: run.dir,
    sections: runSections(run, extras),
  };
}

/** The mean accuracy curve of each run, overlaid, then each run's own sections. */
export function compareReport(
  runs: readonly { label: string; run: RunDir; extras?: RunExtras }[],
): ReportDoc {
  const curves = (get: 'accuracy' | 'swaAccuracy') =>
    runs.flatMap(({ label, run }) =>
      accuracySeries(run.records)[get].map(
        (b): CurveRow => ({ label, round: b.round, mean: b.mean }),
      ),
    );
  const acc = curves('accuracy');
  const swa = curves('swaAccuracy');
  const compare: Section = {
    id: 'compare',
    title: 'Runs compared',
    table: {
      header: ['run', 'nodes', 'rounds', 'accuracy', 'SWA accuracy', 'average model', 'dropped'],
      rows: runs.map(({ label, run }) => {
        const s = run.summary;
        const p = (v: number | null | undefined) => (v == null ? '-' : `${(100 * v).toFixed(1)}%`);
        return [
          label,
          String(run.config.nodes),
          String(run.config.run.rounds),
          p(s?.meanAccuracy),
          p(s?.meanSwaAccuracy),
          p(s?.accuracyOfAverageModel),
          s ? String(s.messages.dropped) : '-',
        ];
      }),
    },
    figures: [
      fig(
        '',
        'compare-accuracy',
        'Mean test accuracy, runs overlaid',
        'Mean over nodes per evaluation round.',
        compareChart(acc, 'mean test accuracy'),
        acc,
      ),
      ...(swa.length > 0
        ? [
            fig(
              '',
              'compare-swa',
              'Mean SWA accuracy, runs overlaid',
              'Mean over nodes per evaluation round.',
              compareChart(swa, 'mean SWA accuracy'),
              swa,
            ),
          ]
        : []),
    ],
  };
  return {
    title: `flatmesh: ${runs.length} runs compared`,
    subtitle: runs.map((r) => r.label).join(' | '),
    sections: [
      compare,
      ...runs.flatMap(({ run, extras }, i) =>
        runSections(run, extras ?? {}, `run${i + 1}-`).map((s) => ({
          ...s,
          title: `run ${i + 1}: ${s.title}`,
        })),
      ),
    ],
  };
}

const METRIC_LABEL: Record<string, string> = {
  meanAccuracy: 'node models',
  meanSwaAccuracy: 'SWA models',
  accuracyOfAverageModel: 'average model',
};

/** Per grid axis, the mean ± 95% CI of the accuracy figures at each of its values. */
export function axisPoints(table: SweepTable, axis: string): AxisPoint[] {
  const others = table.gridKeys.filter((k) => k !== axis);
  return table.rows.flatMap((row) =>
    Object.keys(METRIC_LABEL).flatMap((m) => {
      const d = row.stats[m as keyof typeof row.stats];
      if (!d || d.mean === null) return [];
      const ci = d.ci95 ?? 0;
      return [
        {
          value: formatValue(row.values[axis]),
          group: others.map((k) => `${k}=${formatValue(row.values[k])}`).join(', ') || 'all',
          metric: METRIC_LABEL[m]!,
          mean: d.mean,
          lo: d.mean - ci,
          hi: d.mean + ci,
          n: d.n,
        },
      ];
    }),
  );
}

/** A sweep: its table, a plot along each axis with CI bars, and each cell's curve over seeds. */
export function sweepReport(
  sweep: SweepDir,
  table: SweepTable,
  cellRuns: ReadonlyMap<string, readonly RunDir[]>,
): ReportDoc {
  const label = (values: Record<string, unknown>) =>
    Object.entries(values)
      .map(([k, v]) => `${k}=${formatValue(v)}`)
      .join(', ') || 'base';
  const pct = (v: number | null) => (v === null ? '-' : (100 * v).toFixed(1));
  const shown = SWEEP_METRICS.filter((m) => table.metrics.includes(m.name));
  const tableSection: Section = {
    id: 'table',
    title: 'Table: mean ± 95% CI over seeds',
    note: 'Each figure is the mean over the seeds with the half-width of its 95% confidence interval (Student t); accuracies in %.',
    table: {
      header: [
        ...table.gridKeys,
        'runs',
        ...shown.map((m) => m.label),
        ...(table.flatness ?? []).map(flatnessColumnLabel),
      ],
      rows: table.rows.map((r) => [
        ...table.gridKeys.map((k) => formatValue(r.values[k])),
        `${r.runs}/${table.seeds.length}`,
        ...shown.map((m) => {
          const d = r.stats[m.name];
          const isPct = m.name !== 'finalDisagreement' && m.name !== 'messages.dropped';
          const f = (v: number | null) =>
            v === null
              ? '-'
              : isPct
                ? pct(v)
                : m.name === 'messages.dropped'
                  ? v.toFixed(1)
                  : v.toPrecision(3);
          return d.mean === null
            ? '-'
            : d.ci95 === null
              ? f(d.mean)
              : `${f(d.mean)} ± ${f(d.ci95)}`;
        }),
        ...(table.flatness ?? []).map((m) => formatFigure(r.flatness?.[m])),
      ]),
    },
    figures: [],
  };
  const axes: Section = {
    id: 'axes',
    title: 'Along each axis',
    figures: table.gridKeys.map((axis) => {
      const points = axisPoints(table, axis);
      return fig(
        '',
        `axis-${axis.replace(/[^A-Za-z0-9]+/g, '-')}`,
        `Along ${axis}`,
        `Mean over seeds with 95% CI bars, one colour per value of the other axes.`,
        sweepAxisChart(points, axis),
        points,
      );
    }),
  };
  const curves: CurveRow[] = [];
  for (const cell of sweep.cells) {
    const runs = cellRuns.get(cell.key) ?? [];
    const byRound = new Map<number, number[]>();
    for (const run of runs)
      for (const b of accuracySeries(run.records).accuracy)
        byRound.set(b.round, [...(byRound.get(b.round) ?? []), b.mean]);
    for (const [round, vs] of [...byRound].sort((a, b) => a[0] - b[0]))
      curves.push({
        label: label(cell.values),
        round,
        mean: vs.reduce((s, v) => s + v, 0) / vs.length,
      });
  }
  const curveSection: Section = {
    id: 'curves',
    title: 'Cells overlaid',
    figures:
      curves.length === 0
        ? []
        : [
            fig(
              '',
              'cells-accuracy',
              'Mean test accuracy per cell',
              "Mean over nodes, then over the cell's finished seeds, per evaluation round.",
              compareChart(curves, 'mean test accuracy'),
              curves,
            ),
          ],
  };
  const finished = sweep.runs.filter((r) => r.done).length;
  return {
    title: `flatmesh sweep ${basename(sweep.dir)}`,
    subtitle: `${sweep.dir}: ${sweep.cells.length} cell(s) x ${sweep.seeds.length} seed(s) (${sweep.mode}); ${finished}/${sweep.runs.length} runs finished; grid ${sweep.gridKeys.join(', ') || '(none)'}`,
    sections: [tableSection, axes, curveSection],
  };
}
