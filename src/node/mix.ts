/**
 * The mixing phase: apply the configured rule (Laplacian with MATCHA's alpha, Metropolis-Hastings,
 * or push-sum), optionally made robust (clipped gossip, trimmed mean), to this node's vector and
 * what it heard. Pure given its inputs, plus the adaptive clip radius it carries across rounds.
 */
import type { Experiment } from '../config/schema.js';
import {
  l2Distance,
  laplacianMix,
  metropolisMix,
  type Neighbour,
  pushSumMix,
} from '../gossip/mixing.js';
import {
  type ClipDecisions,
  ClipRadius,
  clippedMixWith,
  trimmedMeanMix,
} from '../gossip/robust.js';

export interface MixInput {
  x: Float32Array;
  received: readonly Neighbour[];
  /** Active degree of this node and of every node in this round's sampled graph. */
  degree: number;
  degreeOf: (node: number) => number;
  alpha: number;
  /** Push-sum: this node's mass and how many of its shares were not delivered. */
  mass: number;
  reclaimed: number;
  /** Expected message loss rate the push-sum split accounts for (0: the classic split). */
  expectedLoss?: number;
}

export interface MixOutput {
  x: Float32Array;
  mass: number;
  /** Clipped gossip: which neighbours this round's mix clipped and which it left out. */
  robust?: ClipDecisions;
}

export class Mixer {
  private readonly clip = new ClipRadius();
  constructor(private readonly gossip: Experiment['gossip']) {}

  mix(inp: MixInput): MixOutput {
    const { x, received, alpha } = inp;
    const robust = this.gossip.robust;
    switch (this.gossip.mixing) {
      case 'push-sum': {
        const r = pushSumMix(
          x,
          inp.mass,
          inp.degree,
          inp.reclaimed,
          received,
          inp.expectedLoss ?? 0,
        );
        return { x: r.z, mass: r.mass };
      }
      case 'metropolis':
        if (robust.kind === 'none')
          return { x: metropolisMix(x, received, inp.degree, inp.degreeOf), mass: 1 };
        return this.robustMix(x, received, 1 / (1 + Math.max(inp.degree, 1)));
      case 'laplacian':
        if (robust.kind === 'none') return { x: laplacianMix(x, received, alpha), mass: 1 };
        return this.robustMix(x, received, alpha);
      default: {
        const never: never = this.gossip.mixing;
        throw new Error(`unknown mixing rule ${String(never)}`);
      }
    }
  }

  private robustMix(x: Float32Array, received: readonly Neighbour[], alpha: number): MixOutput {
    const robust = this.gossip.robust;
    if (robust.kind === 'trimmed-mean')
      return { x: trimmedMeanMix(x, received, alpha, robust.trim), mass: 1 };
    const r =
      robust.radius > 0
        ? { tau: robust.radius, reject: Number.POSITIVE_INFINITY }
        : this.clip.radius(
            received.map((n) => l2Distance(n.weights, x)),
            x,
          );
    const { x: out, clipped, rejected } = clippedMixWith(x, received, alpha, r.tau, r.reject);
    return { x: out, mass: 1, robust: { clipped, rejected } };
  }

  clipState(): number[] {
    return this.clip.state();
  }

  restoreClipState(h: readonly number[]): void {
    this.clip.restore(h);
  }
}
