/**
 * MATCHA optimization time (probabilities + alpha) on generated graphs. Not a test: prints one JSON
 * line per graph. `npm run bench -- topology [--n 64] [--p 0.1,0.2,0.5] [--budget 0.5] [--seeds 3]`
 */
import { generateTopology } from '../../src/topology/generators.js';
import { optimizeAlpha, optimizeProbabilities } from '../../src/topology/matcha.js';
import { graphMatchings } from '../../src/topology/matching.js';

function flag(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

export async function run(args: string[]): Promise<void> {
  const ns = flag(args, 'n', '16,32,64,128').split(',').map(Number);
  const ps = flag(args, 'p', '0.1,0.2,0.5').split(',').map(Number);
  const budget = Number(flag(args, 'budget', '0.5'));
  const seeds = Number(flag(args, 'seeds', '3'));
  // Warm the JIT on a graph of the first size so the first measurement is not compile time (a
  // cold CLI call pays about 0.3 s more once).
  const warm = generateTopology('erdos-renyi', { n: ns[0]!, p: 0.3 }, 99);
  optimizeAlpha(
    ns[0]!,
    graphMatchings(warm),
    optimizeProbabilities(ns[0]!, graphMatchings(warm), budget).probabilities,
  );
  for (const n of ns) {
    for (const p of ps) {
      for (let seed = 0; seed < seeds; seed++) {
        const g = generateTopology('erdos-renyi', { n, p }, seed);
        const t0 = performance.now();
        const ms = graphMatchings(g);
        const t1 = performance.now();
        const probs = optimizeProbabilities(n, ms, budget);
        const t2 = performance.now();
        const { alpha, rho } = optimizeAlpha(n, ms, probs.probabilities);
        const t3 = performance.now();
        console.log(
          JSON.stringify({
            suite: 'topology',
            graph: `er(${n},${p})`,
            seed,
            n,
            edges: g.edges.length,
            matchings: ms.length,
            budget,
            lambda2: probs.lambda2,
            gap: probs.upperBound - probs.lambda2,
            newtonSteps: probs.newtonSteps,
            alpha,
            rho,
            msDecompose: +(t1 - t0).toFixed(2),
            msProbabilities: +(t2 - t1).toFixed(1),
            msAlpha: +(t3 - t2).toFixed(1),
            msTotal: +(t3 - t0).toFixed(1),
          }),
        );
      }
    }
  }
}
