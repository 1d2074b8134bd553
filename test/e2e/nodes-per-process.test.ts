/**
 * End-to-end: `launch --nodes-per-process K`, real processes of K nodes each, every node with its
 * own libp2p host over loopback. The same seed gives the same models as one process per node, and
 * a planned crash of one node is a soft crash that leaves the other nodes of its process running.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import type { RunEvent } from '../../src/run/events.js';
import { launch } from '../../src/run/launcher.js';
import { until } from '../net/helpers.js';
import { START_TIMEOUT } from './helpers.js';

const records = (out: string, node: number): RoundRecord[] =>
  readFileSync(join(out, 'nodes', String(node), 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RoundRecord);

const events = (out: string): RunEvent[] =>
  readFileSync(join(out, 'events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RunEvent);

/** Processes (any command) whose command line names `dir`. */
const processesUsing = (dir: string): string[] =>
  execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(dir) && !l.startsWith('ps '));

const base = {
  nodes: 8,
  // Every edge every round: each node waits for all its neighbours, so no timing decides a result.
  topology: { graph: 'ring', sampler: 'vanilla' },
  model: { hidden: [32] },
  train: { localSteps: 5, lr: 0.3 },
  eval: { every: 2 },
  backend: 'wasm',
};

describe('launch --nodes-per-process (real processes)', () => {
  it('8 nodes in 2 processes of 4: records per node, the same models as 8 processes', async () => {
    const cfg = parseExperiment({
      ...base,
      run: { rounds: 4, seed: 3 },
      gossip: { deadlineMs: 20_000 },
    });
    const shared = mkdtempSync(join(tmpdir(), 'flatmesh-e2e-k4-'));
    const s = await launch(cfg, {
      out: shared,
      progress: false,
      nodesPerProcess: 4,
      startTimeoutMs: START_TIMEOUT,
    });
    assert.equal(s.completed, true);
    assert.equal(s.nodesPerProcess, 4);
    // Two processes, each naming its nodes; their own logs beside the nodes'.
    const groups = events(shared).flatMap((e) =>
      e.type === 'node' && e.state === 'starting' && e.pid !== undefined ? [[e.node, e.pid]] : [],
    );
    assert.equal(groups.length, 8);
    const pidOf = new Map(groups.map(([n, p]) => [n!, p!]));
    assert.equal(new Set(pidOf.values()).size, 2);
    for (const n of [1, 2, 3]) assert.equal(pidOf.get(n), pidOf.get(0));
    for (const n of [5, 6, 7]) assert.equal(pidOf.get(n), pidOf.get(4));
    assert.notEqual(pidOf.get(0), pidOf.get(4));
    assert.ok(existsSync(join(shared, 'processes', '0.log')));
    for (let i = 0; i < 8; i++) {
      const dir = join(shared, 'nodes', String(i));
      assert.deepEqual(
        records(shared, i).map((r) => r.round),
        [0, 1, 2, 3],
        `node ${i} records`,
      );
      for (const f of ['end.json', 'checkpoint.bin', 'peer.key']) {
        assert.ok(existsSync(join(dir, f)), `node ${i}: ${f}`);
      }
      // Each node logs to its own file, only its own lines.
      const log = readFileSync(join(dir, 'node.log'), 'utf8').trim().split('\n');
      assert.ok(log.length > 3 && log.every((l) => l.startsWith(`[node ${i}] `)), `node ${i} log`);
    }
    // Eight distinct hosts, as in a run of one process per node.
    const roster = JSON.parse(readFileSync(join(shared, 'roster.json'), 'utf8')) as {
      nodes: { peerId: string; addrs: string[] }[];
    };
    assert.equal(new Set(roster.nodes.map((n) => n.peerId)).size, 8);
    assert.equal(new Set(roster.nodes.map((n) => n.addrs[0])).size, 8);

    const alone = mkdtempSync(join(tmpdir(), 'flatmesh-e2e-k1-'));
    const one = await launch(cfg, { out: alone, progress: false, startTimeoutMs: START_TIMEOUT });
    assert.equal(one.nodesPerProcess, undefined);
    // The same seed, the same models: the nodes of a process share tfjs, not its state.
    assert.deepEqual(
      s.perNode.map((n) => n.accuracy),
      one.perNode.map((n) => n.accuracy),
    );
    assert.equal(s.accuracyOfAverageModel, one.accuracyOfAverageModel);
    assert.equal(s.finalDisagreement, one.finalDisagreement);
    for (let i = 0; i < 8; i++) {
      assert.deepEqual(
        records(shared, i).map((r) => [r.trainLoss, r.accuracy]),
        records(alone, i).map((r) => [r.trainLoss, r.accuracy]),
        `node ${i} losses`,
      );
    }
    await until(() => processesUsing(shared).length === 0, 'the processes to exit', 10_000);
  });

  it('a planned crash is a soft crash: the node restarts in its process, the others go on', async () => {
    const out = mkdtempSync(join(tmpdir(), 'flatmesh-e2e-k4-crash-'));
    const cfg = parseExperiment({
      ...base,
      run: { rounds: 6, seed: 3 },
      gossip: { deadlineMs: 3000 },
      checkpoint: { every: 1 },
      faults: { crashes: [{ node: 1, round: 1, restartAfter: 1 }] },
    });
    const s = await launch(cfg, {
      out,
      progress: false,
      nodesPerProcess: 4,
      startTimeoutMs: START_TIMEOUT,
    });
    assert.equal(s.completed, true);
    assert.equal(s.restarts, 1);
    const crash = s.events?.find((e) => e.kind === 'crash');
    assert.equal(crash?.node, 1);
    assert.match(crash?.detail ?? '', /soft crash/);
    for (const n of s.perNode) assert.equal(n.status, 'ok', `node ${n.id}`);
    assert.equal(s.perNode[1]!.crashes, 1);
    // It came back from its checkpoint, in the same process as before, and says so in its record.
    const node1 = records(out, 1);
    assert.ok(node1.some((r) => r.faults['restart'] === 1));
    const states = events(out).flatMap((e) => (e.type === 'node' && e.node === 1 ? [e] : []));
    assert.deepEqual(
      states.map((e) => e.state).filter((x) => x !== 'training' && x !== 'exchanging'),
      ['starting', 'crashed', 'restarting', 'done'],
    );
    assert.equal(new Set(states.map((e) => e.pid).filter((p) => p !== undefined)).size, 1);
    // The other nodes of its process never stopped: one record a round each.
    for (const i of [0, 2, 3]) {
      assert.deepEqual(
        records(out, i).map((r) => r.round),
        [0, 1, 2, 3, 4, 5],
      );
    }
    assert.match(readFileSync(join(out, 'nodes', '1', 'node.log'), 'utf8'), /soft crash/);
  });
});
