/**
 * Gossip mixing rules: how a node combines its parameter vector with the vectors its neighbours sent
 * this round. Pure functions on Float32Arrays (no tensors: an 800k-parameter mix is a few ms of
 * plain loops and allocates one output vector). Neighbours whose weights did not arrive are simply
 * absent from `received`: a missing neighbour is left out of that round's sum.
 *
 *   const x2 = laplacianMix(x, received, alpha);                 // MATCHA / D-PSGD
 *   const x3 = metropolisMix(x, received, degree, degreeOf);     // Metropolis-Hastings
 *   const { x, mass } = pushSumMix(x, selfMass, received);       // ratio consensus
 *
 * Received vectors are visited in ascending sender order so that float sums are identical on
 * every replay, whatever order the network delivered them in.
 */

export interface Neighbour {
  readonly from: number;
  readonly weights: Float32Array;
  /** Push-sum mass carried by the message (1 for the other rules). */
  readonly mass: number;
}

function bySender(received: readonly Neighbour[]): Neighbour[] {
  return [...received].sort((a, b) => a.from - b.from);
}

/**
 * x_i <- x_i + sum_j w_ij (x_j - x_i), accumulated in float64 per coordinate for accuracy.
 * The weights may make the self-weight negative (MATCHA's optimal alpha can exceed 1/degree): that
 * is what the optimization gives, so it is not clamped.
 */
export function weightedMix(
  x: Float32Array,
  received: readonly Neighbour[],
  weightOf: (n: Neighbour) => number,
): Float32Array {
  const ordered = bySender(received);
  for (const n of ordered) checkLength(x, n);
  const ws = ordered.map(weightOf);
  const ys = ordered.map((n) => n.weights);
  // One or two neighbours (most rounds of a sparse MATCHA schedule) get loops with every array in
  // a local: the general loop's per-element walk over the neighbour list ran ~4x slower. All paths
  // add the terms in the same order from 0, so they give the same bits. (A neighbour-major loop
  // over a float64 accumulator was no faster for three or more.)
  if (ys.length === 0) return new Float32Array(x);
  if (ys.length === 1) return mixOne(x, ys[0]!, ws[0]!);
  if (ys.length === 2) return mixTwo(x, ys[0]!, ws[0]!, ys[1]!, ws[1]!);
  const out = new Float32Array(x);
  const len = x.length;
  for (let k = 0; k < len; k++) {
    const xi = x[k]!;
    let acc = 0;
    for (let j = 0; j < ys.length; j++) acc += ws[j]! * (ys[j]![k]! - xi);
    out[k] = xi + acc;
  }
  return out;
}

function mixOne(x: Float32Array, y: Float32Array, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let k = 0; k < x.length; k++) {
    const xi = x[k]!;
    out[k] = xi + (0 + w * (y[k]! - xi));
  }
  return out;
}

function mixTwo(x: Float32Array, y0: Float32Array, w0: number, y1: Float32Array, w1: number) {
  const out = new Float32Array(x.length);
  for (let k = 0; k < x.length; k++) {
    const xi = x[k]!;
    out[k] = xi + (0 + w0 * (y0[k]! - xi) + w1 * (y1[k]! - xi));
  }
  return out;
}

/** MATCHA / D-PSGD: x_i <- x_i + alpha * sum_{j received} (x_j - x_i). */
export function laplacianMix(
  x: Float32Array,
  received: readonly Neighbour[],
  alpha: number,
): Float32Array {
  return weightedMix(x, received, () => alpha);
}

/** Metropolis-Hastings weights w_ij = 1 / (1 + max(d_i, d_j)) with d the degrees in this round's graph. */
export function metropolisMix(
  x: Float32Array,
  received: readonly Neighbour[],
  degree: number,
  degreeOf: (node: number) => number,
): Float32Array {
  return weightedMix(x, received, (n) => 1 / (1 + Math.max(degree, degreeOf(n.from))));
}

/**
 * Push-sum share: a node with `outDegree` active neighbours keeps 1/(outDegree+1) of its mass and
 * sends the same share to each neighbour. The message carries the node's current estimate z and the
 * share of mass, so the receiver adds z * share to its numerator.
 *
 * With an expected loss rate q the split is over the shares expected to arrive, 1 + d(1 - q), so a
 * delivered share weighs what it would without loss (undelivered ones return to the sender). The
 * divisor never drops below d + 0.1, so the sender keeps some mass even when every share arrives.
 */
export function pushSumShare(mass: number, outDegree: number, expectedLoss = 0): number {
  const d = outDegree;
  return mass / Math.max(1 + d * (1 - expectedLoss), d + 0.1);
}

/**
 * Push-sum (ratio consensus) update. The node's model is its estimate z_i = x_i / w_i. Shares whose
 * delivery failed are reclaimed by the sender (`reclaimed` = their count), so no mass leaves the
 * system and sum_i x_i, sum_i w_i stay exactly conserved under one-way loss: the consensus value
 * does not drift, unlike Laplacian mixing, where a one-way loss moves the network average.
 */
export function pushSumMix(
  z: Float32Array,
  mass: number,
  outDegree: number,
  reclaimed: number,
  received: readonly Neighbour[],
  expectedLoss = 0,
): { z: Float32Array; mass: number } {
  const share = pushSumShare(mass, outDegree, expectedLoss);
  // Everything not delivered stays: the own share plus the reclaimed ones.
  const keep = mass - share * (outDegree - reclaimed);
  const ordered = bySender(received);
  for (const n of ordered) checkLength(z, n);
  let total = keep;
  for (const n of ordered) total += n.mass;
  const out = new Float32Array(z.length);
  const len = z.length;
  for (let k = 0; k < len; k++) {
    let acc = keep * z[k]!;
    for (const n of ordered) acc += n.mass * n.weights[k]!;
    out[k] = acc / total;
  }
  return { z: out, mass: total };
}

function checkLength(x: Float32Array, n: Neighbour): void {
  if (n.weights.length !== x.length) {
    throw new RangeError(
      `neighbour ${n.from} sent ${n.weights.length} values, expected ${x.length}`,
    );
  }
}

/** Root-mean-square distance between two parameter vectors (the "disagreement" metric). */
export function rmsDistance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) {
    const d = a[k]! - b[k]!;
    s += d * d;
  }
  return Math.sqrt(s / Math.max(1, a.length));
}

/** Euclidean distance ||a - b||_2. */
export function l2Distance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) {
    const d = a[k]! - b[k]!;
    s += d * d;
  }
  return Math.sqrt(s);
}
