import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CheckpointError } from '../../src/errors.js';
import { type CheckpointState, CheckpointStore } from '../../src/node/checkpoint.js';

const state = (round: number, size = 1000): CheckpointState => ({
  runId: 'r1',
  signature: '0123456789abcdef',
  round,
  weights: Float32Array.from({ length: size }, (_, i) => i * 0.5 + round),
  optimizer: { 'dense0.kernel': Float32Array.of(1, 2, 3) },
  swa: { count: 2, mean: Float64Array.from({ length: size }, (_, i) => i / 3) },
  mass: 0.75,
  rng: { trainer: [1, 2, 3, 4, 17] },
  extra: { roundsDone: round + 1 },
});

describe('checkpoint store', () => {
  it('round-trips every part of the state exactly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-ck-'));
    const store = new CheckpointStore(dir);
    assert.equal(store.load(), undefined);
    store.save(state(7));
    const back = store.load({ runId: 'r1', signature: '0123456789abcdef', size: 1000 })!;
    const want = state(7);
    assert.equal(back.round, 7);
    assert.deepEqual(back.weights, want.weights);
    assert.deepEqual(back.swa.mean, want.swa.mean);
    assert.equal(back.swa.count, 2);
    assert.deepEqual(back.optimizer['dense0.kernel'], want.optimizer['dense0.kernel']);
    assert.equal(back.mass, 0.75);
    assert.deepEqual(back.rng, want.rng);
    assert.deepEqual(back.extra, want.extra);
  });

  it('refuses a corrupt, truncated or foreign checkpoint with a CheckpointError', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-ck-'));
    const store = new CheckpointStore(dir);
    store.save(state(3));
    assert.throws(() => store.load({ runId: 'other' }), CheckpointError);
    assert.throws(() => store.load({ signature: 'ffffffffffffffff' }), CheckpointError);
    const bytes = readFileSync(store.file);
    const flipped = Buffer.from(bytes);
    flipped[200] = flipped[200]! ^ 0x40;
    writeFileSync(store.file, flipped);
    assert.throws(() => store.load(), /checksum mismatch/);
    writeFileSync(store.file, bytes.subarray(0, bytes.length - 100));
    assert.throws(() => store.load(), CheckpointError);
  });

  it('leaves the previous checkpoint intact when the writer is killed mid-write', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-ck-kill-'));
    // A child process writes 16 MB checkpoints with increasing rounds as fast as it can; we SIGKILL
    // it at several points in time, then the checkpoint on disk must always load and be whole.
    const script = `
      import { CheckpointStore } from ${JSON.stringify(new URL('../../src/node/checkpoint.ts', import.meta.url).href)};
      const store = new CheckpointStore(${JSON.stringify(dir)});
      const n = 4_000_000;
      for (let round = 0; ; round++) {
        const w = new Float32Array(n).fill(round);
        store.save({ runId: 'r', signature: 's', round, weights: w, optimizer: {}, swa: { count: 0, mean: undefined }, mass: 1, rng: {}, extra: {} });
        if (round === 0) process.stdout.write('first\\n');
      }`;
    for (const delay of [30, 120, 350]) {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      await sleep(delay);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const ck = new CheckpointStore(dir).load();
      assert.ok(ck, 'a checkpoint exists');
      assert.equal(ck.weights.length, 4_000_000);
      assert.ok(
        ck.weights.every((v) => v === ck.round),
        `checkpoint of round ${ck.round} is whole`,
      );
    }
    assert.deepEqual(
      readdirSync(dir),
      ['checkpoint.bin'],
      'the killed writer left no temporary file behind',
    );
  });
});
