/**
 * Gradient tracking in a node's round (the method: src/learn/tracking.ts). The tracker travels
 * in the same frame as the model: a frame's vector is x‖y (the run's frame size and layout are
 * doubled, node/build.ts `deriveRun`), so the wire, its codec and its validation carry it
 * unchanged, and a node without tracking refuses such frames by their size.
 *
 *   const gt = new TrackingRound(optimizer, model.size);
 *   const payload = gt.frame(x, xStart, lr, steps);      // x‖y
 *   ...exchange...
 *   const received = gt.models(ex.collected.received);   // the x parts, for the usual mixing
 *   gt.end(ex.collected.received, ex.outcomes, (y, trackers) => mixer.mix({ ...inp, x: y, received: trackers }).x);
 *
 * The tracker's sum (Σ_i c_i = 0) holds only if every edge's two directions are mixed alike, so a
 * node mixes a neighbour's tracker only if that neighbour's frame arrived AND its own frame to that
 * neighbour was delivered: a message lost one way drops the edge from both ends' tracker mixing
 * (injected loss is known to the sender, whose faulty transport reports it dropped). In a real run,
 * a frame delivered but arriving after its receiver's deadline still makes that round's tracker
 * mix one-sided; its error then stays in Σ_i c_i (not corrected).
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

export class TrackingRound {
  /** This round's tracker, undefined in a round without training (a gossip-only round). */
  private y: Float32Array | undefined;

  constructor(
    private readonly optimizer: LocalOptimizer,
    private readonly size: number,
  ) {}

  /**
   * The frame's vector x‖y. Without `xStart` (a gossip-only round: nobody trains) the tracker part
   * is zeros and the correction is left as it is by `end`.
   */
  frame(
    x: Float32Array,
    xStart: Float32Array | undefined,
    lr: number,
    steps: number,
  ): Float32Array {
    this.y = xStart ? roundTracker(xStart, x, lr, steps) : undefined;
    const out = new Float32Array(2 * this.size);
    out.set(x);
    if (this.y) out.set(this.y, this.size);
    return out;
  }

  /** The model parts of the received frames (views into them). */
  models(received: readonly WeightsMessage[]): WeightsMessage[] {
    return received.map((m) => ({ ...m, weights: m.weights.subarray(0, this.size) }));
  }

  /**
   * c <- c + (W y)_i - y_i, with W the round's mixing over the edges used both ways; `mix` applies
   * the node's mixing rule to a vector and the neighbours' vectors.
   */
  end(
    received: readonly WeightsMessage[],
    outcomes: readonly { to: number; outcome: SendOutcome }[],
    mix: (y: Float32Array, trackers: readonly Neighbour[]) => Float32Array,
  ): void {
    const y = this.y;
    if (!y) return;
    const delivered = new Set(
      outcomes.filter((o) => o.outcome.status === 'delivered').map((o) => o.to),
    );
    const trackers = received
      .filter((m) => delivered.has(m.from))
      .map((m) => ({ from: m.from, mass: m.mass, weights: m.weights.subarray(this.size) }));
    const mixed = mix(y, trackers);
    writeCorrection(this.optimizer, nextCorrection(readCorrection(this.optimizer), y, mixed));
  }
}
