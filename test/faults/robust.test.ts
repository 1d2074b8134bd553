import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Neighbour } from '../../src/gossip/mixing.js';
import { ClipRadius, clippedMix, trimmedMeanMix } from '../../src/gossip/robust.js';

const v = (...xs: number[]) => Float32Array.from(xs);
const n = (from: number, weights: Float32Array): Neighbour => ({ from, weights, mass: 1 });

describe('adaptive clip radius', () => {
  it('does not mix before it knows its own movement, then scales from it', () => {
    const c = new ClipRadius();
    assert.deepEqual(c.radius([1, 2, 50], v(0, 0)), { tau: 0, reject: 0 });
    c.settle(v(0, 0));
    // Moved 1 since the last mix: scale = 2 * movement (no heard history yet).
    const r = c.radius([1.5, 2, 50], v(1, 0));
    assert.equal(r.tau, 4);
    assert.equal(r.reject, 6);
  });

  it('an attacker far out is rejected and never enters the history; the scale follows honest distances', () => {
    const c = new ClipRadius();
    let x = v(0, 0);
    c.radius([], x);
    for (let k = 1; k <= 40; k++) {
      c.settle(x);
      x = v(k, 0); // moves 1 per round
      const r = c.radius([1.8, 2, 2.2, 40], x);
      if (k > 3) {
        assert.ok(r.tau >= 3.6 && r.tau <= 4.4, `tau ${r.tau}`);
        assert.ok(r.reject < 40);
      }
    }
    const hist = c.state();
    const len = hist[hist.length - 1]!;
    assert.ok(
      hist.slice(0, len).every((d) => d <= 2.2),
      'only honest distances were recorded',
    );
  });

  it('the movement cap bounds the scale when the node itself slows down', () => {
    const c = new ClipRadius();
    let pos = 0;
    c.radius([], v(pos));
    const step = (move: number, heard: number[]) => {
      c.settle(v(pos));
      pos += move;
      return c.radius(heard, v(pos));
    };
    for (let k = 0; k < 10; k++) step(1, [2, 2]); // heard median 2, accepted
    assert.equal(step(1, [2]).tau, 4);
    let r = step(0.1, [2]);
    for (let k = 0; k < 20; k++) r = step(0.1, [0.3]); // movement window now all 0.1
    // Heard median is still 2 (64-message window), but 4 * mean movement = 0.4 bounds it.
    assert.ok(Math.abs(r.tau - 0.8) < 1e-6, `tau ${r.tau}`);
  });

  it('state and restore round-trip the heard and movement histories', () => {
    const c = new ClipRadius();
    c.radius([], v(0));
    c.settle(v(0));
    c.radius([1, 1.5], v(0.8));
    const d = new ClipRadius();
    d.restore(c.state());
    assert.deepEqual(d.state(), c.state());
    const e = new ClipRadius();
    e.restore([1, 2, 3]); // malformed (legacy): ignored, not thrown
    assert.deepEqual(e.state(), [0]);
  });

  it('clippedMix leaves out neighbours beyond the reject distance and clips the rest', () => {
    const x = v(0, 0);
    const out = clippedMix(x, [n(1, v(1, 0)), n(2, v(0, 3)), n(3, v(-100, 0))], 0.5, 2, 10);
    // 1 passes whole (0.5), 2 is clipped to length 2 (moves 0.5 * 2), 3 is left out.
    assert.ok(Math.abs(out[0]! - 0.5) < 1e-6);
    assert.ok(Math.abs(out[1]! - 1) < 1e-6);
  });
});

describe('trimmed mean', () => {
  it('trims with as few as two neighbours (what a MATCHA round gives)', () => {
    const out = trimmedMeanMix(v(1), [n(1, v(1.2)), n(2, v(-50))], 0.5, 0.2);
    // self 1, honest 1.2, attacker -50: the median 1 is kept; x stays at 1.
    assert.ok(Math.abs(out[0]! - 1) < 1e-6, `${out[0]}`);
  });
});
