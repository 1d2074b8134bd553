import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../../src/compute/rng.js';
import {
  laplacianMix,
  metropolisMix,
  type Neighbour,
  pushSumMix,
  pushSumShare,
  weightedMix,
} from '../../src/gossip/mixing.js';
import { ClipRadius, clippedMix, trimmedMeanMix } from '../../src/gossip/robust.js';

const ringEdges = (n: number): [number, number][] =>
  Array.from({ length: n }, (_, i) => [i, (i + 1) % n]);

function mean(xs: Float32Array[]): number[] {
  const d = xs[0]!.length;
  return Array.from({ length: d }, (_, k) => xs.reduce((s, x) => s + x[k]!, 0) / xs.length);
}

/** One gossip round on a ring in which each directed message is lost with probability p. */
function gossipRound(
  xs: Float32Array[],
  masses: number[],
  rule: 'laplacian' | 'push-sum',
  p: number,
  rng: Rng,
): { xs: Float32Array[]; masses: number[] } {
  const n = xs.length;
  const inbox: Neighbour[][] = xs.map(() => []);
  const reclaimed = new Array<number>(n).fill(0);
  for (const [a, b] of ringEdges(n)) {
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      const mass = rule === 'push-sum' ? pushSumShare(masses[from]!, 2) : 1;
      if (rng.bernoulli(p)) reclaimed[from]!++;
      else inbox[to]!.push({ from, weights: xs[from]!, mass });
    }
  }
  if (rule === 'laplacian')
    return { xs: xs.map((x, i) => laplacianMix(x, inbox[i]!, 1 / 3)), masses };
  const out = xs.map((x, i) => pushSumMix(x, masses[i]!, 2, reclaimed[i]!, inbox[i]!));
  return { xs: out.map((o) => o.z), masses: out.map((o) => o.mass) };
}

describe('gossip mixing', () => {
  it('Laplacian mixing keeps the average exactly when every message arrives', () => {
    const rng = Rng.from(1);
    let xs: Float32Array[] = Array.from({ length: 8 }, () =>
      Float32Array.from({ length: 4 }, () => rng.normal()),
    );
    const m0 = mean(xs);
    let masses = xs.map(() => 1);
    for (let r = 0; r < 50; r++) ({ xs, masses } = gossipRound(xs, masses, 'laplacian', 0, rng));
    const m1 = mean(xs);
    m0.forEach((v, k) => assert.ok(Math.abs(v - m1[k]!) < 1e-5));
    // and reaches consensus
    for (const x of xs) x.forEach((v, k) => assert.ok(Math.abs(v - m0[k]!) < 1e-3));
  });

  it('under one-way loss Laplacian mixing drifts from the true average while push-sum does not', () => {
    const n = 16;
    const init = (() => {
      const rng = Rng.from(2);
      return Array.from({ length: n }, () =>
        Float32Array.from({ length: 3 }, () => rng.normal() * 3),
      );
    })();
    const truth = mean(init);
    const run = (rule: 'laplacian' | 'push-sum') => {
      const rng = Rng.from(3, rule === 'laplacian' ? 0 : 0); // same loss pattern for both rules
      let xs: Float32Array[] = init.map((x) => new Float32Array(x));
      let masses = xs.map(() => 1);
      for (let r = 0; r < 200; r++) ({ xs, masses } = gossipRound(xs, masses, rule, 0.3, rng));
      const m = mean(xs);
      return Math.max(...m.map((v, k) => Math.abs(v - truth[k]!)));
    };
    const lapErr = run('laplacian');
    const psErr = run('push-sum');
    assert.ok(psErr < 1e-4, `push-sum error ${psErr}`);
    assert.ok(
      lapErr > 100 * psErr && lapErr > 1e-2,
      `laplacian drift ${lapErr} vs push-sum ${psErr}`,
    );
  });

  it('Metropolis-Hastings uses 1/(1+max degree) and ignores a missing neighbour', () => {
    const x = Float32Array.of(0, 0);
    const out = metropolisMix(
      x,
      [{ from: 1, weights: Float32Array.of(4, 8), mass: 1 }],
      1,
      () => 3,
    );
    assert.deepEqual([...out], [1, 2]);
    assert.deepEqual([...metropolisMix(x, [], 2, () => 2)], [0, 0]);
  });

  it('does not clamp a self-weight below zero (MATCHA alpha can exceed 1/degree)', () => {
    const x = Float32Array.of(1);
    const r: Neighbour[] = [
      { from: 2, weights: Float32Array.of(0), mass: 1 },
      { from: 1, weights: Float32Array.of(0), mass: 1 },
    ];
    const [v] = laplacianMix(x, r, 0.65);
    assert.ok(Math.abs(v! - -0.3) < 1e-6);
  });

  it('is independent of arrival order', () => {
    const rng = Rng.from(9);
    const x = Float32Array.from({ length: 100 }, () => rng.normal());
    const rs: Neighbour[] = [1, 2, 3].map((from) => ({
      from,
      weights: Float32Array.from({ length: 100 }, () => rng.normal() * 1e3),
      mass: 1,
    }));
    assert.deepEqual(laplacianMix(x, rs, 0.3), laplacianMix(x, [...rs].reverse(), 0.3));
  });

  it('gives the bits of x + sum_j w_j (x_j - x) summed in float64 in sender order, for any degree', () => {
    const rng = Rng.from(10);
    const d = 257;
    // -0 among the values: x + 0 would turn it into +0, so a node that heard nobody keeps x as is.
    const x = Float32Array.from({ length: d }, (_, k) => (k % 5 === 0 ? -0 : rng.normal()));
    for (let degree = 0; degree <= 4; degree++) {
      const rs: Neighbour[] = Array.from({ length: degree }, (_, j) => ({
        from: 10 - j,
        weights: Float32Array.from({ length: d }, () => rng.normal() * 10),
        mass: 1,
      }));
      const w = (n: Neighbour) => 0.05 * n.from;
      const sorted = [...rs].sort((a, b) => a.from - b.from);
      const expected = Float32Array.from(x, (xi, k) =>
        degree === 0 ? xi : xi + sorted.reduce((acc, n) => acc + w(n) * (n.weights[k]! - xi), 0),
      );
      const got = weightedMix(x, rs, w);
      const bits = (a: Float32Array) => [...new Uint32Array(a.buffer)];
      assert.deepEqual(bits(got), bits(expected), `degree ${degree}`);
    }
  });
});

describe('robust aggregation', () => {
  const honest = (from: number, v: number): Neighbour => ({
    from,
    weights: Float32Array.of(v, v),
    mass: 1,
  });

  it('clipped gossip bounds how far one neighbour can move a node', () => {
    const x = Float32Array.of(0, 0);
    const out = clippedMix(
      x,
      [honest(1, 1), { from: 2, weights: Float32Array.of(-1e6, -1e6), mass: 1 }],
      0.25,
      2,
    );
    // honest neighbour (distance sqrt 2 < 2) passes whole; the attacker moves x by at most 0.25*2
    const moved = Math.hypot(out[0]! - 0.25, out[1]! - 0.25);
    assert.ok(moved <= 0.5 + 1e-6, `moved ${moved}`);
  });

  it('the adaptive radius follows honest distances and is not inflated by outliers', () => {
    const c = new ClipRadius(2, 16);
    let tau = 0;
    for (let r = 0; r < 20; r++) tau = c.next([1, 1.2, r % 4 === 0 ? 1e6 : 0.9]);
    assert.ok(tau < 5, `tau ${tau}`);
  });

  it('trimmed mean ignores a minority of extreme values', () => {
    const x = Float32Array.of(1, 1);
    const rs = [
      honest(1, 1.1),
      honest(2, 0.9),
      honest(3, 1),
      { from: 4, weights: Float32Array.of(1e9, -1e9), mass: 1 },
    ];
    const out = trimmedMeanMix(x, rs, 0.2, 0.2);
    for (const v of out) assert.ok(Math.abs(v - 1) < 0.1, `got ${v}`);
  });
});

describe('loss-aware push-sum split', () => {
  it('splits over the shares expected to arrive, keeps mass exactly, and never goes negative', () => {
    assert.equal(pushSumShare(1, 2), 1 / 3);
    assert.ok(Math.abs(pushSumShare(1, 2, 0.3) - 1 / 2.4) < 1e-12);
    // d = 4 at 50% loss would split over 3 < d: the divisor is held at d + 0.1.
    assert.ok(Math.abs(pushSumShare(1, 4, 0.5) - 1 / 4.1) < 1e-12);
    const z = Float32Array.of(1);
    const share = pushSumShare(2, 4, 0.5);
    const all = [1, 2, 3, 4].map((from) => ({ from, weights: Float32Array.of(0), mass: share }));
    // Every share delivered: the sender keeps 2 - 4 * share > 0.
    const r = pushSumMix(z, 2, 4, 0, all, 0.5);
    assert.ok(2 - 4 * share > 0);
    assert.ok(Math.abs(r.mass - (2 - 4 * share + 4 * share)) < 1e-12);
  });
});
