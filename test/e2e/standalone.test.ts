/**
 * Nodes started one by one from a roster file, with no launcher: how a run spans several machines.
 * Each shows its progress and writes its end record; `flatmesh collect` merges their directories
 * into one run directory with a summary.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { collectCommand } from '../../src/cli/run.js';
import { CheckpointStore } from '../../src/node/checkpoint.js';
import { readSummary } from '../../src/run/launcher.js';
import { createRoster } from '../../src/run/roster.js';
import { readNodeEnd } from '../../src/run/summary.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

async function freePortBlock(n: number): Promise<number> {
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    const ok = await Promise.all(
      Array.from(
        { length: n },
        (_, i) =>
          new Promise<boolean>((resolve) => {
            const s = createServer();
            s.once('error', () => resolve(false));
            s.listen(base + i, '127.0.0.1', () => s.close(() => resolve(true)));
          }),
      ),
    );
    if (ok.every(Boolean)) return base;
  }
}

describe('flatmesh node from a roster file', () => {
  it('three independently started node processes find each other and finish the run; collect merges their directories', async () => {
    const out = mkdtempSync(join(tmpdir(), 'flatmesh-standalone-'));
    const basePort = await freePortBlock(3);
    const roster = await createRoster({ nodes: 3, basePort, runId: 'standalone', out });
    assert.equal(roster.nodes.length, 3);
    const cfg = join(out, 'exp.yaml');
    writeFileSync(
      cfg,
      [
        'nodes: 3',
        'run: { rounds: 6, seed: 2 }',
        'topology: { graph: complete, sampler: vanilla }',
        'model: { hidden: [16] }',
        'train: { localSteps: 3 }',
        'gossip: { deadlineMs: 10000 }',
        'eval: { every: 3 }',
        // Six rounds hold no whole SWA cycle: its last rounds would run near swa.lr2.
        'swa: { enabled: false }',
        '',
      ].join('\n'),
    );
    // Node 2 runs on "another host": its directory (with its key) is copied away from the others.
    const hostB = mkdtempSync(join(tmpdir(), 'flatmesh-standalone-b-'));
    cpSync(join(out, 'nodes', '2'), join(hostB, '2'), { recursive: true });
    const dirOf = (id: number) => (id === 2 ? join(hostB, '2') : join(out, 'nodes', String(id)));
    const stderr: string[] = [];
    const codes = await Promise.all(
      [0, 1, 2].map(
        (id) =>
          new Promise<number | null>((resolve) => {
            const child = spawn(
              process.execPath,
              [
                '--import',
                'tsx',
                MAIN,
                'node',
                '--config',
                cfg,
                '--id',
                String(id),
                '--dir',
                dirOf(id),
                '--roster',
                join(out, 'roster.json'),
                '--run-id',
                'standalone',
              ],
              { stdio: ['ignore', 'ignore', 'pipe'] },
            );
            let err = '';
            child.stderr.on('data', (d) => {
              err += String(d);
            });
            child.once('exit', (code) => {
              stderr[id] = err;
              if (code !== 0) console.error(`node ${id}: ${err}`);
              resolve(code);
            });
          }),
      ),
    );
    assert.deepEqual(codes, [0, 0, 0]);
    for (const id of [0, 1, 2]) {
      const lines = readFileSync(join(dirOf(id), 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n');
      assert.equal(lines.length, 6);
      const last = JSON.parse(lines.at(-1)!);
      assert.deepEqual(
        last.heard,
        [0, 1, 2].filter((j) => j !== id),
        'every neighbour heard in the last round',
      );
      assert.equal(new CheckpointStore(dirOf(id)).load()!.round, 5);
      // On its own a node prints its progress, and its end record.
      assert.match(stderr[id]!, new RegExp(`node ${id}: round 6/6`));
      assert.match(stderr[id]!, /end record .*end\.json/);
      const end = readNodeEnd(dirOf(id))!;
      assert.equal(end.status, 'done');
      assert.equal(end.runId, 'standalone');
      assert.equal(end.report.lastRound, 5);
    }

    const merged = join(mkdtempSync(join(tmpdir(), 'flatmesh-collected-')), 'run');
    const text = await collectCommand({ dirs: [out, join(hostB, '2')], out: merged });
    assert.match(text, /^completed: 3 nodes x 6 rounds/);
    const s = readSummary(merged);
    assert.equal(s.completed, true);
    assert.equal(s.runId, 'standalone');
    assert.deepEqual(
      s.perNode.map((n) => [n.id, n.lastRound, n.status]),
      [0, 1, 2].map((id) => [id, 5, 'ok']),
    );
    for (const n of s.perNode) assert.equal(n.accuracy, readNodeEnd(dirOf(n.id))!.report.accuracy);
    assert.ok(s.accuracyOfAverageModel! > 0.2, `average model ${s.accuracyOfAverageModel}`);
    assert.equal(s.notInAverageModel, undefined);
    assert.ok(s.messages.delivered > 0);
    for (const id of [0, 1, 2]) {
      const dir = join(merged, 'nodes', String(id));
      assert.deepEqual(
        readFileSync(join(dir, 'metrics.jsonl')),
        readFileSync(join(dirOf(id), 'metrics.jsonl')),
      );
      assert.ok(!existsSync(join(dir, 'peer.key')), 'private keys are not copied');
    }
    // The directories hold one run: collecting into the same place again is refused.
    await assert.rejects(collectCommand({ dirs: [out], out: merged }), /--out: already holds/);
  });
});
