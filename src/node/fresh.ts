/**
 * Asynchronous gossip's memory: the freshest model this node has heard from each neighbour, kept
 * across rounds, so that a round mixes the newest model of every active neighbour whether or not
 * that neighbour sent one this very round (AD-PSGD's "latest model of the neighbour").
 *
 *   const fresh = new FreshestModels((w) => transport.recycle?.(w));
 *   fresh.keep(collected.received);
 *   const mixable = fresh.usable(neighbours, k - staleness);
 *
 * The vectors stay owned here until a fresher frame from the same sender replaces them: only then
 * is the older one handed back to the transport for reuse.
 */
import type { WeightsMessage } from '../net/transport.js';

export class FreshestModels {
  private readonly latest = new Map<number, WeightsMessage>();

  constructor(private readonly recycle?: (weights: Float32Array) => void) {}

  /** Keep what a collect returned; a fresher frame replaces (and recycles) an older one. */
  keep(received: readonly WeightsMessage[]): void {
    for (const m of received) {
      const had = this.latest.get(m.from);
      if (had && had.round >= m.round) {
        this.recycle?.(m.weights);
        continue;
      }
      if (had) this.recycle?.(had.weights);
      this.latest.set(m.from, m);
    }
  }

  /** Whether `node`'s freshest model is of round `since` or later. */
  has(node: number, since: number): boolean {
    return (this.latest.get(node)?.round ?? -1) >= since;
  }

  /** The freshest models of `neighbours` of round `since` or later, in ascending sender order. */
  usable(neighbours: readonly number[], since: number): WeightsMessage[] {
    return [...neighbours]
      .sort((a, b) => a - b)
      .map((j) => this.latest.get(j))
      .filter((m): m is WeightsMessage => m !== undefined && m.round >= since);
  }
}
