/**
 * Gradient tracking with local steps: K-GT (Liu, Koloskova, Jaggi, Lin, *Decentralized Gradient
 * Tracking with Local Steps*, 2023), the local-step form of DSGT / GT-DSGD (Pu & Nedić,
 * *Distributed stochastic gradient tracking methods*, Math. Prog. 2021; analysis: Koloskova, Lin,
 * Stich, *An improved analysis of gradient tracking for decentralized machine learning*, NeurIPS
 * 2021). With D-SGD on non-IID data each node's local steps pull it towards its own optimum, and
 * the consensus the nodes reach is biased by that heterogeneity. Gradient tracking adds to every
 * local gradient a correction c_i that estimates (network's average gradient) - (node's own):
 *
 *   local steps (c_i fixed):  w <- w - lr (g_i(w) + c_i)                       K times
 *   tracker:                  y_i = (x_start - x_end) / (lr K)                 the mean corrected step
 *   gossip (x and y travel together, mixed by the same matrix W):
 *                             x_i <- (W x)_i,     c_i <- c_i + (W y)_i - y_i
 *
 * (K-GT with server step 1: its c update is c_i - Δ_i/(K lr) + Σ_j w_ij Δ_j/(K lr), Δ = K lr y.)
 *
 * The defining property: when W's columns sum to 1 (the symmetric Laplacian / Metropolis matrices
 * of the rounds' active edges) and c starts at 0, Σ_i c_i = 0 at every round, so the mean of the
 * trackers y_i equals the mean of the nodes' own round gradients y_i - c_i: each node steps along an
 * estimate of the global gradient, and at a fixed point (consensus, y_i equal) the nodes sit at a
 * stationary point of the average objective, not of a heterogeneity-weighted mix
 * (test/learn/tracking.test.ts checks both on a heterogeneous quadratic, against D-SGD's bias).
 *
 * A tracker mixed over a matrix whose columns do not sum to 1 (a message lost one way only) would
 * add that round's error to Σ c_i for good; the runtime therefore mixes a neighbour's tracker only
 * over edges used both ways (src/node/tracking.ts), and the config refuses what breaks the sum:
 * push-sum (column-stochastic only with its mass weights), asynchronous gossip, robust mixing,
 * crashes and leaves (a node's correction lost or rolled back). Momentum is not combined with it.
 *
 *   const y = roundTracker(xStart, xEnd, lr, steps);
 *   writeCorrection(optimizer, nextCorrection(readCorrection(optimizer), y, mixedY));
 */
import { ModelMismatchError } from '../errors.js';
import type { LocalOptimizer } from './optim/types.js';

const SUFFIX = '.correction';

/** y_i = (x_start - x_end) / (lr * steps): the round's mean step direction, correction included. */
export function roundTracker(
  xStart: Float32Array,
  xEnd: Float32Array,
  lr: number,
  steps: number,
): Float32Array {
  sameLength(xStart, xEnd);
  const y = new Float32Array(xStart.length);
  if (!(lr > 0) || steps < 1) return y;
  const scale = 1 / (lr * steps);
  for (let k = 0; k < y.length; k++) y[k] = (xStart[k]! - xEnd[k]!) * scale;
  return y;
}

/** c_i + (W y)_i - y_i: the correction of the next round. */
export function nextCorrection(
  c: Float32Array,
  y: Float32Array,
  mixedY: Float32Array,
): Float32Array {
  sameLength(c, y);
  sameLength(c, mixedY);
  const out = new Float32Array(c.length);
  for (let k = 0; k < c.length; k++) out[k] = c[k]! + (mixedY[k]! - y[k]!);
  return out;
}

/** The optimizer's correction (made with `correction: true`) as one vector in parameter order. */
export function readCorrection(optimizer: LocalOptimizer): Float32Array {
  const parts = Object.entries(optimizer.getState()).filter(([k]) => k.endsWith(SUFFIX));
  if (parts.length === 0)
    throw new ModelMismatchError('gradient tracking needs an optimizer made with correction: true');
  const out = new Float32Array(parts.reduce((s, [, v]) => s + v.length, 0));
  let offset = 0;
  for (const [, v] of parts) {
    out.set(v, offset);
    offset += v.length;
  }
  return out;
}

/** Sets the optimizer's correction from one vector in parameter order (other state kept). */
export function writeCorrection(optimizer: LocalOptimizer, flat: Float32Array): void {
  const state = optimizer.getState();
  let offset = 0;
  for (const [k, v] of Object.entries(state)) {
    if (!k.endsWith(SUFFIX)) continue;
    state[k] = flat.slice(offset, offset + v.length);
    offset += v.length;
  }
  if (offset !== flat.length)
    throw new ModelMismatchError(`correction has ${flat.length} values, the optimizer's ${offset}`);
  optimizer.setState(state);
}

function sameLength(a: Float32Array, b: Float32Array): void {
  if (a.length !== b.length)
    throw new ModelMismatchError(`vectors of ${a.length} and ${b.length} values`);
}
