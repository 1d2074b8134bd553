import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Codec,
  decodeWeights,
  encodedSize,
  encodeWeights,
  firstNonFinite,
} from '../../src/gossip/codecs.js';
import { LAYOUT, weights } from './helpers.js';

const roundTrip = (codec: Codec, w: Float32Array, layout: readonly number[]) =>
  decodeWeights(codec, encodeWeights(codec, w, layout), w.length, layout);

describe('weight codecs', () => {
  it('f32 is exact, including subnormals, signed zero and extremes', () => {
    const w = new Float32Array([0, -0, 1e-45, -3.4e38, 3.4e38, 1.5, -2.25, 1e-40]);
    const back = roundTrip('f32', w, []);
    assert.deepEqual(back, w);
    assert.ok(Object.is(back[1], -0));
  });

  it('f16 is within half precision and rounds to nearest even', () => {
    const w = weights(7).map((x) => x * 100);
    const back = roundTrip('f16', w, LAYOUT);
    for (let i = 0; i < w.length; i++) {
      const x = w[i]!;
      const bound = Math.max(Math.abs(x) * 2 ** -11, 2 ** -25);
      assert.ok(Math.abs(back[i]! - x) <= bound, `${x} -> ${back[i]}`);
    }
    // 1 + 2^-11 is exactly between 1 and 1 + 2^-10: ties go to the even mantissa (1).
    // 1 + 3 * 2^-11 lies between 1 + 2^-10 and 1 + 2^-9: ties go to 1 + 2^-9.
    const ties = new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -24 * 2.5, 2 ** -24 * 3.5]);
    assert.deepEqual([...roundTrip('f16', ties, [])], [1, 1 + 2 ** -9, 2 ** -24 * 2, 2 ** -24 * 4]);
  });

  it('f16 saturates finite values beyond its range and keeps NaN and Infinity non-finite', () => {
    const w = new Float32Array([65504, 65519, 70000, -1e30, Number.NaN, Infinity, -Infinity]);
    const back = roundTrip('f16', w, []);
    assert.deepEqual([...back.subarray(0, 4)], [65504, 65504, 65504, -65504]);
    assert.ok(Number.isNaN(back[4]));
    assert.equal(back[5], Infinity);
    assert.equal(back[6], -Infinity);
  });

  it('f16 encodes unaligned output buffers the same as aligned ones', () => {
    const w = weights(3, 64);
    const aligned = encodeWeights('f16', w, []);
    const store = new Uint8Array(aligned.length + 1);
    const unaligned = encodeWeights('f16', w, [], store.subarray(1));
    assert.deepEqual(unaligned, aligned);
    assert.deepEqual(
      decodeWeights('f16', store.subarray(1), 64, []),
      decodeWeights('f16', aligned, 64, []),
    );
  });

  it('int8 keeps each tensor within half a step of its own scale', () => {
    const w = weights(5);
    // Give the tensors very different magnitudes: a shared scale would wipe out the small one.
    for (let i = 600; i < 900; i++) w[i]! *= 1e-3;
    const back = roundTrip('int8', w, LAYOUT);
    let start = 0;
    for (const count of LAYOUT) {
      let max = 0;
      for (let i = start; i < start + count; i++) max = Math.max(max, Math.abs(w[i]!));
      const half = max / 127 / 2;
      for (let i = start; i < start + count; i++) {
        assert.ok(Math.abs(back[i]! - w[i]!) <= half * 1.0001, `tensor at ${start}, element ${i}`);
      }
      start += count;
    }
    assert.equal(encodedSize('int8', w.length, LAYOUT), 4 * LAYOUT.length + w.length);
  });

  it('int8 handles all-zero and all-equal tensors exactly', () => {
    const w = new Float32Array(10);
    w.fill(0, 0, 5);
    w.fill(-0.75, 5, 10);
    const back = roundTrip('int8', w, [5, 5]);
    assert.deepEqual([...back], [0, 0, 0, 0, 0, -0.75, -0.75, -0.75, -0.75, -0.75]);
  });

  it('int8 turns a NaN tensor into NaNs so validation rejects the frame', () => {
    const w = new Float32Array([1, Number.NaN, 2, 3]);
    const back = roundTrip('int8', w, [2, 2]);
    assert.ok(Number.isNaN(back[0]) && Number.isNaN(back[1]));
    // The other tensor keeps its own finite scale.
    assert.ok(Math.abs(back[2]! - 2) <= 3 / 127 / 2 && Math.abs(back[3]! - 3) < 1e-6);
  });

  it('int8 validation flags a finite scale whose q * scale overflows float32', () => {
    // A forged payload: two tensors, the second with scale 1e37 (finite) times q.
    const layout = [2, 3];
    const bytes = new Uint8Array(encodedSize('int8', 5, layout));
    const dv = new DataView(bytes.buffer);
    dv.setFloat32(0, 0.5, true);
    dv.setFloat32(4, 1e37, true);
    const q = new Int8Array(bytes.buffer, 8, 5);
    q.set([127, -127, 10, -40, 5]);
    // 10 * 1e37 = 1e38 fits; -40 * 1e37 does not (float32 max is 3.4e38): element 3 is the first that decodes to -Infinity.
    assert.equal(firstNonFinite('int8', bytes, 5, layout), 3);
    assert.equal(decodeWeights('int8', bytes, 5, layout)[3], Number.NEGATIVE_INFINITY);
    q[3] = -3;
    assert.equal(firstNonFinite('int8', bytes, 5, layout), -1);
    // An honest encoding of values near the float32 limit stays finite.
    const big = new Float32Array([3.4e38, -3.4e38, 1, 0, -1]);
    const enc = encodeWeights('int8', big, layout);
    assert.equal(firstNonFinite('int8', enc, 5, layout), -1);
  });

  it('decoding returns a fresh array and checks the byte count', () => {
    const w = weights(1, 8);
    const bytes = encodeWeights('f32', w, []);
    const a = decodeWeights('f32', bytes, 8, []);
    a[0] = 42;
    assert.notEqual(decodeWeights('f32', bytes, 8, [])[0], 42);
    assert.throws(() => decodeWeights('f32', bytes.subarray(1), 8, []), RangeError);
    assert.throws(() => encodeWeights('int8', w, [3, 3]), RangeError);
  });
});
