/**
 * Graph generators. Random kinds draw from `Rng.from(seed, 'topology-gen', kind, attempt)` and are
 * resampled (attempt 0, 1, ...) until the graph is connected, so the same (kind, params, seed)
 * always gives the same graph.
 *
 *   generateTopology('ring', { n: 16 }, 0);
 *   generateTopology('torus', { n: 16, rows: 4, cols: 4 }, 0);
 *   generateTopology('erdos-renyi', { n: 32, p: 0.2 }, 1);
 *
 * Kinds and parameters (defaults in brackets):
 *   ring            n >= 3
 *   torus, grid     rows x cols = n [rows = largest divisor of n <= sqrt(n)]; torus sides >= 3
 *   complete, star  n >= 2 (star: node 0 is the hub)
 *   erdos-renyi|er  p in (0, 1] [min(1, 2 ln(n) / n)]
 *   geometric       radius > 0 [min(1.5, 1.5 sqrt(ln(n) / (pi n)))]: n uniform points in the unit
 *                   square, an edge when closer than radius
 *   regular         k in [1, n-1], n k even [3, or 4 when n is odd]
 *   small-world|watts-strogatz   k even in [2, n-1] [4], beta in [0, 1] [0.1]
 *   hypercube       n a power of two
 *   exponential     node i links to i + 2^b mod n for every 2^b < n
 */
import { Rng } from '../compute/rng.js';
import { ConfigError, TopologyError } from '../errors.js';
import { isConnected, makeGraph, normalize } from './graph.js';
import type { Edge, Graph } from './types.js';

export interface GeneratorParams {
  readonly n: number;
  readonly p?: number;
  readonly k?: number;
  readonly radius?: number;
  readonly beta?: number;
  readonly rows?: number;
  readonly cols?: number;
}

export const TOPOLOGY_KINDS = [
  'ring',
  'torus',
  'grid',
  'complete',
  'star',
  'erdos-renyi',
  'geometric',
  'regular',
  'small-world',
  'hypercube',
  'exponential',
] as const;

export type TopologyKind = (typeof TOPOLOGY_KINDS)[number];

const ALIASES: Record<string, TopologyKind> = {
  er: 'erdos-renyi',
  'watts-strogatz': 'small-world',
  ws: 'small-world',
  rgg: 'geometric',
};

/** Resampling cap for the random kinds before giving up on connectivity. */
const MAX_ATTEMPTS = 1000;

export function canonicalKind(kind: string): TopologyKind {
  const k = ALIASES[kind] ?? kind;
  if (!(TOPOLOGY_KINDS as readonly string[]).includes(k)) {
    throw new ConfigError('kind', `must be one of ${TOPOLOGY_KINDS.join(', ')}`, kind);
  }
  return k as TopologyKind;
}

export function generateTopology(kind: string, params: GeneratorParams, seed: number): Graph {
  const k = canonicalKind(kind);
  const n = params.n;
  if (!Number.isInteger(n) || n < 2) throw new ConfigError('n', 'must be an integer >= 2', n);
  if (!Number.isInteger(seed)) throw new ConfigError('seed', 'must be an integer', seed);
  switch (k) {
    case 'ring': {
      if (n < 3) throw new ConfigError('n', 'a ring needs n >= 3', n);
      const edges = range(n).map((i) => normalize(i, (i + 1) % n));
      return makeGraph(n, edges, { positions: circle(n) });
    }
    case 'torus':
    case 'grid':
      return lattice(n, params, k === 'torus');
    case 'complete': {
      const edges: Edge[] = [];
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) edges.push([i, j]);
      return makeGraph(n, edges, { positions: circle(n) });
    }
    case 'star': {
      const positions: [number, number][] = [[0, 0], ...circle(n - 1)];
      return makeGraph(
        n,
        range(n - 1).map((i) => [0, i + 1] as const),
        { positions },
      );
    }
    case 'erdos-renyi': {
      const p = params.p ?? Math.min(1, (2 * Math.log(n)) / n);
      if (!(p > 0 && p <= 1)) throw new ConfigError('p', 'must be in (0, 1]', p);
      return resample(
        k,
        seed,
        'p',
        (rng) => {
          const edges: Edge[] = [];
          for (let i = 0; i < n; i++)
            for (let j = i + 1; j < n; j++) if (rng.bernoulli(p)) edges.push([i, j]);
          return { edges };
        },
        n,
      );
    }
    case 'geometric': {
      const r = params.radius ?? Math.min(1.5, 1.5 * Math.sqrt(Math.log(n) / (Math.PI * n)));
      if (!(r > 0)) throw new ConfigError('radius', 'must be > 0', r);
      return resample(
        k,
        seed,
        'radius',
        (rng) => {
          const pts = range(n).map(() => [rng.float(), rng.float()] as [number, number]);
          const edges: Edge[] = [];
          for (let i = 0; i < n; i++) {
            for (let j = i + 1; j < n; j++) {
              if (Math.hypot(pts[i]![0] - pts[j]![0], pts[i]![1] - pts[j]![1]) <= r)
                edges.push([i, j]);
            }
          }
          return { edges, positions: pts };
        },
        n,
      );
    }
    case 'regular': {
      const deg = params.k ?? (n % 2 === 0 ? 3 : 4);
      if (!Number.isInteger(deg) || deg < 1 || deg >= n) {
        throw new ConfigError('k', `must be an integer in [1, ${n - 1}]`, deg);
      }
      if ((n * deg) % 2 !== 0) throw new ConfigError('k', `n * k must be even (n = ${n})`, deg);
      if (deg === 1 && n > 2)
        throw new ConfigError('k', 'a 1-regular graph on more than 2 nodes is disconnected', deg);
      return resample(k, seed, 'k', (rng) => ({ edges: randomRegular(n, deg, rng) }), n);
    }
    case 'small-world': {
      const deg = params.k ?? 4;
      const beta = params.beta ?? 0.1;
      if (!Number.isInteger(deg) || deg < 2 || deg % 2 !== 0 || deg >= n) {
        throw new ConfigError('k', `must be an even integer in [2, ${n - 1}]`, deg);
      }
      if (!(beta >= 0 && beta <= 1)) throw new ConfigError('beta', 'must be in [0, 1]', beta);
      return resample(k, seed, 'beta', (rng) => ({ edges: wattsStrogatz(n, deg, beta, rng) }), n);
    }
    case 'hypercube': {
      const d = Math.log2(n);
      if (!Number.isInteger(d)) throw new ConfigError('n', 'a hypercube needs n a power of two', n);
      const edges: Edge[] = [];
      for (let i = 0; i < n; i++)
        for (let b = 0; b < d; b++) if (!(i & (1 << b))) edges.push([i, i | (1 << b)]);
      return makeGraph(n, edges, { positions: circle(n) });
    }
    case 'exponential': {
      const set = new Map<number, Edge>();
      for (let i = 0; i < n; i++) {
        for (let h = 1; h < n; h *= 2) {
          const e = normalize(i, (i + h) % n);
          set.set(e[0] * n + e[1], e);
        }
      }
      return makeGraph(n, [...set.values()], { positions: circle(n) });
    }
    default: {
      const never: never = k;
      throw new ConfigError('kind', 'unknown', never);
    }
  }
}

function lattice(n: number, params: GeneratorParams, wrap: boolean): Graph {
  let rows = params.rows;
  let cols = params.cols;
  if (rows === undefined && cols === undefined) {
    rows = 1;
    for (let r = 1; r * r <= n; r++) if (n % r === 0) rows = r;
  }
  rows ??= n / cols!;
  cols ??= n / rows;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows * cols !== n) {
    throw new ConfigError('rows', `rows x cols must equal n = ${n}`, `${rows} x ${cols}`);
  }
  const min = wrap ? 3 : 1;
  if (rows < min || cols < min) {
    throw new ConfigError(
      rows < min ? 'rows' : 'cols',
      `a ${wrap ? 'torus' : 'grid'} needs sides >= ${min}`,
      Math.min(rows, cols),
    );
  }
  const id = (r: number, c: number) => r * cols! + c;
  const edges: Edge[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (c + 1 < cols || wrap) edges.push(normalize(id(r, c), id(r, (c + 1) % cols)));
      if (r + 1 < rows || wrap) edges.push(normalize(id(r, c), id((r + 1) % rows, c)));
    }
  }
  const positions = range(n).map((i) => [i % cols!, Math.floor(i / cols!)] as [number, number]);
  return makeGraph(n, edges, { positions });
}

function resample(
  kind: string,
  seed: number,
  field: string,
  draw: (rng: Rng) => { edges: Edge[] | undefined; positions?: [number, number][] },
  n: number,
): Graph {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const { edges, positions } = draw(Rng.from(seed, 'topology-gen', kind, attempt));
    if (edges && isConnected(n, edges)) return makeGraph(n, edges, positions ? { positions } : {});
  }
  throw new TopologyError(
    field,
    `${kind} graph on ${n} nodes was disconnected in ${MAX_ATTEMPTS} samples; make it denser`,
  );
}

/** Random k-regular graph by random stub pairing that avoids loops and repeats; undefined if stuck. */
function randomRegular(n: number, k: number, rng: Rng): Edge[] | undefined {
  const stubs: number[] = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) stubs.push(i);
  const has = new Set<number>();
  const edges: Edge[] = [];
  while (stubs.length > 0) {
    let paired = false;
    for (let tries = 0; tries < 100 && !paired; tries++) {
      const i = rng.int(stubs.length);
      const j = rng.int(stubs.length);
      const a = stubs[i]!;
      const b = stubs[j]!;
      if (i === j || a === b) continue;
      const e = normalize(a, b);
      if (has.has(e[0] * n + e[1])) continue;
      has.add(e[0] * n + e[1]);
      edges.push(e);
      // Remove the two stubs (higher index first so the lower stays valid).
      for (const idx of [Math.max(i, j), Math.min(i, j)]) {
        stubs[idx] = stubs[stubs.length - 1]!;
        stubs.pop();
      }
      paired = true;
    }
    if (!paired) return undefined;
  }
  return edges;
}

function wattsStrogatz(n: number, k: number, beta: number, rng: Rng): Edge[] {
  const has = new Set<number>();
  const key = (e: Edge) => e[0] * n + e[1];
  for (let i = 0; i < n; i++)
    for (let j = 1; j <= k / 2; j++) has.add(key(normalize(i, (i + j) % n)));
  for (let j = 1; j <= k / 2; j++) {
    for (let i = 0; i < n; i++) {
      if (!rng.bernoulli(beta)) continue;
      const old = normalize(i, (i + j) % n);
      if (!has.has(key(old))) continue;
      // Rewire i's end to a uniform node that is neither i nor already a neighbour of i.
      const w = rng.int(n);
      const e = normalize(i, w);
      if (w === i || has.has(key(e))) continue;
      has.delete(key(old));
      has.add(key(e));
    }
  }
  return [...has].map((x) => [Math.floor(x / n), x % n] as const);
}

/** n points on the unit circle (drawing positions). */
export function circle(n: number): [number, number][] {
  return range(n).map((i) => {
    const a = (2 * Math.PI * i) / n - Math.PI / 2;
    return [Math.cos(a), Math.sin(a)];
  });
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
