/**
 * One stream of run events (the run and its graph, the roster, node states, round records, faults,
 * notes, the summary) that every live consumer of a launch reads: the terminal progress, the event
 * log in the run directory (events.jsonl) and the dashboard (over SSE). `flatmesh watch` rebuilds
 * the same stream from a run directory's files, so the page cannot tell a live launch from a tail.
 *
 *   const events = new RunEvents();
 *   const off = events.on((e) => { if (e.type === 'round') progress.record(e.record); });
 *   events.emit({ type: 'note', time: Date.now(), message: 'hello' });
 *
 * The event log (events.jsonl, one JSON object per line, append-only) holds every event except the
 * round records and the per-round training/exchanging states, which nodes/<i>/metrics.jsonl
 * already holds. Its `fault` lines are the faults of the run as they happened, planned or injected by
 * hand, each with the round it took effect: see `FaultEvent`.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ByzantineBehaviour, LiveFault } from '../faults/live.js';
import type { RoundRecord } from '../node/metrics.js';
import type { ProcessEvent, RunSummary } from './summary.js';

/** The event log's file name inside a run directory. */
export const EVENT_LOG = 'events.jsonl';

export type NodeState =
  | 'starting'
  | 'training'
  | 'exchanging'
  | 'crashed'
  | 'restarting'
  | 'done'
  | 'stopped'
  | 'failed';

/** A fault action, planned or live, as the event log records it. */
export type FaultAction =
  | { kind: 'kill'; node: number; restart: 'now' | 'never' | 'after'; afterRounds?: number }
  | { kind: 'restart'; node: number }
  | { kind: 'partition'; groups: number[][]; rounds: number }
  | { kind: 'heal' }
  | { kind: 'loss'; p: number; link?: { from: number; to: number } }
  | { kind: 'straggler'; node: number; factor: number }
  | {
      kind: 'byzantine';
      node: number;
      behaviour: ByzantineBehaviour | 'honest';
      scale?: number;
      sigma?: number;
    };

/**
 * A fault that happened. `round` is the round it took effect in (for a kill, the last round the node
 * had finished; for message faults, the first round the nodes apply it in). `source` says whether
 * it was planned or injected by hand (`live`, from the dashboard: the only source the launcher
 * writes today; planned and unplanned process deaths and restarts are `process` events). `applied` is what the nodes were told (message faults only). `pid` is the killed or
 * restarted process.
 */
export interface FaultEvent {
  type: 'fault';
  time: number;
  round: number;
  source: 'plan' | 'live';
  action: FaultAction;
  applied?: LiveFault;
  pid?: number;
}

export type RunEvent =
  | {
      type: 'run';
      time: number;
      runId: string;
      out: string;
      nodes: number;
      rounds: number;
      /** Base graph edges and the matchings MATCHA samples from (each edge is [u, v], u < v). */
      edges: [number, number][];
      matchings: [number, number][][];
      /** The resolved experiment's `faults` section (planned faults). */
      planned: unknown;
    }
  | {
      type: 'roster';
      time: number;
      nodes: readonly { id: number; peerId: string; addrs: readonly string[] }[];
    }
  | { type: 'node'; time: number; node: number; state: NodeState; pid?: number; round?: number }
  | { type: 'round'; time: number; record: RoundRecord }
  | FaultEvent
  /** A node process died or was restarted, planned or not (the summary's `events`). */
  | { type: 'process'; time: number; event: ProcessEvent }
  | { type: 'note'; time: number; message: string }
  | { type: 'summary'; time: number; summary: RunSummary };

export type RunEventListener = (e: RunEvent) => void;

/** A synchronous fan-out of run events; a listener that throws is dropped, not fatal to the run. */
export class RunEvents {
  private readonly listeners = new Set<RunEventListener>();

  on(fn: RunEventListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(e: RunEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch {
        this.listeners.delete(fn);
      }
    }
  }
}

/**
 * Every event of a stream kept in order, for consumers that join late (a page opened mid-run gets
 * the whole run so far, then the live events).
 */
export class EventHistory {
  private readonly past: RunEvent[] = [];
  private readonly live = new RunEvents();

  constructor(events?: RunEvents) {
    events?.on((e) => this.push(e));
  }

  push(e: RunEvent): void {
    this.past.push(e);
    this.live.emit(e);
  }

  subscribe(fn: RunEventListener): () => void {
    for (const e of this.past) fn(e);
    return this.live.on(fn);
  }
}

/** Whether the event log keeps this event (see the module comment). */
export function logged(e: RunEvent): boolean {
  if (e.type === 'round') return false;
  return !(e.type === 'node' && (e.state === 'training' || e.state === 'exchanging'));
}

/** A listener appending the logged events to DIR/events.jsonl. */
export function eventLogWriter(dir: string): RunEventListener {
  const file = join(dir, EVENT_LOG);
  return (e) => {
    if (logged(e)) appendFileSync(file, `${JSON.stringify(e)}\n`);
  };
}

/** The events of a run directory's event log (none if it has none); a torn last line is skipped. */
export function readEventLog(dir: string): RunEvent[] {
  const file = join(dir, EVENT_LOG);
  if (!existsSync(file)) return [];
  return parseJsonLines<RunEvent>(readFileSync(file, 'utf8'));
}

/** Complete JSON lines of a text; a last line without its newline (still being written) is left. */
export function parseJsonLines<T>(text: string): T[] {
  const out: T[] = [];
  const lines = text.split('\n');
  lines.pop();
  for (const line of lines) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // A line torn by a crash mid-write: skip it.
    }
  }
  return out;
}
