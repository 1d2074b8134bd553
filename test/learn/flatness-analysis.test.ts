/**
 * Exact properties of the flatness analysis beyond the reference values: landscapes and paths
 * (endpoints are the models' own losses, filter normalization, seeds), sharpness, the spectral
 * density, central differences as a fallback, and tensor hygiene across many products.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/compute/backend.js';
import { Rng } from '../../src/compute/rng.js';
import { paramLayout, readFlat } from '../../src/learn/flat.js';
import {
  HessianOperator,
  landscape1d,
  landscape2d,
  linearPath,
  randomDirection,
  sampleSet,
  sharpness,
  spectralDensity,
} from '../../src/learn/flatness/index.js';
import { norm } from '../../src/learn/flatness/vec.js';
import { createModel } from '../../src/learn/model.js';
import {
  type HessianCase,
  reference as ref,
  referenceModel,
  referenceSet,
  withHessian,
} from '../helpers/hessian.js';

/** The reference MLP, or a logistic regression on the same batch. */
function setup(kind: 'mlp' | 'logreg' = 'mlp'): HessianCase {
  if (kind === 'mlp') return referenceModel();
  return { model: createModel({ kind: 'logreg' }, [64], 10, 1), set: referenceSet() };
}

describe('flatness analysis', () => {
  it('linear path: endpoints are the two models’ own losses; the barrier is measured from the chord', async () => {
    await withHessian('wasm', setup, (H, { model }) => {
      const a = readFlat(model);
      const rng = Rng.from(2, 'other');
      const b = Float32Array.from(a, (v) => v + 0.3 * rng.normal());
      const path = linearPath((w) => H.lossAt(w), a, b, { points: 11 });
      assert.equal(path.t[0], 0);
      assert.equal(path.t[10], 1);
      assert.equal(path.loss[0], H.lossAt(a));
      assert.equal(path.loss[10], H.lossAt(b));
      assert.equal(path.loss[0], H.lossAt(), 'lossAt restores the model’s own weights');
      const chord = path.loss.map(
        (l, i) => l - ((1 - path.t[i]!) * path.loss[0]! + path.t[i]! * path.loss[10]!),
      );
      assert.equal(path.barrier, Math.max(...chord));
      assert.ok(path.barrier >= 0);
      // The path between a model and itself is flat.
      const flat = linearPath((w) => H.lossAt(w), a, a, { points: 5 });
      assert.ok(flat.loss.every((l) => l === flat.loss[0]));
    });
  });

  it('filter-normalized directions: each filter has its weights’ norm, biases are 0, seeded', async () => {
    await initBackend({ prefer: 'wasm', quiet: true });
    const { model } = setup();
    try {
      const w = readFlat(model);
      const layout = paramLayout(model);
      const d = randomDirection(layout, w, 5, 0);
      for (const slot of layout) {
        if (slot.kind === 'bias') {
          assert.ok(d.subarray(slot.offset, slot.offset + slot.size).every((v) => v === 0));
          continue;
        }
        const filters = slot.shape.at(-1)!;
        for (let f = 0; f < filters; f++) {
          let dn = 0;
          let wn = 0;
          for (let i = slot.offset + f; i < slot.offset + slot.size; i += filters) {
            dn += d[i]! ** 2;
            wn += w[i]! ** 2;
          }
          assert.ok(Math.abs(Math.sqrt(dn) - Math.sqrt(wn)) <= 1e-5 * Math.sqrt(wn));
        }
      }
      assert.deepEqual(randomDirection(layout, w, 5, 0), d);
      assert.notDeepEqual(randomDirection(layout, w, 5, 1), d);
      assert.notDeepEqual(randomDirection(layout, w, 6, 0), d);
    } finally {
      model.dispose();
    }
  });

  it('1-D and 2-D landscapes: the centre is the model’s loss, grids are deterministic', async () => {
    await withHessian('wasm', setup, (H, { model }) => {
      const w = readFlat(model);
      const layout = paramLayout(model);
      const d1 = randomDirection(layout, w, 1, 0);
      const d2 = randomDirection(layout, w, 1, 1);
      const l0 = H.lossAt();
      const one = landscape1d((p) => H.lossAt(p), w, d1, { points: 9, span: 0.5 });
      assert.equal(one.x.length, 9);
      assert.equal(one.x[4], 0);
      assert.ok(Math.abs(one.loss[4]! - l0) < 1e-6);
      assert.deepEqual(
        landscape1d((p) => H.lossAt(p), w, d1, { points: 9, span: 0.5 }),
        one,
      );
      const two = landscape2d((p) => H.lossAt(p), w, d1, d2, { points: 5, span: 0.5 });
      assert.equal(two.loss.length, 5);
      assert.ok(two.loss.every((row) => row.length === 5));
      assert.ok(Math.abs(two.loss[2]![2]! - l0) < 1e-6);
      // The row through the centre (y = 0) is the 1-D landscape along d1.
      const row = landscape1d((p) => H.lossAt(p), w, d1, { points: 5, span: 0.5 });
      two.loss[2]!.forEach((l, i) => assert.ok(Math.abs(l - row.loss[i]!) < 1e-6));
    });
  });

  it('sharpness: SAM and ASAM are loss increases found inside their balls, larger for a larger radius', async () => {
    await withHessian('wasm', setup, (H, { model }) => {
      const w = readFlat(model);
      const isWeight = new Uint8Array(w.length);
      for (const s of paramLayout(model))
        if (s.kind === 'weight') isWeight.fill(1, s.offset, s.offset + s.size);
      const small = sharpness(H, w, isWeight, { kind: 'sam', rho: 0.01 });
      const large = sharpness(H, w, isWeight, { kind: 'sam', rho: 0.05 });
      assert.ok(small.value > 0 && large.value > small.value, `${small.value} ${large.value}`);
      // Second order: for a small ball the increase is about ρ|g| + ρ²/2·(curvature) ≤ ρ|g| + ρ²λmax/2.
      const g = norm(H.lossAndGradient().grad);
      assert.ok(small.value <= 0.01 * g + 0.5 * 0.01 ** 2 * ref.facts.top5[0]! * 1.01);
      const asam = sharpness(H, w, isWeight, { kind: 'asam', rho: 0.5, eta: 0.2 });
      assert.ok(asam.value > 0);
      assert.equal(asam.eta, 0.2);
      assert.deepEqual(sharpness(H, w, isWeight, { kind: 'asam', rho: 0.5, eta: 0.2 }), asam);
    });
  });

  it('spectral density: weights sum to 1, nodes lie within the spectrum, the density integrates to 1', async () => {
    await withHessian('wasm', setup, (H) => {
      const d = spectralDensity(H, { runs: 2, steps: 30, seed: 4 });
      assert.ok(Math.abs(d.weights.reduce((a, b) => a + b, 0) - 1) < 1e-6);
      const lo = ref.facts.bottom1 * 1.01 - 1e-3;
      const hi = ref.facts.top5[0]! * 1.01;
      assert.ok(
        d.nodes.every((t) => t >= lo && t <= hi),
        `${Math.min(...d.nodes)} ${Math.max(...d.nodes)}`,
      );
      let integral = 0;
      for (let i = 1; i < d.grid.length; i++) {
        integral += ((d.density[i]! + d.density[i - 1]!) / 2) * (d.grid[i]! - d.grid[i - 1]!);
      }
      assert.ok(Math.abs(integral - 1) < 0.02, `integral ${integral}`);
    });
  });

  it('central differences (the fallback) say so, with their error, and approximate H·v of a smooth model', async () => {
    await initBackend({ prefer: 'wasm', quiet: true });
    const { model, set } = setup('logreg');
    const exact = new HessianOperator(model, set, { method: 'double-backprop' });
    const fd = new HessianOperator(model, set, { method: 'finite-difference' });
    try {
      assert.equal(exact.note, undefined);
      assert.match(fd.note ?? '', /central differences.*estimated relative error of H·v \d/);
      const rng = Rng.from(1, 'v');
      const v = Float32Array.from({ length: model.size }, () => rng.normal());
      const a = exact.hvp(v);
      const b = fd.hvp(v);
      const diff = Float32Array.from(a, (x, i) => x - b[i]!);
      assert.ok(norm(diff) / norm(a) < 1e-2, `${norm(diff) / norm(a)}`);
    } finally {
      exact.dispose();
      fd.dispose();
      model.dispose();
    }
  });

  it('no tensor is left behind across 200 chunked products', async () => {
    await withHessian(
      'wasm',
      setup,
      (H, { model }) => {
        const v = Float32Array.from({ length: model.size }, (_, i) => Math.cos(i));
        H.hvp(v);
        const before = tf.memory().numTensors;
        for (let i = 0; i < 200; i++) H.hvp(v);
        assert.equal(tf.memory().numTensors, before);
      },
      { chunk: 64 },
    );
  });

  it('a seeded subset: deterministic, and it names its source and seed', () => {
    const { set } = setup();
    const a = sampleSet(set.data, 'test set', { limit: 50, seed: 3 });
    const b = sampleSet(set.data, 'test set', { limit: 50, seed: 3 });
    const c = sampleSet(set.data, 'test set', { limit: 50, seed: 4 });
    assert.equal(a.data.count, 50);
    assert.deepEqual(a.data.y, b.data.y);
    assert.notDeepEqual(a.data.x, c.data.x);
    assert.equal(a.seed, 3);
    assert.equal(a.source, 'test set');
    assert.throws(
      () => sampleSet(set.data, 'x', { limit: -1 }),
      /flatness\.samples: must be an integer >= 0/,
    );
  });
});
