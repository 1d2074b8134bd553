/**
 * Checkpoints keep their run's identity (the experiment that wrote them) and survive failed writes:
 * a write that fails (a full disk, any I/O error) leaves the previous checkpoint as it was.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { CheckpointError, ExperimentMismatchError } from '../../src/errors.js';
import {
  type CheckpointFailure,
  type CheckpointState,
  CheckpointStore,
  tolerantCheckpoints,
} from '../../src/node/checkpoint.js';
import { fillUp, mountTmpfs, unmount } from '../e2e/tmpfs.js';

const state = (round: number, size = 1000): CheckpointState => ({
  runId: 'r1',
  signature: '0123456789abcdef',
  round,
  weights: Float32Array.from({ length: size }, (_, i) => i + round),
  optimizer: {},
  swa: { count: 0, mean: undefined },
  mass: 1,
  rng: {},
  extra: {},
});

const experiment = parseExperiment({ run: { seed: 1, rounds: 40 }, train: { optimizer: 'asam' } });

describe('checkpoint identity', () => {
  it('resumes under the same experiment, whatever its run directory, data directory, backend or key file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-ck-id-'));
    new CheckpointStore(dir, { experiment }).save(state(4));
    const moved = parseExperiment({
      run: { seed: 1, rounds: 40, out: '/elsewhere', id: 'renamed' },
      train: { optimizer: 'asam' },
      data: { dir: '/data' },
      backend: 'cpu',
      // Where this host keeps the key file is no part of the experiment (the roster's key
      // fingerprint is what admits a node to a private run).
      network: { psk: '/etc/flatmesh/swarm.key' },
    });
    const store = new CheckpointStore(dir, { experiment: moved });
    store.checkExperiment();
    assert.equal(store.load()!.round, 4);
  });

  it('refuses a checkpoint of another experiment, naming every field that differs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-ck-id-'));
    new CheckpointStore(dir, { experiment }).save(state(4));
    const changed = parseExperiment({
      run: { seed: 2, rounds: 20 },
      train: { optimizer: 'sgd' },
    });
    const store = new CheckpointStore(dir, { experiment: changed });
    for (const attempt of [() => store.checkExperiment(), () => store.load()]) {
      assert.throws(attempt, (e: Error) => {
        assert.ok(e instanceof ExperimentMismatchError);
        assert.deepEqual(
          e.differences.map((d) => d.path),
          ['run.rounds', 'run.seed', 'train.optimizer'],
        );
        assert.match(e.message, /run\.seed 1 -> 2/);
        assert.match(e.message, /train\.optimizer "asam" -> "sgd"/);
        assert.match(e.message, /run\.rounds 40 -> 20/);
        return true;
      });
    }
  });

  it('still reads a checkpoint written without an experiment (no check possible)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-ck-id-'));
    new CheckpointStore(dir).save(state(2));
    assert.equal(new CheckpointStore(dir, { experiment }).load()!.round, 2);
  });
});

describe('failed checkpoint writes', () => {
  it('an I/O error keeps the previous checkpoint, and the tolerant sink reports instead of throwing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flatmesh-ck-fail-'));
    const store = new CheckpointStore(dir);
    store.save(state(3));
    const before = readFileSync(store.file);
    // The temporary file's name is taken by a directory: open() fails with EISDIR, a real error.
    mkdirSync(`${store.file}.tmp-${process.pid}`);
    assert.throws(
      () => store.save(state(4)),
      (e: Error) =>
        e instanceof CheckpointError && /round 4/.test(e.message) && /EISDIR/.test(e.message),
    );
    const failures: CheckpointFailure[] = [];
    tolerantCheckpoints(store, (f) => failures.push(f)).save(state(5));
    assert.deepEqual(
      failures.map((f) => f.round),
      [5],
    );
    assert.deepEqual(readFileSync(store.file), before, 'the previous checkpoint is untouched');
    assert.equal(store.load()!.round, 3);
  });

  it('a full disk (ENOSPC on a small tmpfs) keeps the previous checkpoint and frees the partial file', (t) => {
    const mnt = mkdtempSync(join(tmpdir(), 'flatmesh-ck-enospc-'));
    // Needs root to mount; the EISDIR test above covers the same path without it.
    assert.ok(mountTmpfs(mnt, 512), `mount a tmpfs at ${mnt} (needs root)`);
    after(() => unmount(mnt));
    const store = new CheckpointStore(join(mnt, 'node'));
    store.save(state(1, 1000));
    const before = readFileSync(store.file);
    fillUp(mnt, 16);
    // 100k weights (400 KB) cannot fit in what is left.
    assert.throws(
      () => store.save(state(2, 100_000)),
      (e: Error) => e instanceof CheckpointError && /ENOSPC/.test(e.message),
    );
    t.diagnostic('real ENOSPC from a 512 KiB tmpfs');
    assert.deepEqual(readFileSync(store.file), before);
    assert.equal(store.load()!.round, 1);
    assert.deepEqual(readdirSync(join(mnt, 'node')), ['checkpoint.bin'], 'no partial file left');
  });
});
