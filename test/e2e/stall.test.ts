/**
 * End-to-end: one of 8 real node processes is paused with SIGSTOP for 20 s, then continued. The
 * round protocol must heal: the paused node catches up, and no round after that waits its deadline
 * for a frame that never comes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import { launch } from '../../src/run/launcher.js';
import { pauseOnce, records, START_TIMEOUT } from './helpers.js';

/** The last round `node` had finished at time `t` (ms since the epoch), from its records. */
const roundAt = (rs: readonly RoundRecord[], t: number): number =>
  rs.filter((r) => r.time <= t).reduce((m, r) => Math.max(m, r.round), -1);

const NODES = 8;
const STALLED = 3;
const DEADLINE_MS = 6000;

describe('a paused node (real processes)', () => {
  it('catches up within 3 rounds of SIGCONT, and no later round waits its deadline for a frame that never comes', async () => {
    const out = mkdtempSync(join(tmpdir(), 'flatmesh-e2e-stall-'));
    const cfg = parseExperiment({
      nodes: NODES,
      // Every edge every round: each node waits for all the others, so a round k+1 ends only
      // once every node finished round k (the spread of rounds is at most 1 when all is well).
      topology: { graph: 'complete', sampler: 'vanilla' },
      model: { hidden: [16] },
      train: { localSteps: 2, lr: 0.3 },
      swa: { enabled: false },
      eval: { every: 1000 },
      // A fixed delay per message paces the rounds (a few tenths of a second each), so the others
      // run a bounded number of rounds during the pause whatever the machine's load.
      faults: { delay: { ms: 300 } },
      gossip: { deadlineMs: DEADLINE_MS },
      run: { rounds: 32, seed: 2 },
      backend: 'wasm',
    });
    const pause = pauseOnce(out, STALLED, 4, 20_000);
    const s = await launch(cfg, {
      out,
      progress: false,
      // Eight processes starting from source on a shared two-core machine can take a while.
      startTimeoutMs: START_TIMEOUT,
      onRound: pause.onRound,
    });
    await pause.done;
    const { stopped, continued } = pause;
    assert.ok(stopped && continued, 'the node was paused and continued');
    assert.equal(s.completed, true);
    const all = Array.from({ length: NODES }, (_, i) => records(out, i));
    const mine = all[STALLED]!;

    // The others went on while it was paused: it had to skip rounds, and says so.
    const after = mine.filter((r) => r.time > continued!);
    const jump = after.find((r) => r.catchUp);
    assert.ok(jump, 'a catch-up record after SIGCONT');
    assert.ok(jump.catchUp!.skipped >= 1);
    assert.ok(s.catchUps! >= 1 && s.roundsCaughtUp! >= 1, 'the summary counts the catch-up');
    assert.equal(s.perNode[STALLED]!.catchUps! >= 1, true);

    // Within 3 of its rounds after SIGCONT every node is within 1 round of the others.
    const third = after[2];
    assert.ok(third, 'three rounds after SIGCONT');
    const spread = (t: number) => {
      const at = all.map((rs) => roundAt(rs, t));
      return Math.max(...at) - Math.min(...at);
    };
    assert.ok(
      spread(third.time) <= 1,
      `rounds at the third round after SIGCONT: spread ${spread(third.time)}`,
    );

    // From then on no round waits its full deadline for a frame that never comes. On a quiet
    // machine no round ends by its deadline at all (rounds take a few tenths of a second). On a
    // crowded one a frame can take longer than the deadline to arrive (at load 20-27, rounds of
    // 5-10 s against this test's 6 s): that round ends by its deadline and the frame arrives late,
    // which is load, not the protocol. What the protocol must never do again (the issue: rounds
    // waiting the full deadline for frames rejected as beyond the window, for a neighbour that had
    // moved on, or sends lost on torn connections) is to let a round end by its deadline while a
    // neighbour's frame of that round was never sent or never got there: so every neighbour
    // missing from such a round ran that round, and its frame arrived, late, within 3 rounds.
    const later = all.flat().filter((r) => r.time > third.time);
    assert.ok(later.length >= NODES * 5, `${later.length} records after the catch-up`);
    const ran = (j: number, k: number) => all[j]!.some((r) => r.round === k);
    const lateFrom = (i: number, j: number, k: number) =>
      all[i]!.filter((r) => r.round >= k && r.round <= k + 3).reduce(
        (n, r) => n + (r.byNeighbour[String(j)]?.late ?? 0),
        0,
      );
    const cut = later.filter((r) => r.collectEnded === 'deadline');
    for (const r of cut) {
      const lastOfNode = Math.max(...all[r.node]!.map((x) => x.round));
      for (const [key, c] of Object.entries(r.byNeighbour)) {
        if (c.missing === 0) continue;
        const j = Number(key);
        const what = `node ${r.node} round ${r.round} ended by its deadline (${Math.round(r.deadlineMs ?? 0)} ms) without node ${j}'s frame (${cut.length} of ${later.length} rounds after the catch-up ended so)`;
        assert.ok(ran(j, r.round), `${what}: node ${j} never ran that round`);
        // A frame still on its way when the receiver's last round ended is never counted.
        if (r.round < lastOfNode) {
          assert.ok(lateFrom(r.node, j, r.round) > 0, `${what}: and it never arrived`);
        }
      }
    }
    for (const r of mine.filter((x) => x.time > third.time)) assert.ok(spread(r.time) <= 1);
  });
});
