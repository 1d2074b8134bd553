import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../../src/compute/rng.js';
import { parsePartitionSpec, partitionDataset, sampleDirichlet } from '../../src/data/partition.js';
import { classHistogram } from '../../src/data/subset.js';
import type { Partition, PartitionSpec } from '../../src/data/types.js';
import { ConfigError } from '../../src/errors.js';

/** Labels with mildly unequal class sizes, in a scrambled order. */
function makeLabels(classes: number, perClass: number, seed = 9): Int32Array {
  const out: number[] = [];
  for (let c = 0; c < classes; c++) for (let i = 0; i < perClass + c * 7; i++) out.push(c);
  return Int32Array.from(Rng.from(seed, 'test-labels').shuffle(out));
}

function assertExactCover(parts: Partition, n: number): void {
  const seen = new Uint8Array(n);
  for (const p of parts) {
    assert.ok(p.length > 0, 'no node is empty');
    for (const i of p) {
      assert.ok(i >= 0 && i < n);
      assert.equal(seen[i], 0, `index ${i} assigned twice`);
      seen[i] = 1;
    }
  }
  assert.ok(
    seen.every((s) => s === 1),
    'every index assigned',
  );
}

const histOf = (p: Int32Array, labels: Int32Array, classes: number) =>
  classHistogram(
    Array.from(p, (i) => labels[i]!),
    classes,
  );

describe('parsePartitionSpec', () => {
  it('parses the legal forms', () => {
    assert.deepEqual(parsePartitionSpec('iid'), { kind: 'iid' });
    assert.deepEqual(parsePartitionSpec('dirichlet:0.1'), { kind: 'dirichlet', alpha: 0.1 });
    assert.deepEqual(parsePartitionSpec('Dirichlet:0'), { kind: 'dirichlet', alpha: 0 });
    assert.deepEqual(parsePartitionSpec('shards:2'), { kind: 'shards', k: 2 });
    assert.deepEqual(parsePartitionSpec('natural'), { kind: 'natural' });
    assert.deepEqual(parsePartitionSpec('labeldir:0.1'), { kind: 'labeldir', alpha: 0.1 });
    assert.deepEqual(parsePartitionSpec('labeldir:0.5:20'), {
      kind: 'labeldir',
      alpha: 0.5,
      minSize: 20,
    });
  });

  it('rejects bad specs with a ConfigError naming the spec and the legal forms', () => {
    for (const bad of [
      '',
      'dirichlet',
      'dirichlet:',
      'dirichlet:-1',
      'dirichlet:x',
      'shards:0',
      'shards:1.5',
      'noniid',
      'labeldir',
      'labeldir:',
      'labeldir:0',
      'labeldir:-1',
      'labeldir:x',
      'labeldir:0.1:0',
      'labeldir:0.1:2.5',
    ]) {
      assert.throws(
        () => parsePartitionSpec(bad),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.message.includes(JSON.stringify(bad)) &&
          e.message.includes("'dirichlet:<alpha >= 0>'") &&
          e.message.includes("'labeldir:<alpha > 0>[:<min size >= 1>]'"),
        bad,
      );
    }
  });
});

describe('partitionDataset', () => {
  const labels = makeLabels(10, 300);
  const n = labels.length;
  const specs: PartitionSpec[] = [
    { kind: 'iid' },
    { kind: 'dirichlet', alpha: 0 },
    { kind: 'dirichlet', alpha: 0.1 },
    { kind: 'dirichlet', alpha: 1000 },
    { kind: 'shards', k: 2 },
    { kind: 'labeldir', alpha: 0.1 },
    { kind: 'labeldir', alpha: 100 },
  ];

  it('assigns every index to exactly one node, none empty, for every kind', () => {
    for (const spec of specs) {
      for (const nodes of [1, 3, 16, 40])
        assertExactCover(partitionDataset(labels, 10, nodes, spec, 5), n);
    }
  });

  it('is deterministic in the seed', () => {
    for (const spec of specs) {
      assert.deepEqual(
        partitionDataset(labels, 10, 8, spec, 1),
        partitionDataset(labels, 10, 8, spec, 1),
      );
      if (spec.kind === 'dirichlet' && spec.alpha === 0) continue; // class->node map is fixed
      assert.notDeepEqual(
        partitionDataset(labels, 10, 8, spec, 1),
        partitionDataset(labels, 10, 8, spec, 2),
      );
    }
  });

  it('iid gives near-equal sizes', () => {
    const sizes = partitionDataset(labels, 10, 7, { kind: 'iid' }, 0).map((p) => p.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
  });

  it('dirichlet(0) gives one class per node: class i mod classes, shared classes split evenly', () => {
    for (const nodes of [10, 16, 20]) {
      const parts = partitionDataset(labels, 10, nodes, { kind: 'dirichlet', alpha: 0 }, 3);
      parts.forEach((p, i) => {
        const h = histOf(p, labels, 10);
        assert.equal(h.filter((v) => v > 0).length, 1, `node ${i} of ${nodes} has one class`);
        assert.ok(h[i % 10]! > 0, `node ${i} has class ${i % 10}`);
      });
      if (nodes === 20) {
        // Class 0 (300 samples) split between nodes 0 and 10.
        assert.equal(parts[0]!.length, 150);
        assert.equal(parts[10]!.length, 150);
      }
    }
    // Fewer nodes than classes: node i gets the classes c with c mod nodes = i.
    const parts = partitionDataset(labels, 10, 4, { kind: 'dirichlet', alpha: 0 }, 3);
    assert.deepEqual(
      parts.map((p) => histOf(p, labels, 10).flatMap((v, c) => (v > 0 ? [c] : []))),
      [
        [0, 4, 8],
        [1, 5, 9],
        [2, 6],
        [3, 7],
      ],
    );
  });

  it('dirichlet with small alpha is skewed, with large alpha near the global mix', () => {
    const share = (alpha: number) => {
      const parts = partitionDataset(labels, 10, 10, { kind: 'dirichlet', alpha }, 11);
      // Mean over nodes of the largest class's share of the node.
      return (
        parts.reduce((s, p) => s + Math.max(...histOf(p, labels, 10)) / p.length, 0) / parts.length
      );
    };
    assert.ok(share(0.05) > 0.6, `alpha 0.05 top share ${share(0.05)}`);
    assert.ok(share(1000) < 0.16, `alpha 1000 top share ${share(1000)}`);
    // And equal node sizes for alpha > 0.
    const sizes = partitionDataset(labels, 10, 6, { kind: 'dirichlet', alpha: 0.1 }, 0).map(
      (p) => p.length,
    );
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
  });

  it('labeldir: per class, a node that already holds N / nodes samples gets none of it', () => {
    for (const [nodes, alpha, seed] of [
      [16, 0.1, 1],
      [16, 0.5, 2],
      [5, 0.1, 3],
      [40, 1, 4],
    ] as const) {
      const parts = partitionDataset(labels, 10, nodes, { kind: 'labeldir', alpha }, seed);
      assertExactCover(parts, n);
      for (const [i, p] of parts.entries()) {
        // Classes are dealt in order 0..9: replay the node's size before each class.
        const h = histOf(p, labels, 10);
        let before = 0;
        for (let c = 0; c < 10; c++) {
          if (before >= n / nodes) assert.equal(h[c], 0, `node ${i} got class ${c} when full`);
          before += h[c]!;
        }
        assert.ok(p.length >= 10, `node ${i} has ${p.length} < 10 samples`);
      }
    }
  });

  it('labeldir: unequal sizes and strong skew at small alpha, near the global mix at large', () => {
    const stats = (alpha: number, seed: number) => {
      const parts = partitionDataset(labels, 10, 10, { kind: 'labeldir', alpha }, seed);
      const sizes = parts.map((p) => p.length);
      const top =
        parts.reduce((s, p) => s + Math.max(...histOf(p, labels, 10)) / p.length, 0) / parts.length;
      return { ratio: Math.max(...sizes) / Math.min(...sizes), top };
    };
    for (const seed of [1, 2, 3]) {
      const skewed = stats(0.1, seed);
      assert.ok(skewed.ratio > 3, `alpha 0.1 seed ${seed}: size ratio ${skewed.ratio}`);
      assert.ok(skewed.top > 0.6, `alpha 0.1 seed ${seed}: top share ${skewed.top}`);
      const mixed = stats(1000, seed);
      assert.ok(mixed.ratio < 1.3, `alpha 1000 seed ${seed}: size ratio ${mixed.ratio}`);
      assert.ok(mixed.top < 0.2, `alpha 1000 seed ${seed}: top share ${mixed.top}`);
    }
  });

  it('labeldir: every node reaches the minimum size, or the split is refused naming it', () => {
    for (const seed of [1, 2, 3, 4]) {
      const parts = partitionDataset(
        labels,
        10,
        16,
        { kind: 'labeldir', alpha: 0.3, minSize: 60 },
        seed,
      );
      assert.ok(Math.min(...parts.map((p) => p.length)) >= 60);
    }
    // Under 10 samples per node: the default minimum is N / nodes, rounded down.
    const few = labels.subarray(0, 60);
    for (const p of partitionDataset(few, 10, 8, { kind: 'labeldir', alpha: 0.5 }, 1))
      assert.ok(p.length >= 7);
    assert.throws(
      () => partitionDataset(few, 10, 8, { kind: 'labeldir', alpha: 0.5, minSize: 8 }, 1),
      (e: unknown) =>
        e instanceof ConfigError && /needs at least 64 samples \(got 60\)/.test(e.message),
    );
    assert.throws(
      () => partitionDataset(labels, 10, 16, { kind: 'labeldir', alpha: 0.001, minSize: 200 }, 1),
      (e: unknown) =>
        e instanceof ConfigError && /fewer than 200 samples in 1000 draws/.test(e.message),
    );
  });

  it('shards(k) gives each node k label-sorted shards', () => {
    const sorted = Int32Array.from({ length: 1000 }, (_, i) => Math.floor(i / 100));
    const parts = partitionDataset(sorted, 10, 10, { kind: 'shards', k: 2 }, 4);
    for (const p of parts) {
      assert.equal(p.length, 100);
      assert.ok(histOf(p, sorted, 10).filter((v) => v > 0).length <= 2);
    }
    assert.throws(
      () => partitionDataset(sorted.subarray(0, 15), 10, 8, { kind: 'shards', k: 2 }, 0),
      ConfigError,
    );
  });

  it('natural deals generating groups to nodes', () => {
    const groups = Int32Array.from({ length: 60 }, (_, i) => i % 6);
    const y = new Int32Array(60);
    const parts = partitionDataset(y, 1, 3, { kind: 'natural' }, 0, groups);
    assertExactCover(parts, 60);
    for (const p of parts) assert.equal(new Set(Array.from(p, (i) => groups[i])).size, 2);
    assert.throws(() => partitionDataset(y, 1, 3, { kind: 'natural' }, 0), /natural/);
    assert.throws(() => partitionDataset(y, 1, 7, { kind: 'natural' }, 0, groups), /groups \(6\)/);
  });

  it('never leaves a node empty, and rejects more nodes than samples', () => {
    // Class 1 has a single sample but two nodes share it under dirichlet(0).
    const y = Int32Array.of(0, 0, 0, 0, 0, 0, 1);
    const parts = partitionDataset(y, 2, 4, { kind: 'dirichlet', alpha: 0 }, 0);
    assertExactCover(parts, 7);
    assert.throws(
      () => partitionDataset(y, 2, 8, { kind: 'iid' }, 0),
      (e: unknown) => e instanceof ConfigError && /nodes/.test(e.message),
    );
  });
});

describe('sampleDirichlet', () => {
  it('stays a finite distribution for tiny shapes (no Gamma underflow)', () => {
    const rng = Rng.from(0, 'dir');
    let concentrated = 0;
    for (let t = 0; t < 100; t++) {
      const q = sampleDirichlet(new Array(10).fill(1e-4), rng);
      const sum = q.reduce((a, b) => a + b, 0);
      assert.ok(q.every(Number.isFinite));
      assert.ok(Math.abs(sum - 1) < 1e-9);
      if (Math.max(...q) > 0.99) concentrated++;
    }
    // Nearly every draw is one-hot; rarely two classes share the mass.
    assert.ok(concentrated >= 95, `${concentrated} of 100 draws concentrated`);
  });
});
