/** Helpers of the end-to-end tests: node processes of a launched run, file snapshots. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RoundRecord } from '../../src/node/metrics.js';

/**
 * How long a test launch may take to start all its nodes: processes loading their code on 2 cores
 * shared with other test runs can take minutes (not a figure the tests measure).
 */
export const START_TIMEOUT = 300_000;

/** Pids of the node processes whose command line names `dir` (the launcher passes each its own). */
export function nodePids(dir: string): number[] {
  return execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(` ${dir} `) || l.endsWith(` ${dir}`))
    .filter((l) => / node --config /.test(l))
    .map((l) => Number(l.trim().split(/\s+/, 1)[0]));
}

/**
 * A launch's `onRound` hook that pauses node `node` (its process, found by its directory under
 * `out`) with SIGSTOP once it has finished round `fromRound`, and continues it `ms` later. After
 * the launch, `await pause.done` and read `stopped`/`continued` (epoch ms; unset if it never ran).
 */
export function pauseOnce(out: string, node: number, fromRound: number, ms: number) {
  const dir = join(out, 'nodes', String(node));
  const pause = {
    stopped: undefined as number | undefined,
    continued: undefined as number | undefined,
    done: Promise.resolve(),
    onRound: (r: RoundRecord) => {
      if (r.node !== node || r.round < fromRound || pause.stopped !== undefined) return;
      const [pid] = nodePids(dir);
      if (pid === undefined) throw new Error(`no process runs in ${dir}`);
      process.kill(pid, 'SIGSTOP');
      pause.stopped = Date.now();
      pause.done = sleep(ms).then(() => {
        process.kill(pid, 'SIGCONT');
        pause.continued = Date.now();
      });
    },
  };
  return pause;
}

/** The round records node `node` of the run in `out` wrote. */
export const records = (out: string, node: number): RoundRecord[] =>
  readFileSync(join(out, 'nodes', String(node), 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RoundRecord);

/** Every file under `dir` with its SHA-256 and mtime: equal snapshots mean nothing was written. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else
        out[p] =
          `${createHash('sha256').update(readFileSync(p)).digest('hex')} ${st.mtimeMs} ${st.size}`;
    }
  };
  walk(dir);
  return out;
}
