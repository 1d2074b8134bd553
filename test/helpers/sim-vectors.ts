/**
 * Simulated runs' final vectors, read from their node checkpoints, and the figures tests compare
 * them by: their mean, the largest coordinate difference, and how far the farthest is from the mean.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Experiment } from '../../src/config/schema.js';
import { type CheckpointState, CheckpointStore } from '../../src/node/checkpoint.js';
import { simulate } from '../../src/run/simulate.js';

/** Runs `cfg` in the simulator and returns `pick` of each node's final checkpoint. */
export async function finalVectors(
  cfg: Experiment,
  pick: (ck: CheckpointState) => ArrayLike<number> | undefined,
): Promise<Float64Array[]> {
  const out = mkdtempSync(join(tmpdir(), 'flatmesh-vectors-'));
  try {
    const r = await simulate(cfg, { out });
    if (cfg.faults.loss.p > 0) assert.ok(r.messages.dropped > 0, 'some messages were lost');
    return Array.from({ length: cfg.nodes }, (_, i) => {
      const v = pick(new CheckpointStore(join(out, 'nodes', String(i))).load()!);
      assert.ok(v, `node ${i} has the vector asked for`);
      return Float64Array.from(v);
    });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

export const meanVector = (xs: Float64Array[]) =>
  xs[0]!.map((_, k) => xs.reduce((s, x) => s + x[k]!, 0) / xs.length);

export const maxDiff = (a: Float64Array, b: Float64Array) =>
  a.reduce((m, v, k) => Math.max(m, Math.abs(v - b[k]!)), 0);

export const spread = (xs: Float64Array[]) => {
  const m = meanVector(xs);
  return Math.max(...xs.map((x) => maxDiff(x, m)));
};
