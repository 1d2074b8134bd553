/**
 * Unplanned failures of real node processes: kill -9 with no fault plan, a disk that fills up,
 * a crash under `faults.onCrash: abort`, an interrupted launch. The run goes on where it can, and
 * summary.json is always written, saying what happened.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { CheckpointStore } from '../../src/node/checkpoint.js';
import type { RoundRecord } from '../../src/report/records.js';
import { launch, readSummary } from '../../src/run/launcher.js';
import type { RunSummary } from '../../src/run/summary.js';
import { nodePids, START_TIMEOUT } from './helpers.js';
import { fillUp, mountTmpfs, unmount } from './tmpfs.js';

const base = {
  topology: { graph: 'ring', budget: 0.5 },
  model: { hidden: [16] },
  train: { localSteps: 3, lr: 0.3 },
  gossip: { deadlineMs: 2000 },
  checkpoint: { every: 1 },
  backend: 'wasm',
};

const nodeStates = (s: RunSummary) =>
  JSON.stringify(s.perNode.map((n) => [n.id, n.lastRound, n.status]));

describe('unplanned failures (real processes)', () => {
  it('kill -9 of 2 of 8 nodes with no plan: both are restarted from their checkpoints, the run completes, the summary records it', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'flatmesh-e2e-kill-')), 'run');
    const cfg = parseExperiment({
      ...base,
      nodes: 8,
      run: { rounds: 6, seed: 4 },
      eval: { every: 3 },
    });
    const victims = [2, 5];
    let killed = false;
    const s = await launch(cfg, {
      out,
      progress: false,
      startTimeoutMs: START_TIMEOUT,
      onRound: (r) => {
        if (killed || r.round < 1) return;
        killed = true;
        for (const v of victims) {
          const pids = nodePids(join(out, 'nodes', String(v)));
          assert.equal(pids.length, 1, `one process of node ${v}`);
          process.kill(pids[0]!, 'SIGKILL');
        }
      },
    });
    assert.ok(killed);
    assert.equal(s.completed, true, nodeStates(s));
    assert.equal(s.reason, undefined);
    assert.equal(s.faults['crash-unplanned'], 2);
    assert.equal(s.faults['restart-unplanned'], 2);
    assert.equal(s.restarts, 2);
    for (const v of victims) {
      const n = s.perNode[v]!;
      assert.equal(n.crashes, 1);
      assert.equal(n.restarts, 1);
      assert.equal(n.lastRound, 5);
      const kinds = s.events!.filter((e) => e.node === v).map((e) => `${e.kind}/${e.planned}`);
      assert.deepEqual(kinds, ['crash/false', 'restart/false']);
      assert.match(s.events!.find((e) => e.node === v)!.detail!, /SIGKILL/);
      const log = readFileSync(join(out, 'nodes', String(v), 'node.log'), 'utf8');
      assert.match(log, /resumed from checkpoint of round \d+/);
      // The restarted process says so in its first round record.
      const records = readFileSync(join(out, 'nodes', String(v), 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as RoundRecord);
      assert.equal(
        records.filter((r) => r.faults['restart-unplanned'] === 1).length,
        1,
        `node ${v}: one record of its restart`,
      );
    }
    assert.deepEqual(readSummary(out).events, s.events);
  });

  it('a full disk: checkpoints that cannot be written are reported, the previous ones are kept, and the run completes', async (t) => {
    const mnt = mkdtempSync(join(tmpdir(), 'flatmesh-e2e-enospc-'));
    // A real full disk when this runs as root (a 48 MiB tmpfs, filled up during the run); without
    // the right to mount, a real write error instead: a directory where node 1's temporary
    // checkpoint file goes makes its open() fail with EISDIR.
    const tmpfs = mountTmpfs(mnt, 48 * 1024);
    t.diagnostic(tmpfs ? 'ENOSPC on a tmpfs' : 'no mount permission: EISDIR on node 1');
    const out = join(mnt, 'run');
    const cfg = parseExperiment({
      ...base,
      nodes: 4,
      // ~150k parameters: a 600 KB checkpoint, where a round record is ~1 KB.
      model: { hidden: [2048] },
      run: { rounds: 5, seed: 2 },
      eval: { every: 5 },
    });
    const seen = new Set<number>();
    let filled = false;
    try {
      const s = await launch(cfg, {
        out,
        progress: false,
        startTimeoutMs: START_TIMEOUT,
        onRound: (r) => {
          if (r.round >= 1) seen.add(r.node);
          if (filled || seen.size < (tmpfs ? 4 : 1)) return;
          filled = true;
          if (tmpfs) fillUp(mnt, 256);
          else {
            const [pid] = nodePids(join(out, 'nodes', String(r.node)));
            mkdirSync(join(out, 'nodes', String(r.node), `checkpoint.bin.tmp-${pid}`));
          }
        },
      });
      assert.ok(filled);
      assert.equal(s.completed, true, nodeStates(s));
      const failed = s.perNode.filter((n) => (n.checkpointFailures ?? []).length > 0);
      assert.ok(failed.length >= 1, 'some checkpoint failed');
      assert.equal(
        s.faults['checkpoint-failed'],
        failed.reduce((a, n) => a + n.checkpointFailures!.length, 0),
      );
      for (const n of failed) {
        const first = n.checkpointFailures![0]!;
        assert.match(first.message, tmpfs ? /ENOSPC/ : /EISDIR/);
        assert.match(first.message, /previous checkpoint is kept/);
        // Its last write failed too, so the checkpoint on disk is the last one that was written:
        // whole, and older than the node's last round; its model is left out of the average.
        assert.equal(n.checkpointFailures!.at(-1)!.round, 4);
        const ck = new CheckpointStore(join(out, 'nodes', String(n.id))).load()!;
        assert.equal(ck.round, first.round - 1);
        assert.ok(s.notInAverageModel!.includes(n.id));
        assert.equal(n.lastRound, 4);
      }
      const events = s.events!.filter((e) => e.kind === 'checkpoint-failed');
      assert.ok(events.length >= failed.length);
    } finally {
      if (tmpfs) unmount(mnt);
    }
  });

  it('past faults.maxRestarts a crashed node is left out: the others finish, and the summary says who did not', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'flatmesh-e2e-limit-')), 'run');
    const cfg = parseExperiment({
      ...base,
      nodes: 4,
      run: { rounds: 6, seed: 5 },
      faults: { onCrash: 'restart', maxRestarts: 0 },
    });
    let killed = false;
    const s = await launch(cfg, {
      out,
      progress: false,
      startTimeoutMs: START_TIMEOUT,
      onRound: (r) => {
        if (killed || r.round < 1) return;
        killed = true;
        process.kill(nodePids(join(out, 'nodes', '3'))[0]!, 'SIGKILL');
      },
    });
    assert.equal(s.completed, false);
    assert.equal(s.endedEarly, undefined, 'the run itself went to its end');
    // Node 3 may be killed before it finished a round of its own (the kill follows any node's
    // round 1, and a lagging node 3 is still in round 0): its last round is then -1.
    assert.match(
      s.reason!,
      /1 of 4 nodes did not finish: node 3 \(last round -?\d+, crashed \(SIGKILL\)\)/,
    );
    assert.deepEqual(
      s.events!.map((e) => `${e.node}:${e.kind}`),
      ['3:crash', '3:restart-limit'],
    );
    assert.equal(s.faults['restart-limit'], 1);
    assert.equal(s.restarts, 0);
    for (const n of s.perNode.filter((n) => n.id !== 3)) assert.equal(n.lastRound, 5);
    assert.deepEqual(s.notInAverageModel, [3]);
    assert.ok(s.accuracyOfAverageModel !== null);
  });

  it("a crash under faults.onCrash: 'abort' ends the run, and summary.json still says what happened", async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'flatmesh-e2e-abort-')), 'run');
    const cfg = parseExperiment({
      ...base,
      nodes: 4,
      run: { rounds: 30, seed: 3 },
      faults: { onCrash: 'abort' },
    });
    let killed = false;
    await assert.rejects(
      launch(cfg, {
        out,
        progress: false,
        startTimeoutMs: START_TIMEOUT,
        onRound: (r) => {
          if (killed || r.round < 1) return;
          killed = true;
          process.kill(nodePids(join(out, 'nodes', '3'))[0]!, 'SIGKILL');
        },
      }),
      (e: Error) =>
        e.name === 'RunError' && /node 3 died/.test(e.message) && /'abort'/.test(e.message),
    );
    const s = readSummary(out);
    assert.equal(s.completed, false);
    assert.match(s.reason!, /node 3 died \(SIGKILL\)/);
    assert.equal(s.faults['crash-unplanned'], 1);
    assert.equal(s.perNode.length, 4);
    assert.ok(s.perNode.every((n) => n.lastRound < 29));
  });

  it('an interrupted launch (Ctrl-C) still writes its summary, completed: false', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'flatmesh-e2e-stop-')), 'run');
    const cfg = parseExperiment({ ...base, nodes: 3, run: { rounds: 30, seed: 3 } });
    const ac = new AbortController();
    await assert.rejects(
      launch(cfg, {
        out,
        progress: false,
        startTimeoutMs: START_TIMEOUT,
        signal: ac.signal,
        onRound: (r) => {
          if (r.round >= 1) ac.abort();
        },
      }),
      /run interrupted/,
    );
    const s = readSummary(out);
    assert.equal(s.completed, false);
    assert.match(s.reason!, /interrupted/);
    // The nodes stopped cleanly and reported where they were.
    for (const n of s.perNode) {
      assert.equal(n.status, 'stopped');
      assert.ok(n.lastRound >= 0 && n.lastRound < 29);
    }
  });
});
