import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { TopologyError } from '../../src/errors.js';
import {
  loadTopologyFile,
  parseTopology,
  serializeTopology,
  topologyJsonSchema,
} from '../../src/topology/format.js';
import { generateTopology } from '../../src/topology/generators.js';
import { matchaReference, shipped } from './helpers.js';

function rejects(json: unknown, field: string, pattern: RegExp): void {
  assert.throws(
    () => parseTopology(json),
    (e: unknown) => {
      assert.ok(e instanceof TopologyError, `expected TopologyError, got ${String(e)}`);
      assert.equal(e.name, 'TopologyError');
      assert.equal(e.field, field);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

const square = {
  nodes: 4,
  edges: [
    [0, 1],
    [1, 2],
    [2, 3],
    [3, 0],
  ],
};

describe('topology file format', () => {
  it('parses a file and normalizes edges (u < v, sorted), keeping matching order', () => {
    const g = parseTopology({
      ...square,
      matchings: [
        [
          [1, 2],
          [3, 0],
        ],
        [
          [1, 0],
          [2, 3],
        ],
      ],
    });
    assert.equal(g.n, 4);
    assert.deepEqual(g.edges, [
      [0, 1],
      [0, 3],
      [1, 2],
      [2, 3],
    ]);
    assert.deepEqual(g.matchings, [
      [
        [0, 3],
        [1, 2],
      ],
      [
        [0, 1],
        [2, 3],
      ],
    ]);
  });

  it('names the field and the fault of each malformed file', () => {
    rejects(
      {
        ...square,
        edges: [
          [0, 1],
          [2, 2],
          [1, 2],
          [2, 3],
          [0, 3],
        ],
      },
      'edges[1]',
      /self-loop at node 2/,
    );
    rejects(
      { ...square, edges: [...square.edges, [1, 0]] },
      'edges[4]',
      /duplicate edge 0-1 \(already edges\[0\]\)/,
    );
    rejects(
      {
        ...square,
        edges: [
          [0, 1],
          [1, 7],
        ],
      },
      'edges[1][1]',
      /node 7 out of range: nodes are 0\.\.3/,
    );
    rejects(
      {
        nodes: 5,
        edges: [
          [0, 1],
          [2, 3],
          [3, 4],
        ],
      },
      'edges',
      /disconnected: 3 node\(s\) unreachable from node 0 \(2, 3, 4\)/,
    );
    rejects(
      {
        ...square,
        matchings: [
          [
            [0, 1],
            [1, 2],
          ],
          [
            [2, 3],
            [0, 3],
          ],
        ],
      },
      'matchings[0]',
      /not a matching: edges \[0,1\] and \[1,2\] share node 1/,
    );
    rejects(
      {
        ...square,
        matchings: [
          [
            [0, 1],
            [2, 3],
          ],
        ],
      },
      'matchings',
      /do not cover the edges: 2 edge\(s\) in no matching \(0-3, 1-2\)/,
    );
    rejects(
      { ...square, matchings: [[[0, 2]], [[0, 1]]] },
      'matchings[0][0]',
      /edge 0-2 is not an edge of the graph/,
    );
    rejects(
      {
        ...square,
        matchings: [
          [
            [0, 1],
            [2, 3],
          ],
          [
            [1, 2],
            [0, 1],
          ],
          [[0, 3]],
        ],
      },
      'matchings[1][1]',
      /already in matchings\[0\]/,
    );
    rejects({ ...square, nodes: 1 }, 'nodes', /Too small/);
    rejects({ ...square, edges: [[0, 'a']] }, 'edges[0][1]', /expected number/);
    rejects({ ...square, node: 4 }, '(root)', /Unrecognized key: "node"/);
    rejects({ ...square, positions: [[0, 0]] }, 'positions', /must list 4/);
  });

  it('names the file in errors from loadTopologyFile', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-topo-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({
        nodes: 3,
        edges: [
          [0, 1],
          [1, 1],
        ],
      }),
    );
    assert.throws(
      () => loadTopologyFile(bad),
      /edges\[1\]: self-loop at node 1 \(in .*bad\.json\)/,
    );
    writeFileSync(bad, '{ nodes: 3');
    assert.throws(() => loadTopologyFile(bad), /not valid JSON/);
    assert.throws(() => loadTopologyFile(join(dir, 'missing.json')), /cannot read topology file/);
  });

  it('round-trips through serializeTopology', () => {
    for (const g of [
      generateTopology('torus', { n: 16, rows: 4, cols: 4 }, 0),
      generateTopology('geometric', { n: 20 }, 3),
      parseTopology({
        ...square,
        names: ['a', 'b', 'c', 'd'],
        matchings: [
          [
            [0, 1],
            [2, 3],
          ],
          [
            [1, 2],
            [0, 3],
          ],
        ],
      }),
    ]) {
      assert.deepEqual(parseTopology(JSON.parse(serializeTopology(g, { name: 'x' }))), {
        ...g,
        ...(g.positions
          ? {
              positions: g.positions.map((p) => [
                Math.round(p[0] * 1e6) / 1e6,
                Math.round(p[1] * 1e6) / 1e6,
              ]),
            }
          : {}),
      });
    }
  });

  it('ships a JSON schema identical to the one generated from the validator', () => {
    const file = JSON.parse(readFileSync(shipped('topology.schema.json'), 'utf8'));
    assert.deepEqual(file, topologyJsonSchema());
  });
});

describe('shipped topologies', () => {
  const generated: [string, string, Record<string, number>, number][] = [
    ['ring-8.json', 'ring', { n: 8 }, 0],
    ['ring-16.json', 'ring', { n: 16 }, 0],
    ['torus-4x4.json', 'torus', { n: 16, rows: 4, cols: 4 }, 0],
    ['complete-8.json', 'complete', { n: 8 }, 0],
    ['star-8.json', 'star', { n: 8 }, 0],
    ['er-32.json', 'erdos-renyi', { n: 32, p: 0.2 }, 1],
  ];
  for (const [file, kind, params, seed] of generated) {
    it(`${file} loads and is what its generator record reproduces`, () => {
      const g = loadTopologyFile(shipped(file));
      const json = JSON.parse(readFileSync(shipped(file), 'utf8'));
      assert.deepEqual(json.generator, { kind, seed, params });
      assert.deepEqual(g.edges, generateTopology(kind, params as { n: number }, seed).edges);
    });
  }

  it('matcha-er-8.json holds the reference graph and its matchings in the reference order', () => {
    const ref = matchaReference();
    const g = loadTopologyFile(shipped('matcha-er-8.json'));
    const norm = (e: readonly number[]) => [Math.min(e[0]!, e[1]!), Math.max(e[0]!, e[1]!)];
    const sortE = (es: number[][]) => es.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
    assert.equal(g.n, ref.n_nodes);
    assert.deepEqual(g.edges, sortE(ref.edges.map(norm)));
    assert.deepEqual(
      g.matchings,
      ref.matchings.map((m) => sortE(m.map(norm))),
    );
  });
});
