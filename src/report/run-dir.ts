/**
 * The one reader of run and sweep directories, shared by the report and the flatness analysis.
 *
 * A run directory holds config.json (the resolved experiment; the simulator leaves it out, and the
 * experiment is then taken from summary.json), roster.json (process runs), summary.json (once the
 * run ended) and per node nodes/<i>/ with metrics.jsonl (one RoundRecord per line) and
 * checkpoint.bin. A sweep directory holds sweep.json (its cells and seeds), table.json and one run
 * directory per cell and seed under cells/<cell key>/seed-<s>/.
 *
 * Records are read as a killed node left them: a last line cut short by a SIGKILL is skipped and
 * counted, and so is a cut line that a restarted node then appended to (its complete tail record
 * is kept). A restarted node repeats the rounds after its checkpoint: `roundsOf` keeps the last
 * record of each round, the one whose model went on.
 *
 *   const run = readRunDir('runs/run-20261126-102020-s1');
 *   run.config.run.rounds; run.summary?.meanAccuracy; run.records[3]?.length;
 *   run.checkpointFile(3);   // 'runs/.../nodes/3/checkpoint.bin', or undefined
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseExperiment } from '../config/load.js';
import type { Experiment } from '../config/schema.js';
import { ConfigErrors, RecordsError } from '../errors.js';
import type { RosterRecord, RoundRecord, RunSummary } from './records.js';

export interface MetricsFile {
  records: RoundRecord[];
  /** Lines that were not a complete record (cut by a kill), skipped. */
  skippedLines: number;
}

export interface RunDir {
  dir: string;
  /** The resolved experiment of the run. */
  config: Experiment;
  /** summary.json; undefined while the run is going or when it was cut short. */
  summary: RunSummary | undefined;
  roster: RosterRecord | undefined;
  /** Node ids, 0..nodes-1 (from the experiment). */
  nodes: number[];
  /** Per node, its round records in the order written (empty for a node that wrote none). */
  records: RoundRecord[][];
  /** Lines skipped over all metrics files (see MetricsFile). */
  skippedLines: number;
  nodeDir(node: number): string;
  /** The node's checkpoint file, when it has one. */
  checkpointFile(node: number): string | undefined;
}

export interface SweepRunRef {
  cell: string;
  values: Record<string, unknown>;
  seed: number;
  dir: string;
  /** Its run directory holds a summary.json (the sweep moves a run there only once it is done). */
  done: boolean;
}

export interface SweepDir {
  dir: string;
  mode: string;
  seeds: number[];
  gridKeys: string[];
  cells: { key: string; values: Record<string, unknown> }[];
  runs: SweepRunRef[];
}

export const isSweepDir = (dir: string): boolean => existsSync(join(dir, 'sweep.json'));

export const isRunDir = (dir: string): boolean =>
  existsSync(join(dir, 'config.json')) || existsSync(join(dir, 'summary.json'));

function readJson<T>(file: string): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new RecordsError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new RecordsError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}

const readJsonIfExists = <T>(file: string): T | undefined =>
  existsSync(file) ? readJson<T>(file) : undefined;

/** Parse one metrics.jsonl (see the module comment for what is skipped). */
export function parseMetrics(text: string): MetricsFile {
  const records: RoundRecord[] = [];
  let skippedLines = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const rec = parseRecord(line);
    if (rec) records.push(rec);
    else skippedLines++;
    // A cut line with a complete record appended to it: the record is kept, the cut part skipped.
    if (!rec) {
      const at = line.lastIndexOf('{"node":');
      const tail = at > 0 ? parseRecord(line.slice(at)) : undefined;
      if (tail) records.push(tail);
    }
  }
  return { records, skippedLines };
}

function parseRecord(line: string): RoundRecord | undefined {
  try {
    const r = JSON.parse(line) as RoundRecord;
    return r && typeof r === 'object' && typeof r.round === 'number' && typeof r.node === 'number'
      ? r
      : undefined;
  } catch {
    return undefined;
  }
}

export function readMetricsFile(file: string): MetricsFile {
  if (!existsSync(file)) return { records: [], skippedLines: 0 };
  return parseMetrics(readFileSync(file, 'utf8'));
}

/** The last record of each round, by round (a restarted node repeats rounds; the last one counts). */
export function roundsOf(records: readonly RoundRecord[]): RoundRecord[] {
  const byRound = new Map<number, RoundRecord>();
  for (const r of records) byRound.set(r.round, r);
  return [...byRound.values()].sort((a, b) => a.round - b.round);
}

/** Read a run directory. Throws RecordsError when `dir` is not one. */
export function readRunDir(dir: string, opts: { records?: boolean } = {}): RunDir {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new RecordsError(`${dir}: no such directory`);
  if (!isRunDir(dir))
    throw new RecordsError(
      `${dir} is not a run directory (it has neither config.json nor summary.json)`,
    );
  const summary = readJsonIfExists<RunSummary>(join(dir, 'summary.json'));
  const rawConfig = readJsonIfExists<unknown>(join(dir, 'config.json')) ?? summary?.config;
  let config: Experiment;
  try {
    config = parseExperiment(rawConfig);
  } catch (e) {
    if (!(e instanceof ConfigErrors)) throw e;
    throw new RecordsError(
      `${dir}: its experiment is not valid for this version of flatmesh: ${e.problems.map((p) => p.message).join('; ')}`,
    );
  }
  const roster = readJsonIfExists<RosterRecord>(join(dir, 'roster.json'));
  const nodeDir = (node: number) => join(dir, 'nodes', String(node));
  const nodes = Array.from({ length: config.nodes }, (_, i) => i);
  let skippedLines = 0;
  const records = nodes.map((i) => {
    if (opts.records === false) return [];
    const m = readMetricsFile(join(nodeDir(i), 'metrics.jsonl'));
    skippedLines += m.skippedLines;
    return m.records;
  });
  return {
    dir,
    config,
    summary,
    roster,
    nodes,
    records,
    skippedLines,
    nodeDir,
    checkpointFile(node) {
      const f = join(nodeDir(node), 'checkpoint.bin');
      return existsSync(f) ? f : undefined;
    },
  };
}

/** Read a sweep directory's plan and where each of its runs is. */
export function readSweepDir(dir: string): SweepDir {
  if (!isSweepDir(dir))
    throw new RecordsError(`${dir} is not a sweep directory (it has no sweep.json)`);
  const plan = readJson<{
    mode: string;
    seeds: number[];
    gridKeys: string[];
    cells: { key: string; values: Record<string, unknown> }[];
  }>(join(dir, 'sweep.json'));
  const runs = plan.cells.flatMap((cell) =>
    plan.seeds.map((seed): SweepRunRef => {
      const runDir = join(dir, 'cells', cell.key, `seed-${seed}`);
      return {
        cell: cell.key,
        values: cell.values,
        seed,
        dir: runDir,
        done: existsSync(join(runDir, 'summary.json')),
      };
    }),
  );
  return {
    dir,
    mode: plan.mode,
    seeds: plan.seeds,
    gridKeys: plan.gridKeys,
    cells: plan.cells,
    runs,
  };
}
