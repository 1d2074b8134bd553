/**
 * The table of issue 11's real runs: λmax, the Hutchinson trace and λmax/λ5 of the node models,
 * the SWA models and the average model, per optimizer, as mean ± 95% CI over seeds (each seed's
 * node and SWA figures first averaged over the nodes measured). Reads the flatness.json that
 * `flatmesh flatness RUN_DIR` wrote into each run directory.
 *
 *   npx tsx scripts/experiments/flatness-table.ts runs/flatness-ring16/cells/*\/seed-*
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from '../../src/report/stats.js';

interface Entry {
  model: string;
  top?: { values: number[]; ratio: number };
  trace?: { estimate: number };
}

const groups = new Map<string, Map<string, Record<string, number[]>>>();
for (const dir of process.argv.slice(2)) {
  const file = join(dir, 'flatness', 'flatness.json');
  if (!existsSync(file)) {
    console.error(`skipped ${dir}: no flatness/flatness.json`);
    continue;
  }
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
  const optimizer: string = summary.config.train.optimizer;
  const report = JSON.parse(readFileSync(file, 'utf8')) as { models: Entry[] };
  const kinds = new Map<string, Record<string, number[]>>();
  for (const m of report.models) {
    const kind = m.model === 'average' ? 'average' : m.model.startsWith('swa:') ? 'SWA' : 'node';
    const k = kinds.get(kind) ?? { lmax: [], trace: [], ratio: [] };
    if (m.top) {
      k.lmax!.push(m.top.values[0]!);
      k.ratio!.push(m.top.ratio);
    }
    if (m.trace) k.trace!.push(m.trace.estimate);
    kinds.set(kind, k);
  }
  const g = groups.get(optimizer) ?? new Map<string, Record<string, number[]>>();
  for (const [kind, k] of kinds) {
    const acc = g.get(kind) ?? { lmax: [], trace: [], ratio: [] };
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    for (const f of ['lmax', 'trace', 'ratio']) if (k[f]!.length) acc[f]!.push(mean(k[f]!));
    g.set(kind, acc);
  }
  groups.set(optimizer, g);
}
const cell = (xs: number[] | undefined) => {
  const d = describe(xs ?? []);
  if (d.mean === null) return '-';
  return d.ci95 === null ? d.mean.toFixed(2) : `${d.mean.toFixed(2)} ± ${d.ci95.toFixed(2)}`;
};
console.log('| optimizer | model | seeds | λmax | trace | λmax/λ5 |');
console.log('|---|---|---|---|---|---|');
for (const [opt, g] of groups) {
  for (const kind of ['node', 'SWA', 'average']) {
    const k = g.get(kind);
    if (!k) continue;
    console.log(
      `| ${opt} | ${kind} | ${k.lmax!.length} | ${cell(k.lmax)} | ${cell(k.trace)} | ${cell(k.ratio)} |`,
    );
  }
}
