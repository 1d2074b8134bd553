/**
 * Does robust gossip hold? 16 nodes (Erdős–Rényi p = 0.5, MATCHA, digits), 2 of them byzantine
 * (nodes 3 and 11, sign flip by default), per model size and seed: the mean final accuracy of the
 * 14 honest nodes in a clean run (plain gossip, nobody attacks) and in the attacked run with the
 * robust rule, and the gap between them. Issue 10's target: the gap stays under 5 points over 5
 * seeds and 3 model sizes. Beside them, the run in which nodes 3 and 11 are absent from round 0 (no
 * data, no edges): the best any defence can do, since it cannot learn from the attackers' data;
 * the gap from there to the defended run is what the rule itself costs. Prints one JSON line per
 * run (partial results survive an interruption), then the table.
 *
 *   node --import tsx scripts/experiments/robust.ts
 *   node --import tsx scripts/experiments/robust.ts --seeds 1,2 --hidden '[[64]]' --plain
 *   node --import tsx scripts/experiments/robust.ts --robust trimmed-mean --behaviour noise
 *
 * `--plain` adds the attacked run without any defence (the damage the rule prevents); `--set`
 * deep-merges a JSON object into every run's experiment; `--unbatched` trains node by node instead
 * of all nodes of a round at once (same figures within float32 rounding, slower).
 */
import { parseExperiment } from '../../src/config/index.js';
import type { Experiment } from '../../src/config/schema.js';
import { prepareRun } from '../../src/node/build.js';
import { describe } from '../../src/report/stats.js';
import { simulate } from '../../src/run/simulate.js';
import { isConnected } from '../../src/topology/graph.js';
import { flag, type Json, merge } from './args.js';

const BAD = [3, 11];

/**
 * What the honest nodes lose when the attackers' models are worth nothing: is the base graph
 * still connected without them, and how much of the training data (overall, and of the class they
 * hold most of) sits on them. A sign-flipped model (-x) carries no information, so no rule can
 * do better than the run without them; a skewed partition makes that floor lower than clean.
 */
async function whatAttackersHold(cfg: Experiment) {
  const ctx = await prepareRun(cfg, 'robust-structure');
  const keep = Array.from({ length: cfg.nodes }, (_, i) => i).filter((i) => !BAD.includes(i));
  const index = new Map(keep.map((v, k) => [v, k]));
  const edges = ctx.graph.edges
    .filter(([a, b]) => index.has(a) && index.has(b))
    .map(([a, b]) => [index.get(a)!, index.get(b)!] as [number, number]);
  const y = ctx.data.train.y;
  const classes = ctx.data.train.classes;
  const total = new Array<number>(classes).fill(0);
  const held = new Array<number>(classes).fill(0);
  for (const [node, idx] of ctx.partition.entries()) {
    for (const i of idx) {
      total[y[i]!]!++;
      if (BAD.includes(node)) held[y[i]!]!++;
    }
  }
  const share = held.map((h, c) => h / Math.max(1, total[c]!));
  const top = share.indexOf(Math.max(...share));
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    honestGraphConnected: isConnected(keep.length, edges),
    attackersDataShare: +(sum(held) / sum(total)).toFixed(3),
    attackersTopClass: top,
    attackersTopClassShare: +share[top]!.toFixed(3),
  };
}

async function main(args: string[]): Promise<void> {
  const seeds = flag(args, 'seeds', '1,2,3,4,5').split(',').map(Number);
  const sizes = JSON.parse(flag(args, 'hidden', '[[32],[64],[200,200]]')) as number[][];
  const kind = flag(args, 'robust', 'clip');
  const behaviour = flag(args, 'behaviour', 'sign-flip');
  const plain = args.includes('--plain');
  // All nodes of a round trained as one batched computation: same figures within float32
  // rounding, several times faster (src/run/batched-sim.ts); --unbatched trains node by node.
  const batched = !args.includes('--unbatched');
  const extra = JSON.parse(flag(args, 'set', '{}')) as Json;
  // `--cases clean,absent` runs only those (e.g. a control with another partition).
  const only = flag(args, 'cases', '').split(',').filter(Boolean);
  const cases = [
    { name: 'clean', robust: 'none', attack: false },
    { name: 'absent', robust: 'none', attack: false, absent: true },
    { name: kind, robust: kind, attack: true },
    ...(plain ? [{ name: 'undefended', robust: 'none', attack: true }] : []),
  ].filter((c) => only.length === 0 || only.includes(c.name));
  const experiment = (hidden: number[], seed: number, c: (typeof cases)[number]) =>
    parseExperiment(
      merge(
        {
          nodes: 16,
          run: { rounds: 40, seed },
          model: { hidden },
          train: { localSteps: 5 },
          eval: { every: 10 },
          gossip: { robust: { kind: c.robust } },
          faults: {
            byzantine: c.attack ? BAD.map((node) => ({ node, behaviour })) : [],
            leaves: 'absent' in c ? BAD.map((node) => ({ node, round: 0 })) : [],
          },
        },
        extra,
      ),
    );
  // The graph and partition depend on the seed only: one line per seed, before any run.
  for (const seed of seeds) {
    const held = await whatAttackersHold(experiment(sizes[0]!, seed, cases[0]!));
    console.log(JSON.stringify({ seed, attackers: BAD, ...held }));
  }
  const rows: string[][] = [];
  for (const hidden of sizes) {
    const honest = new Map<string, number[]>(cases.map((c) => [c.name, []]));
    for (const seed of seeds) {
      for (const c of cases) {
        const decisions = { rejectedBad: 0, acceptedBad: 0, rejectedHonest: 0, clippedHonest: 0 };
        const s = await simulate(experiment(hidden, seed, c), {
          batched,
          onRound: (r) => {
            if (BAD.includes(r.node)) return;
            const rejected = r.robust?.rejected ?? [];
            for (const j of r.heard) {
              const bad = BAD.includes(j);
              if (rejected.includes(j)) decisions[bad ? 'rejectedBad' : 'rejectedHonest']++;
              else if (bad) decisions.acceptedBad++;
            }
            for (const j of r.robust?.clipped ?? [])
              if (!BAD.includes(j)) decisions.clippedHonest++;
          },
        });
        const accs = s.perNode.filter((p) => !BAD.includes(p.id)).map((p) => p.accuracy);
        const acc = describe(accs).mean ?? Number.NaN;
        honest.get(c.name)!.push(acc);
        console.log(
          JSON.stringify({
            hidden,
            seed,
            case: c.name,
            honestAccuracy: +acc.toFixed(4),
            ...(c.robust === 'clip' && decisions),
            wallSeconds: +s.wallSeconds.toFixed(1),
          }),
        );
      }
    }
    const series = (name: string) => honest.get(name) ?? [];
    const pct = (xs: number[]) => xs.map((x) => (100 * x).toFixed(1)).join(' ') || '-';
    const gap = (from: string, to: string) => {
      const d = series(to).map((a, i) => (series(from)[i] ?? Number.NaN) - a);
      return d.length === 0 || d.some(Number.isNaN)
        ? ['-', '-']
        : [(100 * describe(d).mean!).toFixed(1), (100 * Math.max(...d)).toFixed(1)];
    };
    rows.push([
      JSON.stringify(hidden),
      pct(series('clean')),
      pct(series('absent')),
      pct(series(kind)),
      ...(plain ? [pct(series('undefended'))] : []),
      ...gap('clean', 'absent'),
      ...gap('clean', kind),
      ...gap('absent', kind),
    ]);
  }
  const header = [
    'model.hidden',
    'clean honest % (per seed)',
    'attackers absent %',
    `${kind} under attack %`,
    ...(plain ? ['undefended %'] : []),
    'clean-absent (mean)',
    '(max)',
    `clean-${kind} (mean)`,
    '(max)',
    `absent-${kind} (mean)`,
    '(max)',
  ];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  console.log(`\nseeds ${seeds.join(',')}; 2 of 16 nodes ${behaviour}; ${JSON.stringify(extra)}`);
  for (const r of all) console.log(r.map((v, i) => v.padEnd(widths[i]!)).join('  '));
}

await main(process.argv.slice(2));
