/**
 * Byzantine behaviours of a malicious node: what it sends in place of its honest weights
 * (sign flip, Gaussian noise, scaling), and label-flip data poisoning of its own training data.
 *
 *   const bad = corruptWeights(x, spec, Rng.from(seed, 'byzantine', node, round));
 */
import { Rng } from '../compute/rng.js';
import type { FaultsConfig } from '../config/schema.js';

export type ByzantineSpec = FaultsConfig['byzantine'][number];

export function corruptWeights(
  x: Float32Array,
  spec: ByzantineSpec,
  seed: number,
  node: number,
  round: number,
): Float32Array {
  const out = new Float32Array(x.length);
  switch (spec.behaviour) {
    case 'sign-flip':
      for (let k = 0; k < x.length; k++) out[k] = -spec.scale * x[k]!;
      return out;
    case 'scale':
      for (let k = 0; k < x.length; k++) out[k] = spec.scale * x[k]!;
      return out;
    case 'noise': {
      const rng = Rng.from(seed, 'byzantine', node, round);
      for (let k = 0; k < x.length; k++) out[k] = x[k]! + spec.sigma * rng.normal();
      return out;
    }
    case 'label-flip':
      // Poisons its data, not its messages: it sends what it honestly learned from flipped labels.
      out.set(x);
      return out;
    default: {
      const never: never = spec.behaviour;
      throw new Error(`unknown byzantine behaviour ${String(never)}`);
    }
  }
}

/** Label-flip poisoning: y -> classes - 1 - y. */
export function flipLabels(y: Int32Array, classes: number): Int32Array {
  const out = new Int32Array(y.length);
  for (let i = 0; i < y.length; i++) out[i] = classes - 1 - y[i]!;
  return out;
}
