/**
 * The message-loss study in the simulator: mean SWA accuracy over seeds, with and without loss, for
 * Laplacian (MATCHA) mixing and push-sum, on digits with the default model. Prints one JSON line per
 * run (so partial results survive an interrupted study) and then a table of mean and 95% CI
 * (Student t over the seeds) per cell.
 *
 *   node --import tsx scripts/experiments/loss.ts
 *   node --import tsx scripts/experiments/loss.ts --seeds 1,2,3 --loss 0,0.3 \
 *     --mixing laplacian,push-sum --set '{"topology":{"budget":0.35}}'
 *
 * `--set` merges a JSON object into every cell's experiment (a deep merge), for follow-up studies
 * (another budget, model or round count) without editing the script.
 */
import { parseExperiment } from '../../src/config/index.js';
import { simulate } from '../../src/run/simulate.js';
import { flag, type Json, merge } from './args.js';

/** Two-sided 95% Student t quantiles by degrees of freedom (1..10); beyond that ~1.96. */
const T95 = [Number.NaN, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];

function meanCi(xs: readonly number[]): { mean: number; half: number } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, half: Number.NaN };
  const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
  return { mean, half: (T95[n - 1] ?? 1.96) * (sd / Math.sqrt(n)) };
}

async function main(args: string[]): Promise<void> {
  const seeds = flag(args, 'seeds', '1,2,3').split(',').map(Number);
  const losses = flag(args, 'loss', '0,0.3').split(',').map(Number);
  const mixings = flag(args, 'mixing', 'laplacian,push-sum').split(',');
  const extra = JSON.parse(flag(args, 'set', '{}')) as Json;
  const cells = new Map<string, { swa: number[]; acc: number[]; avg: number[] }>();
  for (const mixing of mixings) {
    for (const p of losses) {
      const key = `${mixing} loss=${p}`;
      const cell = { swa: [] as number[], acc: [] as number[], avg: [] as number[] };
      cells.set(key, cell);
      for (const seed of seeds) {
        const cfg = parseExperiment(
          merge(
            {
              run: { seed },
              data: { dataset: 'digits' },
              gossip: { mixing },
              faults: { loss: { p } },
            },
            extra,
          ),
        );
        const s = await simulate(cfg);
        cell.swa.push(s.meanSwaAccuracy ?? Number.NaN);
        cell.acc.push(s.meanAccuracy ?? Number.NaN);
        cell.avg.push(s.accuracyOfAverageModel ?? Number.NaN);
        console.log(
          JSON.stringify({
            mixing,
            loss: p,
            seed,
            swaAccuracy: s.meanSwaAccuracy,
            accuracy: s.meanAccuracy,
            accuracyOfAverageModel: s.accuracyOfAverageModel,
            finalDisagreement: s.finalDisagreement,
            delivered: s.messages.delivered,
            missing: s.messages.missing,
            late: s.messages.late,
            dropped: s.messages.dropped,
            wallSeconds: +s.wallSeconds.toFixed(1),
          }),
        );
      }
    }
  }
  const pct = (c: { mean: number; half: number }) =>
    `${(100 * c.mean).toFixed(1)} ± ${Number.isNaN(c.half) ? '?' : (100 * c.half).toFixed(1)}`;
  const rows = [
    ['cell', 'SWA acc % (95% CI)', 'node acc %', 'avg-model acc %'],
    ...[...cells].map(([k, c]) => [k, pct(meanCi(c.swa)), pct(meanCi(c.acc)), pct(meanCi(c.avg))]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(`\nseeds ${seeds.join(',')}; ${JSON.stringify(extra)}`);
  for (const r of rows) console.log(r.map((v, i) => v.padEnd(widths[i]!)).join('  '));
}

await main(process.argv.slice(2));
