/**
 * End-to-end: one of 8 real node processes is paused with SIGSTOP for 20 s, then continued. The
 * round protocol must heal: the paused node catches up, and the rounds after that do not wait for
 * the deadline.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseExperiment } from '../../src/config/index.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import { launch } from '../../src/run/launcher.js';
import { START_TIMEOUT } from './helpers.js';

const records = (out: string, node: number): RoundRecord[] =>
  readFileSync(join(out, 'nodes', String(node), 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RoundRecord);

/** The pid of the node process whose command line names `dir`. */
function pidOf(dir: string): number {
  const line = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.includes(`${dir} `) || l.endsWith(dir));
  assert.ok(line, `no process runs in ${dir}`);
  return Number(line.trim().split(/\s+/)[0]);
}

/** The last round `node` had finished at time `t` (ms since the epoch), from its records. */
const roundAt = (rs: readonly RoundRecord[], t: number): number =>
  rs.filter((r) => r.time <= t).reduce((m, r) => Math.max(m, r.round), -1);

const NODES = 8;
const STALLED = 3;
const DEADLINE_MS = 6000;

describe('a paused node (real processes)', () => {
  it('catches up within 3 rounds of SIGCONT, and no later round waits for the deadline', async () => {
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
    const dir = join(out, 'nodes', String(STALLED));
    let stopped: number | undefined;
    let continued: number | undefined;
    let pause: Promise<void> | undefined;
    const s = await launch(cfg, {
      out,
      progress: false,
      // Eight processes starting from source on a shared two-core machine can take a while.
      startTimeoutMs: START_TIMEOUT,
      onRound: (r) => {
        if (r.node !== STALLED || r.round < 4 || pause) return;
        const pid = pidOf(dir);
        process.kill(pid, 'SIGSTOP');
        stopped = Date.now();
        pause = sleep(20_000).then(() => {
          process.kill(pid, 'SIGCONT');
          continued = Date.now();
        });
      },
    });
    await pause;
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

    // From then on nobody waits for a deadline, and the nodes stay together.
    const later = all.flat().filter((r) => r.time > third.time);
    assert.ok(later.length >= NODES * 5, `${later.length} records after the catch-up`);
    for (const r of later) {
      assert.notEqual(r.collectEnded, 'deadline', `node ${r.node} round ${r.round}`);
      assert.ok(
        r.phases.waitMs < DEADLINE_MS,
        `node ${r.node} round ${r.round} waited ${r.phases.waitMs} ms`,
      );
    }
    for (const r of mine.filter((x) => x.time > third.time)) assert.ok(spread(r.time) <= 1);
  });
});
