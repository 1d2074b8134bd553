/**
 * Lockstep against asynchronous gossip in the simulator, over seeds, in three settings: no fault,
 * one node stalled for some rounds (it sits them out and catches up), and one straggler (training
 * `factor` times slower). Prints one JSON line per run, then a table of means with 95% intervals
 * (Student t over the seeds): final mean node accuracy, mean accuracy over the tail rounds,
 * accuracy of the average model, the run's simulated time (rounds of local training) and the
 * simulated time a node spent waiting for others (mean over nodes), catch-ups and
 * the rounds they skipped, and wall time.
 *
 *   node --import tsx scripts/experiments/sync.ts
 *   node --import tsx scripts/experiments/sync.ts --seeds 1,2,3 --settings none,stall,straggler \
 *     --set '{"run":{"rounds":40}}'
 *   node --import tsx scripts/experiments/sync.ts --processes --settings none,stall
 *
 * `--processes` launches real node processes (one per node, over libp2p on loopback) instead of
 * the simulator: the stall is then a real one (the node's thread blocks), and the time columns are
 * seconds of the run's rounds (first round's start to last round's end) and of waiting per node
 * (the records' waitMs), not simulated units.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExperiment } from '../../src/config/index.js';
import type { Experiment } from '../../src/config/schema.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import type { RunSummary } from '../../src/report/records.js';
import { launch } from '../../src/run/launcher.js';
import { simulate } from '../../src/run/simulate.js';
import { flag, type Json, merge } from './args.js';

const T95 = [Number.NaN, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];

function meanCi(xs: readonly number[]): string {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return mean.toFixed(3);
  const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
  return `${mean.toFixed(3)} ± ${((T95[n - 1] ?? 1.96) * (sd / Math.sqrt(n))).toFixed(3)}`;
}

const BASE: Json = {
  nodes: 8,
  run: { rounds: 30 },
  model: { hidden: [64] },
  train: { localSteps: 5 },
  eval: { every: 5, tail: 5 },
  faults: { loss: { p: 0.1 } },
  backend: 'wasm',
};

const SETTINGS: Record<string, Json> = {
  none: {},
  stall: { faults: { stalls: [{ node: 3, round: 10, rounds: 8 }] } },
  straggler: { faults: { stragglers: [{ node: 5, factor: 3 }] } },
};

/** A run and its time and waiting per node: simulated units, or seconds in processes. */
async function run(
  cfg: Experiment,
  processes: boolean,
): Promise<{ s: RunSummary; time: number; wait: number }> {
  if (!processes) {
    const s = await simulate(cfg);
    return { s, time: s.simulatedTime ?? Number.NaN, wait: (s.simulatedWait ?? 0) / cfg.nodes };
  }
  const records: RoundRecord[] = [];
  const s = await launch(cfg, {
    out: mkdtempSync(join(tmpdir(), 'flatmesh-sync-')),
    progress: false,
    startTimeoutMs: 600_000,
    onRound: (r) => records.push(r),
  });
  const start = Math.min(...records.map((r) => r.time - r.phases.roundMs));
  const end = Math.max(...records.map((r) => r.time));
  const waited = records.reduce((t, r) => t + r.phases.waitMs, 0);
  return { s, time: (end - start) / 1000, wait: waited / 1000 / cfg.nodes };
}

async function main(args: string[]): Promise<void> {
  const processes = args.includes('--processes');
  const seeds = flag(args, 'seeds', '1,2,3').split(',').map(Number);
  const settings = flag(args, 'settings', 'none,stall,straggler').split(',');
  const syncs = flag(args, 'sync', 'lockstep,async').split(',');
  const extra = JSON.parse(flag(args, 'set', '{}')) as Json;
  const rows: string[] = [];
  for (const setting of settings) {
    const fault = SETTINGS[setting];
    if (!fault) throw new Error(`unknown setting ${setting} (${Object.keys(SETTINGS).join(', ')})`);
    for (const sync of syncs) {
      const cell = {
        acc: [],
        tail: [],
        avg: [],
        time: [],
        wait: [],
        catchUps: [],
        skipped: [],
        wall: [],
      } as Record<string, number[]>;
      for (const seed of seeds) {
        const cfg = parseExperiment(
          merge(merge(merge(BASE, fault), { gossip: { sync }, run: { seed } }), extra),
        );
        const { s, time, wait } = await run(cfg, processes);
        const line = {
          setting,
          sync,
          seed,
          meanAccuracy: s.meanAccuracy,
          meanTailAccuracy: s.meanTailAccuracy,
          accuracyOfAverageModel: s.accuracyOfAverageModel,
          [processes ? 'roundsSeconds' : 'simulatedTime']: time,
          [processes ? 'waitSecondsPerNode' : 'simulatedWaitPerNode']: wait,
          catchUps: s.catchUps,
          roundsCaughtUp: s.roundsCaughtUp,
          wallSeconds: s.wallSeconds,
        };
        console.log(JSON.stringify(line));
        cell.acc!.push(s.meanAccuracy ?? Number.NaN);
        cell.tail!.push(s.meanTailAccuracy ?? Number.NaN);
        cell.avg!.push(s.accuracyOfAverageModel ?? Number.NaN);
        cell.time!.push(time);
        cell.wait!.push(wait);
        cell.catchUps!.push(s.catchUps ?? 0);
        cell.skipped!.push(s.roundsCaughtUp ?? 0);
        cell.wall!.push(s.wallSeconds);
      }
      rows.push(
        `| ${setting} | ${sync} | ${meanCi(cell.acc!)} | ${meanCi(cell.tail!)} | ${meanCi(cell.avg!)} | ` +
          `${meanCi(cell.time!)} | ${meanCi(cell.wait!)} | ${meanCi(cell.catchUps!)} / ${meanCi(cell.skipped!)} | ${meanCi(cell.wall!)} |`,
      );
    }
  }
  console.log(
    `\nseeds ${seeds.join(',')}; ${processes ? 'real processes' : 'simulator'}\n` +
      `| setting | sync | final acc | tail acc | average model | ${processes ? 'rounds s' : 'simulated time'} | wait per node${processes ? ' s' : ''} | catch-ups / rounds skipped | wall s |\n` +
      '|---|---|---|---|---|---|---|---|---|\n' +
      rows.join('\n'),
  );
}

main(process.argv.slice(2)).catch((e) => {
  console.error(e);
  process.exit(1);
});
