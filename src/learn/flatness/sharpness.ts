/**
 * Sharpness as the optimizers define it: the largest loss increase within a ball around the
 * weights, found by a few steps of projected gradient ascent from the optimizer's own first step.
 *
 * - SAM ε-sharpness (Foret et al. 2021): max over |ε|₂ ≤ ρ of L(w + ε) - L(w).
 * - ASAM adaptive sharpness (Kwon et al. 2021): max over |T_w⁻¹ ε|₂ ≤ ρ of L(w + ε) - L(w), with
 *   T_w = |w| + η on weights and 1 on biases (as flatmesh's ASAM scales weights only). In the
 *   coordinates ε = T_w·δ the ball is round, and the gradient in δ is T_w·∇L.
 *
 *   const s = sharpness(H, layoutKinds, weights, { kind: 'asam', rho: 0.5, eta: 0.2, steps: 5 });
 *   s.value;   // ≥ 0: the best increase found (a lower bound of the true maximum)
 */
import { ConfigError } from '../../errors.js';
import type { HessianOperator } from './hessian.js';
import { norm } from './vec.js';

export interface SharpnessOptions {
  kind: 'sam' | 'asam';
  /** Radius. Default 0.05 (SAM) / 0.5 (ASAM). */
  rho?: number;
  /** ASAM's η in T_w = |w| + η. Default 0.2. */
  eta?: number;
  /** Ascent steps after the first. Default 5. */
  steps?: number;
}

export interface SharpnessResult {
  kind: 'sam' | 'asam';
  rho: number;
  eta?: number;
  steps: number;
  /** Loss at the weights. */
  loss: number;
  /** Largest loss found in the ball. */
  maxLoss: number;
  /** maxLoss - loss. */
  value: number;
}

/**
 * @param weights the model's weights (flat)
 * @param isWeight per element: true for weight tensors (scaled by ASAM), false for biases
 */
export function sharpness(
  H: HessianOperator,
  weights: Float32Array,
  isWeight: Uint8Array,
  opts: SharpnessOptions,
): SharpnessResult {
  const asam = opts.kind === 'asam';
  const rho = opts.rho ?? (asam ? 0.5 : 0.05);
  const eta = opts.eta ?? 0.2;
  const steps = opts.steps ?? 5;
  if (!(rho > 0)) throw new ConfigError('flatness.rho', 'must be > 0', rho);
  if (!(eta >= 0)) throw new ConfigError('flatness.eta', 'must be >= 0', eta);
  if (!Number.isInteger(steps) || steps < 0) {
    throw new ConfigError('flatness.sharpnessSteps', 'must be an integer >= 0', steps);
  }
  const n = weights.length;
  const t = new Float32Array(n);
  for (let i = 0; i < n; i++) t[i] = asam && isWeight[i] ? Math.abs(weights[i]!) + eta : 1;
  const at = (delta: Float32Array) => {
    const w = new Float32Array(n);
    for (let i = 0; i < n; i++) w[i] = weights[i]! + t[i]! * delta[i]!;
    return w;
  };
  const base = H.lossAndGradient();
  let g = base.grad;
  // δ in the round ball |δ| ≤ ρ; the step length shrinks so later steps refine the first.
  const delta = new Float32Array(n);
  let best = base.loss;
  for (let s = 0; s <= steps; s++) {
    const dir = new Float32Array(n);
    for (let i = 0; i < n; i++) dir[i] = t[i]! * g[i]!;
    const dn = norm(dir);
    if (dn === 0) break;
    const len = s === 0 ? rho : rho / (s + 1);
    for (let i = 0; i < n; i++) delta[i]! += (len * dir[i]!) / dn;
    const r = norm(delta);
    if (r > rho) for (let i = 0; i < n; i++) delta[i]! *= rho / r;
    const next = H.lossAndGradient(at(delta));
    best = Math.max(best, next.loss);
    g = next.grad;
  }
  return {
    kind: opts.kind,
    rho,
    ...(asam && { eta }),
    steps,
    loss: base.loss,
    maxLoss: best,
    value: best - base.loss,
  };
}
