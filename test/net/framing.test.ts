/**
 * The stream framing: frames split anywhere across chunks (prefix included) come out whole and in
 * order without a join, bad prefixes and streams ending inside a frame throw the right reason, a
 * frame that stalls fires its deadline, and a frame decoded from its chunks equals the one decoded
 * from contiguous bytes, for every codec and every malformation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as lp from 'it-length-prefixed';
import { Uint8ArrayList } from 'uint8arraylist';
import { Rng } from '../../src/compute/rng.js';
import { WireError } from '../../src/errors.js';
import { CODECS } from '../../src/gossip/codecs.js';
import { ByteQueue, readFrames } from '../../src/net/libp2p/framing.js';
import { decodeFrame, encodeFrame, HEADER_BYTES } from '../../src/net/wire.js';
import { lengthPrefix } from '../fuzz/frames.js';
import { EXPECT as expect, LAYOUT, RUN_ID, SIGNATURE, weights } from './helpers.js';

const concat = (parts: readonly Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** Cut `bytes` at the given offsets into chunks (as a stream might deliver them). */
function cut(bytes: Uint8Array, at: readonly number[]): Uint8Array[] {
  const cuts = [0, ...[...at].sort((a, b) => a - b), bytes.length];
  const out: Uint8Array[] = [];
  for (let i = 1; i < cuts.length; i++) {
    if (cuts[i]! > cuts[i - 1]!) out.push(bytes.subarray(cuts[i - 1], cuts[i]));
  }
  return out;
}

async function* source(chunks: readonly (Uint8Array | Uint8ArrayList)[]) {
  for (const c of chunks) yield c;
}

async function collectFrames(
  chunks: readonly (Uint8Array | Uint8ArrayList)[],
  maxBytes = 1 << 20,
): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const parts of readFrames(source(chunks), { maxBytes })) out.push(concat(parts));
  return out;
}

async function framingError(chunks: readonly Uint8Array[], maxBytes = 1 << 20) {
  try {
    await collectFrames(chunks, maxBytes);
  } catch (e) {
    assert.ok(e instanceof WireError);
    return e.reason;
  }
  return 'ok';
}

describe('stream framing', () => {
  it('reads the unsigned LEB128 length prefix senders write with it-length-prefixed', () => {
    const prefixOf = (n: number) => {
      const list = lp.encode.single(new Uint8Array(n), { maxDataLength: n });
      return [...list.subarray(0, list.byteLength - n)];
    };
    for (const n of [0, 127, 128, 300, 70_000]) assert.deepEqual(prefixOf(n), [...lengthPrefix(n)]);
    assert.deepEqual(prefixOf(300), [0xac, 0x02]);
  });

  it('yields every frame whole and in order however the stream is chunked', async () => {
    const rng = Rng.from(1, 'framing-test');
    const frames = [300, 0, 1, 5000, 128, 70].map((n, i) => {
      const f = new Uint8Array(n);
      for (let j = 0; j < n; j++) f[j] = (j * 31 + i) & 0xff;
      return f;
    });
    const stream = concat(frames.flatMap((f) => [lengthPrefix(f.length), f]));
    // Every single cut point (splits prefixes and payloads alike), then random multi-cuts.
    for (let at = 1; at < stream.length; at += 7) {
      assert.deepEqual(await collectFrames(cut(stream, [at])), frames);
    }
    for (let k = 0; k < 30; k++) {
      const cuts = Array.from({ length: 1 + rng.int(40) }, () => rng.int(stream.length));
      const chunks = cut(stream, cuts);
      assert.deepEqual(await collectFrames(chunks), frames);
      // Uint8ArrayList chunks, as yamux yields them.
      const lists = [];
      for (let i = 0; i < chunks.length; i += 3)
        lists.push(new Uint8ArrayList(...chunks.slice(i, i + 3)));
      assert.deepEqual(await collectFrames(lists), frames);
    }
  });

  it('throws oversized for a long prefix and truncated when the stream ends inside a frame', async () => {
    assert.equal(await framingError([lengthPrefix(101)], 100), 'oversized');
    assert.equal(
      await framingError([new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0x01])]),
      'oversized',
    );
    assert.equal(await framingError([lengthPrefix(10), new Uint8Array(9)]), 'truncated');
    assert.equal(await framingError([new Uint8Array([0x80])]), 'truncated');
    assert.equal(
      await framingError([lengthPrefix(3), new Uint8Array(3), lengthPrefix(100)]),
      'truncated',
    );
    assert.equal(await framingError([lengthPrefix(100), new Uint8Array(100)], 100), 'ok');
  });

  it('fires the frame deadline when a frame stalls, and never while the stream idles between frames', async () => {
    let timeouts = 0;
    let release: (() => void) | undefined;
    const stalled = new Promise<void>((r) => {
      release = r;
    });
    async function* src() {
      yield concat([lengthPrefix(2), new Uint8Array(2)]);
      await new Promise((r) => setTimeout(r, 50)); // idle between frames: no deadline
      yield concat([lengthPrefix(4), new Uint8Array(1)]);
      await stalled; // stalls inside a frame until the deadline fires
      throw new Error('aborted');
    }
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const parts of readFrames(src(), {
        maxBytes: 100,
        frameTimeoutMs: 20,
        onTimeout: () => {
          timeouts++;
          release?.();
        },
      })) {
        seen.push(concat(parts).length);
      }
    }, /aborted/);
    assert.deepEqual(seen, [2]);
    assert.equal(timeouts, 1);
  });

  it('ends quietly on a source error between frames when asked, and throws one inside a frame', async () => {
    async function* failing(afterPrefixBytes: number) {
      yield concat([lengthPrefix(3), new Uint8Array(3)]);
      if (afterPrefixBytes) yield lengthPrefix(300).subarray(0, afterPrefixBytes);
      throw new Error('connection reset');
    }
    const idle: unknown[] = [];
    const seen: number[] = [];
    for await (const parts of readFrames(failing(0), {
      maxBytes: 1000,
      onIdleError: (e) => idle.push(e),
    })) {
      seen.push(concat(parts).length);
    }
    assert.deepEqual(seen, [3]);
    assert.equal(idle.length, 1);
    await assert.rejects(async () => {
      for await (const _ of readFrames(failing(1), { maxBytes: 1000, onIdleError: () => {} })) {
      }
    }, /connection reset/);
    await assert.rejects(async () => {
      for await (const _ of readFrames(failing(0), { maxBytes: 1000 })) {
      }
    }, /connection reset/);
  });

  it('queues chunks for a sink and ends after draining', async () => {
    const q = new ByteQueue();
    q.push(Uint8Array.of(1), Uint8Array.of(2));
    const read = (async () => {
      const got: number[] = [];
      for await (const c of q) got.push(...c);
      return got;
    })();
    await new Promise((r) => setTimeout(r, 5));
    q.push(Uint8Array.of(3));
    q.end();
    q.push(Uint8Array.of(4)); // after end: ignored
    assert.deepEqual(await read, [1, 2, 3]);
  });
});

describe('decoding a frame from its chunks', () => {
  const rng = Rng.from(2, 'chunked-decode-test');
  const split = (bytes: Uint8Array) =>
    cut(
      bytes,
      Array.from({ length: 1 + rng.int(6) }, () => rng.int(bytes.length)).concat([
        rng.int(HEADER_BYTES),
      ]),
    );

  it('equals the contiguous decode for every codec and owns its weights', () => {
    for (const codec of CODECS) {
      for (let k = 0; k < 10; k++) {
        const bytes = encodeFrame(
          { runId: RUN_ID, round: 4, sender: 2, signature: SIGNATURE, mass: 0.5 },
          weights(k),
          codec,
          LAYOUT,
        );
        const parts = split(bytes);
        const whole = decodeFrame(bytes, expect);
        const chunked = decodeFrame(parts, expect);
        assert.deepEqual(chunked, whole);
        for (const p of parts) assert.notEqual(chunked.weights.buffer, p.buffer);
      }
    }
  });

  it('rejects each malformation with the same reason as the contiguous decode', () => {
    const good = encodeFrame(
      { runId: RUN_ID, round: 1, sender: 1, signature: SIGNATURE, mass: 1 },
      weights(1),
      'f32',
      LAYOUT,
    );
    const nan = weights(1);
    nan[999] = Number.POSITIVE_INFINITY;
    const variants: Uint8Array[] = [
      good.subarray(0, 20),
      good.subarray(0, good.length - 4),
      concat([
        encodeFrame(
          { runId: RUN_ID, round: 1, sender: 1, signature: SIGNATURE },
          weights(1),
          'f16',
          LAYOUT,
        ),
        new Uint8Array(4),
      ]),
      encodeFrame(
        { runId: 'other', round: 1, sender: 1, signature: SIGNATURE },
        weights(1),
        'f32',
        LAYOUT,
      ),
      encodeFrame({ runId: RUN_ID, round: 1, sender: 1, signature: SIGNATURE }, nan, 'f32', LAYOUT),
      encodeFrame(
        { runId: RUN_ID, round: 1, sender: 1, signature: SIGNATURE, mass: Number.NaN },
        weights(1),
        'int8',
        LAYOUT,
      ),
    ];
    const flipped = good.slice();
    flipped[HEADER_BYTES + 400]! ^= 1;
    variants.push(flipped);
    const codec = good.slice();
    codec[5] = 7;
    variants.push(codec);
    const reasonOf = (f: () => unknown) => {
      try {
        f();
        return 'ok';
      } catch (e) {
        assert.ok(e instanceof WireError);
        return e.reason;
      }
    };
    const reasons = variants.map((v) => {
      const whole = reasonOf(() => decodeFrame(v, expect));
      assert.equal(
        reasonOf(() => decodeFrame(split(v), expect)),
        whole,
      );
      return whole;
    });
    assert.deepEqual(reasons, [
      'truncated',
      'truncated',
      'wrong-length',
      'wrong-run',
      'non-finite',
      'non-finite',
      'bad-checksum',
      'unknown-codec',
    ]);
  });
});
