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
import { openMessages, sealMessages } from '../../src/net/libp2p/noise-streams.js';
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
