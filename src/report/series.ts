/**
 * Reducers: a run's records -> the series its figures draw. Pure functions of the records (and
 * of the experiment or topology where a figure needs them), so the report, the tests and a live
 * view all get the same numbers. `records[i]` is node i's round records as read from disk; a
 * round a restarted node repeated counts once, with its last record (run-dir.ts's roundsOf).
 *
 *   const run = readRunDir(dir);
 *   const acc = accuracySeries(run.records, run.summary);
 *   acc.accuracy.at(-1)?.mean === run.summary?.meanAccuracy;
 */
import type { Experiment } from '../config/schema.js';
import type { MatchaPlan } from '../topology/types.js';
import type { MessageCounts, RoundRecord, RunSummary } from './records.js';
import { roundsOf } from './run-dir.js';

/** Mean, min and max over the nodes that have a value in one round. */
export interface Band {
  round: number;
  mean: number;
  min: number;
  max: number;
  /** Nodes with a value this round. */
  n: number;
}

const finite = (v: number | null | undefined): v is number =>
  typeof v === 'number' && Number.isFinite(v);

/** Per round, the band of `get` over nodes (rounds where no node has a value are left out). */
export function bands(
  records: readonly (readonly RoundRecord[])[],
  get: (r: RoundRecord) => number | null | undefined,
): Band[] {
  const byRound = new Map<number, number[]>();
  for (const node of records) {
    for (const r of roundsOf(node)) {
      const v = get(r);
      if (!finite(v)) continue;
      const vs = byRound.get(r.round);
      if (vs) vs.push(v);
      else byRound.set(r.round, [v]);
    }
  }
  return [...byRound.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([round, vs]) => ({
      round,
      mean: vs.reduce((s, v) => s + v, 0) / vs.length,
      min: Math.min(...vs),
      max: Math.max(...vs),
      n: vs.length,
    }));
}

/** In-run flatness (analysis.flatness): λmax and the trace of node and SWA models per round. */
export interface FlatnessSeries {
  lambdaMax: Band[];
  swaLambdaMax: Band[];
  trace: Band[];
  swaTrace: Band[];
}

export const flatnessSeries = (records: readonly (readonly RoundRecord[])[]): FlatnessSeries => ({
  lambdaMax: bands(records, (r) => r.flatness?.model.lambdaMax),
  swaLambdaMax: bands(records, (r) => r.flatness?.swa?.lambdaMax),
  trace: bands(records, (r) => r.flatness?.model.trace),
  swaTrace: bands(records, (r) => r.flatness?.swa?.trace),
});

export interface AccuracySeries {
  accuracy: Band[];
  swaAccuracy: Band[];
  testLoss: Band[];
  trainLoss: Band[];
  /** The average of the final node models (summary.json), at the last round. */
  averageModel: { round: number; accuracy: number } | null;
  /** Rounds at which some node added its model to its SWA average. */
  swaCollections: number[];
}

export function accuracySeries(
  records: readonly (readonly RoundRecord[])[],
  summary?: RunSummary,
): AccuracySeries {
  const collections = new Set<number>();
  for (const node of records) {
    let count = 0;
    for (const r of roundsOf(node)) {
      if (r.swaCount > count) collections.add(r.round);
      count = r.swaCount;
    }
  }
  const last = summary ? summary.rounds - 1 : undefined;
  return {
    accuracy: bands(records, (r) => r.accuracy),
    swaAccuracy: bands(records, (r) => r.swaAccuracy),
    testLoss: bands(records, (r) => r.testLoss),
    trainLoss: bands(records, (r) => r.trainLoss),
    averageModel:
      summary && last !== undefined && finite(summary.accuracyOfAverageModel)
        ? { round: last, accuracy: summary.accuracyOfAverageModel }
        : null,
    swaCollections: [...collections].sort((a, b) => a - b),
  };
}

/** Consensus distance per round: each node's mean RMS distance to the neighbours it heard. */
export const consensusSeries = (records: readonly (readonly RoundRecord[])[]): Band[] =>
  bands(records, (r) => r.disagreement);

/** Every message fate a round record counts, in the order the figures stack them. */
export const FATES = [
  'delivered',
  'dropped',
  'failed',
  'lost',
  'missing',
  'late',
  'rejected',
] as const satisfies readonly (keyof MessageCounts)[];
export type Fate = (typeof FATES)[number];

export interface FateCount {
  round: number;
  fate: Fate;
  count: number;
}

/** Per round and fate, the count summed over nodes (zero counts left out). */
export function messageFates(records: readonly (readonly RoundRecord[])[]): FateCount[] {
  const byRound = new Map<number, Record<Fate, number>>();
  for (const node of records) {
    for (const r of roundsOf(node)) {
      let row = byRound.get(r.round);
      if (!row) {
        row = Object.fromEntries(FATES.map((f) => [f, 0])) as Record<Fate, number>;
        byRound.set(r.round, row);
      }
      for (const f of FATES) row[f] += r.messages[f];
    }
  }
  return [...byRound.entries()]
    .sort((a, b) => a[0] - b[0])
    .flatMap(([round, row]) =>
      FATES.filter((f) => row[f] > 0).map((fate) => ({ round, fate, count: row[fate] })),
    );
}

export interface LinkDelivery {
  from: number;
  to: number;
  sent: number;
  delivered: number;
  /** delivered / sent */
  rate: number;
}

/** Per directed link, the share of the sender's frames that reached the receiver. */
export function linkDelivery(records: readonly (readonly RoundRecord[])[]): LinkDelivery[] {
  const links = new Map<string, LinkDelivery>();
  for (const node of records) {
    for (const r of roundsOf(node)) {
      for (const [peer, c] of Object.entries(r.byNeighbour)) {
        if (c.sent === 0) continue;
        const key = `${r.node}>${peer}`;
        let l = links.get(key);
        if (!l) {
          l = { from: r.node, to: Number(peer), sent: 0, delivered: 0, rate: 0 };
          links.set(key, l);
        }
        l.sent += c.sent;
        l.delivered += c.delivered;
      }
    }
  }
  return [...links.values()]
    .map((l) => ({ ...l, rate: l.delivered / l.sent }))
    .sort((a, b) => a.from - b.from || a.to - b.to);
}

export interface EdgeLoss {
  /** `a-b` with a < b. */
  edge: string;
  a: number;
  b: number;
  sent: number;
  /** Frames sent either way that did not arrive: dropped by a fault or failed on the network. */
  lost: number;
  rate: number;
}

/** The undirected edges by the frames they lost, most first (ties: lower edge first). */
export function lossiestEdges(records: readonly (readonly RoundRecord[])[], top = 10): EdgeLoss[] {
  const edges = new Map<string, EdgeLoss>();
  for (const node of records) {
    for (const r of roundsOf(node)) {
      for (const [peer, c] of Object.entries(r.byNeighbour)) {
        if (c.sent === 0) continue;
        const a = Math.min(r.node, Number(peer));
        const b = Math.max(r.node, Number(peer));
        const edge = `${a}-${b}`;
        let e = edges.get(edge);
        if (!e) {
          e = { edge, a, b, sent: 0, lost: 0, rate: 0 };
          edges.set(edge, e);
        }
        e.sent += c.sent;
        e.lost += c.dropped + c.failed;
      }
    }
  }
  return [...edges.values()]
    .map((e) => ({ ...e, rate: e.lost / e.sent }))
    .sort((x, y) => y.lost - x.lost || x.a - y.a || x.b - y.b)
    .slice(0, top);
}

export interface MatchingActivity {
  matching: number;
  /** MATCHA's activation probability (after loss-aware adjustment, as the run used it). */
  probability: number;
  /** Share of the rounds in which the matching was switched on. */
  observed: number;
  rounds: number;
}

/**
 * How often each matching was on. A matching is on in a round when its first edge is among the
 * active neighbours that an endpoint recorded (every edge of a matching switches together);
 * rounds where neither endpoint left a record are not counted.
 */
export function matchingActivity(
  records: readonly (readonly RoundRecord[])[],
  plan: Pick<MatchaPlan, 'matchings' | 'probabilities'>,
): MatchingActivity[] {
  const byNode = records.map((node) => new Map(roundsOf(node).map((r) => [r.round, r])));
  return plan.matchings.map((m, j) => {
    let on = 0;
    let rounds = 0;
    const first = m[0];
    if (first) {
      const [u, v] = first;
      const seen = new Set([...(byNode[u]?.keys() ?? []), ...(byNode[v]?.keys() ?? [])]);
      for (const k of seen) {
        const ru = byNode[u]?.get(k);
        const rv = byNode[v]?.get(k);
        rounds++;
        if (ru ? ru.neighbours.includes(v) : rv?.neighbours.includes(u)) on++;
      }
    }
    return {
      matching: j,
      probability: plan.probabilities[j] ?? 0,
      observed: rounds === 0 ? 0 : on / rounds,
      rounds,
    };
  });
}

/** The phases of a round, as the time figure splits it (exchange without its wait). */
export const PHASES = ['train', 'exchange', 'wait', 'mix', 'eval', 'checkpoint'] as const;
export type Phase = (typeof PHASES)[number];

export interface PhaseTime {
  node: number;
  phase: Phase;
  /** Mean over the node's rounds, in ms. */
  ms: number;
}

export interface RoundTime {
  node: number;
  round: number;
  ms: number;
}

export function phaseSplit(r: RoundRecord): Record<Phase, number> {
  const p = r.phases;
  return {
    train: p.trainMs,
    exchange: Math.max(0, p.exchangeMs - p.waitMs),
    wait: p.waitMs,
    mix: p.mixMs,
    eval: p.evalMs,
    checkpoint: p.checkpointMs,
  };
}

/** Each node's mean time per phase, and every node-round's whole round time. */
export function phaseTimes(records: readonly (readonly RoundRecord[])[]): {
  perNode: PhaseTime[];
  perRound: RoundTime[];
} {
  const perNode: PhaseTime[] = [];
  const perRound: RoundTime[] = [];
  for (const node of records) {
    const rs = roundsOf(node);
    if (rs.length === 0) continue;
    const sums = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
    for (const r of rs) {
      const split = phaseSplit(r);
      for (const p of PHASES) sums[p] += split[p];
      perRound.push({ node: r.node, round: r.round, ms: r.phases.roundMs });
    }
    for (const p of PHASES) perNode.push({ node: rs[0]!.node, phase: p, ms: sums[p] / rs.length });
  }
  return { perNode, perRound };
}

export type FaultKind =
  | 'crash'
  | 'down'
  | 'join'
  | 'leave'
  | 'partition'
  | 'straggler'
  | 'byzantine'
  | 'loss'
  | 'delay'
  | 'bandwidth';

export interface FaultMark {
  node: number;
  /** First and last round (inclusive) the fault covers. */
  from: number;
  to: number;
  kind: FaultKind;
  /** What the records counted (e.g. frames dropped), or 0 for a fault of the experiment plan. */
  count: number;
  detail: string;
}

/**
 * Faults on a node x round grid: those the experiment planned (crashes and the rounds down until
 * the restart, joins, leaves, partitions, stragglers, byzantine nodes) and those the records
 * counted round by round (messages dropped by loss or a partition, delays, bandwidth waits).
 */
export function faultTimeline(
  records: readonly (readonly RoundRecord[])[],
  cfg: Pick<Experiment, 'nodes' | 'run' | 'faults'>,
): FaultMark[] {
  const last = cfg.run.rounds - 1;
  const f = cfg.faults;
  const marks: FaultMark[] = [];
  for (const c of f.crashes) {
    marks.push({ node: c.node, from: c.round, to: c.round, kind: 'crash', count: 0, detail: '' });
    const back = c.restartAfter === undefined ? last : Math.min(last, c.round + c.restartAfter);
    if (back > c.round)
      marks.push({
        node: c.node,
        from: c.round + 1,
        to: back,
        kind: 'down',
        count: 0,
        detail: c.restartAfter === undefined ? 'no restart' : `restart after ${c.restartAfter}`,
      });
  }
  for (const j of f.joins)
    marks.push({ node: j.node, from: j.round, to: j.round, kind: 'join', count: 0, detail: '' });
  for (const l of f.leaves)
    marks.push({ node: l.node, from: l.round, to: last, kind: 'leave', count: 0, detail: '' });
  for (const p of f.partitions)
    p.groups.forEach((g, gi) => {
      for (const node of g)
        marks.push({
          node,
          from: p.from,
          to: Math.min(last, p.to - 1),
          kind: 'partition',
          count: 0,
          detail: `group ${gi + 1} of ${p.groups.length}`,
        });
    });
  for (const s of f.stragglers)
    marks.push({
      node: s.node,
      from: 0,
      to: last,
      kind: 'straggler',
      count: 0,
      detail: `x${s.factor}`,
    });
  for (const b of f.byzantine)
    marks.push({
      node: b.node,
      from: 0,
      to: last,
      kind: 'byzantine',
      count: 0,
      detail: b.behaviour,
    });
  // Counted per round: which kinds are message faults (the others are drawn from the plan above).
  const counted: Record<string, FaultKind> = {
    loss: 'loss',
    partition: 'partition',
    delay: 'delay',
    bandwidth: 'bandwidth',
  };
  const planned = new Set(f.partitions.length > 0 ? ['partition'] : []);
  for (const node of records) {
    for (const r of roundsOf(node)) {
      for (const [k, n] of Object.entries(r.faults)) {
        const kind = counted[k];
        if (!kind || planned.has(kind) || n === 0) continue;
        marks.push({ node: r.node, from: r.round, to: r.round, kind, count: n, detail: k });
      }
    }
  }
  return marks;
}

export interface NodeFinal {
  node: number;
  accuracy: number | null;
  swaAccuracy: number | null;
}

/** Each node's final accuracy (summary.json, else its last evaluated record). */
export function finalAccuracies(
  records: readonly (readonly RoundRecord[])[],
  summary?: RunSummary,
): NodeFinal[] {
  return records.map((node, i) => {
    const o = summary?.perNode.find((p) => p.id === i);
    if (o) return { node: i, accuracy: o.accuracy, swaAccuracy: o.swaAccuracy };
    const rs = roundsOf(node);
    const lastEval = [...rs].reverse().find((r) => finite(r.accuracy));
    const lastSwa = [...rs].reverse().find((r) => finite(r.swaAccuracy));
    return {
      node: i,
      accuracy: lastEval?.accuracy ?? null,
      swaAccuracy: lastSwa?.swaAccuracy ?? null,
    };
  });
}

export interface ClassCount {
  node: number;
  class: number;
  count: number;
}

/** A node x class histogram (from the partition of the run's data) as rows. */
export const classCounts = (hist: readonly (readonly number[])[]): ClassCount[] =>
  hist.flatMap((row, node) => row.map((count, c) => ({ node, class: c, count })));
