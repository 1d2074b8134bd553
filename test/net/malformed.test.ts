/**
 * A live libp2p node receives malformed frames over real streams on the weights protocol from a
 * rostered peer, and a connection attempt from a peer outside the roster: it survives, counts each
 * by reason, and a valid frame sent afterwards is still delivered intact.
 */
import '../../src/net/polyfill.js';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { multiaddr } from '@multiformats/multiaddr';
import * as lp from 'it-length-prefixed';
import {
  createHost,
  type Host,
  loadOrCreateIdentity,
  type Roster,
  rosterGate,
} from '../../src/net/libp2p/host.js';
import { MAX_CONSECUTIVE_REJECTS, MAX_STREAMS_PER_PEER } from '../../src/net/libp2p/receiver.js';
import {
  type Libp2pTransport,
  libp2pTransport,
  WEIGHTS_PROTOCOL,
} from '../../src/net/libp2p/transport.js';
import { countingMetrics } from '../../src/net/metrics.js';
import { encodeFrame, HEADER_BYTES } from '../../src/net/wire.js';
import {
  LAYOUT,
  RUN_ID,
  SIGNATURE,
  SIZE,
  sendRawFrame,
  sendRawFrames,
  until,
  weights,
} from './helpers.js';

/** Unsigned LEB128, the length prefix it-length-prefixed uses. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

describe('a live node under malformed frames', () => {
  let tmp: string;
  let victim: Libp2pTransport;
  let attacker: Host;
  let outsider: Host;
  let to: string;
  const metrics = countingMetrics();
  const frame = (
    over: Partial<{ runId: string; sender: number; signature: string; round: number }> = {},
    w = weights(1),
  ) =>
    encodeFrame(
      { runId: RUN_ID, round: 1, sender: 1, signature: SIGNATURE, mass: 1, ...over },
      w,
      'f32',
      LAYOUT,
    );

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'flatmesh-malformed-'));
    const v = await loadOrCreateIdentity(join(tmp, 'victim'));
    const a = await loadOrCreateIdentity(join(tmp, 'attacker'));
    const o = await loadOrCreateIdentity(join(tmp, 'outsider'));
    victim = libp2pTransport({
      self: 0,
      runId: RUN_ID,
      signature: SIGNATURE,
      size: SIZE,
      layout: LAYOUT,
      codec: 'f32',
      privateKey: v.privateKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
    })({ metrics });
    await victim.start();
    const gate = rosterGate();
    attacker = await createHost({
      privateKey: a.privateKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      gater: gate.gater(() => {}),
    });
    outsider = await createHost({
      privateKey: o.privateKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      // An outsider admits anyone: it is the one being refused.
      gater: {},
    });
    await attacker.start();
    await outsider.start();
    const roster: Roster = {
      runId: RUN_ID,
      nodes: [
        { id: 0, peerId: victim.peerId, addrs: victim.addresses() },
        { id: 1, peerId: a.peerId, addrs: attacker.getMultiaddrs().map(String) },
      ],
    };
    gate.set(roster);
    await victim.setRoster(roster);
    to = victim.addresses()[0]!;
  });

  after(async () => {
    await victim.stop();
    await attacker.stop();
    await outsider.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it('counts every malformed frame by reason and still delivers a valid one intact', async () => {
    const REJECTED = 0x02;
    const send = (bytes: Uint8Array, raw = false) => sendRawFrame(attacker, to, bytes, { raw });
    const valid = frame();

    assert.equal(await send(valid.subarray(0, valid.length - 10)), REJECTED); // truncated
    // The length prefix promises 200 bytes more than follow: the stream ends inside the frame.
    const lying = new Uint8Array([
      ...varint(valid.length),
      ...valid.subarray(0, valid.length - 200),
    ]);
    assert.equal(await send(lying, true), undefined); // truncated (framing)
    const nan = weights(1);
    nan[17] = Number.NaN;
    assert.equal(await send(frame({}, nan)), REJECTED); // non-finite
    assert.equal(await send(frame({ signature: 'ffffffffffffffff' })), REJECTED);
    const big = encodeFrame(
      { runId: RUN_ID, round: 1, sender: 1, signature: SIGNATURE },
      weights(1, 2 * SIZE),
      'f32',
      [],
    );
    assert.equal(await send(big), undefined); // oversized (framing)
    const codec = valid.slice();
    codec[5] = 9;
    assert.equal(await send(codec), REJECTED); // unknown-codec
    assert.equal(await send(frame({ runId: 'another-run' })), REJECTED);
    const flipped = valid.slice();
    flipped[HEADER_BYTES + 5]! ^= 0x40;
    assert.equal(await send(flipped), REJECTED); // bad-checksum
    assert.equal(await send(frame({ sender: 2 })), REJECTED); // sender-mismatch

    // A peer outside the roster: its connection is refused after the Noise handshake (when its
    // peer id is known), so no frame of it is ever read.
    assert.equal(await sendRawFrame(outsider, to, frame({ sender: 1 })), undefined);
    await until(() => (metrics.counts.rejected['unknown-sender'] ?? 0) >= 1, 'outsider refused');
    assert.deepEqual(metrics.counts.rejected, {
      truncated: 2,
      'non-finite': 1,
      'wrong-signature': 1,
      oversized: 1,
      'unknown-codec': 1,
      'wrong-run': 1,
      'bad-checksum': 1,
      'sender-mismatch': 1,
      'unknown-sender': 1,
    });

    // The node is alive and its receive path still works; nothing malformed reached it.
    assert.equal(await send(valid), 0x01);
    const r = await victim.collect(1, [1], 10_000);
    assert.equal(r.ended, 'complete');
    assert.equal(r.received.length, 1);
    assert.deepEqual(r.received[0]!.weights, weights(1));
    assert.equal(metrics.counts.received, 1);
  });
  it('answers every frame of one stream in order and a rejected frame does not end the stream', async () => {
    const before = { ...metrics.counts.rejected };
    const nan = weights(2);
    nan[3] = Number.NEGATIVE_INFINITY;
    const receipts = await sendRawFrames(attacker, to, [
      frame({ round: 2 }, weights(2)),
      frame({ round: 3 }, nan),
      frame({ round: 3, signature: 'ffffffffffffffff' }),
      frame({ round: 3 }, weights(3)),
      frame({ round: 4 }, weights(4)),
    ]);
    assert.deepEqual(receipts, [0x01, 0x02, 0x02, 0x01, 0x01]);
    assert.equal(metrics.counts.rejected['non-finite'], (before['non-finite'] ?? 0) + 1);
    assert.equal(metrics.counts.rejected['wrong-signature'], (before['wrong-signature'] ?? 0) + 1);
    for (const round of [2, 3, 4]) {
      const r = await victim.collect(round, [1], 10_000);
      assert.equal(r.ended, 'complete');
      assert.deepEqual(r.received[0]!.weights, weights(round));
    }
  });
  it('counts nothing when a peer resets its stream between frames', async () => {
    const before = JSON.stringify(metrics.counts.rejected);
    const stream = await attacker.dialProtocol(multiaddr(to), WEIGHTS_PROTOCOL);
    let hold: () => void = () => {};
    const held = new Promise<void>((r) => {
      hold = r;
    });
    // Write one frame and keep the stream open (as a node's long-lived channel does) ...
    void stream
      .sink(
        (async function* () {
          yield lp.encode.single(frame({ round: 5 }, weights(5)));
          await held;
        })(),
      )
      .catch(() => {});
    for await (const chunk of stream.source) {
      assert.equal(chunk.get(0), 0x01);
      break;
    }
    // ... then reset it while idle (a peer that stopped or crashed between rounds).
    stream.abort(new Error('peer went away'));
    hold();
    // A later frame on a new stream of the same connection arrives after the reset.
    assert.equal(await sendRawFrame(attacker, to, frame({ round: 6 }, weights(6))), 0x01);
    for (const round of [5, 6]) {
      const r = await victim.collect(round, [1], 10_000);
      assert.deepEqual(r.received[0]!.weights, weights(round));
    }
    assert.equal(JSON.stringify(metrics.counts.rejected), before);
  });
  it('resets a stream flooded with empty frames after 16 rejections and stays alive', async () => {
    const before = metrics.counts.rejected.truncated ?? 0;
    // 1-byte zero-length frames: each costs the sender one byte and the receiver a rejection.
    const flood = Array.from({ length: 200 }, () => new Uint8Array(0));
    const receipts = await sendRawFrames(attacker, to, flood);
    // At most the 16 answers sent before the reset arrive; none past it.
    assert.ok(receipts.length <= MAX_CONSECUTIVE_REJECTS, `${receipts.length} receipts`);
    assert.ok(receipts.every((r) => r === 0x02));
    await until(
      () => (metrics.counts.streamResets['rejected-frames'] ?? 0) >= 1,
      'the flooded stream reset',
    );
    assert.equal(metrics.counts.streamResets['rejected-frames'], 1);
    assert.equal(metrics.counts.rejected.truncated, before + MAX_CONSECUTIVE_REJECTS);
    // A valid frame on a new stream is still delivered.
    assert.equal(await sendRawFrame(attacker, to, frame({ round: 7 }, weights(7))), 0x01);
    const r = await victim.collect(7, [1], 10_000);
    assert.deepEqual(r.received[0]!.weights, weights(7));
  });
  it('resets weights streams beyond the per-peer limit of open ones, and stays alive', async () => {
    const before = metrics.counts.streamResets['stream-limit'] ?? 0;
    // Six streams held open without a byte: each admitted one could hold a frame buffer.
    const streams = await Promise.all(
      Array.from({ length: 6 }, () => attacker.dialProtocol(multiaddr(to), WEIGHTS_PROTOCOL)),
    );
    await until(
      () => (metrics.counts.streamResets['stream-limit'] ?? 0) >= before + 2,
      'the streams over the limit reset',
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(metrics.counts.streamResets['stream-limit'], before + 6 - MAX_STREAMS_PER_PEER);
    for (const st of streams) st.abort(new Error('done'));
    // Once they are gone, a new stream is admitted and its frame delivered (retried until the
    // victim has seen the resets: a stream it still counts as open keeps the limit full).
    const deadline = Date.now() + 10_000;
    while ((await sendRawFrame(attacker, to, frame({ round: 8 }, weights(8)))) !== 0x01) {
      assert.ok(Date.now() < deadline, 'a frame on a new stream is delivered');
      await new Promise((r) => setTimeout(r, 20));
    }
    const r = await victim.collect(8, [1], 10_000);
    assert.deepEqual(r.received[0]!.weights, weights(8));
  });
});
