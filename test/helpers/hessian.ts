/**
 * What the flatness tests share: the reference case (test/fixtures/hessian_mlp.json, a copy of
 * ../shared/reference/hessian_mlp.json: a 64-32-10 ReLU MLP, its weights, a fixed batch and the
 * exact float64 facts of its Hessian), the model and sample set it defines, and `withHessian`, which
 * builds the Hessian operator of a model on a backend and disposes of both whatever the test does.
 *
 *   await withHessian('wasm', referenceModel, (H, { model }) => { ... }, { chunk: 100 });
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { type BackendName, initBackend } from '../../src/compute/backend.js';
import {
  HessianOperator,
  type HessianOptions,
  type SampleSet,
} from '../../src/learn/flatness/index.js';
import { createModel, type Model } from '../../src/learn/model.js';

export interface ReferenceCase {
  model: { input: number[]; layers: number[] };
  weights: number[][];
  x: number[][];
  y: number[];
  v: number[][];
  facts: {
    loss: number;
    gradNorm: number;
    hv: number[][];
    top5: number[];
    bottom1: number;
    trace: number;
  };
}

export const reference = (
  JSON.parse(
    readFileSync(join(import.meta.dirname, '..', 'fixtures', 'hessian_mlp.json'), 'utf8'),
  ) as { cases: ReferenceCase[] }
).cases[0]!;

export interface HessianCase {
  model: Model;
  set: SampleSet;
}

/** The reference batch as a sample set. */
export function referenceSet(): SampleSet {
  const y = Int32Array.from(reference.y);
  return {
    data: {
      x: Float32Array.from(reference.x.flat()),
      y,
      count: y.length,
      shape: reference.model.input,
      classes: reference.model.layers.at(-1)!,
    },
    source: 'reference batch',
  };
}

/** The reference MLP with its weights, on the reference batch. */
export function referenceModel(): HessianCase {
  const model = createModel(
    { kind: 'mlp', hidden: reference.model.layers.slice(0, -1) },
    reference.model.input,
    reference.model.layers.at(-1)!,
    1,
  );
  model.params.forEach((p, i) => {
    const t = tf.tensor(reference.weights[i]!, p.variable.shape, 'float32');
    p.variable.assign(t);
    t.dispose();
  });
  return { model, set: referenceSet() };
}

export async function withHessian<T>(
  backend: BackendName,
  make: () => HessianCase,
  body: (H: HessianOperator, c: HessianCase) => T | Promise<T>,
  opts: HessianOptions = {},
): Promise<T> {
  await initBackend({ prefer: backend, quiet: true });
  const c = make();
  const H = new HessianOperator(c.model, c.set, opts);
  try {
    return await body(H, c);
  } finally {
    H.dispose();
    c.model.dispose();
  }
}
