/**
 * Our Noise crypto seals exactly the bytes noise's default does (so any libp2p peer interoperates),
 * opens what the default sealed and the reverse, for small and large messages, whole or chunked.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto';
import { Uint8ArrayList } from 'uint8arraylist';
import { Rng } from '../../src/compute/rng.js';
import { noiseCrypto } from '../../src/net/libp2p/noise-crypto.js';

/** The bytes of a Buffer, Uint8Array or list, as a plain Uint8Array (deepEqual compares types). */
const flat = (b: Uint8Array | Uint8ArrayList): Uint8Array => Uint8Array.from(b.subarray());

function bytes(n: number, index: number): Uint8Array {
  const rng = Rng.from(7, 'noise-crypto-test', index);
  return Uint8Array.from({ length: n }, () => rng.int(256));
}

describe('noise crypto', () => {
  const key = bytes(32, 0);
  const nonce = bytes(12, 1);
  const ad = bytes(32, 2);

  it('seals exactly the bytes the default does, and each side opens the other', () => {
    for (const [i, n] of [0, 100, 1199, 1200, 65519].entries()) {
      const text = bytes(n, 10 + i);
      const ours = flat(noiseCrypto.chaCha20Poly1305Encrypt(text, nonce, ad, key));
      const theirs = flat(defaultCrypto.chaCha20Poly1305Encrypt(text, nonce, ad, key));
      assert.equal(ours.length, n + 16);
      assert.deepEqual(ours, theirs, `${n} bytes`);
      assert.deepEqual(flat(defaultCrypto.chaCha20Poly1305Decrypt(ours, nonce, ad, key)), text);
      assert.deepEqual(flat(noiseCrypto.chaCha20Poly1305Decrypt(theirs, nonce, ad, key)), text);
    }
  });

  it('seals a chunked plaintext like the joined one', () => {
    const text = bytes(70_000, 20);
    const list = new Uint8ArrayList(
      text.subarray(0, 3),
      text.subarray(3, 40_000),
      text.subarray(40_000),
    );
    assert.deepEqual(
      flat(noiseCrypto.chaCha20Poly1305Encrypt(list, nonce, ad, key)),
      flat(defaultCrypto.chaCha20Poly1305Encrypt(text, nonce, ad, key)),
    );
  });

  it('refuses a tampered message', () => {
    const sealed = flat(noiseCrypto.chaCha20Poly1305Encrypt(bytes(5000, 30), nonce, ad, key));
    sealed[100]! ^= 1;
    assert.throws(() => noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce, ad, key));
  });
});
