/**
 * End-to-end: asynchronous gossip (`gossip.sync: async`) in real node processes, with one of 6
 * paused by SIGSTOP for 15 s. The others go on without it, no round but a catch-up mixes a model
 * older than the staleness bound, and once continued the paused node catches up to the run, mixes its
 * neighbours' models and has its own mixed again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { launch } from '../../src/run/launcher.js';
import { pauseOnce, records, START_TIMEOUT } from './helpers.js';

const NODES = 6;
const PAUSED = 3;
const STALENESS = 2;
const ROUNDS = 40;

describe('asynchronous gossip with a paused node (real processes)', () => {
  it('runs on without it, within the staleness bound, and takes it back after SIGCONT', async () => {
    const out = mkdtempSync(join(tmpdir(), 'flatmesh-e2e-async-'));
    const cfg = parseExperiment({
      nodes: NODES,
      topology: { graph: 'complete', sampler: 'vanilla' },
      model: { hidden: [16] },
      train: { localSteps: 2, lr: 0.3 },
      swa: { enabled: false },
      eval: { every: 1000 },
      // Paces the rounds (a few tenths of a second each) so the others run a bounded number of
      // rounds during the pause whatever the machine's load.
      faults: { delay: { ms: 300 } },
      gossip: { sync: 'async', staleness: STALENESS, deadlineMs: 2000 },
      run: { rounds: ROUNDS, seed: 3 },
      backend: 'wasm',
    });
    const pause = pauseOnce(out, PAUSED, 4, 15_000);
    const s = await launch(cfg, {
      out,
      progress: false,
      startTimeoutMs: START_TIMEOUT,
      onRound: pause.onRound,
    });
    await pause.done;
    const { stopped, continued } = pause;
    assert.ok(stopped && continued, 'the node was paused and continued');
    assert.equal(s.completed, true);
    assert.equal(s.mode, 'processes');
    const all = Array.from({ length: NODES }, (_, i) => records(out, i));

    // Every round of every node mixed models at most STALENESS rounds older than its own, except
    // a catch-up round: it mixes the freshest model it holds of each neighbour from the round it
    // left on (README, catch-up), so at most `skipped` rounds old.
    for (const r of all.flat()) {
      const bound = Math.max(STALENESS, r.catchUp?.skipped ?? 0);
      assert.ok(
        r.staleness !== undefined && r.staleness <= bound,
        `node ${r.node} round ${r.round} mixed a model ${r.staleness} rounds old (bound ${bound})`,
      );
    }

    // The others went on while it was paused: each finished rounds between SIGSTOP and SIGCONT.
    for (const [i, rs] of all.entries()) {
      if (i === PAUSED) continue;
      const during = rs.filter((r) => r.time > stopped! && r.time < continued!);
      assert.ok(during.length >= 2, `node ${i} finished ${during.length} rounds during the pause`);
    }

    // Back, it caught up (skipping rounds, said so), mixed its neighbours' models in its first
    // rounds, and its neighbours mixed its model again.
    const mine = all[PAUSED]!.filter((r) => r.time > continued!);
    const jump = mine.find((r) => r.catchUp);
    assert.ok(jump && jump.catchUp!.skipped >= 1, 'a catch-up record after SIGCONT');
    assert.ok(s.perNode[PAUSED]!.catchUps! >= 1, 'the summary counts the catch-up');
    assert.ok(
      mine.slice(0, 3).some((r) => r.heard.length > 0),
      'it mixed a neighbour within its first 3 rounds after SIGCONT',
    );
    const taken = all
      .flat()
      .filter((r) => r.node !== PAUSED && r.round >= jump.round && r.heard.includes(PAUSED));
    assert.ok(taken.length > 0, `nobody mixed node ${PAUSED}'s model after its catch-up`);
    for (const n of s.perNode) assert.equal(n.lastRound, ROUNDS - 1, `node ${n.id}`);
  });
});
