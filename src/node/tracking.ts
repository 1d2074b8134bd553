/**
 * Gradient tracking in a node's round (the method: src/learn/tracking.ts). The tracker travels
 * in the same frame as the model (its `tracker` channel, node/channels.ts).
 *
 *   const gt = new TrackingRound(optimizer);
 *   const y = gt.tracker(x, xStart, lr, steps);          // sent with x
 *   ...exchange...
 *   gt.end(trackersReceived, ex.outcomes, (y, trackers) => mixer.mix({ ...inp, x: y, received: trackers }).x);
 *
 * The tracker's sum (Σ_i c_i = 0) holds only if every edge's two directions are mixed alike, so a
 * node mixes a neighbour's tracker only over the edges that went through both ways this round
 * (node/pairwise.ts). A one-sided round (a frame past its receiver's deadline) leaves its error in
 * Σ_i c_i (not corrected).
 */
import type { Neighbour } from '../gossip/mixing.js';
import {
  type LocalOptimizer,
  nextCorrection,
  readCorrection,
  roundTracker,
  writeCorrection,
} from '../learn/index.js';
import type { SendOutcome, WeightsMessage } from '../net/transport.js';
import { bothWays } from './pairwise.js';

export class TrackingRound {
  /** This round's tracker, undefined in a round without training (a gossip-only round). */
  private y: Float32Array | undefined;

  constructor(private readonly optimizer: LocalOptimizer) {}

  /**
   * This round's tracker y, to send. Without `xStart` (a gossip-only round: nobody trains) there is
   * none (the channel goes as zeros) and `end` leaves the correction as it is.
   */
  tracker(
    x: Float32Array,
    xStart: Float32Array | undefined,
    lr: number,
    steps: number,
  ): Float32Array | undefined {
    this.y = xStart ? roundTracker(xStart, x, lr, steps) : undefined;
    return this.y;
  }

  /**
   * c <- c + (W y)_i - y_i, with W the round's mixing over the edges used both ways; `received`
   * are the neighbours' trackers, `mix` applies the node's mixing rule to a vector and the
   * neighbours' vectors.
   */
  end(
    received: readonly WeightsMessage[],
    outcomes: readonly { to: number; outcome: SendOutcome }[],
    mix: (y: Float32Array, trackers: readonly Neighbour[]) => Float32Array,
  ): void {
    const y = this.y;
    if (!y) return;
    const mixed = mix(y, bothWays(received, outcomes));
    writeCorrection(this.optimizer, nextCorrection(readCorrection(this.optimizer), y, mixed));
  }
}
