import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../../src/compute/rng.js';
import { WireError } from '../../src/errors.js';
import { Inbox } from '../../src/net/inbox.js';
import { countingMetrics } from '../../src/net/metrics.js';
import {
  decodeFrame,
  encodeFrame,
  encodeFrameParts,
  FrameDecoder,
  HEADER_BYTES,
  MAX_MASS,
} from '../../src/net/wire.js';
import { EXPECT as expect, LAYOUT, RUN_ID, SIGNATURE, SIZE, weights } from './helpers.js';

const frame = (round = 1, sender = 1, w = weights(1)) =>
  encodeFrame({ runId: RUN_ID, round, sender, signature: SIGNATURE, mass: 0.25 }, w, 'f16', LAYOUT);
const frameOf = (w: Float32Array) =>
  encodeFrame({ runId: RUN_ID, round: 1, sender: 1, signature: SIGNATURE }, w, 'f32', LAYOUT);
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

  it('rejects header flags, a reserved word and a push-sum mass no honest peer sends', () => {
    const ok = frame();
    const with64 = (at: number, v: number) => {
      const b = ok.slice();
      new DataView(b.buffer).setFloat64(at, v, true);
      return b;
    };
    const flags = ok.slice();
    flags[6] = 1;
    const reserved = ok.slice();
    reserved[55] = 0x80;
    assert.equal(reason(flags), 'bad-reserved');
    assert.equal(reason(reserved), 'bad-reserved');
    for (const mass of [0, -0, -1, -1e-300, MAX_MASS * 2, 1e300]) {
      assert.equal(reason(with64(40, mass)), 'bad-mass', `mass ${mass}`);
    }
    assert.equal(reason(with64(40, Number.POSITIVE_INFINITY)), 'non-finite');
    assert.equal(reason(with64(40, MAX_MASS)), 'ok');
    assert.equal(reason(with64(40, 1e-300)), 'ok');
    assert.throws(
      () => decodeFrame(with64(40, 20), { ...expect, maxMass: 16 }),
      (e: unknown) => e instanceof WireError && e.reason === 'bad-mass',
    );
  });

  it('decodes a frame fed in any chunking exactly as the whole frame', () => {
    const rng = Rng.from(3, 'wire-chunks');
    for (const codec of ['f32', 'f16', 'int8'] as const) {
      const w = weights(9);
      const bytes = encodeFrame(
        { runId: RUN_ID, round: 2, sender: 1, signature: SIGNATURE, mass: 0.5 },
        w,
        codec,
        LAYOUT,
      );
      const whole = decodeFrame(bytes, expect);
      for (let trial = 0; trial < 20; trial++) {
        const d = new FrameDecoder(expect, bytes.length);
        for (let at = 0; at < bytes.length; ) {
          const n = 1 + rng.int(trial % 2 ? 9 : 2000);
          d.push(bytes.subarray(at, at + n));
          at += n;
        }
        const got = d.finish();
        assert.deepEqual(got.weights, whole.weights, `${codec} trial ${trial}`);
        assert.equal(got.mass, 0.5);
      }
      // A NaN in the last element is found whatever the cut.
      const bad = w.slice();
      bad[bad.length - 1] = Number.NaN;
      const nan = encodeFrame(
        { runId: RUN_ID, round: 2, sender: 1, signature: SIGNATURE },
        bad,
        codec,
        LAYOUT,
      );
      const d = new FrameDecoder(expect, nan.length);
      for (let at = 0; at < nan.length; at += 7) d.push(nan.subarray(at, at + 7));
      assert.throws(
        () => d.finish(),
        (e: unknown) => e instanceof WireError && e.reason === 'non-finite',
      );
    }
  });

  it('names the first non-finite f32 element wherever it sits and however the frame is cut', () => {
    const rng = Rng.from(5, 'wire-non-finite');
    const spots = [0, 1, 2, 3, 4, 5, 7, 8, 501, SIZE - 5, SIZE - 4, SIZE - 3, SIZE - 2, SIZE - 1];
    const bad = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    for (const [k, at] of spots.entries()) {
      const w = weights(11);
      w[at] = bad[k % bad.length]!;
      // A second bad value further on must not hide the first.
      if (at + 2 < SIZE) w[at + 2] = Number.NaN;
      const bytes = encodeFrame(
        { runId: RUN_ID, round: 1, sender: 1, signature: SIGNATURE },
        w,
        'f32',
        LAYOUT,
      );
      const d = new FrameDecoder(expect, bytes.length);
      for (let off = 0; off < bytes.length; ) {
        const n = 1 + rng.int(k % 2 ? 13 : 1500);
        d.push(bytes.subarray(off, off + n));
        off += n;
      }
      assert.throws(
        () => d.finish(),
        (e: unknown) =>
          e instanceof WireError &&
          e.reason === 'non-finite' &&
          e.message.includes(`element ${at} `),
        `bad value at ${at}`,
      );
    }
    // The largest finite magnitudes and subnormals pass.
    const edge = weights(12);
    edge.set([3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -1e-45, 0, -0], 10);
    assert.deepEqual(decodeFrame(frameOf(edge), expect).weights, edge);
  });

  it('sends an f32 payload as a view of the weights and a separate header', () => {
    const w = weights(4);
    const { header, payload } = encodeFrameParts(
      { runId: RUN_ID, round: 1, sender: 1, signature: SIGNATURE },
      w,
      'f32',
      LAYOUT,
    );
    assert.equal(header.length, HEADER_BYTES);
    assert.equal(payload.buffer, w.buffer);
    const joined = new Uint8Array(header.length + payload.length);
    joined.set(header);
    joined.set(payload, header.length);
    assert.deepEqual(decodeFrame([header, payload], expect).weights, w);
    assert.deepEqual(decodeFrame(joined, expect).weights, w);
  });
});

describe('inbox bounds', () => {
  it('counts the window from the round being collected: a late joiner keeps its next round', async () => {
    // A node that joins at round 4 collects round 4 first; its neighbours, one round ahead, send
    // round 5 meanwhile. That frame is within the window and must wait for collect(5).
    const inbox = new Inbox({ expect, window: 1 });
    const first = inbox.collect(4, [1], 1000);
    assert.equal(inbox.acceptFrame(frame(5, 1), 1), 'accepted');
    // Beyond 4 + window: kept as sender 1's newest frame past the window (see the catch-up rule).
    assert.equal(inbox.acceptFrame(frame(6, 1), 1), 'accepted');
    assert.equal(inbox.acceptFrame(frame(4, 1), 1), 'accepted');
    assert.equal((await first).ended, 'complete');
    const next = await inbox.collect(5, [1], 1000);
    assert.equal(next.ended, 'complete');
    assert.deepEqual(
      next.received.map((m) => m.round),
      [5],
    );
  });

  it('keeps one frame per sender beyond the window, and rejects frames beyond the memory bound', async () => {
    const metrics = countingMetrics();
    const inbox = new Inbox({ expect, window: 2, maxBufferedBytes: 3 * 4 * SIZE }, { metrics });
    assert.equal((await inbox.collect(1, [], 1000)).ended, 'complete');
    // Beyond the window (5 > 1 + 1 + 2) sender 1 keeps its newest frame only.
    assert.equal(inbox.acceptFrame(frame(5, 1), 1), 'accepted');
    assert.equal(inbox.acceptFrame(frame(6, 1), 1), 'accepted'); // round 5 is superseded: late
    assert.equal(inbox.acceptFrame(frame(5, 1), 1), 'late'); // older than the one kept
    assert.equal(inbox.acceptFrame(frame(4, 1), 1), 'accepted');
    assert.equal(inbox.acceptFrame(frame(3, 1), 1), 'accepted');
    assert.equal(inbox.acceptFrame(frame(2, 1), 1), 'buffer-full');
    assert.equal(inbox.acceptFrame(frame(1, 1), 1), 'late');
    assert.equal(inbox.acceptFrame(frame(2, 3), 2), 'sender-mismatch');
    const r = await inbox.collect(4, [1], 1000); // round 3 was skipped: late
    assert.deepEqual(
      r.received.map((m) => m.round),
      [4],
    );
    assert.equal(metrics.counts.late, 4);
    assert.equal(inbox.heldBytes, 4 * SIZE); // round 6, for its own collect
    assert.deepEqual(metrics.counts.rejected, { 'buffer-full': 1, 'sender-mismatch': 1 });
    const next = await inbox.collect(6, [1], 1000);
    assert.deepEqual(
      next.received.map((m) => m.round),
      [6],
    );
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
