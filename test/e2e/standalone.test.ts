/**
 * Nodes started one by one from a roster file, with no launcher: how a run spans several machines.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CheckpointStore } from '../../src/node/checkpoint.js';
import { createRoster } from '../../src/run/roster.js';

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
  it('three independently started node processes find each other and finish the run', async () => {
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
        '',
      ].join('\n'),
    );
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
                join(out, 'nodes', String(id)),
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
              if (code !== 0) console.error(`node ${id}: ${err}`);
              resolve(code);
            });
          }),
      ),
    );
    assert.deepEqual(codes, [0, 0, 0]);
    for (const id of [0, 1, 2]) {
      const lines = readFileSync(join(out, 'nodes', String(id), 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n');
      assert.equal(lines.length, 6);
      const last = JSON.parse(lines.at(-1)!);
      assert.deepEqual(
        last.heard,
        [0, 1, 2].filter((j) => j !== id),
        'every neighbour heard in the last round',
      );
      assert.equal(new CheckpointStore(join(out, 'nodes', String(id))).load()!.round, 5);
    }
  });
});
