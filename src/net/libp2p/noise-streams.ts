/**
 * Noise for our hosts: @chainsafe/libp2p-noise (its handshake, its cipher states, our
 * noise-crypto.ts) with our own transport-phase streams in place of its encryptStream /
 * decryptStream. The wire bytes are the same (2-byte big-endian length, then ChaCha20-Poly1305
 * ciphertext and tag, at most 65,535 bytes a message), so any libp2p Noise peer interoperates.
 *
 *   connectionEncrypters: [fastNoise()]
 *
 * Why (measured with `npm run bench -- net`, 6.4 MB f32 frames):
 * - receive: noise's decryptStream computes a `dst` view of each message for its WebAssembly
 *   cipher with Uint8ArrayList.subarray(), which JOINS the message whenever it spans two socket
 *   reads (Node reads 64 KiB at a time and a message is 65,537 bytes: nearly always), a full copy
 *   and a 64 KiB allocation per message that node:crypto then ignores. Here the message goes to
 *   the cipher as the list of slices it arrived in.
 * - send: noise yields each message as a list (prefix, ciphertext, tag) that the TCP sink joins
 *   and writes on its own: ~100 socket writes per frame. Here all messages sealed from one chunk of
 *   the muxer (up to its 1 MiB maxMessageSize) are written into one buffer: the same single copy,
 *   one socket write instead of sixteen, and no allocation once the connection is warm (a ring of
 *   reused slabs, SealedBufferRing).
 * If the installed noise no longer has the method this replaces, its own streams are used.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { pipe } from 'it-pipe';
import { Uint8ArrayList } from 'uint8arraylist';
import { noiseCrypto } from './noise-crypto.js';

/** Noise's limits: a message is at most 65,535 bytes, of which 16 are the Poly1305 tag. */
const MAX_MESSAGE = 65_535;
const TAG = 16;
const MAX_PLAINTEXT = MAX_MESSAGE - TAG;

type Bytes = Uint8Array | Uint8ArrayList;
type Source = AsyncIterable<Bytes>;
interface Duplex {
  source: Source;
  sink: (source: Source) => Promise<void>;
}

/** The cipher pair noise's handshake returns (nonces advance inside). */
export interface NoiseSession {
  encrypt(plaintext: Bytes): Bytes;
  decrypt(ciphertext: Bytes, dst?: Uint8Array): Bytes;
}

type NoiseInit = NonNullable<Parameters<typeof noise>[0]>;

/** `noise(init)` with our crypto and our transport-phase streams (see the module comment). */
export function fastNoise(init: NoiseInit = {}): ReturnType<typeof noise> {
  const make = noise({ ...init, crypto: noiseCrypto });
  return (components) => {
    const encrypter = make(components);
    const impl = encrypter as unknown as {
      createSecureConnection?: (
        connection: { unwrap(): Duplex },
        session: NoiseSession,
      ) => Promise<Duplex>;
    };
    if (typeof impl.createSecureConnection === 'function') {
      impl.createSecureConnection = (connection, session) =>
        secureDuplex(connection.unwrap(), session);
    }
    return encrypter;
  };
}

/**
 * The plaintext duplex over `network` (a connection after the handshake): what the user writes is
 * sealed and sent, what arrives is opened and read.
 */
export async function secureDuplex(network: Duplex, session: NoiseSession): Promise<Duplex> {
  const [secure, user] = duplexPair();
  // Resolves once the pipeline is wired; a failure later (reset, bad tag) ends user.source.
  await pipe(secure, sealMessages(session), network, openMessages(session), secure);
  return user;
}

/**
 * Where sealed chunks are joined. Large ones go into a small ring of reused slabs instead of a
 * fresh buffer each: a 6.4 MB frame is ~6.4 MB of ciphertext node:crypto allocates anyway, and a
 * fresh join buffer per chunk doubled that. V8 counts every new ArrayBuffer towards its
 * old-generation limit until the next full GC; at ~13 MB per frame the sender tipped into a
 * mark-compact per frame (its old-generation slack, less its 16 MB new space, was ~8 MB) and its
 * CPU per frame doubled (bench net, --trace-gc: 12-16 ms vs 25-35 ms).
 *
 * When a slab may be reused: the network sink (@libp2p/tcp through stream-to-it) asks for the next
 * chunk only after socket.write() returned true or 'drain' fired, i.e. with fewer than the socket's
 * high-water mark of bytes (16 KiB; 64 KiB from Node 22) still unwritten, and those are the most
 * recent ones. So once REUSE_AFTER_BYTES more have been handed on after a slab's last chunk and the
 * sink asked for more, that slab is on the wire. With no free slab in the ring the chunk gets a
 * fresh buffer, as before.
 *
 * The ring is per connection, and a node of `launch --nodes-per-process K` has one per neighbour:
 * its size is memory K times over. REUSE_AFTER_BYTES is 256 KiB (4x Node 22's high-water mark, 16x
 * Node 20's): a 0.8 MB frame a round then cycles through 2 slabs (2 MiB a connection) where the
 * earlier 2 MiB bound held 4 (measured at 64 nodes, K = 16: ~8 MB of slabs per node).
 */
export class SealedBufferRing {
  /** Bytes handed on after a slab's last chunk before the slab is rewritten (> any high-water mark). */
  static readonly REUSE_AFTER_BYTES = 256 * 1024;
  /** One slab holds the sealed form of one 1 MiB muxer chunk (plus 2 + 16 bytes per message). */
  static readonly SLAB_BYTES = 1024 * 1024 + 8 * 1024;
  /** Smaller joins come from Node's shared 8 KiB pool or are too small to matter. */
  static readonly MIN_POOLED_BYTES = 16 * 1024;
  private readonly slabs: { buf: Buffer; used: number; mark: number }[] = [];
  private current = -1;
  /** Bytes handed on so far (the caller reports each chunk with handedOn()). */
  private total = 0;

  constructor(private readonly maxSlabs = 4) {}

  /** Slabs allocated so far (for tests). */
  get size(): number {
    return this.slabs.length;
  }

  /** A buffer of `bytes` to join one chunk into; call handedOn() once it has been passed on. */
  take(bytes: number): Buffer {
    if (bytes < SealedBufferRing.MIN_POOLED_BYTES || bytes > SealedBufferRing.SLAB_BYTES) {
      return Buffer.allocUnsafe(bytes);
    }
    let slab = this.slabs[this.current];
    if (!slab || slab.buf.length - slab.used < bytes) {
      slab = this.nextFreeSlab();
      if (!slab) return Buffer.allocUnsafe(bytes);
    }
    const out = slab.buf.subarray(slab.used, slab.used + bytes);
    slab.used += bytes;
    slab.mark = this.total + bytes;
    return out;
  }

  /** `bytes` were handed on (yielded) and the consumer asked for the next chunk. */
  handedOn(bytes: number): void {
    this.total += bytes;
  }

  private nextFreeSlab(): { buf: Buffer; used: number; mark: number } | undefined {
    const n = this.slabs.length;
    for (let i = 1; i <= n; i++) {
      const at = (this.current + i) % n;
      const slab = this.slabs[at]!;
      if (at !== this.current && this.total - slab.mark >= SealedBufferRing.REUSE_AFTER_BYTES) {
        slab.used = 0;
        this.current = at;
        return slab;
      }
    }
    if (n >= this.maxSlabs) return undefined;
    const slab = { buf: Buffer.allocUnsafe(SealedBufferRing.SLAB_BYTES), used: 0, mark: 0 };
    this.slabs.push(slab);
    this.current = n;
    return slab;
  }
}

/**
 * Seal plaintext chunks into Noise messages; the messages of one chunk leave as one buffer (joined
 * into a SealedBufferRing slab when large: valid until the consumer has asked for ~2 MiB more).
 */
export function sealMessages(session: NoiseSession) {
  return async function* (source: Source): AsyncGenerator<Uint8Array> {
    const ring = new SealedBufferRing();
    for await (const chunk of source) {
      const sealed: Bytes[] = [];
      let total = 0;
      for (let i = 0; i < chunk.length; i += MAX_PLAINTEXT) {
        const end = Math.min(i + MAX_PLAINTEXT, chunk.length);
        const part = chunk instanceof Uint8Array ? chunk.subarray(i, end) : chunk.sublist(i, end);
        const data = session.encrypt(part);
        sealed.push(data);
        total += 2 + data.byteLength;
      }
      if (sealed.length === 0) continue;
      const out = ring.take(total);
      let at = 0;
      for (const data of sealed) {
        out[at] = data.byteLength >>> 8;
        out[at + 1] = data.byteLength & 0xff;
        at += 2;
        if (data instanceof Uint8Array) {
          out.set(data, at);
          at += data.byteLength;
        } else {
          for (const buf of data) {
            out.set(buf, at);
            at += buf.byteLength;
          }
        }
      }
      yield out;
      ring.handedOn(total);
    }
  };
}

/**
 * Split the network bytes into Noise messages (2-byte big-endian length) and open each as the
 * slices it arrived in. Throws on a message too short to hold a tag or one that fails to open.
 */
export function openMessages(session: NoiseSession) {
  return async function* (source: Source): AsyncGenerator<Bytes> {
    let need = -1; // message length once its prefix is read
    let prefix = -1; // first prefix byte, when the prefix spans two chunks
    let parts: Uint8Array[] = [];
    let have = 0;
    for await (const chunk of source) {
      for (const buf of chunk instanceof Uint8Array ? [chunk] : chunk) {
        let off = 0;
        while (off < buf.length) {
          if (need < 0) {
            const b = buf[off++]!;
            if (prefix < 0) {
              prefix = b;
              continue;
            }
            need = (prefix << 8) | b;
            prefix = -1;
            if (need < TAG) throw new Error(`Noise message of ${need} bytes cannot hold a tag`);
            parts = [];
            have = 0;
            continue;
          }
          const take = Math.min(need - have, buf.length - off);
          parts.push(off === 0 && take === buf.length ? buf : buf.subarray(off, off + take));
          off += take;
          have += take;
          if (have === need) {
            let message: Bytes;
            if (parts.length === 1) message = parts[0]!;
            else {
              // One by one: a message dribbled in as thousands of slices must not blow the stack.
              const list = new Uint8ArrayList();
              for (const p of parts) list.append(p);
              message = list;
            }
            need = -1;
            parts = [];
            yield session.decrypt(message);
          }
        }
      }
    }
  };
}

/** Two duplexes joined back to back (what one writes the other reads), as it-pair's. */
function duplexPair(): [Duplex, Duplex] {
  const a = pair();
  const b = pair();
  return [
    { source: a.source, sink: b.sink },
    { source: b.source, sink: a.sink },
  ];
}

function pair(): Duplex {
  let resolve: (s: Source) => void = () => {};
  const piped = new Promise<Source>((r) => {
    resolve = r;
  });
  let taken = false;
  return {
    sink: async (source) => {
      if (taken) throw new Error('already piped');
      taken = true;
      resolve(source);
    },
    source: (async function* () {
      yield* await piped;
    })(),
  };
}
