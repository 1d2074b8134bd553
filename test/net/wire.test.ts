import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WireError } from '../../src/errors.js';
import { Inbox } from '../../src/net/inbox.js';
import { countingMetrics } from '../../src/net/metrics.js';
import { decodeFrame, encodeFrame, HEADER_BYTES, maxFrameSize } from '../../src/net/wire.js';
import { LAYOUT, RUN_ID, SIGNATURE, SIZE, weights } from './helpers.js';

const expect = {
  runId: RUN_ID,
  signature: SIGNATURE,
  size: SIZE,
  layout: LAYOUT,
  maxBytes: maxFrameSize(SIZE, LAYOUT),
};
const frame = (round = 1, sender = 1, w = weights(1)) =>
  encodeFrame({ runId: RUN_ID, round, sender, signature: SIGNATURE, mass: 0.25 }, w, 'f16', LAYOUT);
const reason = (bytes: Uint8Array) => {
  try {
    decodeFrame(bytes, expect);
  } catch (e) {
    assert.ok(e instanceof WireError);
    return e.reason;
  }
  return 'ok';
};

describe('wire frames', () => {
  it('round-trips the header fields and returns fresh weights', () => {
    const bytes = frame(7, 3);
    const f = decodeFrame(bytes, expect);
    assert.deepEqual(
      [f.round, f.sender, f.codec, f.mass, f.bytes],
      [7, 3, 'f16', 0.25, bytes.length],
    );
    assert.notEqual(f.weights.buffer, bytes.buffer);
  });

  it('names the first failed check', () => {
    const ok = frame();
    const patch = (at: number, v: number) => {
      const b = ok.slice();
      b[at] = v;
      return b;
    };
    assert.equal(reason(ok), 'ok');
    assert.equal(reason(ok.subarray(0, 10)), 'truncated');
    assert.equal(reason(patch(0, 0)), 'bad-magic');
    assert.equal(reason(patch(4, 2)), 'bad-version');
    assert.equal(reason(patch(5, 3)), 'unknown-codec');
    assert.equal(reason(patch(8, ok[8]! ^ 1)), 'wrong-run');
    assert.equal(reason(patch(32, ok[32]! ^ 1)), 'wrong-signature');
    assert.equal(reason(patch(24, ok[24]! ^ 1)), 'wrong-length');
    assert.equal(reason(patch(28, ok[28]! ^ 1)), 'wrong-length');
    assert.equal(reason(ok.subarray(0, ok.length - 1)), 'truncated');
    assert.equal(reason(new Uint8Array([...ok, 0])), 'wrong-length');
    assert.equal(reason(patch(HEADER_BYTES, ok[HEADER_BYTES]! ^ 1)), 'bad-checksum');
    const nanMass = ok.slice();
    new DataView(nanMass.buffer).setFloat64(40, Number.NaN, true);
    assert.equal(reason(nanMass), 'non-finite');
    assert.equal(reason(new Uint8Array(expect.maxBytes + 1)), 'oversized');
  });
});

describe('inbox bounds', () => {
  it('rejects frames beyond the window and beyond the memory bound', async () => {
    const metrics = countingMetrics();
    const inbox = new Inbox({ expect, window: 2, maxBufferedBytes: 3 * 4 * SIZE }, { metrics });
    assert.equal((await inbox.collect(1, [], 1000)).ended, 'complete');
    assert.equal(inbox.acceptFrame(frame(5, 1), 1), 'future'); // 5 > 1 + 1 + 2
    assert.equal(inbox.acceptFrame(frame(4, 1), 1), 'accepted');
    assert.equal(inbox.acceptFrame(frame(3, 1), 1), 'accepted');
    assert.equal(inbox.acceptFrame(frame(2, 1), 1), 'accepted');
    assert.equal(inbox.acceptFrame(frame(2, 2), 2), 'buffer-full');
    assert.equal(inbox.acceptFrame(frame(1, 1), 1), 'late');
    assert.equal(inbox.acceptFrame(frame(2, 3), 2), 'sender-mismatch');
    const r = await inbox.collect(4, [1], 1000); // rounds 2 and 3 were skipped: late
    assert.deepEqual(
      r.received.map((m) => m.round),
      [4],
    );
    assert.equal(metrics.counts.late, 3);
    assert.equal(inbox.heldBytes, 0);
    assert.deepEqual(metrics.counts.rejected, {
      future: 1,
      'buffer-full': 1,
      'sender-mismatch': 1,
    });
    inbox.close();
  });

  it('admits only rostered senders', () => {
    const metrics = countingMetrics();
    const inbox = new Inbox({ expect, roster: [0, 1] }, { metrics });
    assert.equal(inbox.acceptFrame(frame(1, 5), 5), 'unknown-sender');
    assert.equal(inbox.acceptFrame(frame(1, 1), undefined), 'unknown-sender');
    assert.equal(inbox.acceptFrame(frame(1, 1), 1), 'accepted');
    inbox.close();
  });
});
