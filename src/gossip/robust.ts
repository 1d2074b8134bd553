/**
 * Robust aggregation against byzantine neighbours: used in place of the plain sum of the Laplacian
 * rule when `gossip.robust` is set.
 *
 * - Clipped gossip (He, Karimireddy, Jaggi 2022): each neighbour's difference x_j - x_i is clipped
 *   to an L2 radius tau before it is mixed in, so one neighbour can move x_i by at most alpha * tau.
 *   With radius 0 the radius is adaptive (`ClipRadius`): scaled from the node's own movement and
 *   the distances it has accepted, with neighbours far beyond it left out of the round.
 * - Coordinate-wise trimmed mean over {x_i} and the received vectors; x_i moves towards it with the
 *   same total weight the Laplacian rule would give (alpha * count).
 *
 *   const r = clip.radius(distances, x);  const x2 = clippedMix(x, received, alpha, r.tau, r.reject);
 *   clip.settle(x2);
 *   const x3 = trimmedMeanMix(x, received, alpha, 0.2);
 */
import { l2Distance, type Neighbour, weightedMix } from './mixing.js';

export function clippedMix(
  x: Float32Array,
  received: readonly Neighbour[],
  alpha: number,
  tau: number,
  /** Neighbours farther than this are left out of the round (as if not heard). Default: none. */
  rejectBeyond = Number.POSITIVE_INFINITY,
): Float32Array {
  return weightedMix(x, received, (n) => {
    const d = l2Distance(n.weights, x);
    if (d > rejectBeyond) return 0;
    return d > tau && d > 0 ? (alpha * tau) / d : alpha;
  });
}

/** The radius of one round: clip differences to `tau`, leave out neighbours beyond `reject`. */
export interface Radius {
  tau: number;
  reject: number;
}

/**
 * Adaptive clipping radius, from what a node can know without trusting anyone:
 *
 * - its own movement: how far its local training moved it since it last mixed (`settle` records
 *   the mixed vector, `next` measures the new one against it). An attacker cannot change it, and
 *   honest neighbours drift at about the same rate, so their distance is a small multiple of it.
 * - the distances it has heard and accepted: a running median over the last `window` of them.
 *
 * The node's scale is `s = min(median(accepted), cap * mean(movement))` (the movement alone while
 * fewer than 3 distances are known). Differences are clipped to `factor * s` and a neighbour
 * farther than `reject * s` is left out of the round. Rejected distances never enter the history
 * and accepted ones enter it clipped, so an attacker can neither inflate the scale through what it
 * sends nor ratchet it up over rounds; the movement cap bounds it even when attackers are a large
 * share of what a node hears (one neighbour of one or two active, common under MATCHA, gives
 * nothing to compare with).
 *
 * Why not plain clipping: a sign-flip attacker sends -x, at about twice the model's norm, always in
 * the same direction. Clipped to any radius that lets honest gossip through (its distances are of
 * the order of the radius), it still moves the node by alpha * tau per round, every round, towards
 * -x, and with MATCHA's alpha (0.3-0.65) that collapses the network (16 nodes, 2 attackers: honest
 * accuracy 15-48% for every fixed radius, against 83% clean). Honest distances stay within about
 * 2x their median; the attacker sits 6-10x out, so it is rejected with a wide margin.
 *
 * Before the first movement is known (the first round of the node) the radius is 0: the node does
 * not mix at all rather than trust distances it cannot judge; nodes start from the same weights,
 * so that round costs little.
 */
export class ClipRadius {
  private readonly history: number[] = [];
  private readonly moves: number[] = [];
  private last: Float32Array | undefined;
  constructor(
    private readonly factor = 2,
    private readonly window = 64,
    private readonly reject = 3,
    private readonly cap = 4,
    private readonly boot = 2,
    private readonly moveWindow = 16,
  ) {}

  /**
   * This round's radius, given this round's distances (recorded after the radius is chosen) and
   * the node's current vector `x` (after local training). Without `x` (no movement known), only
   * the heard distances are used, bootstrapped from the round's smallest distance, which an
   * attacker cannot raise.
   */
  next(distances: readonly number[], x?: Float32Array): number {
    return this.radius(distances, x).tau;
  }

  radius(distances: readonly number[], x?: Float32Array): Radius {
    if (x && this.last && this.last.length === x.length) {
      this.moves.push(l2Distance(x, this.last));
      if (this.moves.length > this.moveWindow) this.moves.shift();
    }
    const heard = this.history.length >= 3 ? median(this.history) : undefined;
    let scale: number;
    if (x) {
      const move =
        this.moves.length === 0 ? 0 : this.moves.reduce((a, b) => a + b, 0) / this.moves.length;
      scale = heard === undefined ? this.boot * move : Math.min(heard, this.cap * move);
    } else {
      scale = heard ?? (distances.length === 0 ? Number.POSITIVE_INFINITY : Math.min(...distances));
    }
    const tau = this.factor * scale;
    const reject = this.reject * scale;
    // A round without a radius yet (scale 0) teaches nothing.
    for (const d of scale > 0 ? distances : []) {
      if (d > reject) continue;
      this.history.push(Math.min(d, tau));
      if (this.history.length > this.window) this.history.shift();
    }
    return { tau, reject };
  }

  /** Record the node's vector after mixing, so the next round can measure its own movement. */
  settle(mixed: Float32Array): void {
    this.last = new Float32Array(mixed);
  }

  /** Checkpointable state: the heard history, the movement history, then the history's length. */
  state(): number[] {
    return [...this.history, ...this.moves, this.history.length];
  }

  restore(h: readonly number[]): void {
    const n = h.length === 0 ? 0 : h[h.length - 1]!;
    const valid = Number.isInteger(n) && n >= 0 && n <= h.length - 1;
    const heard = valid ? h.slice(0, n) : [];
    const moves = valid ? h.slice(n, h.length - 1) : [];
    this.history.splice(0, this.history.length, ...heard.slice(-this.window));
    this.moves.splice(0, this.moves.length, ...moves.slice(-this.moveWindow));
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
  // Rounded, not floored: with the 2-4 neighbours a MATCHA round gives, floor(0.2 * count) is 0
  // and nothing would be trimmed at all.
  const cut = Math.min(Math.round(trim * count), Math.floor((count - 1) / 2));
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
