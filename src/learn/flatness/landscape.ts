/**
 * Loss landscapes (Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets"):
 *
 * - `randomDirection`: a Gaussian direction, filter-normalized: each filter of each weight tensor
 *   (a dense layer's output unit, a conv layer's output channel: the last axis in tfjs layouts)
 *   is scaled to the norm of the same filter in the weights; bias directions are zero (Li et al.'s
 *   default), so a step of t moves every filter by t times its own size whatever the layer's scale.
 * - `landscape1d` / `landscape2d`: the loss at w + a·d₁ (+ b·d₂) on a grid of a (and b).
 * - `linearPath`: the loss at (1-t)·A + t·B for t on [0, 1] — linear mode connectivity between two
 *   models (nodes i and j, a node and its SWA model, a node and the average): the endpoints are
 *   the two models' own losses, and the barrier is the largest rise above the straight line
 *   between them.
 *
 *   const d = randomDirection(layout, weights, seed, 0);
 *   const grid = landscape1d((w) => H.lossAt(w), weights, d, { span: 1, points: 41 });
 */
import { Rng } from '../../compute/rng.js';
import { ConfigError } from '../../errors.js';
import type { ParamSlot } from '../flat.js';

export function randomDirection(
  layout: readonly ParamSlot[],
  weights: Float32Array,
  seed: number,
  index: number,
): Float32Array {
  const rng = Rng.from(seed, 'flatness-direction', index);
  const d = new Float32Array(weights.length);
  for (const slot of layout) {
    if (slot.kind === 'bias' || slot.shape.length < 2) continue;
    const filters = slot.shape[slot.shape.length - 1]!;
    const per = slot.size / filters;
    for (let i = 0; i < slot.size; i++) d[slot.offset + i] = rng.normal();
    for (let f = 0; f < filters; f++) {
      // Elements of filter f: every index whose last-axis coordinate is f.
      let dn = 0;
      let wn = 0;
      for (let k = 0; k < per; k++) {
        const i = slot.offset + k * filters + f;
        dn += d[i]! ** 2;
        wn += weights[i]! ** 2;
      }
      const s = dn > 0 ? Math.sqrt(wn / dn) : 0;
      for (let k = 0; k < per; k++) d[slot.offset + k * filters + f]! *= s;
    }
  }
  return d;
}

export interface GridOptions {
  /** Coordinates run over [-span, span]. Default 1. */
  span?: number;
  /** Points per axis (odd keeps 0 on the grid). Default 41 (1-D) / 21 (2-D). */
  points?: number;
  progress?: (done: number, total: number) => void;
}

export interface Landscape1d {
  kind: '1d';
  /** Coordinates a. */
  x: number[];
  /** loss[i] at w + x[i]·d. */
  loss: number[];
}

export interface Landscape2d {
  kind: '2d';
  x: number[];
  y: number[];
  /** loss[j][i] at w + x[i]·d₁ + y[j]·d₂ (rows are y). */
  loss: number[][];
}

export interface LinearPath {
  kind: 'path';
  /** t on [0, 1]: 0 is A, 1 is B. */
  t: number[];
  loss: number[];
  /** Largest loss above the chord between the endpoints: max_t L(t) - ((1-t)L(0) + t·L(1)). */
  barrier: number;
}

type LossAt = (w: Float32Array) => number;

function axis(span: number, points: number, field: string): number[] {
  if (!(span > 0)) throw new ConfigError(`${field}.span`, 'must be > 0', span);
  if (!Number.isInteger(points) || points < 2) {
    throw new ConfigError(`${field}.points`, 'must be an integer >= 2', points);
  }
  return Array.from({ length: points }, (_, i) => -span + (2 * span * i) / (points - 1));
}

export function landscape1d(
  lossAt: LossAt,
  w: Float32Array,
  d: Float32Array,
  opts: GridOptions = {},
): Landscape1d {
  const x = axis(opts.span ?? 1, opts.points ?? 41, 'landscape');
  const p = new Float32Array(w.length);
  const loss = x.map((a, i) => {
    for (let k = 0; k < w.length; k++) p[k] = w[k]! + a * d[k]!;
    const l = lossAt(p);
    opts.progress?.(i + 1, x.length);
    return l;
  });
  return { kind: '1d', x, loss };
}

export function landscape2d(
  lossAt: LossAt,
  w: Float32Array,
  d1: Float32Array,
  d2: Float32Array,
  opts: GridOptions = {},
): Landscape2d {
  const x = axis(opts.span ?? 1, opts.points ?? 21, 'landscape');
  const y = x;
  const p = new Float32Array(w.length);
  let done = 0;
  const loss = y.map((b) =>
    x.map((a) => {
      for (let k = 0; k < w.length; k++) p[k] = w[k]! + a * d1[k]! + b * d2[k]!;
      const l = lossAt(p);
      opts.progress?.(++done, x.length * y.length);
      return l;
    }),
  );
  return { kind: '2d', x, y, loss };
}

export function linearPath(
  lossAt: LossAt,
  a: Float32Array,
  b: Float32Array,
  opts: { points?: number; progress?: (done: number, total: number) => void } = {},
): LinearPath {
  const points = opts.points ?? 21;
  if (!Number.isInteger(points) || points < 2) {
    throw new ConfigError('landscape.points', 'must be an integer >= 2', points);
  }
  const t = Array.from({ length: points }, (_, i) => i / (points - 1));
  const p = new Float32Array(a.length);
  const loss = t.map((s, i) => {
    // The endpoints are the models themselves, bit for bit.
    const w = s === 0 ? a : s === 1 ? b : p;
    if (w === p) for (let k = 0; k < a.length; k++) p[k] = (1 - s) * a[k]! + s * b[k]!;
    const l = lossAt(w);
    opts.progress?.(i + 1, points);
    return l;
  });
  const l0 = loss[0]!;
  const l1 = loss[points - 1]!;
  const barrier = Math.max(...loss.map((l, i) => l - ((1 - t[i]!) * l0 + t[i]! * l1)));
  return { kind: 'path', t, loss, barrier };
}
