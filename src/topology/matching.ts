/**
 * Matching decomposition (edge colouring) of a graph, the first step of MATCHA: the edges are split
 * into matchings (sets of edges sharing no node), each of which MATCHA switches on or off as a
 * unit. Bipartite graphs (even rings, tori with even sides, grids, hypercubes) get exactly
 * max_degree matchings by Kőnig's alternating-path colouring; other graphs get at most
 * max_degree + 1 by Misra–Gries. Deterministic: the same graph always gives the same matchings.
 *
 *   const ms = decomposeMatchings(graph);      // Edge[][], ordered by size (largest first)
 *   const ms2 = graphMatchings(graph);         // the file's matchings if it gave them, else ms
 */
import { adjacency, compareEdges, maxDegree, normalize } from './graph.js';
import type { Edge, Graph } from './types.js';

/** The file's explicit matchings, or a computed decomposition. */
export function graphMatchings(g: Graph): readonly (readonly Edge[])[] {
  return g.matchings ?? decomposeMatchings(g);
}

export function decomposeMatchings(g: Pick<Graph, 'n' | 'edges'>): Edge[][] {
  const delta = maxDegree(g);
  if (delta === 0) return [];
  const col = new Colouring(g.n, isBipartite(g.n, g.edges) ? delta : delta + 1);
  if (col.colours === delta) {
    for (const [u, v] of g.edges) col.konig(u, v);
  } else {
    const adj = adjacency(g.n, g.edges);
    for (const [u, v] of g.edges) col.misraGries(u, v, adj);
  }
  const classes: Edge[][] = Array.from({ length: col.colours }, () => []);
  for (const [key, c] of col.edgeColour) {
    classes[c]!.push(normalize(Math.floor(key / g.n), key % g.n));
  }
  const out = classes.filter((m) => m.length > 0);
  for (const m of out) m.sort(compareEdges);
  out.sort((a, b) => b.length - a.length || compareEdges(a[0]!, b[0]!));
  return out;
}

export function isBipartite(n: number, edges: readonly Edge[]): boolean {
  const adj = adjacency(n, edges);
  const side = new Int8Array(n).fill(-1);
  for (let s = 0; s < n; s++) {
    if (side[s] !== -1) continue;
    side[s] = 0;
    const queue = [s];
    for (let h = 0; h < queue.length; h++) {
      const v = queue[h]!;
      for (const w of adj[v]!) {
        if (side[w] === -1) {
          side[w] = 1 - side[v]!;
          queue.push(w);
        } else if (side[w] === side[v]) return false;
      }
    }
  }
  return true;
}

/** A partial proper edge colouring with `colours` colours. */
class Colouring {
  /** at[v * colours + c] = the neighbour joined to v by colour c, or -1 when c is free at v. */
  private readonly at: Int32Array;
  readonly edgeColour = new Map<number, number>();

  constructor(
    private readonly n: number,
    readonly colours: number,
  ) {
    this.at = new Int32Array(n * colours).fill(-1);
  }

  private key(u: number, v: number): number {
    return u < v ? u * this.n + v : v * this.n + u;
  }

  private free(v: number, c: number): boolean {
    return this.at[v * this.colours + c] === -1;
  }

  private firstFree(v: number): number {
    for (let c = 0; c < this.colours; c++) if (this.free(v, c)) return c;
    throw new Error(`internal: no free colour at node ${v}`);
  }

  private colourOf(u: number, v: number): number | undefined {
    return this.edgeColour.get(this.key(u, v));
  }

  private set(u: number, v: number, c: number): void {
    this.at[u * this.colours + c] = v;
    this.at[v * this.colours + c] = u;
    this.edgeColour.set(this.key(u, v), c);
  }

  private clear(u: number, v: number): void {
    const c = this.colourOf(u, v);
    if (c === undefined) return;
    this.at[u * this.colours + c] = -1;
    this.at[v * this.colours + c] = -1;
    this.edgeColour.delete(this.key(u, v));
  }

  /** Swaps colours a and b along the a/b path that starts at x with an a-edge (b is free at x). */
  private flipPath(x: number, a: number, b: number): void {
    const path: [number, number, number][] = [];
    let cur = x;
    let c = a;
    for (;;) {
      const next = this.at[cur * this.colours + c]!;
      if (next === -1) break;
      path.push([cur, next, c]);
      cur = next;
      c = c === a ? b : a;
    }
    for (const [p, q] of path) this.clear(p, q);
    for (const [p, q, pc] of path) this.set(p, q, pc === a ? b : a);
  }

  /** Kőnig: in a bipartite graph the a/b path from v never reaches u, so max_degree colours do. */
  konig(u: number, v: number): void {
    for (let c = 0; c < this.colours; c++) {
      if (this.free(u, c) && this.free(v, c)) {
        this.set(u, v, c);
        return;
      }
    }
    const a = this.firstFree(u);
    const b = this.firstFree(v);
    this.flipPath(v, a, b);
    this.set(u, v, a);
  }

  /** Misra–Gries: colours edge (u, v) with max_degree + 1 colours by a fan rotation. */
  misraGries(u: number, v: number, adj: readonly (readonly number[])[]): void {
    // Maximal fan of u starting at v: each next edge's colour is free on the previous fan vertex.
    const fan = [v];
    const inFan = new Set([v]);
    for (;;) {
      const last = fan[fan.length - 1]!;
      let added = false;
      for (const x of adj[u]!) {
        if (inFan.has(x)) continue;
        const cx = this.colourOf(u, x);
        if (cx !== undefined && this.free(last, cx)) {
          fan.push(x);
          inFan.add(x);
          added = true;
          break;
        }
      }
      if (!added) break;
    }
    const c = this.firstFree(u);
    const d = this.firstFree(fan[fan.length - 1]!);
    if (c !== d) this.flipPath(u, d, c);
    // After the flip d is free on u; find the first fan prefix ending at a vertex where d is free.
    let w = -1;
    for (let i = 0; i < fan.length && w < 0; i++) {
      if (!this.free(fan[i]!, d)) continue;
      let isFan = true;
      for (let k = 0; k < i && isFan; k++) {
        const ck = this.colourOf(u, fan[k + 1]!);
        isFan = ck !== undefined && this.free(fan[k]!, ck);
      }
      if (isFan) w = i;
    }
    if (w < 0) throw new Error(`internal: Misra-Gries found no fan vertex for edge ${u}-${v}`);
    const shifted: number[] = [];
    for (let k = 0; k < w; k++) shifted.push(this.colourOf(u, fan[k + 1]!)!);
    for (let k = 0; k < w; k++) this.clear(u, fan[k + 1]!);
    for (let k = 0; k < w; k++) this.set(u, fan[k]!, shifted[k]!);
    this.set(u, fan[w]!, d);
  }
}
