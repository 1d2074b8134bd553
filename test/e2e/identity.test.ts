/**
 * Runs keep their identity: two launches in the same second get two directories, a launch into an
 * existing run directory changes no file, and a run (or a node) resumed under a different
 * experiment is refused with the fields that differ.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { nodeCommand } from '../../src/cli/run.js';
import { parseExperiment } from '../../src/config/index.js';
import { ExperimentMismatchError } from '../../src/errors.js';
import { launch } from '../../src/run/launcher.js';
import { START_TIMEOUT, snapshot } from './helpers.js';

const experiment = {
  nodes: 2,
  run: { rounds: 2, seed: 7 },
  topology: { graph: 'complete', sampler: 'vanilla' },
  model: { hidden: [8] },
  train: { localSteps: 2 },
  gossip: { deadlineMs: 5000 },
  checkpoint: { every: 1 },
  backend: 'wasm',
};

const metricsLines = (dir: string, node: number) =>
  readFileSync(join(dir, 'nodes', String(node), 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n');

describe('run identity (real processes)', () => {
  it('two launches started in the same second get two run ids and two directories; a launch into an existing directory is refused untouched, and a changed experiment is refused on resume', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'flatmesh-e2e-identity-'));
    process.chdir(cwd);
    const cfg = parseExperiment(experiment);
    const [a, b] = await Promise.all([
      launch(cfg, { progress: false, startTimeoutMs: START_TIMEOUT }),
      launch(cfg, { progress: false, startTimeoutMs: START_TIMEOUT }),
    ]);
    assert.notEqual(a.runId, b.runId);
    const second = (id: string) => /^run-(\d{8}-\d{6})-s7-[0-9a-f]{6}$/.exec(id)?.[1];
    assert.ok(second(a.runId) && second(b.runId), `${a.runId} ${b.runId}`);
    assert.equal(second(a.runId), second(b.runId), 'started in the same second');
    assert.deepEqual(readdirSync(join(cwd, 'runs')).sort(), [a.runId, b.runId].sort());
    for (const s of [a, b]) {
      assert.equal(s.completed, true);
      const dir = join(cwd, 'runs', s.runId);
      // Each run's records are its own: one line per round, none of the other run's.
      for (const node of [0, 1]) assert.equal(metricsLines(dir, node).length, 2);
      assert.equal(JSON.parse(readFileSync(join(dir, 'roster.json'), 'utf8')).runId, s.runId);
    }

    const dir = join(cwd, 'runs', a.runId);
    const before = snapshot(dir);
    // A new launch into it, with or without changes: refused, not a byte written.
    await assert.rejects(launch(cfg, { out: dir, progress: false }), /--out: already holds files/);
    const changed = parseExperiment({
      ...experiment,
      run: { rounds: 3, seed: 8 },
      train: { localSteps: 2, optimizer: 'sgd' },
    });
    await assert.rejects(
      launch(changed, { out: dir, progress: false, startTimeoutMs: START_TIMEOUT, resume: true }),
      (e: Error) => {
        assert.ok(e instanceof ExperimentMismatchError, String(e));
        assert.deepEqual(
          e.differences.map((d) => d.path),
          ['run.rounds', 'run.seed', 'train.optimizer'],
        );
        return true;
      },
    );
    // A node re-run by hand in its directory under a changed experiment: refused at once.
    const changedFile = join(cwd, 'changed.json');
    writeFileSync(
      changedFile,
      JSON.stringify({ ...experiment, run: { rounds: 2, seed: 9, id: a.runId } }),
    );
    await assert.rejects(
      nodeCommand({
        config: changedFile,
        id: 0,
        dir: join(dir, 'nodes', '0'),
        roster: join(dir, 'roster.json'),
      }),
      (e: Error) =>
        e instanceof ExperimentMismatchError &&
        /run\.seed 7 -> 9/.test(e.message) &&
        e.differences.length === 1,
    );
    assert.deepEqual(snapshot(dir), before, 'no file of the run changed');

    // The same experiment resumes: every node is past its last round, so no round is re-run.
    const resumed = await launch(cfg, {
      out: dir,
      progress: false,
      startTimeoutMs: START_TIMEOUT,
      resume: true,
    });
    assert.equal(resumed.completed, true);
    assert.equal(resumed.runId, a.runId);
    for (const node of [0, 1]) {
      assert.equal(metricsLines(dir, node).length, 2);
      const log = readFileSync(join(dir, 'nodes', String(node), 'node.log'), 'utf8');
      assert.match(log, /resumed from checkpoint of round 1/);
    }
  });
});
