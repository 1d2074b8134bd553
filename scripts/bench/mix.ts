/**
 * The mixing phase's loops over the parameter vector, per number of neighbours heard from:
 * `laplacianMix` (the rule flatmesh runs) next to a plain per-coordinate walk over the neighbour
 * list (the generic loop it replaced for one and two neighbours), and `rmsDistance` (the
 * disagreement metric, once per neighbour). Same inputs, same run.
 * `npm run bench -- mix [--size 199210] [--reps 50]`
 *
 *   {"suite":"mix","size":199210,"neighbours":2,"mixMs":...,"genericLoopMs":...,"rmsMs":...}
 */
import { laplacianMix, type Neighbour, rmsDistance } from '../../src/gossip/mixing.js';

function flag(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

/**
 * The loop weightedMix ran for every degree before it had its own for one and two neighbours:
 * x + sum_j w_j (x_j - x), walking the neighbour list (and a weight array) at every coordinate.
 */
function genericLoop(x: Float32Array, received: readonly Neighbour[], alpha: number): Float32Array {
  const out = new Float32Array(x);
  const ordered = [...received].sort((a, b) => a.from - b.from);
  const ws = ordered.map(() => alpha);
  for (let k = 0; k < x.length; k++) {
    const xi = x[k]!;
    let acc = 0;
    for (let j = 0; j < ordered.length; j++) acc += ws[j]! * (ordered[j]!.weights[k]! - xi);
    out[k] = xi + acc;
  }
  return out;
}

function msPer(reps: number, fn: () => void): number {
  for (let i = 0; i < 3; i++) fn(); // warm up
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  return (performance.now() - t0) / reps;
}

export async function run(args: string[]): Promise<void> {
  const size = Number(flag(args, 'size', '199210'));
  const reps = Number(flag(args, 'reps', '50'));
  const x = Float32Array.from({ length: size }, (_, i) => Math.sin(i) * 0.1);
  for (let degree = 1; degree <= 4; degree++) {
    const received: Neighbour[] = Array.from({ length: degree }, (_, j) => ({
      from: j + 1,
      mass: 1,
      weights: Float32Array.from({ length: size }, (_, i) => Math.cos(i * (j + 2)) * 0.1),
    }));
    const round = (v: number) => Math.round(v * 1000) / 1000;
    console.log(
      JSON.stringify({
        suite: 'mix',
        size,
        neighbours: degree,
        mixMs: round(msPer(reps, () => laplacianMix(x, received, 0.3))),
        genericLoopMs: round(msPer(reps, () => genericLoop(x, received, 0.3))),
        rmsMs: round(msPer(reps, () => rmsDistance(x, received[0]!.weights))),
      }),
    );
  }
}
