/**
 * Partitioners: split a training set's sample indices over nodes, seeded, so that every sample goes
 * to exactly one node and no node is empty.
 *
 * - `iid`: a seeded permutation cut into near-equal parts (sizes differ by at most one).
 * - `dirichlet:<alpha>`: label skew as in Hsu et al. 2019 and FedSAM's splits: node i's class mix
 *   is q_i ~ Dirichlet(alpha * p), p the overall class frequencies; every node gets the same
 *   number of samples (floor or ceil of N / nodes), each drawn from the classes by q_i; once all
 *   of a node's drawn classes are used up, its mix is re-drawn from Dirichlet(alpha * r), r the
 *   frequencies of what is left. Small alpha
 *   gives one or two classes per node, large alpha (1000) nearly the global mix. alpha = 0 is
 *   exactly one class per node: with nodes >= classes node i gets class i mod classes, and the
 *   nodes sharing a class split it evenly; with fewer nodes than classes node i gets the classes
 *   c with c mod nodes = i.
 * - `labeldir:<alpha>[:<min>]`: the per-class Dirichlet split of NIID-Bench (Li, Diao, Chen, He,
 *   *Federated Learning on Non-IID Data Silos: An Experimental Study*, ICDE 2022, "noniid-labeldir")
 *   and FedML, which most decentralized-learning papers use. For each class in turn, its samples
 *   are shuffled and cut among the nodes in proportions p ~ Dirichlet(alpha, ..., alpha), except
 *   that a node that already holds N / nodes samples or more gets none of this class (the
 *   proportions of the others are renormalized). Node sizes are unequal. If some node ends with
 *   fewer than `min` samples (default 10, NIID-Bench's, or N / nodes if smaller), the whole split
 *   is drawn again (at most 1000 times). alpha > 0.
 *   `dirichlet:<alpha>` above is a different split: equal node sizes, a class mix per node.
 * - `shards:<k>`: sort by label, cut into nodes * k equal shards, give each node k random shards
 *   (McMahan et al. 2017); each node then has at most k classes (more if a shard straddles two).
 * - `natural`: data sets with generating groups (synthetic's devices): groups are dealt to nodes
 *   round-robin in a seeded order.
 *
 * Minimum size: iid, dirichlet (alpha > 0) and shards give every node floor(N / nodes) samples or
 * more (shards: floor(N / (nodes * k)) * k); labeldir gives every node at least its `min`. dirichlet:0 and natural follow the classes' and
 * groups' sizes; should a node still be empty (a class with fewer samples than the nodes sharing
 * it), it takes one sample from the currently largest node. Fewer samples than nodes is a
 * ConfigError.
 *
 *   const parts = partitionDataset(train.y, 10, 16, parsePartitionSpec('dirichlet:0.1'), seed);
 */
import { Rng } from '../compute/rng.js';
import { ConfigError } from '../errors.js';
import type { Partition, PartitionSpec } from './types.js';

const LEGAL =
  "'iid', 'dirichlet:<alpha >= 0>', 'labeldir:<alpha > 0>[:<min size >= 1>]', 'shards:<k >= 1>' or 'natural'";

/** NIID-Bench's minimum node size for `labeldir`, and how often a split is redrawn to reach it. */
export const LABELDIR_MIN_SIZE = 10;
const LABELDIR_ATTEMPTS = 1000;

export function parsePartitionSpec(s: string, field = 'partition'): PartitionSpec {
  const t = s.trim().toLowerCase();
  if (t === 'iid') return { kind: 'iid' };
  if (t === 'natural') return { kind: 'natural' };
  const ld = /^labeldir:([^:]+)(?::(.+))?$/.exec(t);
  if (ld) {
    const alpha = Number(ld[1]);
    const min = ld[2] === undefined ? undefined : Number(ld[2]);
    if (
      Number.isFinite(alpha) &&
      alpha > 0 &&
      (min === undefined || (Number.isInteger(min) && min >= 1))
    )
      return { kind: 'labeldir', alpha, ...(min !== undefined && { minSize: min }) };
    throw new ConfigError(field, `must be ${LEGAL}`, s);
  }
  const m = /^(dirichlet|shards):(.+)$/.exec(t);
  if (m) {
    const v = Number(m[2]);
    if (m[1] === 'dirichlet' && Number.isFinite(v) && v >= 0 && m[2]!.trim() !== '') {
      return { kind: 'dirichlet', alpha: v };
    }
    if (m[1] === 'shards' && Number.isInteger(v) && v >= 1) return { kind: 'shards', k: v };
  }
  throw new ConfigError(field, `must be ${LEGAL}`, s);
}

export function formatPartitionSpec(p: PartitionSpec): string {
  switch (p.kind) {
    case 'iid':
    case 'natural':
      return p.kind;
    case 'dirichlet':
      return `dirichlet:${p.alpha}`;
    case 'labeldir':
      return p.minSize === undefined ? `labeldir:${p.alpha}` : `labeldir:${p.alpha}:${p.minSize}`;
    case 'shards':
      return `shards:${p.k}`;
    default: {
      const never: never = p;
      return never;
    }
  }
}

export function partitionDataset(
  labels: Int32Array,
  classes: number,
  nodes: number,
  spec: PartitionSpec,
  seed: number,
  groups?: Int32Array,
): Partition {
  const n = labels.length;
  if (!Number.isInteger(nodes) || nodes < 1)
    throw new ConfigError('nodes', 'must be an integer >= 1', nodes);
  if (n < nodes) {
    throw new ConfigError('nodes', `must be at most the number of training samples (${n})`, nodes);
  }
  if (!Number.isInteger(classes) || classes < 1)
    throw new ConfigError('classes', 'must be an integer >= 1', classes);
  for (let i = 0; i < n; i++) {
    const c = labels[i]!;
    if (!(c >= 0 && c < classes))
      throw new RangeError(`label ${c} at index ${i} is outside [0, ${classes})`);
  }
  const rng = Rng.from(seed, 'partition');
  let parts: number[][];
  switch (spec.kind) {
    case 'iid':
      parts = cut(Array.from(rng.permutation(n)), nodes);
      break;
    case 'dirichlet':
      parts =
        spec.alpha === 0
          ? oneClassPerNode(labels, classes, nodes, rng)
          : dirichlet(labels, classes, nodes, spec.alpha, rng);
      break;
    case 'labeldir':
      parts = labelDirichlet(labels, classes, nodes, spec.alpha, spec.minSize, rng);
      break;
    case 'shards':
      parts = shards(labels, nodes, spec.k, rng);
      break;
    case 'natural':
      parts = natural(groups, n, nodes, rng);
      break;
    default: {
      const never: never = spec;
      throw new ConfigError('partition', `must be ${LEGAL}`, never);
    }
  }
  fillEmpty(parts);
  return parts.map((p) => Int32Array.from(p).sort());
}

/** Cut `items` into `k` consecutive near-equal parts. */
function cut(items: number[], k: number): number[][] {
  return Array.from({ length: k }, (_, i) =>
    items.slice(Math.floor((i * items.length) / k), Math.floor(((i + 1) * items.length) / k)),
  );
}

/** Indices of each class, each list in a seeded random order. */
function byClass(labels: Int32Array, classes: number, rng: Rng): number[][] {
  const pools: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < labels.length; i++) pools[labels[i]!]!.push(i);
  for (const p of pools) rng.shuffle(p);
  return pools;
}

function oneClassPerNode(labels: Int32Array, classes: number, nodes: number, rng: Rng): number[][] {
  const pools = byClass(labels, classes, rng);
  const parts: number[][] = Array.from({ length: nodes }, () => []);
  if (nodes >= classes) {
    for (let c = 0; c < classes; c++) {
      const sharers: number[] = [];
      for (let i = c; i < nodes; i += classes) sharers.push(i);
      cut(pools[c]!, sharers.length).forEach((chunk, j) => parts[sharers[j]!]!.push(...chunk));
    }
  } else {
    for (let c = 0; c < classes; c++) parts[c % nodes]!.push(...pools[c]!);
  }
  return parts;
}

/**
 * A Dirichlet draw as normalized Gamma variates, computed in log space: for the tiny shapes of a
 * strongly skewed split, Gamma(a < 1) samples underflow to 0 in plain arithmetic.
 */
export function sampleDirichlet(shapes: readonly number[], rng: Rng): number[] {
  const logs = shapes.map((a) => {
    if (a <= 0) return Number.NEGATIVE_INFINITY;
    if (a >= 1) return Math.log(rng.gamma(a));
    // Gamma(a) = Gamma(a + 1) * U^(1/a)
    let u = rng.float();
    while (u === 0) u = rng.float();
    return Math.log(rng.gamma(a + 1)) + Math.log(u) / a;
  });
  const max = Math.max(...logs);
  const w = logs.map((l) => Math.exp(l - max));
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / sum);
}

function dirichlet(
  labels: Int32Array,
  classes: number,
  nodes: number,
  alpha: number,
  rng: Rng,
): number[][] {
  const n = labels.length;
  const pools = byClass(labels, classes, rng.fork('pools'));
  const prior = pools.map((p) => p.length / n);
  const drawRng = rng.fork('mix');
  const q = Array.from({ length: nodes }, () =>
    sampleDirichlet(
      prior.map((p) => alpha * p),
      drawRng,
    ),
  );
  // One slot per sample a node will receive; filling them in random order spreads the effect of
  // classes running out over all nodes instead of the last ones.
  const slots: number[] = [];
  for (let i = 0; i < nodes; i++) {
    const size = Math.floor(((i + 1) * n) / nodes) - Math.floor((i * n) / nodes);
    for (let s = 0; s < size; s++) slots.push(i);
  }
  const fillRng = rng.fork('fill');
  fillRng.shuffle(slots);
  const parts: number[][] = Array.from({ length: nodes }, () => []);
  const remaining = pools.map((p) => p.length);
  for (const i of slots) {
    let total = 0;
    for (let c = 0; c < classes; c++) if (remaining[c]! > 0) total += q[i]![c]!;
    if (!(total > 1e-6)) {
      // The classes this node drew are used up (what is left of its mix is below 1e-6, often
      // denormal-small): re-draw its mix over the classes left, weighted by what is left. Spreading the leftovers evenly instead would hand the one class that no
      // node drew to every node and undo the skew.
      const left = remaining.reduce((a, b) => a + b, 0);
      q[i] = sampleDirichlet(
        remaining.map((r) => (alpha * r) / left),
        drawRng,
      );
      total = 1;
    }
    const qi = q[i]!;
    let u = fillRng.float() * total;
    let c = 0;
    for (; c < classes; c++) {
      if (remaining[c]! <= 0) continue;
      u -= qi[c]!;
      if (u < 0) break;
    }
    if (c === classes) c = remaining.findLastIndex((r) => r > 0); // float round-off at the end
    remaining[c]! -= 1;
    parts[i]!.push(pools[c]![remaining[c]!]!);
  }
  return parts;
}

function labelDirichlet(
  labels: Int32Array,
  classes: number,
  nodes: number,
  alpha: number,
  minSize: number | undefined,
  rng: Rng,
): number[][] {
  const n = labels.length;
  const min = minSize ?? Math.min(LABELDIR_MIN_SIZE, Math.floor(n / nodes));
  if (min * nodes > n) {
    throw new ConfigError(
      'partition',
      `labeldir minimum size ${min} over ${nodes} nodes needs at least ${min * nodes} samples (got ${n})`,
    );
  }
  const full = n / nodes;
  const concentration = new Array<number>(nodes).fill(alpha);
  for (let attempt = 0; attempt < LABELDIR_ATTEMPTS; attempt++) {
    const draw = rng.fork('attempt', attempt);
    const parts: number[][] = Array.from({ length: nodes }, () => []);
    for (const pool of byClass(labels, classes, draw.fork('pools'))) {
      // A node holding its even share already takes no more: sizes stay within reach of N / nodes.
      const open = parts.map((part) => part.length < full);
      let p = sampleDirichlet(concentration, draw).map((q, i) => (open[i] ? q : 0));
      // Every open node's share can underflow to 0 at a tiny alpha: then the open nodes share evenly.
      if (!(p.reduce((x, y) => x + y, 0) > 0)) p = open.map((o) => (o ? 1 : 0));
      const total = p.reduce((x, y) => x + y, 0);
      // Cut the class at the cumulative proportions, rounded down; the last node with a share
      // takes the rest (so a closed node gets exactly nothing, whatever the float round-off).
      const last = p.findLastIndex((q) => q > 0);
      let from = 0;
      let acc = 0;
      for (let i = 0; i <= last; i++) {
        acc += p[i]!;
        const to = i === last ? pool.length : Math.floor((acc / total) * pool.length);
        for (let s = from; s < to; s++) parts[i]!.push(pool[s]!);
        from = Math.max(from, to);
      }
    }
    if (parts.every((part) => part.length >= min)) return parts;
  }
  throw new ConfigError(
    'partition',
    `labeldir:${alpha} gave some node fewer than ${min} samples in ${LABELDIR_ATTEMPTS} draws; raise alpha, lower the minimum (labeldir:${alpha}:<min>) or use fewer nodes`,
  );
}

function shards(labels: Int32Array, nodes: number, k: number, rng: Rng): number[][] {
  const n = labels.length;
  if (n < nodes * k) {
    throw new ConfigError(
      'partition',
      `shards:${k} over ${nodes} nodes needs at least ${nodes * k} samples (got ${n})`,
    );
  }
  // Shuffle, then stable-sort by label: shards are label-sorted runs with random members.
  const order = Array.from(rng.permutation(n)).sort((a, b) => labels[a]! - labels[b]!);
  const pieces = cut(order, nodes * k);
  const deal = rng.permutation(nodes * k);
  return Array.from({ length: nodes }, (_, i) => {
    const mine: number[] = [];
    for (let j = 0; j < k; j++) mine.push(...pieces[deal[i * k + j]!]!);
    return mine;
  });
}

function natural(groups: Int32Array | undefined, n: number, nodes: number, rng: Rng): number[][] {
  if (!groups || groups.length !== n) {
    throw new ConfigError(
      'partition',
      "'natural' needs a data set with generating groups (synthetic)",
      'natural',
    );
  }
  const count = groups.reduce((a, g) => Math.max(a, g + 1), 0);
  if (count < nodes) {
    throw new ConfigError(
      'nodes',
      `'natural' partition needs at most as many nodes as groups (${count})`,
      nodes,
    );
  }
  const owner = new Int32Array(count);
  rng.permutation(count).forEach((g, j) => {
    owner[g] = j % nodes;
  });
  const parts: number[][] = Array.from({ length: nodes }, () => []);
  for (let i = 0; i < n; i++) parts[owner[groups[i]!]!]!.push(i);
  return parts;
}

/** Give each empty node one sample from the currently largest node (see the header). */
function fillEmpty(parts: number[][]): void {
  for (const p of parts) {
    if (p.length > 0) continue;
    const largest = parts.reduce((a, b) => (b.length > a.length ? b : a));
    p.push(largest.pop()!);
  }
}
