import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadTopologyFile } from '../../src/topology/format.js';
import { generateTopology } from '../../src/topology/generators.js';
import { checkMatchings, maxDegree } from '../../src/topology/graph.js';
import { decomposeMatchings, graphMatchings, isBipartite } from '../../src/topology/matching.js';
import type { Graph } from '../../src/topology/types.js';
import { shipped } from './helpers.js';

function assertDecomposition(g: Graph, bound: number): void {
  const ms = decomposeMatchings(g);
  // checkMatchings throws unless every matching is vertex-disjoint and they cover each edge once.
  checkMatchings(g.n, g.edges, ms);
  assert.ok(ms.length <= bound, `${ms.length} matchings > bound ${bound}`);
  assert.deepEqual(decomposeMatchings(g), ms, 'deterministic');
}

describe('matching decomposition', () => {
  it('splits bipartite graphs into exactly max_degree matchings', () => {
    for (const g of [
      generateTopology('ring', { n: 16 }, 0),
      generateTopology('torus', { n: 16, rows: 4, cols: 4 }, 0),
      generateTopology('grid', { n: 20, rows: 4, cols: 5 }, 0),
      generateTopology('hypercube', { n: 64 }, 0),
      generateTopology('star', { n: 9 }, 0),
    ]) {
      assert.ok(isBipartite(g.n, g.edges));
      assertDecomposition(g, maxDegree(g));
      assert.equal(decomposeMatchings(g).length, maxDegree(g));
    }
    // The 16-ring of the design note: its two perfect matchings of alternate edges.
    const ring = decomposeMatchings(generateTopology('ring', { n: 16 }, 0));
    assert.equal(ring.length, 2);
    assert.deepEqual(
      ring.map((m) => m.length),
      [8, 8],
    );
  });

  it('uses at most max_degree + 1 matchings on general graphs (Misra-Gries)', () => {
    const graphs: Graph[] = [
      generateTopology('ring', { n: 15 }, 0),
      generateTopology('complete', { n: 9 }, 0),
      generateTopology('complete', { n: 10 }, 0),
      generateTopology('exponential', { n: 24 }, 0),
    ];
    for (let seed = 0; seed < 25; seed++) {
      graphs.push(
        generateTopology('erdos-renyi', { n: 12 + seed, p: 0.15 + (seed % 5) * 0.1 }, seed),
      );
      graphs.push(generateTopology('regular', { n: 20, k: 3 + (seed % 4) * 2 }, seed));
      graphs.push(generateTopology('geometric', { n: 25 }, seed));
    }
    for (const g of graphs) assertDecomposition(g, maxDegree(g) + 1);
  });

  it('uses the file matchings when the file gives them', () => {
    const g = loadTopologyFile(shipped('matcha-er-8.json'));
    assert.equal(graphMatchings(g), g.matchings);
    assert.equal(graphMatchings(g).length, 5);
  });
});
