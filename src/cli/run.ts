/**
 * The run commands: `launch` (real processes), `node` (one process, e.g. on another machine),
 * `sim` (in-process simulator). Plain async functions taking an options object; main.ts only parses
 * arguments into them.
 */
import { readFileSync } from 'node:fs';
import { loadExperiment } from '../config/index.js';
import { parseExperiment } from '../config/load.js';
import { UsageError } from '../errors.js';
import { parseRoster } from '../net/libp2p/host.js';
import { formatSummary } from '../report/summary-text.js';
import { collect } from '../run/collect.js';
import { launch } from '../run/launcher.js';
import { runNodeGroup } from '../run/node-group.js';
import { runNodeProcess } from '../run/node-process.js';
import { replayPlan } from '../run/replay.js';
import { simulate } from '../run/simulate.js';
import { launchDashboard } from './dashboard.js';
import { reportAfterRun } from './report.js';

export interface ExperimentFlags {
  config?: string;
  set?: string[];
  nodes?: number;
  rounds?: number;
  seed?: number;
  topology?: string;
  out?: string;
}

function experimentFrom(f: ExperimentFlags) {
  return loadExperiment({
    ...(f.config && { file: f.config }),
    ...(f.set && { set: f.set }),
    overrides: {
      nodes: f.nodes,
      'run.rounds': f.rounds,
      'run.seed': f.seed,
      'topology.graph': f.topology,
      'run.out': f.out,
    },
  });
}

export async function launchCommand(
  opts: ExperimentFlags & {
    quiet?: boolean;
    json?: boolean;
    resume?: boolean;
    /** Serve the live dashboard (src/cli/dashboard.ts) on 127.0.0.1:`port` (default any port). */
    dashboard?: { port?: number; readonly?: boolean };
    nodesPerProcess?: number;
  },
  signal?: AbortSignal,
): Promise<string> {
  const cfg = experimentFrom(opts);
  let outDir = '';
  const dash = opts.dashboard && (await launchDashboard(opts.dashboard));
  const summary = await launch(cfg, {
    ...(opts.out && { out: opts.out }),
    progress: !opts.quiet,
    ...(signal && { signal }),
    ...(opts.resume && { resume: true }),
    ...(dash && { events: dash.events, onControl: dash.onControl }),
    ...(opts.nodesPerProcess !== undefined && { nodesPerProcess: opts.nodesPerProcess }),
  }).finally(() => dash?.close());
  outDir = opts.out ?? cfg.run.out ?? `runs/${summary.runId}`;
  const report = await reportAfterRun(outDir);
  return opts.json
    ? `${JSON.stringify(summary, null, 2)}\n`
    : `${formatSummary(summary, outDir)}\n${report}\n`;
}

export async function simCommand(
  opts: ExperimentFlags & {
    json?: boolean;
    batched?: boolean;
    /** A launched run's directory: its experiment and the faults injected into it by hand. */
    replay?: string;
  },
  signal?: AbortSignal,
): Promise<string> {
  const replay = opts.replay ? replayPlan(opts.replay) : undefined;
  const cfg = replay?.cfg ?? experimentFrom(opts);
  const summary = await simulate(cfg, {
    ...(replay && { liveFaults: replay.live }),
    ...(opts.out && { out: opts.out }),
    ...(opts.batched && { batched: true }),
    ...(signal && { signal }),
  });
  // Without an out directory the simulator writes no records, so there is nothing to draw.
  const out = opts.out;
  const report = out ? `${await reportAfterRun(out)}\n` : '';
  return opts.json
    ? `${JSON.stringify(summary, null, 2)}\n`
    : `${formatSummary(summary, out)}\n${report}`;
}

export interface NodeCommandOptions {
  /** The resolved experiment (config.json written by the launcher, or any experiment file). */
  config: string;
  id: number;
  dir: string;
  roster?: string;
  listen?: string;
  runId?: string;
  shards?: string;
}

export async function nodeCommand(opts: NodeCommandOptions): Promise<number> {
  // Only a launcher (over IPC) can hand a node its roster later; on its own it would wait forever.
  if (!opts.roster && !process.send) {
    throw new UsageError(
      'flatmesh node needs --roster FILE when it runs on its own (flatmesh roster writes one)',
    );
  }
  const cfg = opts.config.endsWith('.json')
    ? parseExperiment(JSON.parse(readFileSync(opts.config, 'utf8')))
    : loadExperiment({ file: opts.config });
  // A node started from a roster runs the roster's run (flatmesh roster makes a fresh id).
  const runId = opts.runId ?? cfg.run.id ?? rosterRunId(opts.roster) ?? `run-s${cfg.run.seed}`;
  return runNodeProcess({
    cfg,
    runId,
    id: opts.id,
    dir: opts.dir,
    ...(opts.roster && { roster: opts.roster }),
    ...(opts.listen && { listen: opts.listen }),
    ...(opts.shards && { shards: opts.shards }),
    log: (msg) => process.stderr.write(`[node ${opts.id}] ${msg}\n`),
  });
}

/** The process of several nodes a launcher starts (`--nodes-per-process`): src/run/node-group.ts. */
export async function nodeGroupCommand(opts: {
  config: string;
  shards: string;
  nodesDir: string;
}): Promise<number> {
  if (!process.send) throw new UsageError('flatmesh node-group runs only under flatmesh launch');
  const cfg = parseExperiment(JSON.parse(readFileSync(opts.config, 'utf8')));
  const runId = cfg.run.id ?? `run-s${cfg.run.seed}`;
  return runNodeGroup({ cfg, runId, shards: opts.shards, nodesDir: opts.nodesDir });
}

export async function collectCommand(opts: {
  dirs: string[];
  out: string;
  json?: boolean;
}): Promise<string> {
  const summary = await collect(opts.dirs, { out: opts.out });
  return opts.json
    ? `${JSON.stringify(summary, null, 2)}\n`
    : `${formatSummary(summary, opts.out)}\n`;
}

function rosterRunId(file: string | undefined): string | undefined {
  return file ? parseRoster(JSON.parse(readFileSync(file, 'utf8'))).runId : undefined;
}
