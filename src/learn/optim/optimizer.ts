/**
 * The local optimizers: SGD, SAM and ASAM over any list of named tf.Variables and a loss closure.
 * A library user can train their own functional model with them:
 *
 *   const opt = createOptimizer({ kind: 'asam', momentum: 0, weightDecay: 4e-4, rho: 0.7, eta: 0.2 },
 *                               model.params);
 *   const loss = opt.step(() => crossEntropy(model.logits(x), yOneHot), 0.01);
 *   opt.dispose();
 *
 * SAM/ASAM follow the reference (fedsam `minimizers.py`): with g the minibatch gradient at w and
 * `T = |w| + eta` for weights, `T = 1` for biases (SAM: T = 1 everywhere),
 *   eps = rho * T^2 * g / (||T * g||_2 + 1e-16)      (norm over all parameters together)
 * step to w + eps, take the gradient there on the same minibatch, restore w, and take the SGD
 * step (momentum, weight decay on the restored w) with that gradient. The loss returned is the
 * loss at w. One deviation, on purpose: w is restored by re-assigning the saved tensor rather than
 * subtracting eps, so the restored weights are bit-identical to w (the reference's `p - eps` can
 * differ in the last bit).
 *
 * Gradients come from `tf.variableGrads` with an explicit variable list (what
 * `tf.Optimizer.minimize` itself uses), so plain SGD runs the same kernels as a bare minimize loop.
 */
import * as tf from '@tensorflow/tfjs';
import { asamPerturb, asamSumSq } from '../../compute/fused.js';
import { ConfigError } from '../../errors.js';
import type { ParamKind } from '../model.js';
import { SgdUpdate } from './sgd.js';
import type { LocalOptimizer, OptimizerParam, OptimizerSpec } from './types.js';

export function validateOptimizerSpec(spec: OptimizerSpec): void {
  if (!['sgd', 'sam', 'asam'].includes(spec.kind)) {
    throw new ConfigError('optimizer.kind', 'must be one of sgd, sam, asam', spec.kind);
  }
  if (!(spec.momentum >= 0 && spec.momentum < 1)) {
    throw new ConfigError('optimizer.momentum', 'must be in [0, 1)', spec.momentum);
  }
  if (!(spec.weightDecay >= 0 && Number.isFinite(spec.weightDecay))) {
    throw new ConfigError(
      'optimizer.weightDecay',
      'must be a finite number >= 0',
      spec.weightDecay,
    );
  }
  if (spec.kind !== 'sgd' && !(spec.rho >= 0 && Number.isFinite(spec.rho))) {
    throw new ConfigError('optimizer.rho', 'must be a finite number >= 0', spec.rho);
  }
  if (spec.kind === 'asam' && !(spec.eta >= 0 && Number.isFinite(spec.eta))) {
    throw new ConfigError('optimizer.eta', 'must be a finite number >= 0', spec.eta);
  }
}

/**
 * Inspection hook for SAM/ASAM (tests, debugging, flatness studies): called once per step with the
 * tensors of the inner computation, in parameter order. They are valid only during the call.
 */
export interface SharpnessObserver {
  onPerturbed(inner: {
    gradAtW: readonly tf.Tensor[];
    eps: readonly tf.Tensor[];
    perturbed: readonly tf.Tensor[];
    gradAtPerturbed: readonly tf.Tensor[];
    lossAtPerturbed: tf.Scalar;
  }): void;
}

export function createOptimizer(
  spec: OptimizerSpec,
  params: readonly OptimizerParam[],
  observer?: SharpnessObserver,
): LocalOptimizer {
  validateOptimizerSpec(spec);
  const frozen = Object.freeze({ ...spec });
  const names = params.map((p) => p.name);
  const variables = params.map((p) => p.variable);
  const kinds: ParamKind[] = params.map(
    (p) => p.kind ?? (p.variable.rank <= 1 ? 'bias' : 'weight'),
  );
  const sgd = new SgdUpdate(variables, {
    ...spec,
    fixedBuffer: spec.quasiGlobal ?? false,
    correction: spec.correction ?? false,
  });
  const ordered = (g: tf.NamedTensorMap): tf.Tensor[] => variables.map((v) => g[v.name]!);

  const sgdStep = (loss: () => tf.Scalar, lr: number): tf.Scalar => {
    const { value, grads } = tf.variableGrads(loss, variables);
    sgd.apply(ordered(grads), lr);
    tf.dispose(grads);
    return value;
  };

  // Constant scalars of the perturbation, created once.
  const rho = tf.scalar(spec.rho);
  const eta = tf.scalar(spec.eta);
  const tiny = tf.scalar(1e-16);

  // ASAM's T = |w| + eta for weights; undefined (T = 1) for biases and for SAM.
  const etas = kinds.map((k) => (spec.kind === 'asam' && k === 'weight' ? spec.eta : undefined));

  /** w <- w + eps for every parameter; returns eps (for the observer). */
  const perturbKeepingEps = (g: tf.Tensor[], saved: tf.Tensor[]): tf.Tensor[] =>
    tf.tidy(() => {
      const scale = variables.map((v, i) =>
        spec.kind === 'asam' && kinds[i] === 'weight' ? tf.add(tf.abs(v), eta) : undefined,
      );
      const tg = g.map((gi, i) => (scale[i] ? tf.mul(gi, scale[i]) : gi));
      const sq = tg.map((t) => tf.sum(tf.square(t)));
      const norm = tf.add(tf.sqrt(sq.length === 1 ? sq[0]! : tf.addN(sq)), tiny);
      const factor = tf.div(rho, norm);
      return variables.map((v, i) => {
        const s = scale[i];
        const e = tf.mul(s ? tf.mul(tg[i]!, s) : tg[i]!, factor);
        v.assign(tf.add(saved[i]!, e));
        return e;
      });
    });

  /**
   * w <- w + eps as perturbKeepingEps, by ../../compute/fused.ts: one pass for each parameter's
   * share of the norm, one for its perturbed value (the same products, in the same order).
   */
  const perturbFused = (g: tf.Tensor[], saved: tf.Tensor[]): tf.Tensor[] => {
    let sq = 0;
    g.forEach((gi, i) => {
      sq += asamSumSq(saved[i]!, gi, etas[i]);
    });
    const factor = spec.rho / (Math.sqrt(sq) + 1e-16);
    tf.tidy(() => {
      variables.forEach((v, i) => v.assign(asamPerturb(saved[i]!, g[i]!, etas[i], factor)));
    });
    return [];
  };

  const sharpnessStep = (loss: () => tf.Scalar, lr: number): tf.Scalar => {
    const first = tf.variableGrads(loss, variables);
    const g = ordered(first.grads);
    const saved = variables.map((v) => tf.clone(v)); // shares the data: no copy
    // Without an observer nobody needs eps itself: two fused passes per parameter instead.
    const eps = observer ? perturbKeepingEps(g, saved) : perturbFused(g, saved);
    const second = tf.variableGrads(loss, variables);
    if (observer) {
      observer.onPerturbed({
        gradAtW: g,
        eps,
        perturbed: variables,
        gradAtPerturbed: ordered(second.grads),
        lossAtPerturbed: second.value,
      });
    }
    tf.dispose(first.grads);
    tf.dispose(eps);
    second.value.dispose();
    variables.forEach((v, i) => v.assign(saved[i]!));
    tf.dispose(saved);
    sgd.apply(ordered(second.grads), lr);
    tf.dispose(second.grads);
    return first.value;
  };

  const stepTensor = spec.kind === 'sgd' ? sgdStep : sharpnessStep;
  let disposed = false;
  return {
    spec: frozen,
    stepTensor,
    step(loss, lr) {
      const value = stepTensor(loss, lr);
      const out = value.dataSync()[0]!;
      value.dispose();
      return out;
    },
    getState: () => sgd.getState(names),
    setState: (state) => sgd.setState(names, state),
    dispose() {
      if (disposed) return;
      disposed = true;
      sgd.dispose();
      tf.dispose([rho, eta, tiny]);
    },
  };
}
