import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { generateTopology, TOPOLOGY_KINDS } from '../../src/topology/generators.js';
import { degrees, isConnected } from '../../src/topology/graph.js';
import type { Graph } from '../../src/topology/types.js';

const degreeSet = (g: Graph) => [...new Set(degrees(g))].sort((a, b) => a - b);

describe('graph generators', () => {
  it('build the deterministic families with the right structure', () => {
    const ring = generateTopology('ring', { n: 10 }, 0);
    assert.equal(ring.edges.length, 10);
    assert.deepEqual(degreeSet(ring), [2]);
    const torus = generateTopology('torus', { n: 20, rows: 4, cols: 5 }, 0);
    assert.equal(torus.edges.length, 40);
    assert.deepEqual(degreeSet(torus), [4]);
    const grid = generateTopology('grid', { n: 12, rows: 3, cols: 4 }, 0);
    assert.equal(grid.edges.length, 3 * 3 + 2 * 4);
    assert.deepEqual(degreeSet(grid), [2, 3, 4]);
    assert.deepEqual(
      generateTopology('torus', { n: 16 }, 0).edges,
      generateTopology('torus', { n: 16, rows: 4 }, 0).edges,
    );
    const complete = generateTopology('complete', { n: 7 }, 0);
    assert.equal(complete.edges.length, 21);
    const star = generateTopology('star', { n: 8 }, 0);
    assert.deepEqual(Array.from(degrees(star)), [7, 1, 1, 1, 1, 1, 1, 1]);
    const cube = generateTopology('hypercube', { n: 32 }, 0);
    assert.deepEqual(degreeSet(cube), [5]);
    const expo = generateTopology('exponential', { n: 16 }, 0);
    // Offsets 1, 2, 4, 8: the +8 and -8 links coincide, so degree 2 + 2 + 2 + 1.
    assert.deepEqual(degreeSet(expo), [7]);
  });

  it('build connected random graphs that replay exactly from the seed', () => {
    const cases: [string, Record<string, number>][] = [
      ['erdos-renyi', { n: 30, p: 0.15 }],
      ['geometric', { n: 30, radius: 0.35 }],
      ['regular', { n: 30, k: 3 }],
      ['small-world', { n: 30, k: 4, beta: 0.3 }],
    ];
    for (const [kind, params] of cases) {
      const a = generateTopology(kind, params as { n: number }, 7);
      const b = generateTopology(kind, params as { n: number }, 7);
      const c = generateTopology(kind, params as { n: number }, 8);
      assert.equal(a.n, 30);
      assert.ok(isConnected(a.n, a.edges), kind);
      assert.deepEqual(a, b, `${kind} replays`);
      assert.notDeepEqual(a.edges, c.edges, `${kind} varies with the seed`);
    }
    assert.deepEqual(degreeSet(generateTopology('regular', { n: 30, k: 5 }, 1)), [5]);
    assert.equal(generateTopology('small-world', { n: 30, k: 4, beta: 0.3 }, 1).edges.length, 60);
    assert.equal(generateTopology('geometric', { n: 12 }, 1).positions?.length, 12);
    assert.deepEqual(
      generateTopology('er', { n: 12, p: 0.5 }, 2),
      generateTopology('erdos-renyi', { n: 12, p: 0.5 }, 2),
    );
  });

  it('resamples G(n, p) until connected, with an error naming p when it cannot', () => {
    // p = 0.08 on 40 nodes is below the connectivity threshold ln(n)/n ~ 0.092: many samples are not.
    for (let seed = 0; seed < 5; seed++) {
      const g = generateTopology('erdos-renyi', { n: 40, p: 0.08 }, seed);
      assert.ok(isConnected(g.n, g.edges));
    }
    assert.throws(
      () => generateTopology('erdos-renyi', { n: 40, p: 0.01 }, 0),
      /^TopologyError: p: .*disconnected in 1000 samples/,
    );
  });

  it('rejects bad parameters naming the field and its legal range', () => {
    const bad: [string, Record<string, number>, RegExp][] = [
      ['ring', { n: 2 }, /^n: a ring needs n >= 3/],
      ['torus', { n: 16, rows: 5 }, /^rows: rows x cols must equal n = 16/],
      ['torus', { n: 8, rows: 2, cols: 4 }, /^rows: a torus needs sides >= 3/],
      ['erdos-renyi', { n: 10, p: 1.5 }, /^p: must be in \(0, 1\] \(got 1\.5\)/],
      ['regular', { n: 9, k: 3 }, /^k: n \* k must be even/],
      ['small-world', { n: 10, k: 3 }, /^k: must be an even integer in \[2, 9\]/],
      ['small-world', { n: 10, beta: -1 }, /^beta: must be in \[0, 1\]/],
      ['hypercube', { n: 12 }, /^n: a hypercube needs n a power of two/],
      ['moebius', { n: 12 }, /^kind: must be one of ring, torus/],
      ['complete', { n: 1.5 }, /^n: must be an integer >= 2/],
    ];
    for (const [kind, params, msg] of bad) {
      assert.throws(
        () => generateTopology(kind, params as { n: number }, 0),
        (e: unknown) => e instanceof ConfigError && msg.test(e.message),
        `${kind} ${JSON.stringify(params)}`,
      );
    }
    assert.equal(TOPOLOGY_KINDS.length, 11);
  });
});
