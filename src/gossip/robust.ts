/**
 * Robust aggregation against byzantine neighbours: used in place of the plain sum of the Laplacian
 * rule when `gossip.robust` is set.
 *
 * - Clipped gossip (He, Karimireddy, Jaggi 2022): each neighbour's difference x_j - x_i is clipped
 *   to an L2 radius tau before it is mixed in, so one neighbour can move x_i by at most alpha * tau.
 *   With radius 0 the radius is adaptive: `ClipRadius` tracks a running median of the distances
 *   this node has seen from its neighbours, so honest distances pass and outliers are cut.
 * - Coordinate-wise trimmed mean over {x_i} and the received vectors; x_i moves towards it with the
 *   same total weight the Laplacian rule would give (alpha * count).
 *
 *   const x2 = clippedMix(x, received, alpha, tau);
 *   const x3 = trimmedMeanMix(x, received, alpha, 0.2);
 */
import { l2Distance, type Neighbour, weightedMix } from './mixing.js';

export function clippedMix(
  x: Float32Array,
  received: readonly Neighbour[],
  alpha: number,
  tau: number,
): Float32Array {
  return weightedMix(x, received, (n) => {
    const d = l2Distance(n.weights, x);
    return d > tau && d > 0 ? (alpha * tau) / d : alpha;
  });
}

/**
 * Adaptive clipping radius: a multiple of the median of the distances seen over the last `window`
 * neighbour messages. Byzantine messages, if a minority of what a node hears, cannot move the
 * median far; the first rounds (no history) use the round's own median.
 */
export class ClipRadius {
  private readonly history: number[] = [];
  constructor(
    private readonly factor = 2,
    private readonly window = 64,
  ) {}

  /** The radius for this round, given this round's distances (recorded after the radius is chosen). */
  next(distances: readonly number[]): number {
    const pool = this.history.length >= 3 ? this.history : [...this.history, ...distances];
    const tau = pool.length === 0 ? Number.POSITIVE_INFINITY : this.factor * median(pool);
    for (const d of distances) {
      // Only distances that pass the clip feed the history: an attacker cannot inflate the radius.
      this.history.push(Math.min(d, tau));
      if (this.history.length > this.window) this.history.shift();
    }
    return tau;
  }

  state(): number[] {
    return [...this.history];
  }

  restore(h: readonly number[]): void {
    this.history.splice(0, this.history.length, ...h.slice(-this.window));
  }
}

export function trimmedMeanMix(
  x: Float32Array,
  received: readonly Neighbour[],
  alpha: number,
  trim: number,
): Float32Array {
  const m = received.length;
  const out = new Float32Array(x);
  if (m === 0) return out;
  const vectors = [x, ...[...received].sort((a, b) => a.from - b.from).map((n) => n.weights)];
  const count = vectors.length;
  const cut = Math.min(Math.floor(trim * count), Math.floor((count - 1) / 2));
  const col = new Float64Array(count);
  const step = Math.min(1, alpha * m);
  for (let k = 0; k < x.length; k++) {
    for (let v = 0; v < count; v++) col[v] = vectors[v]![k]!;
    col.sort();
    let s = 0;
    for (let v = cut; v < count - cut; v++) s += col[v]!;
    const tm = s / (count - 2 * cut);
    out[k] = x[k]! + step * (tm - x[k]!);
  }
  return out;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
