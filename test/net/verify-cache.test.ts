/**
 * The cached Ed25519 check (src/net/libp2p/verify-cache.ts) gives the library's answers on the path
 * gossipsub takes (a fresh PublicKey decoded from the message's `from` for every message): genuine
 * messages pass, altered bytes, another signature or another key fail, a malformed signature
 * throws as before; each key is imported once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { peerIdFromMultihash } from '@libp2p/peer-id';
import { cacheEd25519Verification, verificationStats } from '../../src/net/libp2p/verify-cache.js';

async function signer(seed: number) {
  const key = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(seed));
  return { key, from: key.publicKey.toMultihash() };
}

/** What gossipsub does per message: decode the origin's key from its peer id, then verify. */
async function check(
  from: Parameters<typeof peerIdFromMultihash>[0],
  data: Uint8Array,
  sig: Uint8Array,
): Promise<unknown> {
  const pub = peerIdFromMultihash(from).publicKey!;
  try {
    return await pub.verify(data, sig);
  } catch (e) {
    return `throws ${(e as Error).name}`;
  }
}

describe('cached ed25519 verification', () => {
  it('answers as the library does, importing each key once', async () => {
    const a = await signer(1);
    const b = await signer(2);
    const msg = new TextEncoder().encode('libp2p-pubsub:{"type":"heartbeat","node":3,"round":7}');
    const other = Uint8Array.from(msg);
    other[other.length - 2] = '8'.charCodeAt(0);
    const sig = await a.key.sign(msg);
    const flipped = Uint8Array.from(sig);
    flipped[5]! ^= 1;
    const cases = [
      [a.from, msg, sig], // genuine
      [a.from, other, sig], // altered bytes, same signature
      [a.from, msg, flipped], // altered signature
      [b.from, msg, sig], // another key
      [a.from, msg, sig.subarray(0, 63)], // malformed signature
    ] as const;
    const before = [];
    for (const [from, data, s] of cases) before.push(await check(from, data, s));
    assert.deepEqual(before, [true, false, false, false, 'throws TypeError']);

    cacheEd25519Verification();
    const after = [];
    for (const [from, data, s] of cases) after.push(await check(from, data, s));
    assert.deepEqual(after, before);
    // Heartbeats of the same two peers, round after round.
    for (let i = 0; i < 5; i++) {
      assert.equal(await check(a.from, Uint8Array.from(msg), sig), true);
      assert.equal(await check(b.from, msg, sig), false);
    }
    // The malformed signature went to the library's own check.
    assert.deepEqual(verificationStats(), { imports: 2, checks: 14 });
  });
});
