// Shared helpers for the compute tests: seeded inputs and a backend-vs-backend comparison.
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { type BackendName, initBackend } from '../../src/compute/backend.js';
import { Rng } from '../../src/compute/rng.js';

/** Seeded uniform values in [-1, 1), as a fresh Float32Array. */
export function randomValues(seed: number, label: string, n: number): Float32Array {
  const rng = Rng.from(seed, 'test', label);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.float() * 2 - 1;
  return out;
}

export function randomTensor(seed: number, label: string, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(randomValues(seed, label, n), shape);
}

/** Runs `f` on the given backend and returns its outputs as plain arrays (tensors freed). */
export async function runOn(
  backend: BackendName,
  f: () => tf.Tensor[],
): Promise<{ shape: number[]; values: Float32Array }[]> {
  await initBackend({ prefer: backend, quiet: true });
  const before = tf.memory().numTensors;
  const outs = tf.tidy(f);
  const res = outs.map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
  tf.dispose(outs);
  assert.equal(tf.memory().numTensors, before, `${backend}: tensors leaked`);
  return res;
}

/**
 * Asserts that `got` matches `want` elementwise to a tolerance relative to the largest magnitude
 * of `want` (sums of many float32 products in a different order differ by rounding only).
 */
export function assertClose(
  got: { shape: number[]; values: Float32Array },
  want: { shape: number[]; values: Float32Array },
  what: string,
  rel = 1e-4,
): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  let scale = 0;
  for (const v of want.values) scale = Math.max(scale, Math.abs(v));
  assert.ok(scale > 0, `${what}: reference is all zeros (test would be vacuous)`);
  const tol = rel * scale;
  for (let i = 0; i < want.values.length; i++) {
    const d = Math.abs(got.values[i]! - want.values[i]!);
    if (!(d <= tol)) {
      assert.fail(
        `${what}: element ${i} differs: got ${got.values[i]}, want ${want.values[i]} (tol ${tol})`,
      );
    }
  }
}

/** Runs `f` on cpu (tfjs's own kernels) and on wasm (patched) and compares every output. */
export async function compareWasmToCpu(what: string, f: () => tf.Tensor[], rel = 1e-4) {
  const want = await runOn('cpu', f);
  const got = await runOn('wasm', f);
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++)
    assertClose(got[i]!, want[i]!, `${what} [output ${i}]`, rel);
}
