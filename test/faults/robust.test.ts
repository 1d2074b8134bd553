import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Neighbour } from '../../src/gossip/mixing.js';
import { ClipRadius, clippedMix, clippedMixWith, trimmedMeanMix } from '../../src/gossip/robust.js';

const v = (...xs: number[]) => Float32Array.from(xs);
const n = (from: number, weights: Float32Array): Neighbour => ({ from, weights, mass: 1 });

describe('adaptive clip radius', () => {
  it('scales from the median distance heard, this round included', () => {
    const c = new ClipRadius();
    // No norm given: no cap. Median of [1, 2, 50] is 2.
    assert.deepEqual(c.radius([1, 2, 50]), { tau: 4, reject: 6 });
    // Window [1, 2, 50, 3]: median 2.5.
    assert.deepEqual(c.radius([3]), { tau: 5, reject: 7.5 });
  });

  it("never mixes a neighbour farther than the node's own norm, even one heard alone", () => {
    const c = new ClipRadius();
    const x = v(3, 4); // norm 5
    // A sign-flip attacker heard alone sends -x: distance 10. The median is 10, the cap 5/3.
    const r = c.radius([10], x);
    assert.ok(Math.abs(r.reject - 5) < 1e-6, `reject ${r.reject}`);
    assert.ok(Math.abs(r.tau - 10 / 3) < 1e-6, `tau ${r.tau}`);
    const out = clippedMixWith(x, [n(3, v(-3, -4))], 0.5, r.tau, r.reject);
    assert.deepEqual(out.rejected, [3]);
    assert.deepEqual([...out.x], [3, 4]);
  });

  it('an attacker far out is rejected every round while the scale follows honest distances', () => {
    const c = new ClipRadius();
    for (let k = 1; k <= 40; k++) {
      const r = c.radius([1.8, 2, 2.2, 40]);
      assert.ok(r.tau >= 3.6 && r.tau <= 4.4, `round ${k}: tau ${r.tau}`);
      assert.ok(r.reject < 40);
    }
  });

  it('a node that rejected its honest neighbours accepts them again (no lock-out)', () => {
    const c = new ClipRadius(2, 16);
    for (let k = 0; k < 16; k++) c.radius([0.1]); // a first phase of tiny distances
    // Honest neighbours now sit at 2: rejected at first, but their distances enter the window.
    const seen: boolean[] = [];
    for (let k = 0; k < 12; k++) {
      const r = c.radius([2, 2]);
      seen.push(2 <= r.reject);
    }
    assert.equal(seen[0], false);
    assert.equal(seen.at(-1), true);
  });

  it("state and restore round-trip the window; the earlier rule's state restores its distances", () => {
    const c = new ClipRadius();
    c.radius([1, 1.5]);
    const d = new ClipRadius();
    d.restore(c.state());
    assert.deepEqual(d.state(), c.state());
    assert.deepEqual(d.radius([]), c.radius([]));
    const legacy = new ClipRadius();
    legacy.restore([1, 2, 0.5, 0.4, 2]); // heard [1, 2], movements [0.5, 0.4], count 2
    assert.deepEqual(legacy.state(), [1, 2, 2]);
    const e = new ClipRadius();
    e.restore([1, 2, 3]); // malformed: ignored, not thrown
    assert.deepEqual(e.state(), [0]);
  });

  it('clippedMix leaves out neighbours beyond the reject distance and clips the rest', () => {
    const x = v(0, 0);
    const out = clippedMix(x, [n(1, v(1, 0)), n(2, v(0, 3)), n(3, v(-100, 0))], 0.5, 2, 10);
    // 1 passes whole (0.5), 2 is clipped to length 2 (moves 0.5 * 2), 3 is left out.
    assert.ok(Math.abs(out[0]! - 0.5) < 1e-6);
    assert.ok(Math.abs(out[1]! - 1) < 1e-6);
    const said = clippedMixWith(x, [n(3, v(-100, 0)), n(1, v(1, 0)), n(2, v(0, 3))], 0.5, 2, 10);
    assert.deepEqual(said, { x: out, clipped: [2], rejected: [3] });
  });
});

describe('trimmed mean', () => {
  it('trims with as few as two neighbours (what a MATCHA round gives)', () => {
    const out = trimmedMeanMix(v(1), [n(1, v(1.2)), n(2, v(-50))], 0.5, 0.2);
    // self 1, honest 1.2, attacker -50: the median 1 is kept; x stays at 1.
    assert.ok(Math.abs(out[0]! - 1) < 1e-6, `${out[0]}`);
  });
});
