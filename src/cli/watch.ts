/**
 * `flatmesh watch RUN_DIR`: the dashboard of a run directory. While another process (a launch,
 * or `flatmesh sim --out`) is still writing it, the page follows its files: the event log
 * (events.jsonl) and every node's metrics.jsonl, tailed. Once the run has finished
 * (summary.json), the page replays it with a round slider. Read-only: the run's launcher, not this
 * command, holds the node processes.
 *
 *   flatmesh watch runs/run-20261203-101500-s1 --port 8080
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import type { RoundRecord } from '../node/metrics.js';
import { startDashboard } from '../report/dashboard/server.js';
import { EVENT_LOG, EventHistory, parseJsonLines, type RunEvent } from '../run/events.js';

export interface WatchOptions {
  dir: string;
  port?: number | undefined;
  host?: string;
  /** How often to look for new lines (ms, default 500). */
  pollMs?: number;
  /** Where to print the URL (default stderr). */
  print?: (line: string) => void;
}

/** Appended lines of a file, read from where the last call stopped (whole lines only). */
class Tail {
  private offset = 0;
  private rest = '';

  constructor(private readonly file: string) {}

  read(): string {
    if (!existsSync(this.file)) return '';
    const fd = openSync(this.file, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size <= this.offset) return '';
      const buf = Buffer.alloc(size - this.offset);
      readSync(fd, buf, 0, buf.length, this.offset);
      this.offset = size;
      const text = this.rest + buf.toString('utf8');
      const cut = text.lastIndexOf('\n') + 1;
      this.rest = text.slice(cut);
      return text.slice(0, cut);
    } finally {
      closeSync(fd);
    }
  }
}

/** The `run` event of a directory written without an event log (a simulator run, an old launch). */
function runEventFromConfig(dir: string): RunEvent {
  const file = join(dir, 'config.json');
  if (!existsSync(file)) {
    throw new ConfigError('RUN_DIR', 'is not a run directory (no config.json)', dir);
  }
  const cfg = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: number;
    run: { id?: string; rounds: number };
    faults: unknown;
  };
  return {
    type: 'run',
    time: Date.now(),
    runId: cfg.run.id ?? dir,
    out: dir,
    nodes: cfg.nodes,
    rounds: cfg.run.rounds,
    edges: [],
    matchings: [],
    planned: cfg.faults,
  };
}

export async function watchCommand(opts: WatchOptions, signal?: AbortSignal): Promise<string> {
  const dir = resolve(opts.dir);
  if (!existsSync(dir)) throw new ConfigError('RUN_DIR', 'does not exist', opts.dir);
  const history = new EventHistory();
  const eventLog = new Tail(join(dir, EVENT_LOG));
  const metrics = new Map<number, Tail>();
  let announced = false;
  /** Each node's last state in the event log: the run is over when every one is final. */
  const states = new Map<number, string>();

  const poll = () => {
    const events = parseJsonLines<RunEvent>(eventLog.read());
    if (!announced && events[0]?.type !== 'run') history.push(runEventFromConfig(dir));
    announced = true;
    for (const e of events) {
      if (e.type === 'node') states.set(e.node, e.state);
      history.push(e);
    }
    const nodesDir = join(dir, 'nodes');
    if (existsSync(nodesDir)) {
      for (const name of readdirSync(nodesDir)) {
        const id = Number(name);
        if (!Number.isInteger(id)) continue;
        if (!metrics.has(id)) metrics.set(id, new Tail(join(nodesDir, name, 'metrics.jsonl')));
        for (const record of parseJsonLines<RoundRecord>(metrics.get(id)!.read())) {
          history.push({ type: 'round', time: record.time, record });
        }
      }
    }
  };

  poll();
  const FINAL = new Set(['done', 'stopped', 'failed', 'crashed']);
  const finished =
    existsSync(join(dir, 'summary.json')) ||
    (states.size > 0 && [...states.values()].every((s) => FINAL.has(s)));
  const dashboard = await startDashboard({
    source: history,
    runDir: () => dir,
    readonly: true,
    replay: finished,
    ...(opts.host && { host: opts.host }),
    ...(opts.port !== undefined && { port: opts.port }),
  });
  (opts.print ?? ((l) => process.stderr.write(`${l}\n`)))(
    `dashboard: ${dashboard.url} (${finished ? 'replay' : 'following'} ${dir}; Ctrl-C stops)`,
  );
  const timer = finished ? undefined : setInterval(poll, opts.pollMs ?? 500);
  // Serve until stopped (Ctrl-C): a finished run's page stays up for its replay.
  const keepAlive = setInterval(() => {}, 1 << 30);
  await new Promise<void>((r) => {
    if (signal?.aborted) return r();
    signal?.addEventListener('abort', () => r(), { once: true });
  });
  clearInterval(timer);
  clearInterval(keepAlive);
  await dashboard.close();
  return '';
}
