/**
 * Graph construction and the structural checks every graph passes before use: edges normalized
 * (u < v, sorted), no self-loops, no duplicates, nodes in range, connected, and explicit matchings
 * that really are matchings and cover the edges exactly once. Errors name the field and the fault.
 *
 *   const g = makeGraph(4, [[0, 1], [2, 1], [2, 3]]);   // edges normalized to [[0,1],[1,2],[2,3]]
 *   degrees(g);        // Int32Array [1, 2, 2, 1]
 *   maxDegree(g);      // 2
 */
import { TopologyError } from '../errors.js';
import type { Edge, Graph } from './types.js';

export interface GraphExtras {
  readonly matchings?: readonly (readonly (readonly [number, number])[])[];
  readonly names?: readonly string[];
  readonly positions?: readonly (readonly [number, number])[];
}

/**
 * Builds and validates a graph. `field` prefixes error paths (e.g. the file's field names), so a
 * message reads `edges[3]: self-loop at node 2`.
 */
export function makeGraph(
  n: number,
  rawEdges: readonly (readonly [number, number])[],
  extras: GraphExtras = {},
): Graph {
  if (!Number.isInteger(n) || n < 2) {
    throw new TopologyError('nodes', `must be an integer >= 2 (got ${n})`);
  }
  const seen = new Map<number, number>();
  const edges: Edge[] = [];
  rawEdges.forEach((e, i) => {
    const [a, b] = e;
    checkNode(a, n, `edges[${i}][0]`);
    checkNode(b, n, `edges[${i}][1]`);
    if (a === b) throw new TopologyError(`edges[${i}]`, `self-loop at node ${a}`);
    const edge = normalize(a, b);
    const key = edge[0] * n + edge[1];
    const prev = seen.get(key);
    if (prev !== undefined) {
      throw new TopologyError(
        `edges[${i}]`,
        `duplicate edge ${edge[0]}-${edge[1]} (already edges[${prev}])`,
      );
    }
    seen.set(key, i);
    edges.push(edge);
  });
  edges.sort(compareEdges);
  const unreachable = unreachableFrom0(n, edges);
  if (unreachable.length > 0) {
    const shown = unreachable.slice(0, 8).join(', ') + (unreachable.length > 8 ? ', ...' : '');
    throw new TopologyError(
      'edges',
      `graph is disconnected: ${unreachable.length} node(s) unreachable from node 0 (${shown})`,
    );
  }
  const graph: { -readonly [K in keyof Graph]: Graph[K] } = { n, edges };
  if (extras.names !== undefined) {
    if (extras.names.length !== n) {
      throw new TopologyError(
        'names',
        `must list ${n} names, one per node (got ${extras.names.length})`,
      );
    }
    graph.names = [...extras.names];
  }
  if (extras.positions !== undefined) {
    if (extras.positions.length !== n) {
      throw new TopologyError(
        'positions',
        `must list ${n} [x, y] positions, one per node (got ${extras.positions.length})`,
      );
    }
    extras.positions.forEach((p, i) => {
      if (!Number.isFinite(p[0]) || !Number.isFinite(p[1])) {
        throw new TopologyError(`positions[${i}]`, 'must be two finite numbers');
      }
    });
    graph.positions = extras.positions.map((p) => [p[0], p[1]] as const);
  }
  if (extras.matchings !== undefined) graph.matchings = checkMatchings(n, edges, extras.matchings);
  return graph;
}

/**
 * Checks that `matchings` are vertex-disjoint within each matching, use only graph edges, use each
 * edge once and cover all edges. Returns them normalized (edges u < v, sorted within a matching;
 * the order of the matchings is kept because the per-round schedule draws in that order).
 */
export function checkMatchings(
  n: number,
  edges: readonly Edge[],
  matchings: readonly (readonly (readonly [number, number])[])[],
): Edge[][] {
  const inGraph = new Set(edges.map((e) => e[0] * n + e[1]));
  const usedBy = new Map<number, number>();
  const out: Edge[][] = [];
  matchings.forEach((m, j) => {
    if (m.length === 0) throw new TopologyError(`matchings[${j}]`, 'is empty');
    const owner = new Map<number, number>();
    const norm: Edge[] = [];
    m.forEach((e, i) => {
      const [a, b] = e;
      const f = `matchings[${j}][${i}]`;
      checkNode(a, n, `${f}[0]`);
      checkNode(b, n, `${f}[1]`);
      if (a === b) throw new TopologyError(f, `self-loop at node ${a}`);
      const edge = normalize(a, b);
      const key = edge[0] * n + edge[1];
      if (!inGraph.has(key)) {
        throw new TopologyError(f, `edge ${edge[0]}-${edge[1]} is not an edge of the graph`);
      }
      const prev = usedBy.get(key);
      if (prev !== undefined) {
        throw new TopologyError(
          f,
          `edge ${edge[0]}-${edge[1]} is already in matchings[${prev}] (each edge belongs to one matching)`,
        );
      }
      for (const v of edge) {
        const other = owner.get(v);
        if (other !== undefined) {
          throw new TopologyError(
            `matchings[${j}]`,
            `is not a matching: edges [${m[other]![0]},${m[other]![1]}] and [${a},${b}] share node ${v}`,
          );
        }
        owner.set(v, i);
      }
      usedBy.set(key, j);
      norm.push(edge);
    });
    norm.sort(compareEdges);
    out.push(norm);
  });
  const missing = edges.filter((e) => !usedBy.has(e[0] * n + e[1]));
  if (missing.length > 0) {
    const shown = missing
      .slice(0, 6)
      .map((e) => `${e[0]}-${e[1]}`)
      .join(', ');
    throw new TopologyError(
      'matchings',
      `do not cover the edges: ${missing.length} edge(s) in no matching (${shown}${missing.length > 6 ? ', ...' : ''})`,
    );
  }
  return out;
}

export function normalize(a: number, b: number): Edge {
  return a < b ? [a, b] : [b, a];
}

export function compareEdges(x: Edge, y: Edge): number {
  return x[0] - y[0] || x[1] - y[1];
}

export function degrees(g: Pick<Graph, 'n' | 'edges'>): Int32Array {
  const d = new Int32Array(g.n);
  for (const [a, b] of g.edges) {
    d[a]! += 1;
    d[b]! += 1;
  }
  return d;
}

export function maxDegree(g: Pick<Graph, 'n' | 'edges'>): number {
  return degrees(g).reduce((m, x) => Math.max(m, x), 0);
}

/** Sorted neighbour lists. */
export function adjacency(n: number, edges: readonly Edge[]): number[][] {
  const adj: number[][] = Array.from({ length: n }, () => []);
  for (const [a, b] of edges) {
    adj[a]!.push(b);
    adj[b]!.push(a);
  }
  for (const l of adj) l.sort((x, y) => x - y);
  return adj;
}

export function isConnected(n: number, edges: readonly Edge[]): boolean {
  return unreachableFrom0(n, edges).length === 0;
}

function unreachableFrom0(n: number, edges: readonly Edge[]): number[] {
  const adj = adjacency(n, edges);
  const seen = new Uint8Array(n);
  const stack = [0];
  seen[0] = 1;
  while (stack.length > 0) {
    const v = stack.pop()!;
    for (const w of adj[v]!) {
      if (!seen[w]) {
        seen[w] = 1;
        stack.push(w);
      }
    }
  }
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (!seen[i]) out.push(i);
  return out;
}

function checkNode(v: number, n: number, field: string): void {
  if (!Number.isInteger(v) || v < 0 || v >= n) {
    throw new TopologyError(field, `node ${v} out of range: nodes are 0..${n - 1}`);
  }
}
