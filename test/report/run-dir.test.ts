import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { RecordsError } from '../../src/errors.js';
import { parseMetrics, readRunDir, roundsOf } from '../../src/report/run-dir.js';
import { simulate } from '../../src/run/simulate.js';

describe('run directory reader', () => {
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flatmesh-rundir-'));
    const cfg = parseExperiment({
      nodes: 3,
      run: { rounds: 4, seed: 2 },
      topology: { graph: 'ring' },
      model: { hidden: [8] },
      train: { localSteps: 1 },
      eval: { every: 2, limit: 100 },
    });
    await simulate(cfg, { out: dir });
  });

  it('reads the experiment, summary and every node record of a simulator run', () => {
    const run = readRunDir(dir);
    assert.equal(run.config.nodes, 3);
    assert.deepEqual(run.config, run.summary?.config);
    assert.deepEqual(run.nodes, [0, 1, 2]);
    assert.deepEqual(
      run.records.map((rs) => rs.map((r) => r.round)),
      [0, 1, 2].map(() => [0, 1, 2, 3]),
    );
    assert.equal(run.records[1]![0]!.node, 1);
    assert.equal(run.skippedLines, 0);
    assert.equal(run.roster, undefined);
    // The simulator keeps each node's last checkpoint (for the flatness analysis).
    assert.equal(run.checkpointFile(0), join(dir, 'nodes', '0', 'checkpoint.bin'));
    assert.equal(run.checkpointFile(5), undefined);
  });

  it('skips a last line cut by a kill, and keeps a record appended to a cut line', () => {
    const file = join(dir, 'nodes', '0', 'metrics.jsonl');
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    const last = lines[lines.length - 1]!;
    appendFileSync(file, last.slice(0, 40));
    let run = readRunDir(dir);
    assert.equal(run.records[0]!.length, 4);
    assert.equal(run.skippedLines, 1);
    // The node restarted and wrote round 3 again after the cut line.
    const again = { ...JSON.parse(last), trainLoss: 0.125 };
    appendFileSync(file, `${JSON.stringify(again)}\n`);
    run = readRunDir(dir);
    assert.equal(run.records[0]!.length, 5);
    assert.equal(run.skippedLines, 1);
    const rounds = roundsOf(run.records[0]!);
    assert.deepEqual(
      rounds.map((r) => r.round),
      [0, 1, 2, 3],
    );
    assert.equal(rounds[3]!.trainLoss, 0.125);
  });

  it('parses records line by line, skipping blank and broken lines', () => {
    const rec = (round: number) => JSON.stringify({ node: 0, round });
    const m = parseMetrics(`${rec(0)}\n\n{"node":0,"rou\n${rec(1)}\nnull\n`);
    assert.deepEqual(
      m.records.map((r) => r.round),
      [0, 1],
    );
    assert.equal(m.skippedLines, 2);
  });

  it('says what is wrong with a directory that is not a run', () => {
    const empty = mkdtempSync(join(tmpdir(), 'flatmesh-notrun-'));
    assert.throws(() => readRunDir(empty), RecordsError);
    assert.throws(() => readRunDir(join(empty, 'nope')), /no such directory/);
    mkdirSync(join(empty, 'bad'));
    writeFileSync(join(empty, 'bad', 'config.json'), '{"nodes": -1}');
    assert.throws(() => readRunDir(join(empty, 'bad')), /nodes/);
  });
});
