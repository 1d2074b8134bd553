/**
 * The pieces of the round protocol that let a node that fell behind catch up: the inbox's freshest
 * mode and waivers, peer positions from heartbeats, and deadlines that follow observed waits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Inbox } from '../../src/net/inbox.js';
import { countingMetrics } from '../../src/net/metrics.js';
import { encodeFrame } from '../../src/net/wire.js';
import { AdaptiveDeadline } from '../../src/node/deadline.js';
import { PeerRounds } from '../../src/node/peers.js';
import { EXPECT as expect, LAYOUT, RUN_ID, SIGNATURE, weights } from '../net/helpers.js';

const frame = (round: number, sender: number) =>
  encodeFrame(
    { runId: RUN_ID, round, sender, signature: SIGNATURE },
    weights(100 * sender + round),
    'f32',
    LAYOUT,
  );
const rounds = (r: { received: readonly { from: number; round: number }[] }) =>
  r.received.map((m) => [m.from, m.round]);

describe('inbox: a node behind its neighbours', () => {
  it('keeps what neighbours far ahead sent and mixes their freshest frames (since)', async () => {
    const metrics = countingMetrics();
    const inbox = new Inbox({ expect, window: 2 }, { metrics });
    assert.equal((await inbox.collect(3, [], 100)).ended, 'complete');
    // Paused in round 4, the node receives its neighbours' rounds 4..20 (kept: the newest
    // beyond the window per sender, everything within it).
    for (let r = 4; r <= 20; r++) {
      assert.equal(inbox.acceptFrame(frame(r, 1), 1), 'accepted');
      if (r % 2 === 0) assert.equal(inbox.acceptFrame(frame(r, 2), 2), 'accepted');
    }
    // It catches up to round 19: the freshest model of each neighbour, whatever its round.
    const r = await inbox.collect(19, [1, 2], 1000, undefined, { since: 4 });
    assert.equal(r.ended, 'complete');
    assert.deepEqual(rounds(r), [
      [1, 20],
      [2, 20],
    ]);
    assert.deepEqual(
      r.received[0]!.weights.subarray(0, 3),
      weights(100 + 20).subarray(0, 3),
      'the frame of round 20 itself',
    );
    assert.equal(inbox.heldBytes, 0, 'older frames were dropped');
    assert.equal(metrics.counts.rejected.future, undefined, 'nothing thrown away as beyond window');
    // What it took from a sender closes that sender's older rounds.
    assert.equal(inbox.acceptFrame(frame(20, 1), 1), 'late');
    assert.equal(inbox.acceptFrame(frame(21, 1), 1), 'accepted');
    inbox.close();
  });

  it('takes a fresher frame that arrives while it waits, and closes only rounds below since', async () => {
    const inbox = new Inbox({ expect });
    assert.equal(inbox.acceptFrame(frame(5, 1), 1), 'accepted');
    const pending = inbox.collect(6, [1, 2], 1000, undefined, { since: 4 });
    assert.equal(inbox.acceptFrame(frame(7, 1), 1), 'accepted'); // replaces round 5
    assert.equal(inbox.acceptFrame(frame(6, 1), 1), 'late'); // older than the one held
    assert.equal(inbox.acceptFrame(frame(3, 2), 2), 'late'); // below since
    assert.equal(inbox.acceptFrame(frame(4, 2), 2), 'accepted');
    const r = await pending;
    assert.deepEqual(rounds(r), [
      [1, 7],
      [2, 4],
    ]);
    // A slow sender's round 5 is still the freshest it has to give to the next collect.
    assert.equal(inbox.acceptFrame(frame(5, 2), 2), 'accepted');
    const next = await inbox.collect(7, [2], 1000, undefined, { since: 5 });
    assert.deepEqual(rounds(next), [[2, 5]]);
    inbox.close();
  });

  it('stops waiting for a waived sender, and still takes its frame until the end', async () => {
    const inbox = new Inbox({ expect });
    let waive: ((j: number) => void) | undefined;
    const pending = inbox.collect(2, [1, 2, 3], 60_000, undefined, {
      onWaiting: (w) => {
        waive = w;
      },
    });
    assert.ok(waive);
    inbox.acceptFrame(frame(2, 1), 1);
    waive(2);
    inbox.acceptFrame(frame(2, 2), 2); // waived, but here in time: taken
    waive(9); // not expected: ignored
    waive(3);
    const r = await pending;
    assert.equal(r.ended, 'complete');
    assert.deepEqual(rounds(r), [
      [1, 2],
      [2, 2],
    ]);
    assert.deepEqual(r.missing, [3]);
    inbox.close();
  });

  it('starts waiting for a sender it did not wait for, once told it is alive (expect)', async () => {
    const inbox = new Inbox({ expect });
    let expectNode: ((j: number) => void) | undefined;
    const t0 = performance.now();
    // Node 3 had been silent when the round began (it starts late): not waited for, a short grace.
    const pending = inbox.collect(2, [1, 3], 60_000, undefined, {
      waitFor: [1],
      graceMs: 50,
      onWaiting: (_waive, e) => {
        expectNode = e;
      },
    });
    assert.ok(expectNode);
    inbox.acceptFrame(frame(2, 1), 1); // the grace period for 3 begins
    expectNode(3); // news of 3 (its frame of round 1 came late): wait for it after all
    expectNode(9); // not expected in this round: ignored
    await new Promise((r) => setTimeout(r, 150));
    inbox.acceptFrame(frame(2, 3), 3);
    const r = await pending;
    assert.equal(r.ended, 'complete');
    assert.ok(performance.now() - t0 >= 150, 'it waited past the grace period');
    assert.deepEqual(rounds(r), [
      [1, 2],
      [3, 2],
    ]);
    inbox.close();
  });
});

describe('peer rounds', () => {
  it('places the run at the round of its leaders, not at one runaway or liar', () => {
    const p = new PeerRounds(0);
    assert.equal(p.current(), undefined);
    p.onControl({ type: 'heartbeat', node: 0, round: 99 }); // itself: ignored
    p.onControl({ type: 'heartbeat', node: 1, round: 9 }); // in round 10
    p.onControl({ type: 'heartbeat', node: 2, round: 10 });
    p.onControl({ type: 'heartbeat', node: 3, round: 500 });
    p.heard(4, 11);
    p.onControl({ type: 'heartbeat', node: 2, round: 3 }); // out of order: positions only advance
    assert.equal(p.position(2), 11);
    assert.equal(p.current(), 11);
    assert.equal(
      p.current((j) => j !== 3),
      11,
    );
    assert.equal(
      p.current((j) => j === 1),
      10,
    );
    // Two honest reports a round apart and one liar: the leaders' round, not the liar's nor the
    // median (which would land a catching-up node a round behind its neighbours).
    const q = new PeerRounds(0);
    q.heard(1, 20);
    q.heard(2, 21);
    q.heard(3, 21);
    q.heard(4, 1_000_000);
    assert.equal(q.current(), 21);
    assert.equal(
      q.current((j) => j <= 2),
      20,
      'two reports: the lower one (either may be the liar)',
    );
  });

  it('settles a neighbour that passed the round, lags more than allowed, or left', () => {
    const p = new PeerRounds(0);
    p.heard(1, 10);
    p.heard(2, 11);
    p.heard(3, 8);
    p.heard(4, 9);
    p.onControl({ type: 'leave', node: 5, round: 3, status: 'done' });
    const settled = [1, 2, 3, 4, 5, 6].filter((j) => p.settled(j, 10, 1));
    assert.deepEqual(settled, [2, 3, 5]);
    // Real runs count a neighbour behind only on a recent report: news older than the previous
    // round may just be slow.
    let now = 0;
    const q = new PeerRounds(0, () => now);
    q.heard(3, 8);
    now = 100;
    assert.equal(q.settled(3, 10, 1, 50), false, 'reported at 0, before 50');
    q.heard(3, 8);
    assert.equal(q.settled(3, 10, 1, 50), true, 'confirmed at 100');
    q.heard(4, 11);
    assert.equal(q.settled(4, 10, 1, 1000), true, 'ahead needs no fresh news');
    // With a staleness allowance of 2 (async), 8 is within reach.
    assert.deepEqual(
      [1, 2, 3, 4, 5].filter((j) => p.settled(j, 10, 2)),
      [2, 5],
    );
  });
});

describe('adaptive deadline', () => {
  it('starts at the configured deadline and follows a high percentile of observed waits', () => {
    const d = new AdaptiveDeadline(30_000, { warmup: 5, window: 10, slackMs: 200, factor: 2 });
    for (let i = 0; i < 4; i++) d.observe(100, false, d.current());
    assert.equal(d.current(), 30_000, 'too few rounds seen yet');
    d.observe(300, false, d.current());
    // 5 waits (100 x4, 300): the 90th percentile is 300 -> 2 * 300 + 200.
    assert.equal(d.current(), 800);
    // A wait cut by its deadline counts as that deadline; enough of them push it up, to the cap.
    for (let i = 0; i < 20; i++) d.observe(10, true, d.current());
    assert.equal(d.current(), 30_000);
    // Quick rounds bring it back down once they fill the window.
    for (let i = 0; i < 10; i++) d.observe(50, false, d.current());
    assert.equal(d.current(), 300);
  });
});
