/**
 * Differential fuzz of the frame decoder: tens of thousands of random and mutated frames (every
 * codec, header rewrites, non-finite payloads with the checksum recomputed, unaligned buffers)
 * through `decodeFrame`, each compared with the reference reading in frames.ts. The decoder must
 * accept exactly the frames the reference accepts, with bit-identical weights, and reject the rest
 * with a WireError (never another exception); and decoding the same frame from the chunks a
 * stream delivered it in (cut at random points) must give the same verdict and weights.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../../src/compute/rng.js';
import { WireError } from '../../src/errors.js';
import { decodeFrame, encodeFrame, HEADER_BYTES, maxFrameSize } from '../../src/net/wire.js';
import { type FrameSpec, fixCrc, frameFuzzer, referenceDecode } from './frames.js';

const SEED = 20240611;
/** Families that can leave a frame the decoder must accept (the sender is checked by the inbox). */
const MAY_BE_VALID = new Set(['bitflip', 'random-payload', 'field-sender']);

/** A copy of `bytes` starting `shift` bytes into a fresh buffer (the receive path gets any offset). */
function at(bytes: Uint8Array, shift: number): Uint8Array {
  const buf = new Uint8Array(bytes.length + shift);
  buf.set(bytes, shift);
  return buf.subarray(shift);
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function fuzzDecode(spec: FrameSpec, frames: number, label: string) {
  const gen = frameFuzzer({ ...spec, sender: 1, round: 7 });
  const byKind = new Map<string, { accepted: number; rejected: number }>();
  for (let i = 0; i < frames; i++) {
    const rng = Rng.from(SEED, label, i);
    const family = gen.families[i % gen.families.length]!;
    const f = gen.next(rng, family);
    if (f.raw) continue; // stream-level lies: the live-node test sends those
    const bytes = at(f.bytes, i % 4);
    const want = referenceDecode(bytes, spec);
    let got: ReturnType<typeof decodeFrame> | undefined;
    try {
      got = decodeFrame(bytes, spec);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
    }
    // The receive path hands the decoder a frame as the chunks it arrived in: same verdict, same
    // weights, whatever the cut points.
    const cuts = [0, ...Array.from({ length: 1 + (i % 3) }, () => rng.int(bytes.length + 1))]
      .sort((a, b) => a - b)
      .concat(bytes.length);
    const chunks = cuts.slice(1).map((end, j) => bytes.subarray(cuts[j]!, end));
    let chunked: ReturnType<typeof decodeFrame> | undefined;
    try {
      chunked = decodeFrame(chunks, spec);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
    }
    assert.equal(
      chunked === undefined,
      got === undefined,
      `frame ${i} (${f.kind}): chunked verdict`,
    );
    if (got && chunked) assert.ok(sameBits(got.weights, chunked.weights), `frame ${i}: chunked`);
    const tally = byKind.get(f.kind) ?? { accepted: 0, rejected: 0 };
    byKind.set(f.kind, tally);
    if (want.ok) {
      assert.ok(got, `frame ${i} (${f.kind}): decoder rejected a valid frame`);
      assert.ok(sameBits(got.weights, want.weights), `frame ${i} (${f.kind}): weights differ`);
      assert.equal(got.sender, want.sender);
      tally.accepted++;
    } else {
      assert.equal(got, undefined, `frame ${i} (${f.kind}): decoder accepted it (${want.why})`);
      tally.rejected++;
    }
  }
  return byKind;
}

describe('frame decoder under fuzzing', () => {
  it('accepts exactly the frames the reference accepts, over 3 layouts and 45,000 frames', () => {
    const specs: [string, FrameSpec][] = [
      // Several tensors, the int8 scales at the front of the payload.
      [
        'layered',
        {
          runId: 'fuzz-run',
          signature: '0123456789abcdef',
          size: 1000,
          layout: [600, 300, 100],
          maxBytes: maxFrameSize(1000, [600, 300, 100]),
        },
      ],
      // One tensor, an odd size (f16 payload not a multiple of 4 bytes).
      [
        'flat',
        {
          runId: 'r',
          signature: 'fedcba9876543210',
          size: 333,
          layout: [],
          maxBytes: maxFrameSize(333, []),
        },
      ],
      // Tiny tensors: many scales, empty tensors allowed by the layout.
      [
        'tiny',
        {
          runId: 'fuzz.run_2',
          signature: '00000000ffffffff',
          size: 12,
          layout: [5, 0, 4, 3],
          maxBytes: maxFrameSize(12, [5, 0, 4, 3]),
        },
      ],
    ];
    const totals = { accepted: 0, rejected: 0 };
    for (const [label, spec] of specs) {
      const byKind = fuzzDecode(spec, 15_000, label);
      for (const [kind, t] of byKind) {
        totals.accepted += t.accepted;
        totals.rejected += t.rejected;
        // Every family that breaks a frame on purpose must be caught every time; the others may
        // leave a valid frame, and then it must be accepted.
        if (!MAY_BE_VALID.has(kind)) assert.equal(t.accepted, 0, `${label}: ${kind} accepted`);
      }
      assert.ok(byKind.size >= 10, `${label}: families seen ${[...byKind.keys()].join(', ')}`);
    }
    // Bit flips in the round, push-sum mass, flags and reserved fields leave valid frames, and so
    // do random payloads without a NaN or infinity: the comparison above covered both outcomes.
    assert.ok(totals.accepted > 0 && totals.rejected > 35_000, JSON.stringify(totals));
  });

  it('rejects an int8 frame whose finite scale overflows float32, and only that one', () => {
    const spec: FrameSpec = {
      runId: 'r',
      signature: '0123456789abcdef',
      size: 4,
      layout: [4],
      maxBytes: 1000,
    };
    const frame = (scale: number, q: number[]) => {
      const f = encodeFrame(
        { runId: spec.runId, round: 0, sender: 1, signature: spec.signature },
        new Float32Array(4),
        'int8',
        spec.layout,
      );
      new DataView(f.buffer, f.byteOffset).setFloat32(HEADER_BYTES, scale, true);
      f.set(
        Int8Array.from(q).map((v) => v & 0xff),
        HEADER_BYTES + 4,
      );
      return fixCrc(f);
    };
    const reason = (f: Uint8Array) => {
      try {
        decodeFrame(f, spec);
        return 'accepted';
      } catch (e) {
        return e instanceof WireError ? e.reason : `threw ${String(e)}`;
      }
    };
    // 127 * 2.7e36 is above the float32 maximum (3.4028e38): the decoded element is Infinity.
    for (const scale of [3.4e38, 3e38, -1e37, 2.7e36]) {
      const f = frame(scale, [0, 1, 127, -1]);
      assert.equal(referenceDecode(f, spec).ok, false);
      assert.equal(reason(f), 'non-finite', `scale ${scale}`);
    }
    // A large scale whose products stay finite is a valid (if odd) frame.
    const ok = frame(3e38, [1, -1, 0, 1]);
    assert.equal(referenceDecode(ok, spec).ok, true);
    assert.equal(reason(ok), 'accepted');
    assert.equal(reason(frame(-128 * 2 ** 120, [-128, 0, 0, 0])), 'non-finite');
  });
});
