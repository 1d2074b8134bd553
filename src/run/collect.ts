/**
 * `flatmesh collect`: one run directory from the node directories of a run whose nodes ran on
 * several machines (`flatmesh roster` + `flatmesh node`). Each node wrote its metrics, its final
 * checkpoint and its end record (end.json) in its own directory; collect copies them (never the
 * nodes' private keys) into OUT/nodes/<i>/ and writes OUT/config.json and OUT/summary.json, the
 * same summary a launcher writes (src/run/summary.ts).
 *
 *   flatmesh collect hostA/cluster hostB/cluster/nodes/2 --out runs/cluster-1
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { initBackend } from '../compute/backend.js';
import { experimentDiff, formatDiff } from '../config/identity.js';
import { ConfigError, ExperimentMismatchError, RunError } from '../errors.js';
import { prepareRun } from '../node/build.js';
import { CHECKPOINT_FILE } from '../node/checkpoint.js';
import type { RoundRecord } from '../node/metrics.js';
import { createRunDir } from './launcher.js';
import {
  NODE_END_FILE,
  type NodeDirState,
  type NodeEndRecord,
  type RunSummary,
  readNodeEnd,
  summarizeNodeDirs,
} from './summary.js';

const METRICS_FILE = 'metrics.jsonl';
/** What a node directory holds of its run; its private key (peer.key) stays where it is. */
const COPIED = [METRICS_FILE, NODE_END_FILE, CHECKPOINT_FILE, 'node.log'];

interface FoundNode {
  id: number;
  dir: string;
  end: NodeEndRecord | undefined;
  records: RoundRecord[];
}

const isNodeDir = (d: string) =>
  existsSync(join(d, NODE_END_FILE)) || existsSync(join(d, METRICS_FILE));

function readRecords(dir: string): RoundRecord[] {
  const file = join(dir, METRICS_FILE);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as RoundRecord);
}

/** The node directories under `dir`: itself, or its nodes/<i>/ (a run or roster directory). */
function nodeDirsIn(dir: string): string[] {
  if (isNodeDir(dir)) return [dir];
  const nodes = join(dir, 'nodes');
  const subs = existsSync(nodes)
    ? readdirSync(nodes)
        .map((n) => join(nodes, n))
        .filter(isNodeDir)
    : [];
  if (subs.length === 0)
    throw new ConfigError(
      'DIR',
      `holds no node records (${NODE_END_FILE} or ${METRICS_FILE})`,
      dir,
    );
  return subs;
}

export async function collect(dirs: readonly string[], opts: { out: string }): Promise<RunSummary> {
  if (dirs.length === 0) throw new ConfigError('DIR', 'give at least one node or run directory');
  const found = new Map<number, FoundNode>();
  for (const d of dirs) {
    for (const dir of nodeDirsIn(resolve(d))) {
      const end = readNodeEnd(dir);
      const records = readRecords(dir);
      const id = end?.node ?? records[0]?.node ?? Number(basename(dir));
      if (!Number.isInteger(id))
        throw new ConfigError('DIR', 'has records but no node id (no end record)', dir);
      const other = found.get(id);
      if (other) throw new ConfigError('DIR', `node ${id} appears twice: ${other.dir} and`, dir);
      found.set(id, { id, dir, end, records });
    }
  }
  // Every end record must come from the same run and the same experiment.
  const ends = [...found.values()].filter((f) => f.end !== undefined);
  const first = ends[0];
  if (!first?.end)
    throw new RunError(
      `none of the node directories has an end record (${NODE_END_FILE}): the experiment is unknown`,
    );
  for (const f of ends) {
    const e = f.end!;
    if (e.runId !== first.end.runId)
      throw new ConfigError(
        'DIR',
        `node ${f.id} belongs to run ${e.runId}, not ${first.end.runId}`,
        f.dir,
      );
    if (e.experimentHash !== first.end.experimentHash) {
      const diffs = experimentDiff(first.end.config, e.config);
      throw new ExperimentMismatchError(
        `node ${f.id}'s record (${f.dir})`,
        diffs,
        `differs from node ${first.id}'s in ${formatDiff(diffs)}`,
      );
    }
  }
  const runId = first.end.runId;
  const cfg = { ...first.end.config, run: { ...first.end.config.run, id: runId } };
  for (const id of found.keys()) {
    if (id >= cfg.nodes)
      throw new ConfigError(
        'DIR',
        `holds node ${id}, but the run has ${cfg.nodes} nodes`,
        found.get(id)!.dir,
      );
  }

  const out = resolve(opts.out);
  createRunDir(out, 'choose a new directory for the collected run');
  writeFileSync(join(out, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
  for (const f of found.values()) {
    const to = join(out, 'nodes', String(f.id));
    mkdirSync(to, { recursive: true });
    for (const name of COPIED)
      if (existsSync(join(f.dir, name))) copyFileSync(join(f.dir, name), join(to, name));
  }

  await initBackend({ ...(cfg.backend !== 'auto' && { prefer: cfg.backend }), quiet: true });
  const ctx = await prepareRun(cfg, runId);
  const nodes: NodeDirState[] = Array.from({ length: cfg.nodes }, (_, id) => {
    const f = found.get(id);
    return {
      id,
      dir: join(out, 'nodes', String(id)),
      ...(f?.end && { report: f.end.report }),
      status: !f
        ? 'missing'
        : !f.end
          ? 'no end record'
          : f.end.status === 'done'
            ? 'ok'
            : 'stopped',
      restarts: 0,
      crashes: 0,
    };
  });
  // Wall time as the records tell it: from the first round record to the last end record.
  const starts = [...found.values()].flatMap((f) => f.records.slice(0, 1).map((r) => r.time));
  const endTimes = [...found.values()].flatMap((f) => [
    ...(f.end ? [Date.parse(f.end.endedAt)] : []),
    ...f.records.slice(-1).map((r) => r.time),
  ]);
  const wallSeconds = starts.length > 0 ? (Math.max(...endTimes) - Math.min(...starts)) / 1000 : 0;
  const summary = summarizeNodeDirs({ ctx, nodes, wallSeconds });
  summary.collectedFrom = dirs.map((d) => resolve(d));
  writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}
