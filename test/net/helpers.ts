/**
 * Shared helpers for net tests (and the node-level tests that reuse them): a small model shape,
 * seeded weight vectors, a bounded wait for counters, and `sendRawFrame` to push arbitrary bytes
 * at a live node over a real libp2p stream on the weights protocol.
 */
import '../../src/net/polyfill.js';
import { multiaddr } from '@multiformats/multiaddr';
import * as lp from 'it-length-prefixed';
import { Rng } from '../../src/compute/rng.js';
import type { Host } from '../../src/net/libp2p/host.js';
import { WEIGHTS_PROTOCOL } from '../../src/net/libp2p/transport.js';
import { type FrameExpectations, maxFrameSize } from '../../src/net/wire.js';

export const RUN_ID = 'test-run';
export const SIGNATURE = '0123456789abcdef';
export const LAYOUT: readonly number[] = [600, 300, 100];
export const SIZE = 1000;

/** What a receiver of this test model expects of every frame. */
export const EXPECT: FrameExpectations = {
  runId: RUN_ID,
  signature: SIGNATURE,
  size: SIZE,
  layout: LAYOUT,
  maxBytes: maxFrameSize(SIZE, LAYOUT),
};

/** Seeded weights in about [-2, 2]. */
export function weights(seed: number, size = SIZE): Float32Array {
  const rng = Rng.from(seed, 'test-weights');
  const w = new Float32Array(size);
  for (let i = 0; i < size; i++) w[i] = rng.normal();
  return w;
}

/** Wait until `pred()` holds; fails (not a timing assertion) if it never does within `ms`. */
export async function until(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Open a weights-protocol stream from `fromHost` to `toAddr` (a multiaddr with /p2p/<id>) and
 * write `bytes`: length-prefixed as one frame by default, or verbatim with `{ raw: true }` (to
 * forge a wrong length prefix). Returns the receipt byte, or undefined if the stream ended
 * without one or could not be opened.
 */
export async function sendRawFrame(
  fromHost: Host,
  toAddr: string,
  bytes: Uint8Array,
  opts: { raw?: boolean; timeoutMs?: number } = {},
): Promise<number | undefined> {
  const signal = AbortSignal.timeout(opts.timeoutMs ?? 10_000);
  let stream: Awaited<ReturnType<Host['dialProtocol']>> | undefined;
  try {
    stream = await fromHost.dialProtocol(multiaddr(toAddr), WEIGHTS_PROTOCOL, { signal });
    const payload = opts.raw ? bytes : lp.encode.single(bytes, { maxDataLength: 1 << 30 });
    const s = stream;
    const receipt = (async () => {
      for await (const chunk of s.source) if (chunk.length > 0) return chunk.get(0);
      return undefined;
    })().catch(() => undefined);
    await s.sink([payload]);
    return await receipt;
  } catch {
    return undefined;
  } finally {
    stream?.abort(new Error('done'));
  }
}

/**
 * Write several length-prefixed frames back to back on ONE weights-protocol stream (as a node's
 * long-lived channel does) and return the receipt bytes read until the receiver closes the stream.
 */
export async function sendRawFrames(
  fromHost: Host,
  toAddr: string,
  frames: readonly Uint8Array[],
  opts: { timeoutMs?: number } = {},
): Promise<number[]> {
  const signal = AbortSignal.timeout(opts.timeoutMs ?? 10_000);
  const stream = await fromHost.dialProtocol(multiaddr(toAddr), WEIGHTS_PROTOCOL, { signal });
  try {
    const receipts: number[] = [];
    const reading = (async () => {
      for await (const chunk of stream.source) receipts.push(...chunk.subarray());
    })().catch(() => undefined);
    await stream.sink(frames.map((f) => lp.encode.single(f, { maxDataLength: 1 << 30 })));
    await reading;
    return receipts;
  } finally {
    stream.abort(new Error('done'));
  }
}
