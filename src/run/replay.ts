/**
 * `flatmesh sim --replay RUN_DIR`: a launched run's experiment with the faults injected by hand
 * (its event log's live `fault` events) turned into what the simulator replays. Kills become planned
 * crashes (down from the round after the kill until the node's first round after it restarted, as
 * its metrics show); live partitions become planned partitions, ended at their heal; live loss,
 * stragglers and byzantine nodes stay live faults that the simulator's LiveFaultPlan applies from
 * the same rounds, with the same seeded draws. What the simulator cannot replay is a timing: a kill
 * lands between rounds here, wherever it landed in the real run.
 *
 *   const { cfg, live } = replayPlan('runs/run-1');
 *   await simulate(cfg, { liveFaults: live });
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Experiment, parseExperiment } from '../config/index.js';
import { ConfigError } from '../errors.js';
import type { LiveFault } from '../faults/live.js';
import type { RoundRecord } from '../node/metrics.js';
import { type FaultEvent, parseJsonLines, readEventLog } from './events.js';

export interface ReplayPlan {
  cfg: Experiment;
  live: LiveFault[];
}

export function replayPlan(dir: string): ReplayPlan {
  const file = join(dir, 'config.json');
  if (!existsSync(file)) {
    throw new ConfigError('--replay', 'is not a run directory (no config.json)', dir);
  }
  const cfg = parseExperiment(JSON.parse(readFileSync(file, 'utf8')));
  const faults = structuredClone(cfg.faults);
  const live: LiveFault[] = [];
  const planned = faults.partitions.length;
  const records = new Map<number, RoundRecord[]>();
  const recordsOf = (node: number) => {
    let rs = records.get(node);
    if (!rs) {
      const f = join(dir, 'nodes', String(node), 'metrics.jsonl');
      rs = existsSync(f) ? parseJsonLines<RoundRecord>(readFileSync(f, 'utf8')) : [];
      records.set(node, rs);
    }
    return rs;
  };
  const events = readEventLog(dir).filter(
    (e): e is FaultEvent => e.type === 'fault' && e.source === 'live',
  );
  for (const e of events) {
    const a = e.action;
    if (a.kind === 'kill') {
      // Back at the first round it finished after the kill (a restart from its checkpoint).
      const back = recordsOf(a.node).find((r) => r.time > e.time);
      faults.crashes.push({
        node: a.node,
        round: e.round,
        ...(back && { restartAfter: Math.max(0, back.round - 1 - e.round) }),
      });
      continue;
    }
    const f = e.applied;
    if (!f) continue;
    if (f.kind === 'partition') {
      if (f.groups.length > 1) {
        faults.partitions.push({ groups: f.groups, from: f.from, to: f.to });
      } else {
        // A heal: the live partition in force ends where it starts.
        for (const p of faults.partitions.slice(planned)) {
          if (p.from <= f.from && p.to > f.from) p.to = f.from;
        }
      }
    } else live.push(f);
  }
  return { cfg: { ...cfg, faults }, live };
}
