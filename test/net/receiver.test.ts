/**
 * The receive side of one weights stream, over fake streams: a peer flooding rejected frames has
 * its stream reset after maxConsecutiveRejects in a row (an accepted frame starts the count anew),
 * and a peer that never reads its receipts has its stream reset once more than maxUnreadReceipts
 * wait; each reset is counted by reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Uint8ArrayList } from 'uint8arraylist';
import { ConfigError } from '../../src/errors.js';
import { Inbox } from '../../src/net/inbox.js';
import {
  checkLimit,
  PeerStreams,
  type ReceiveLimits,
  serveWeightsStream,
  type WeightsStream,
} from '../../src/net/libp2p/receiver.js';
import { countingMetrics } from '../../src/net/metrics.js';
import { encodeFrame } from '../../src/net/wire.js';
import { lengthPrefix } from '../fuzz/frames.js';
import { EXPECT as expect, LAYOUT, RUN_ID, SIGNATURE, weights } from './helpers.js';

const frame = (round: number) =>
  encodeFrame({ runId: RUN_ID, round, sender: 1, signature: SIGNATURE }, weights(1), 'f32', LAYOUT);
const prefixed = (f: Uint8Array) => [lengthPrefix(f.length), f];

/** A stream whose source yields `chunks`; the sink reads receipts unless `reads` is false. */
function fakeStream(chunks: Uint8Array[], reads = true) {
  const receipts: number[] = [];
  const state = { aborted: false };
  const stream = {
    source: (async function* () {
      for (const c of chunks) {
        if (state.aborted) return;
        yield new Uint8ArrayList(c);
        await new Promise((r) => setImmediate(r));
      }
    })(),
    sink: async (source: AsyncIterable<Uint8Array | Uint8ArrayList>) => {
      if (!reads) return new Promise<void>(() => {}); // never takes a receipt
      for await (const c of source) receipts.push(...c.subarray());
    },
    abort: () => {
      state.aborted = true;
    },
  } as unknown as WeightsStream;
  return { stream, receipts, state };
}

async function serve(chunks: Uint8Array[], limits: Partial<ReceiveLimits>, reads = true) {
  const metrics = countingMetrics();
  const inbox = new Inbox({ expect }, { metrics });
  const f = fakeStream(chunks, reads);
  await serveWeightsStream(f.stream, 1, {
    inbox,
    stop: new AbortController().signal,
    limits: { maxBytes: expect.maxBytes, ...limits },
    metrics,
  });
  inbox.close();
  return { ...f, metrics };
}

describe('weights stream receiver', () => {
  it('resets a stream after maxConsecutiveRejects rejected frames in a row', async () => {
    const empty = Uint8Array.of(0); // a zero-length frame
    const { receipts, state, metrics } = await serve(
      Array.from({ length: 40 }, () => empty),
      { maxConsecutiveRejects: 5 },
    );
    assert.equal(state.aborted, true);
    assert.deepEqual(metrics.counts.streamResets, { 'rejected-frames': 1 });
    assert.equal(metrics.counts.rejected.truncated, 5);
    assert.ok(receipts.length <= 5);
  });

  it('counts only rejections in a row: an accepted frame starts the count anew', async () => {
    const empty = Uint8Array.of(0);
    const chunks: Uint8Array[] = [];
    for (let r = 1; r <= 4; r++) chunks.push(empty, empty, empty, empty, ...prefixed(frame(r)));
    const { receipts, state, metrics } = await serve(chunks, { maxConsecutiveRejects: 5 });
    assert.deepEqual(metrics.counts.streamResets, {});
    assert.equal(state.aborted, false);
    assert.equal(receipts.length, 20);
    assert.deepEqual(receipts.slice(0, 5), [2, 2, 2, 2, 1]);
  });

  it('resets a stream whose peer never reads its receipts', async () => {
    // Valid frames for rounds already past are 'late': accepted, each answered with a receipt.
    const chunks = Array.from({ length: 30 }, (_, i) => prefixed(frame(i + 1))).flat();
    const { state, metrics } = await serve(chunks, { maxUnreadReceipts: 8 }, false);
    assert.equal(state.aborted, true);
    assert.deepEqual(metrics.counts.streamResets, { 'unread-receipts': 1 });
    assert.equal(metrics.counts.rejected.truncated ?? 0, 0);
  });

  it('admits at most maxStreamsPerPeer open streams per peer', () => {
    const peers = new PeerStreams({ maxStreamsPerPeer: 2 });
    assert.equal(peers.admit('A'), true);
    assert.equal(peers.admit('A'), true);
    assert.equal(peers.admit('A'), false);
    assert.equal(peers.admit('B'), true, 'other peers are counted apart');
    peers.release('A');
    assert.equal(peers.openStreams('A'), 1);
    assert.equal(peers.admit('A'), true);
    assert.equal(new PeerStreams().admit('C'), true);
    assert.throws(() => new PeerStreams({ maxStreamsPerPeer: 0 }), ConfigError);
  });

  it('checks its limits', () => {
    assert.equal(checkLimit('maxUnreadReceipts', undefined, 64), 64);
    assert.equal(checkLimit('maxUnreadReceipts', 3, 64), 3);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => checkLimit('maxUnreadReceipts', bad, 64), ConfigError);
    }
  });
});
