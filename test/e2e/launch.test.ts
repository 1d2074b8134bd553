/**
 * End-to-end: real node processes on loopback, launched the way `flatmesh launch` does.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import { launch } from '../../src/run/launcher.js';
import { until } from '../net/helpers.js';

const records = (out: string, node: number): RoundRecord[] =>
  readFileSync(join(out, 'nodes', String(node), 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RoundRecord);

const base = {
  topology: { graph: 'ring', budget: 0.5 },
  model: { hidden: [32] },
  train: { localSteps: 5, lr: 0.3 },
  gossip: { deadlineMs: 15000 },
  backend: 'wasm',
};

/** Processes whose command line names `dir` (the launcher passes each node its directory). */
const processesUsing = (dir: string): string[] =>
  execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(dir) && !l.startsWith('ps '));

describe('launch (real processes)', () => {
  it('fails with the data error when the data cannot be prepared, and leaves no node behind', async () => {
    // The nodes start while the launcher prepares the data: they must all go when that fails.
    const out = mkdtempSync(join(tmpdir(), 'flatmesh-e2e-nodata-'));
    const cfg = parseExperiment({
      ...base,
      nodes: 4,
      data: { dataset: 'cifar10', dir: mkdtempSync(join(tmpdir(), 'flatmesh-empty-data-')) },
    });
    await assert.rejects(launch(cfg, { out, progress: false }), (e: Error) => {
      assert.equal(e.name, 'DataError');
      assert.match(e.message, /CIFAR-10 not found/);
      return true;
    });
    await until(() => processesUsing(out).length === 0, 'node processes to exit', 10_000);
  });

  it('4 nodes train, gossip over libp2p with message loss, and finish with a summary', async () => {
    const out = mkdtempSync(join(tmpdir(), 'flatmesh-e2e-'));
    const cfg = parseExperiment({
      ...base,
      nodes: 4,
      run: { rounds: 10, seed: 5 },
      // SWA from round 7 with a one-round cycle: the last rounds run at lr2, so local drift is tiny.
      swa: { cycle: 1 },
      eval: { every: 5 },
      faults: { loss: { p: 0.1, mode: 'silent' } },
      gossip: { deadlineMs: 3000 },
    });
    const s = await launch(cfg, { out, progress: false });
    assert.equal(s.completed, true);
    assert.equal(s.mode, 'processes');
    for (const n of s.perNode) {
      assert.equal(n.lastRound, 9, `node ${n.id}`);
      assert.equal(n.status, 'ok');
      assert.ok(n.accuracy! > 0.2, `node ${n.id} accuracy ${n.accuracy} (chance 0.1)`);
      assert.ok(n.bytesSent > 0);
    }
    assert.ok(s.accuracyOfAverageModel! > 0.4, `average model ${s.accuracyOfAverageModel}`);
    assert.ok(s.meanSwaAccuracy! > 0.3);
    // Real frames crossed real connections; silent loss made receivers wait for the deadline.
    assert.ok(s.messages.delivered > 0 && s.messages.received > 0);
    assert.equal(s.messages.rejected, 0);
    assert.equal(s.messages.dropped, s.faults['loss'] ?? 0);
    const all = [0, 1, 2, 3].flatMap((i) => records(out, i));
    const dis = (from: number, to: number) => {
      const v = all
        .filter((x) => x.round >= from && x.round < to && x.disagreement !== null)
        .map((x) => x.disagreement!);
      return v.length ? v.reduce((a, b) => a + b, 0) / v.length : Number.NaN;
    };
    assert.ok(dis(7, 10) < dis(0, 7) / 2, `disagreement ${dis(0, 7)} -> ${dis(7, 10)}`);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.nodes, 4);
    assert.equal(summary.config.nodes, 4);
  });

  it('survives kill -9 of 2 of 6 nodes under 30% message loss: they restart from their checkpoints and rejoin', async () => {
    const out = mkdtempSync(join(tmpdir(), 'flatmesh-e2e-crash-'));
    const cfg = parseExperiment({
      ...base,
      nodes: 6,
      run: { rounds: 12, seed: 6 },
      checkpoint: { every: 1 },
      eval: { every: 6 },
      gossip: { deadlineMs: 2000 },
      faults: {
        loss: { p: 0.3 },
        crashes: [
          { node: 1, round: 3, restartAfter: 2 },
          { node: 4, round: 4, restartAfter: 2 },
        ],
      },
    });
    const s = await launch(cfg, { out, progress: false });
    assert.equal(
      s.completed,
      true,
      JSON.stringify(s.perNode.map((n) => [n.id, n.lastRound, n.status])),
    );
    assert.equal(s.restarts, 2);
    const lossRate = s.messages.dropped / s.messages.sent;
    assert.ok(lossRate > 0.15 && lossRate < 0.45, `loss rate ${lossRate}`);
    for (const id of [1, 4]) {
      assert.equal(s.perNode[id]!.restarts, 1);
      const rounds = records(out, id).map((r) => r.round);
      // The round counter never goes back: the restarted process resumed after its checkpoint.
      for (let i = 1; i < rounds.length; i++)
        assert.ok(rounds[i]! > rounds[i - 1]!, `node ${id} rounds ${rounds.join(',')}`);
      assert.equal(rounds.at(-1), 11);
      const log = readFileSync(join(out, 'nodes', String(id), 'node.log'), 'utf8');
      assert.match(log, /resumed from checkpoint of round \d+/);
    }
  });
});
