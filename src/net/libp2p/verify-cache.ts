/**
 * Ed25519 signature checks for gossipsub's signed messages (heartbeats, join/leave) with each peer's
 * public key imported once.
 *
 * Gossipsub checks every signed message it receives with the origin's `PublicKey.verify`, on a key
 * it decodes afresh from the message, and @libp2p/crypto's Node implementation imports the 32 key
 * bytes from a JWK on every call: about a third of a check's CPU (130 us with the import, 95 us
 * without, on the 2-core test machine). Every node checks every other node's heartbeat each round,
 * so that grows with N. Installed once per process, this replaces the Ed25519 public key's `verify`
 * with the same check (node:crypto's one-shot verify) on a KeyObject kept per key. A signature
 * check is a pure function of (key, bytes, signature): the answers are unchanged
 * (test/net/verify-cache.test.ts compares them).
 *
 *   cacheEd25519Verification();   // before the first host starts (host.ts does it)
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { publicKeyFromRaw } from '@libp2p/crypto/keys';

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32 key bytes follow it. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
/** Keys kept imported; past it the oldest is dropped (a run needs its roster's, a few hundred). */
const MAX_KEYS = 4096;

type Bytes = Uint8Array | { subarray(): Uint8Array };
type Verify = (
  this: { raw: Uint8Array },
  data: Bytes,
  sig: Uint8Array,
  options?: { signal?: AbortSignal },
) => unknown;

const keys = new Map<string, KeyObject>();
let installed = false;
const stats = { imports: 0, checks: 0 };

/** Keys imported and signatures checked through the cache since the process started (tests). */
export function verificationStats(): Readonly<typeof stats> {
  return { ...stats };
}

/** Replace Ed25519PublicKey.prototype.verify with the check on a cached key (idempotent). */
export function cacheEd25519Verification(): void {
  if (installed) return;
  installed = true;
  // The class is not exported; any instance leads to it (the class gossipsub's keys are of).
  const proto = Object.getPrototypeOf(publicKeyFromRaw(new Uint8Array(KEY_BYTES))) as {
    verify: Verify;
  };
  const original = proto.verify;
  proto.verify = function (data, sig, options) {
    // Anything unusual goes to the library's own check, its errors included.
    if (this.raw?.byteLength !== KEY_BYTES || sig?.byteLength !== SIGNATURE_BYTES) {
      return original.call(this, data, sig, options);
    }
    options?.signal?.throwIfAborted();
    stats.checks++;
    const msg = data instanceof Uint8Array ? data : data.subarray();
    return verify(null, msg, keyObject(this.raw), sig);
  };
}

function keyObject(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
  let k = keys.get(id);
  if (k === undefined) {
    stats.imports++;
    k = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    keys.set(id, k);
    // A Map iterates in insertion order: drop the oldest.
    if (keys.size > MAX_KEYS) keys.delete(keys.keys().next().value as string);
  }
  return k;
}
