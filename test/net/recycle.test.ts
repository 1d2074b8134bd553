import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import type { Codec } from '../../src/gossip/codecs.js';
import { Inbox } from '../../src/net/inbox.js';
import { countingMetrics } from '../../src/net/metrics.js';
import { BufferPool } from '../../src/net/pool.js';
import { decodeFrame, encodeFrame } from '../../src/net/wire.js';
import { EXPECT as expect, LAYOUT, RUN_ID, SIGNATURE, SIZE, weights } from './helpers.js';

const frame = (round: number, sender: number, w = weights(round), codec: Codec = 'f32') =>
  encodeFrame({ runId: RUN_ID, round, sender, signature: SIGNATURE }, w, codec, LAYOUT);

describe('buffer pool', () => {
  it('hands a returned buffer out again, and takes back only its own buffers, once', () => {
    const pool = new BufferPool();
    const a = pool.take(64);
    assert.equal(a.length, 64);
    assert.equal(a.byteOffset, 0);
    assert.equal(a.buffer.byteLength, 64, 'a buffer of its own, not a slice of a shared pool');
    assert.equal(pool.give(new ArrayBuffer(64)), false, 'not handed out here');
    assert.equal(pool.give(a.buffer), true);
    assert.equal(pool.give(a.buffer), false, 'already back');
    assert.equal(pool.size, 1);
    assert.equal(pool.take(32).buffer === a.buffer, false, 'sizes are not mixed');
    const again = pool.take(64);
    assert.equal(again.buffer, a.buffer);
    assert.equal(pool.size, 0);
    // A view that does not cover its whole buffer is not a vector this pool handed out.
    assert.equal(pool.giveArray(new Float32Array(again.buffer, 4, 4)), false);
    assert.equal(pool.giveArray(new Float32Array(again.buffer)), true);
  });

  it('keeps at most maxBuffers and maxBytes of free buffers', () => {
    const pool = new BufferPool({ maxBuffers: 2, maxBytes: 100 });
    const bufs = [pool.take(40), pool.take(40), pool.take(40)];
    assert.deepEqual(
      bufs.map((b) => pool.give(b.buffer)),
      [true, true, false],
    );
    const big = new BufferPool({ maxBytes: 100 });
    assert.equal(big.give(big.take(101).buffer), false);
    assert.throws(() => new BufferPool({ maxBuffers: -1 }), ConfigError);
    assert.throws(() => new BufferPool({ maxBytes: 1.5 }), ConfigError);
  });
});

describe('inbox buffer reuse', () => {
  it('decodes a later frame into a recycled vector, never into one still held', async () => {
    const inbox = new Inbox({ expect });
    assert.equal(inbox.acceptFrame(frame(1, 1), 1), 'accepted');
    const first = (await inbox.collect(1, [1], 1000)).received[0]!.weights;
    assert.deepEqual(first, weights(1));
    assert.equal(inbox.recycle(first), true);
    assert.equal(inbox.recycle(first), false, 'handed back once');
    assert.equal(inbox.recycle(weights(1)), false, 'not from this inbox');
    assert.equal(inbox.acceptFrame(frame(2, 1), 1), 'accepted');
    const second = (await inbox.collect(2, [1], 1000)).received[0]!.weights;
    assert.equal(second.buffer, first.buffer, 'the recycled memory carries round 2');
    assert.deepEqual(second, weights(2));
    // Not recycled: round 3 gets memory of its own and round 2's vector stays intact.
    assert.equal(inbox.acceptFrame(frame(3, 1), 1), 'accepted');
    const third = (await inbox.collect(3, [1], 1000)).received[0]!.weights;
    assert.notEqual(third.buffer, second.buffer);
    assert.deepEqual(second, weights(2));
    assert.deepEqual(third, weights(3));
    inbox.close();
  });

  it('takes back the buffers of frames it rejects or drops', async () => {
    const metrics = countingMetrics();
    const inbox = new Inbox({ expect, window: 1 }, { metrics });
    const corrupt = frame(1, 1);
    corrupt[corrupt.length - 1]! ^= 0xff; // payload no longer matches its CRC
    assert.equal(inbox.acceptFrame(corrupt, 1), 'bad-checksum');
    assert.equal(inbox.pooledBuffers, 1, 'the rejected frame returned its buffer');
    assert.equal(inbox.acceptFrame(frame(1, 1), 1), 'accepted');
    assert.equal(inbox.pooledBuffers, 0, 'and the next frame took it');
    assert.equal(inbox.acceptFrame(frame(1, 1), 1), 'duplicate');
    assert.equal(inbox.pooledBuffers, 1, 'the duplicate returned its buffer');
    assert.equal(inbox.acceptFrame(frame(1, 2), 2), 'accepted');
    assert.equal(inbox.pooledBuffers, 0);
    const r = await inbox.collect(1, [1], 1000); // sender 2 is no neighbour this round
    assert.deepEqual(
      r.received.map((m) => m.from),
      [1],
    );
    assert.equal(inbox.pooledBuffers, 1, 'the frame from no neighbour returned its buffer');
    assert.equal(inbox.acceptFrame(frame(1, 1), 1), 'late');
    assert.equal(inbox.pooledBuffers, 1, 'the late frame took a free buffer and returned it');
    assert.equal(r.received[0]!.weights.buffer.byteLength, 4 * SIZE);
    assert.deepEqual(metrics.counts.rejected, {
      'bad-checksum': 1,
      duplicate: 1,
      'not-neighbour': 1,
    });
    inbox.close();
  });

  it('decodes f16 and int8 frames into recycled vectors and reuses their payload buffers', async () => {
    for (const codec of ['f16', 'int8'] as const) {
      const inbox = new Inbox({ expect });
      const want = decodeFrame(frame(1, 1, weights(1), codec), expect).weights;
      assert.equal(inbox.acceptFrame(frame(1, 1, weights(1), codec), 1), 'accepted');
      assert.equal(inbox.pooledBuffers, 1, `${codec}: the payload buffer, once decoded`);
      const first = (await inbox.collect(1, [1], 1000)).received[0]!.weights;
      assert.deepEqual(first, want);
      assert.equal(inbox.recycle(first), true);
      assert.equal(inbox.acceptFrame(frame(2, 1, weights(1), codec), 1), 'accepted');
      const second = (await inbox.collect(2, [1], 1000)).received[0]!.weights;
      assert.equal(second.buffer, first.buffer, codec);
      assert.deepEqual(second, want);
      inbox.close();
    }
  });
});
