/**
 * A node process started by a launcher reads its shard and the launcher's derived plan instead of
 * decoding, partitioning and optimizing again: it must end up with exactly the same run context.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { initBackend } from '../../src/compute/backend.js';
import { parseExperiment } from '../../src/config/index.js';
import { subset } from '../../src/data/index.js';
import { prepareRun, testShardFile, writeDerived, writeRunShards } from '../../src/node/build.js';

const cfg = parseExperiment({
  nodes: 5,
  run: { seed: 4 },
  topology: { graph: 'er', budget: 0.4 },
  data: { partition: 'dirichlet:0.5' },
  model: { hidden: [8] },
  eval: { limit: 50 },
  faults: { loss: { p: 0.2 } },
});

describe('prepared runs (launcher shards)', () => {
  it('a node reading the shards has the same data, plan and model layout as one deriving them', async () => {
    await initBackend({ prefer: 'cpu' });
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-prepared-'));
    const full = await prepareRun(cfg, 'r');
    await writeRunShards(full, dir);
    writeDerived(dir, full);
    for (const id of [0, 3]) {
      const node = await prepareRun(cfg, 'r', { only: id, shards: dir });
      const alone = await prepareRun(cfg, 'r', { only: id });
      for (const k of ['graph', 'plan', 'signature', 'size', 'layout'] as const) {
        assert.deepEqual(node[k], full[k], k);
        assert.deepEqual(node[k], alone[k], k);
      }
      const mine = subset(full.data.train, full.partition[id]!);
      assert.deepEqual(node.data.train.x, mine.x);
      assert.deepEqual(node.data.train.y, mine.y);
      assert.equal(node.partition[id]!.length, mine.count);
      assert.deepEqual(node.test.y, full.test.y);
      assert.equal(node.test.count, 50);
    }
  });

  it('the nodes of one process share one capped test set (launch --nodes-per-process)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-prepared-shared-'));
    const full = await prepareRun(cfg, 'r');
    await writeRunShards(full, dir);
    writeDerived(dir, full);
    const a = await prepareRun(cfg, 'r', { only: 0, shards: dir });
    const b = await prepareRun(cfg, 'r', { only: 2, shards: dir });
    assert.equal(a.test.count, 50);
    assert.equal(a.test, b.test);
    // Another limit is another set, of its own size.
    const wider = parseExperiment({ ...cfg, eval: { ...cfg.eval, limit: 60 } });
    const c = await prepareRun(wider, 'r', { only: 0, shards: dir });
    assert.equal(c.test.count, 60);
    assert.deepEqual(c.test.y.subarray(0, 50), a.test.y);
  });

  it('reads the test set only when it is first used', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-prepared-lazy-'));
    const full = await prepareRun(cfg, 'r');
    await writeRunShards(full, dir);
    writeDerived(dir, full);
    const node = await prepareRun(cfg, 'r', { only: 1, shards: dir });
    // Replaced after start-up: the node must read the file as it is at its first evaluation.
    rmSync(testShardFile(dir));
    assert.throws(() => node.test, /cannot read shard/);
    writeFileSync(testShardFile(dir), 'not a shard');
    assert.throws(() => node.test, /not a flatmesh shard/);
  });
});
