/**
 * Issue 14's side-by-side table in one invocation: runs the benchmarks that produce it, one after
 * the other, keeps each one's raw JSON lines in DIR, and prints the tables (markdown) from them.
 *
 *   npm run bench -- perf-table --out DIR [--parts p1,p2,...] [--baseline OLD/dist/src/cli/start.js]
 *   npm run bench -- perf-table --out DIR --render        # only print the tables from DIR
 *
 * Parts (default: all; those with `-before` only with --baseline, an older build's command):
 *   vanilla16[-before]  cluster --mode vanilla: 16 processes, issue 14's config (see cluster.ts)
 *   profile16[-before]  the same under the CPU profiler: where the steady rounds' CPU goes
 *   steps1[-before]     vanilla16 with 1 local step instead of 10: training's CPU against the
 *                       rest's, without the profiler's sampling bias
 *   k1, k16             cluster --mode vanilla --nodes 64, one process per node / 16 nodes each
 *   n256                cluster --mode vanilla --nodes 256 --nodes-per-process 64 --rounds 4
 *   hog                 cluster --hog 2 --rounds 15 (issue 10: 16 processes and 2 CPU hogs)
 *   sim16, sim1000      sim --case preset16 / nodes1000: batched simulator against unbatched
 * A part whose file in DIR is complete is not run again (delete the file to re-run it), so an
 * interrupted table resumes. Each file also holds the machine's `uptime` before and after.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = fileURLToPath(new URL('../bench.ts', import.meta.url));

const PARTS: Record<string, (baseline: string) => string[]> = {
  vanilla16: () => ['cluster', '--mode', 'vanilla'],
  'vanilla16-before': (b) => ['cluster', '--mode', 'vanilla', '--flatmesh', b],
  profile16: () => ['cluster', '--mode', 'vanilla', '--profile'],
  'profile16-before': (b) => ['cluster', '--mode', 'vanilla', '--profile', '--flatmesh', b],
  steps1: () => ['cluster', '--mode', 'vanilla', '--steps', '1'],
  'steps1-before': (b) => ['cluster', '--mode', 'vanilla', '--steps', '1', '--flatmesh', b],
  k1: () => ['cluster', '--mode', 'vanilla', '--nodes', '64'],
  k16: () => ['cluster', '--mode', 'vanilla', '--nodes', '64', '--nodes-per-process', '16'],
  n256: () => [
    'cluster',
    '--mode',
    'vanilla',
    '--nodes',
    '256',
    '--nodes-per-process',
    '64',
    '--rounds',
    '4',
  ],
  hog: () => ['cluster', '--hog', '2', '--rounds', '15'],
  sim16: () => ['sim', '--case', 'preset16'],
  sim1000: () => ['sim', '--case', 'nodes1000'],
};

type Line = Record<string, unknown> & { kind: string };

export async function run(args: string[]): Promise<void> {
  const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const out = opt('out');
  if (!out) throw new Error('--out: the directory for the raw outputs is required');
  const baseline = opt('baseline');
  const wanted = opt('parts')?.split(',') ?? Object.keys(PARTS);
  for (const p of wanted) {
    if (!(p in PARTS)) {
      throw new Error(`--parts: each must be one of ${Object.keys(PARTS).join(', ')} (got ${p})`);
    }
  }
  mkdirSync(out, { recursive: true });
  if (!args.includes('--render')) {
    for (const part of wanted) {
      if (part.endsWith('-before') && !baseline) continue;
      const file = join(out, `${part}.jsonl`);
      if (complete(file)) continue;
      const argv = PARTS[part]!(baseline ?? '');
      process.stderr.write(`perf-table: ${part}: npm run bench -- ${argv.join(' ')}\n`);
      const lines = [uptime('before')];
      const r = spawnSync(process.execPath, ['--import', 'tsx', BENCH, ...argv], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 64 * 1024 * 1024,
      });
      lines.push(r.stdout.trim(), uptime('after'));
      writeFileSync(file, `${lines.filter(Boolean).join('\n')}\n`);
      if (r.status !== 0) process.stderr.write(`perf-table: ${part} exited with ${r.status}\n`);
    }
  }
  process.stdout.write(render(out));
}

function uptime(when: string): string {
  const text = spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();
  return JSON.stringify({ suite: 'perf-table', kind: 'uptime', when, text });
}

function read(file: string): Line[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
}

/** A part ran to its end: a cluster run printed its summary, a sim run both engines. */
function complete(file: string): boolean {
  const lines = read(file);
  return (
    lines.some((l) => l.kind === 'summary') || lines.filter((l) => l.kind === 'run').length > 1
  );
}

const cell = (v: unknown, digits = 1): string =>
  typeof v === 'number' ? String(Number(v.toFixed(digits))) : v == null ? '–' : String(v);

function render(out: string): string {
  const parts = Object.fromEntries(
    Object.keys(PARTS).map((p) => [p, read(join(out, `${p}.jsonl`))] as const),
  );
  const of = (p: string, kind: string) => parts[p]?.find((l) => l.kind === kind);
  const load = (p: string) => {
    const ups = (parts[p] ?? []).filter((l) => l.kind === 'uptime');
    const avg = (l: Line | undefined) => /load average: ([\d.]+)/.exec(String(l?.text))?.[1];
    return ups.length ? `${avg(ups[0]) ?? '?'} → ${avg(ups[1]) ?? '?'}` : '–';
  };
  let md = '';
  const table = (
    title: string,
    cols: string[],
    header: string[],
    rows: [string, (p: string) => string][],
  ) => {
    const present = cols.filter((c) => of(c, 'summary'));
    if (!present.length) return;
    md += `${title}\n\n`;
    md += `| measure | ${present.map((c) => header[cols.indexOf(c)]).join(' | ')} |\n`;
    md += `|---|${present.map(() => '---').join('|')}|\n`;
    for (const [name, f] of rows) md += `| ${name} | ${present.map(f).join(' | ')} |\n`;
    md += '\n';
  };
  const s = (p: string): Record<string, unknown> => of(p, 'summary') ?? {};
  const cluster = (p: string) => (s(p).clusterRoundMs ?? {}) as Record<string, number>;
  const clusterRows: [string, (p: string) => string][] = [
    ['CPU per node-round (ms)', (p) => cell(s(p).cpuPerNodeRoundMs)],
    [
      'round time per node, median / p90 (s)',
      (p) =>
        `${cell(Number(s(p).roundMsMedian) / 1000, 2)} / ${cell(Number(s(p).roundMsP90) / 1000, 2)}`,
    ],
    [
      'cluster round, median / p90 (s)',
      (p) => `${cell(cluster(p).median! / 1000, 2)} / ${cell(cluster(p).p90! / 1000, 2)}`,
    ],
    ['peak PSS per node, median (MB)', (p) => cell(s(p).peakPssMBPerNode, 0)],
    ['peak PSS, all processes with the launcher (MB)', (p) => cell(s(p).peakTotalPssMB, 0)],
    ['failed sends', (p) => cell(s(p).failedSends, 0)],
    ['dials failed at start-up', (p) => cell(s(p).dialFailures, 0)],
    ['launch → all in round 0 (s)', (p) => cell(Number(s(p).launchToAllInRound0Ms) / 1000, 1)],
    [
      'launch → all done with round 0 (s)',
      (p) => cell(Number(s(p).launchToAllDoneRound0Ms) / 1000, 1),
    ],
    ['load average (1 min) before → after', load],
  ];
  table(
    '16 nodes, vanilla (ring-16, Metropolis, all edges), one process per node:',
    ['vanilla16-before', 'steps1-before', 'vanilla16', 'steps1'],
    ['before', 'before, 1 local step', 'after', 'after, 1 local step'],
    clusterRows,
  );
  // Training against the rest, without the profiler's bias: the same run with 1 local step
  // instead of 10 costs 9 steps less, so a step costs (c10 - c1) / 9 and the rest c1 - step.
  for (const [when, ten, one] of [
    ['before', 'vanilla16-before', 'steps1-before'],
    ['after', 'vanilla16', 'steps1'],
  ] as const) {
    if (!of(ten, 'summary') || !of(one, 'summary')) continue;
    const c10 = Number(s(ten).cpuPerNodeRoundMs);
    const c1 = Number(s(one).cpuPerNodeRoundMs);
    const step = (c10 - c1) / 9;
    md += `CPU per node-round, ${when}: training (10 steps of 32) ${cell(10 * step)} ms, everything else ${cell(c1 - step)} ms (from 10 against 1 local step).\n\n`;
  }
  table(
    '64 nodes, vanilla (ring), by nodes per process (and 256 nodes, 4 rounds):',
    ['k1', 'k16', 'n256'],
    ['K = 1 (64 processes)', 'K = 16 (4 processes)', '256 nodes, K = 64 (4 processes)'],
    clusterRows,
  );

  const profiles = ['profile16-before', 'profile16'].filter((p) => of(p, 'profile'));
  if (profiles.length) {
    // A part's share of the samples times the CPU per node-round of the same build's run without
    // the profiler (the profiler's own cost left out): an estimate of the part's ms per node-round.
    const plain = (p: string) => Number(s(p.replace('profile16', 'vanilla16')).cpuPerNodeRoundMs);
    md += `Where the steady rounds go (share of profile samples, %, and that share of the CPU per node-round of the run without the profiler, ms; 16 nodes, vanilla):\n\n`;
    const prof = (p: string) => of(p, 'profile') as Line & { parts: Record<string, number> };
    const names = [...new Set(profiles.flatMap((p) => Object.keys(prof(p).parts)))];
    const label = (p: string) => (p.endsWith('before') ? 'before' : 'after');
    md += `| part | ${profiles.map((p) => `${label(p)} (%) | ${label(p)} (ms)`).join(' | ')} |\n`;
    md += `|---|${profiles.map(() => '---|---').join('|')}|\n`;
    const msOf = (p: string, pct: number | undefined) =>
      pct === undefined || !(plain(p) > 0) ? '–' : cell((pct * plain(p)) / 100);
    for (const n of names)
      md += `| ${n} | ${profiles.map((p) => `${cell(prof(p).parts[n])} | ${msOf(p, prof(p).parts[n])}`).join(' | ')} |\n`;
    md += `| CPU per node-round under the profiler / without (ms) | ${profiles.map((p) => `${cell(s(p).cpuPerNodeRoundMs)} | ${cell(plain(p) || undefined)}`).join(' | ')} |\n\n`;
    for (const p of profiles) {
      const top = (prof(p).top as { fn: string; selfPct: number }[]).slice(0, 12);
      md += `Top functions by self time, ${p.endsWith('before') ? 'before' : 'after'}: `;
      md += `${top.map((t) => `${t.fn} ${t.selfPct}%`).join('; ')}\n\n`;
    }
  }

  if (of('hog', 'summary')) {
    const h = s('hog');
    const r = of('hog', 'rounds')?.roundMs as { median: number; p90: number };
    const c = of('hog', 'rounds')?.clusterRoundMs as { median: number; p90: number };
    md += `16 processes and 2 CPU hogs (MATCHA, 15 rounds; issue 10): ${cell(h.failedSends, 0)} failed sends, `;
    md += `round time per node median ${cell(r.median / 1000, 2)} s, p90 ${cell(r.p90 / 1000, 2)} s `;
    md += `(p90/median ${cell(r.p90 / r.median, 2)}); cluster round median ${cell(c.median / 1000, 2)} s, `;
    md += `p90 ${cell(c.p90 / 1000, 2)} s (p90/median ${cell(c.p90 / c.median, 2)}); load ${load('hog')}.\n\n`;
  }

  for (const p of ['sim16', 'sim1000']) {
    const runs = (parts[p] ?? []).filter((l) => l.kind === 'run');
    if (!runs.length) continue;
    md += `Simulator, ${p === 'sim16' ? 'preset fashion-mnist-ring16 (16 nodes, 150 rounds)' : '1,000 MLP nodes'}:\n\n`;
    md +=
      '| engine | wall (s) | CPU (s) | per round without evaluation, median (s) | mean accuracy | load |\n|---|---|---|---|---|---|\n';
    for (const r of runs) {
      const rs = r.roundSWithoutEval as Record<string, number>;
      const la = (x: unknown) => (x as number[] | undefined)?.[0];
      md += `| ${r.engine} | ${cell(r.wallS)} | ${cell(r.cpuS)} | ${cell(rs?.median, 2)} | ${cell(r.meanAccuracy, 5)} | ${cell(la(r.loadavgBefore))} → ${cell(la(r.loadavgAfter))} |\n`;
    }
    const a = parts[p]!.find((l) => l.kind === 'agreement');
    if (a) {
      md += `\nAgreement: largest weight difference ${a.maxWeightDiff}, mean accuracy difference ${a.meanAccuracyDiff}, final disagreement difference ${a.finalDisagreementDiff}.\n`;
    }
    md += '\n';
  }
  return md;
}
