/**
 * All flatness figures of one parameter vector in one call: loss and gradient norm, the top
 * Hessian eigenvalues with λmax/λk, the Hutchinson trace, the SLQ density and the SAM/ASAM
 * sharpness, each on the given sample set and deterministic from `seed`.
 *
 *   const f = measureFlatness(model, swaWeights, sampleSet(test, 'test set', { limit: 1000 }), {
 *     top: 5, trace: true, seed: 1,
 *   });
 *   f.top?.values[0];   // λmax
 *
 * `model` only lends its architecture: its own weights are restored afterwards.
 */
import * as tf from '@tensorflow/tfjs';
import { paramLayout, writeFlat } from '../flat.js';
import type { Model } from '../model.js';
import { HessianOperator, type HessianOptions } from './hessian.js';
import { type SampleInfo, type SampleSet, sampleInfo } from './samples.js';
import { type SharpnessResult, sharpness } from './sharpness.js';
import {
  type DensityResult,
  hutchinsonTrace,
  hutchPlusPlusTrace,
  spectralDensity,
  type TopResult,
  type TraceMethod,
  type TraceResult,
  topEigenvalues,
} from './spectrum.js';

/** The trace estimator used unless asked otherwise (see the bench's trace-variance figure). */
export const DEFAULT_TRACE_METHOD: TraceMethod = 'hutchinson';

import { norm } from './vec.js';

export interface FlatnessOptions extends HessianOptions {
  /** How many top eigenvalues (0: none). Default 5. */
  top?: number;
  /** Relative residual of the top eigenvalues. Default 1e-3. */
  tol?: number;
  /** Hutchinson trace. Default false. */
  trace?: boolean;
  /** Products of the trace estimate. Default 100. */
  probes?: number;
  /** `hutchinson` or `hutch++` (spectrum.ts). Default DEFAULT_TRACE_METHOD. */
  traceMethod?: TraceMethod;
  /** SLQ density. Default false. */
  density?: boolean;
  /** SAM and ASAM sharpness. Default true. */
  sharpness?: boolean;
  /** ASAM radius and η, SAM radius (defaults 0.5, 0.2, 0.05). */
  asamRho?: number;
  asamEta?: number;
  samRho?: number;
  seed?: number;
  /** Called during long work: what is being computed, and how far along it is. */
  progress?: (task: string, done: number, total: number) => void;
}

export interface FlatnessFigures {
  samples: SampleInfo;
  seed: number;
  hessian: { method: string; note?: string; weightDecay: number; chunk: number };
  loss: number;
  gradNorm: number;
  top?: TopResult;
  trace?: TraceResult;
  density?: DensityResult;
  sharpness?: { sam: SharpnessResult; asam: SharpnessResult };
  /** Hessian-vector products used. */
  products: number;
  seconds: number;
}

export function measureFlatness(
  model: Model,
  weights: Float32Array,
  samples: SampleSet,
  opts: FlatnessOptions = {},
): FlatnessFigures {
  const t0 = performance.now();
  const seed = opts.seed ?? 0;
  const saved = model.params.map((p) => tf.clone(p.variable));
  writeFlat(model, weights);
  const H = new HessianOperator(model, samples, opts);
  try {
    const { loss, grad } = H.lossAndGradient();
    const progress = (task: string) =>
      opts.progress && ((done: number, total: number) => opts.progress!(task, done, total));
    const top =
      (opts.top ?? 5) > 0
        ? topEigenvalues(H, {
            k: opts.top ?? 5,
            ...(opts.tol !== undefined && { tol: opts.tol }),
            seed,
            ...(progress('eigenvalues') && { progress: progress('eigenvalues')! }),
          })
        : undefined;
    const traceFn =
      (opts.traceMethod ?? DEFAULT_TRACE_METHOD) === 'hutch++'
        ? hutchPlusPlusTrace
        : hutchinsonTrace;
    const trace = opts.trace
      ? traceFn(H, {
          probes: opts.probes ?? 100,
          seed,
          ...(progress('trace') && { progress: progress('trace')! }),
        })
      : undefined;
    const density = opts.density
      ? spectralDensity(H, { seed, ...(progress('density') && { progress: progress('density')! }) })
      : undefined;
    let sharp: FlatnessFigures['sharpness'];
    if (opts.sharpness ?? true) {
      const isWeight = new Uint8Array(weights.length);
      for (const s of paramLayout(model))
        if (s.kind === 'weight') isWeight.fill(1, s.offset, s.offset + s.size);
      opts.progress?.('sharpness', 0, 2);
      sharp = {
        sam: sharpness(H, weights, isWeight, {
          kind: 'sam',
          ...(opts.samRho !== undefined && { rho: opts.samRho }),
        }),
        asam: sharpness(H, weights, isWeight, {
          kind: 'asam',
          ...(opts.asamRho !== undefined && { rho: opts.asamRho }),
          ...(opts.asamEta !== undefined && { eta: opts.asamEta }),
        }),
      };
      opts.progress?.('sharpness', 2, 2);
    }
    return {
      samples: sampleInfo(samples),
      seed,
      hessian: {
        method: H.method,
        ...(H.note !== undefined && { note: H.note }),
        weightDecay: opts.weightDecay ?? 0,
        chunk: opts.chunk ?? 256,
      },
      loss,
      gradNorm: norm(grad),
      ...(top && { top }),
      ...(trace && { trace }),
      ...(density && { density }),
      ...(sharp && { sharpness: sharp }),
      products: H.products,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    H.dispose();
    model.params.forEach((p, i) => p.variable.assign(saved[i]!));
    tf.dispose(saved);
  }
}
