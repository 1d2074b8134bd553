/**
 * Our Noise transport streams: the messages they write are noise's wire format (2-byte big-endian
 * length, ciphertext and tag, at most 65,535 bytes), they read messages in any chunking, and a
 * host using them exchanges weights with a host on stock @chainsafe/libp2p-noise.
 */
import '../../src/net/polyfill.js';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { tcp } from '@libp2p/tcp';
import { createLibp2p } from 'libp2p';
import { Uint8ArrayList } from 'uint8arraylist';
import { Rng } from '../../src/compute/rng.js';
import type { Host } from '../../src/net/libp2p/host.js';
import { loadOrCreateIdentity } from '../../src/net/libp2p/host.js';
import {
  openMessages,
  SealedBufferRing,
  sealMessages,
} from '../../src/net/libp2p/noise-streams.js';
import { libp2pTransport } from '../../src/net/libp2p/transport.js';
import { encodeFrame } from '../../src/net/wire.js';
import { RUN_ID, SIGNATURE, sendRawFrame, weights } from './helpers.js';

/** A stand-in cipher: the "ciphertext" is the plaintext followed by a 16-byte tag of its length. */
const session = {
  encrypt(p: Uint8Array | Uint8ArrayList) {
    const tag = new Uint8Array(16).fill(p.byteLength & 0xff);
    return new Uint8ArrayList(p.subarray(), tag);
  },
  decrypt(c: Uint8Array | Uint8ArrayList) {
    const bytes = c.subarray();
    assert.ok(bytes.subarray(bytes.length - 16).every((b) => b === ((bytes.length - 16) & 0xff)));
    return bytes.subarray(0, bytes.length - 16);
  },
};

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('noise transport streams', () => {
  it('write noise wire messages and read them back in any chunking', async () => {
    const rng = Rng.from(11, 'noise-streams');
    const text = Uint8Array.from({ length: 200_000 }, () => rng.int(256));
    const input = [
      text.subarray(0, 5),
      new Uint8ArrayList(text.subarray(5, 150_000)),
      text.subarray(150_000),
    ];
    const wire = await collect(
      sealMessages(session)(
        (async function* () {
          yield* input;
        })(),
      ),
    );
    // One buffer per input chunk, made of messages of at most 65,535 bytes.
    assert.equal(wire.length, 3);
    const all = new Uint8ArrayList(...wire).subarray();
    let plain = 0;
    for (let at = 0; at < all.length; ) {
      const len = (all[at]! << 8) | all[at + 1]!;
      assert.ok(len >= 16 && len <= 65_535);
      plain += len - 16;
      at += 2 + len;
    }
    assert.equal(plain, text.length);
    for (const cut of [1, 7, 4096, 65_536, 1 << 20]) {
      const pieces: Uint8Array[] = [];
      for (let at = 0; at < all.length; at += cut) pieces.push(all.subarray(at, at + cut));
      const out = await collect(
        openMessages(session)(
          (async function* () {
            yield* pieces;
          })(),
        ),
      );
      const got = new Uint8ArrayList();
      for (const o of out) got.append(o);
      assert.deepEqual(got.subarray(), text, `cut ${cut}`);
    }
  });

  it('reuse a join buffer only after REUSE_AFTER_BYTES more were handed on, and keep every byte intact', async () => {
    // A consumer that keeps every buffer it was given, as the socket does until it has written
    // them: a buffer's bytes must not change while fewer than REUSE_AFTER_BYTES followed it.
    const rng = Rng.from(12, 'noise-streams-ring');
    // Odd sizes first (they fragment the slabs), then what a 6.4 MB frame makes of yamux's 1 MiB
    // data frames: six of 1 MiB, the rest, and a few small ones (window updates, receipts).
    const odd = [1 << 20, 300_000, 5, 1 << 20, 40_000, 1 << 20, 1 << 20, 70_000];
    const frame = [1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 108_000, 12, 30];
    const sizes = [...odd, ...frame, ...frame, ...frame, ...frame];
    const chunks = sizes.map((size) => {
      const c = new Uint8Array(size);
      for (let j = 0; j < c.length; j += 997) c[j] = rng.int(256);
      return c;
    });
    const held: { buf: Uint8Array; copy: Uint8Array; end: number }[] = [];
    const plain = new Uint8ArrayList();
    let total = 0;
    for await (const buf of sealMessages(session)(
      (async function* () {
        yield* chunks;
      })(),
    )) {
      // Everything handed on at least REUSE_AFTER_BYTES ago may be rewritten; the rest must not be.
      for (const h of held) {
        if (total - h.end < SealedBufferRing.REUSE_AFTER_BYTES) {
          assert.equal(Buffer.compare(h.buf, h.copy), 0, 'a buffer was rewritten while in flight');
        }
      }
      total += buf.length;
      held.push({ buf, copy: Uint8Array.from(buf), end: total });
      const opened = await collect(
        openMessages(session)(
          (async function* () {
            yield Uint8Array.from(buf);
          })(),
        ),
      );
      for (const o of opened) plain.append(o);
    }
    // (Buffer#slice is a view: copies are made with Uint8Array.from.)
    const got = plain.subarray();
    const want = new Uint8ArrayList(...chunks).subarray();
    assert.deepEqual(got, want);
    // Warm: the frames' big joins shared the ring's slabs instead of getting buffers of their own.
    const warm = held.slice(odd.length + frame.length).filter((h) => h.buf.length > 16 * 1024);
    const buffers = new Set(warm.map((h) => h.buf.buffer));
    assert.ok(buffers.size <= 4, `${buffers.size} distinct join buffers`);
  });

  it('a ring without a free slab hands out fresh buffers', () => {
    const ring = new SealedBufferRing(2);
    const half = SealedBufferRing.REUSE_AFTER_BYTES / 2;
    const a = ring.take(1 << 20);
    ring.handedOn(1 << 20);
    // Too big for what a's slab has left: a second slab.
    const b = ring.take(half);
    ring.handedOn(half);
    // Only half of REUSE_AFTER_BYTES followed a: it is not free, and the ring is full, so c (too
    // big for b's slab) is a buffer of its own.
    const c = ring.take(1 << 20);
    assert.notEqual(c.buffer, a.buffer);
    assert.notEqual(c.buffer, b.buffer);
    ring.handedOn(1 << 20);
    // Now more than REUSE_AFTER_BYTES followed a: its slab comes back.
    assert.equal(ring.take(1 << 20).buffer, a.buffer);
    assert.equal(ring.size, 2);
  });

  it('a frame of the 784-200-200-10 MLP a round, on one connection, cycles through 2 slabs', () => {
    // Each ring is one connection's; with K nodes a process, K times 2 per neighbour (not 4).
    const ring = new SealedBufferRing();
    const frame = 797_000;
    const seen = new Set<ArrayBufferLike>();
    for (let round = 0; round < 8; round++) {
      seen.add(ring.take(frame).buffer);
      ring.handedOn(frame);
      // A receipt's and a window update's sealed bytes between the frames.
      ring.take(40);
      ring.handedOn(40);
    }
    assert.equal(seen.size, 2);
    assert.equal(ring.size, 2);
  });

  it('refuses a message too short to hold a tag', async () => {
    const bad = Uint8Array.of(0, 3, 1, 2, 3);
    await assert.rejects(
      collect(
        openMessages(session)(
          (async function* () {
            yield bad;
          })(),
        ),
      ),
      /cannot hold a tag/,
    );
  });

  it('interoperate with a stock noise host: a large frame is delivered intact', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'flatmesh-noise-'));
    const a = await loadOrCreateIdentity(join(tmp, 'a'));
    const b = await loadOrCreateIdentity(join(tmp, 'b'));
    const size = 200_000; // an 800 KB frame: many Noise messages, several muxer chunks
    const receiver = libp2pTransport({
      self: 0,
      runId: RUN_ID,
      signature: SIGNATURE,
      size,
      layout: [],
      codec: 'f32',
      privateKey: a.privateKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
    })({});
    await receiver.start();
    const stock = await createLibp2p({
      privateKey: b.privateKey as never,
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
    });
    try {
      await receiver.setRoster({
        runId: RUN_ID,
        nodes: [
          { id: 0, peerId: receiver.peerId, addrs: receiver.addresses() },
          { id: 1, peerId: b.peerId, addrs: [] },
        ],
      });
      const w = weights(5, size);
      const frame = encodeFrame(
        { runId: RUN_ID, round: 1, sender: 1, signature: SIGNATURE },
        w,
        'f32',
        [],
      );
      const receipt = await sendRawFrame(stock as unknown as Host, receiver.addresses()[0]!, frame);
      assert.equal(receipt, 0x01);
      const r = await receiver.collect(1, [1], 10_000);
      assert.deepEqual(r.received[0]!.weights, w);
    } finally {
      await stock.stop();
      await receiver.stop();
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
