/**
 * Faults injected by hand into a running launch (the dashboard's controls). A control request is
 * validated (every field named with its legal range on error), turned into what the launcher does
 * (kill and restart processes, as with planned crashes) or what every node applies from a round on
 * (`LiveFault`: partitions, loss, stragglers, byzantine nodes, through the nodes' FaultPlan), and
 * written to the run's event stream, hence to its event log, with its round.
 *
 *   const control = new LiveControl(handle, events);
 *   control.apply(parseControlAction({ kind: 'kill', node: 2, restart: 'after', afterRounds: 3 }, 6));
 */
import { ConfigError } from '../errors.js';
import type { ByzantineBehaviour, LiveFault } from '../faults/live.js';
import type { FaultAction, FaultEvent, RunEvents } from './events.js';

/** What the launcher offers live control (src/run/launcher.ts implements it). */
export interface LaunchHandle {
  readonly nodes: number;
  readonly rounds: number;
  /** The highest round any node has finished (-1 before the first). */
  latestRound(): number;
  /** The last round `node` finished (-1 before its first). */
  nodeRound(node: number): number;
  /**
   * SIGKILL the node's process, to restart it once the others are `restartAfter` rounds on
   * (0: as soon as it is gone; undefined: never). Its pid, or undefined if it was not running.
   */
  kill(node: number, restartAfter: number | undefined): number | undefined;
  /** Start a crashed node again now; false if it is running (or not crashed). */
  restart(node: number): boolean;
  /** Tell every node (and every node restarted later) to apply this fault. */
  broadcast(fault: LiveFault): void;
}

const BEHAVIOURS: readonly (ByzantineBehaviour | 'honest')[] = [
  'sign-flip',
  'noise',
  'scale',
  'label-flip',
  'honest',
];

type Obj = Record<string, unknown>;

function int(o: Obj, key: string, min: number, max: number): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(key, `must be an integer between ${min} and ${max}`, v);
  }
  return v;
}

function num(o: Obj, key: string, min: number, max: number): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new ConfigError(key, `must be a number between ${min} and ${max}`, v);
  }
  return v;
}

function oneOf<T extends string>(o: Obj, key: string, values: readonly T[]): T {
  const v = o[key];
  if (typeof v !== 'string' || !values.includes(v as T)) {
    throw new ConfigError(key, `must be one of ${values.join(', ')}`, v);
  }
  return v as T;
}

/** A control request body as a typed action, or a ConfigError naming the bad field. */
export function parseControlAction(body: unknown, nodes: number): FaultAction {
  if (typeof body !== 'object' || body === null) {
    throw new ConfigError('action', 'must be a JSON object', body);
  }
  const o = body as Obj;
  const node = () => int(o, 'node', 0, nodes - 1);
  const kind = oneOf(o, 'kind', [
    'kill',
    'restart',
    'partition',
    'heal',
    'loss',
    'straggler',
    'byzantine',
  ] as const);
  switch (kind) {
    case 'kill': {
      const restart = oneOf(o, 'restart', ['now', 'never', 'after'] as const);
      return restart === 'after'
        ? { kind, node: node(), restart, afterRounds: int(o, 'afterRounds', 1, 1_000_000) }
        : { kind, node: node(), restart };
    }
    case 'restart':
      return { kind, node: node() };
    case 'partition': {
      const groups = o['groups'];
      if (!Array.isArray(groups) || groups.length !== 2) {
        throw new ConfigError('groups', 'must be two lists of node indices', groups);
      }
      const seen = new Set<number>();
      const parsed = groups.map((g, gi) => {
        if (!Array.isArray(g) || g.length === 0) {
          throw new ConfigError(`groups.${gi}`, 'must be a non-empty list of node indices', g);
        }
        return g.map((v, i) => {
          if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= nodes) {
            throw new ConfigError(`groups.${gi}.${i}`, `must be between 0 and ${nodes - 1}`, v);
          }
          const n = v;
          if (seen.has(n)) throw new ConfigError(`groups.${gi}.${i}`, 'is in both groups', v);
          seen.add(n);
          return n;
        });
      });
      return { kind, groups: parsed, rounds: int(o, 'rounds', 1, 1_000_000) };
    }
    case 'heal':
      return { kind };
    case 'loss': {
      const p = num(o, 'p', 0, 1);
      const link = o['link'];
      if (link === undefined || link === null) return { kind, p };
      if (typeof link !== 'object') throw new ConfigError('link', 'must be {from, to}', link);
      const l = link as Obj;
      const from = int(l, 'from', 0, nodes - 1);
      const to = int(l, 'to', 0, nodes - 1);
      if (from === to) throw new ConfigError('link', 'must join two different nodes', link);
      return { kind, p, link: { from, to } };
    }
    case 'straggler':
      return { kind, node: node(), factor: num(o, 'factor', 1, 1000) };
    case 'byzantine': {
      const behaviour = oneOf(o, 'behaviour', BEHAVIOURS);
      return {
        kind,
        node: node(),
        behaviour,
        scale: o['scale'] === undefined ? 1 : num(o, 'scale', -1e6, 1e6),
        sigma: o['sigma'] === undefined ? 1 : num(o, 'sigma', 0, 1e6),
      };
    }
    default: {
      const never: never = kind;
      throw new ConfigError('kind', 'unknown', never);
    }
  }
}

/**
 * A broadcast fault applies from a round at least this many rounds after the newest round any node
 * has reported, and at least LEAD_MS later at the current pace: every node must have it before it
 * starts that round, so that both ends of each link decide the same. Nodes run within about a
 * round of each other, but on a crowded machine their reports and the IPC message can each lag by
 * a round of a few hundred ms (seen: a 0.5 s round at load 50).
 */
export const LEAD_ROUNDS = 2;
export const LEAD_MS = 2000;

export class LiveControl {
  /** The live partition in force (to heal it), if any. */
  private partition: Extract<LiveFault, { kind: 'partition' }> | undefined;

  /** When the first node finished each recent round (ms, performance.now()), for the pace. */
  private readonly finished = new Map<number, number>();

  constructor(
    private readonly run: LaunchHandle,
    private readonly events: RunEvents,
  ) {
    events.on((e) => {
      if (e.type !== 'round' || this.finished.has(e.record.round)) return;
      this.finished.set(e.record.round, performance.now());
      this.finished.delete(e.record.round - 16);
    });
  }

  /** The first round a fault broadcast now applies in (see LEAD_MS). */
  private firstRound(): number {
    const latest = this.run.latestRound();
    const now = this.finished.get(latest);
    const before = this.finished.get(latest - 4);
    const roundMs = now !== undefined && before !== undefined ? (now - before) / 4 : 0;
    const lead =
      roundMs > 0 ? Math.max(LEAD_ROUNDS, Math.ceil(LEAD_MS / roundMs) + 1) : LEAD_ROUNDS;
    return latest + lead;
  }

  /** Carry out an action; the fault event it logged. Throws ConfigError when it cannot apply. */
  apply(action: FaultAction): FaultEvent {
    const from = this.firstRound();
    let ev: FaultEvent;
    switch (action.kind) {
      case 'kill': {
        const restartAfter =
          action.restart === 'never'
            ? undefined
            : action.restart === 'now'
              ? 0
              : action.afterRounds;
        const round = this.run.nodeRound(action.node);
        const pid = this.run.kill(action.node, restartAfter);
        if (pid === undefined) throw new ConfigError('node', 'is not running', action.node);
        ev = this.event(round, action, { pid });
        break;
      }
      case 'restart': {
        if (!this.run.restart(action.node)) {
          throw new ConfigError('node', 'is running (only a crashed node restarts)', action.node);
        }
        ev = this.event(this.run.latestRound(), action);
        break;
      }
      case 'partition': {
        const to = Math.min(from + action.rounds, this.run.rounds);
        this.partition = { kind: 'partition', groups: action.groups, from, to };
        ev = this.broadcast(from, action, this.partition);
        break;
      }
      case 'heal': {
        const p = this.partition;
        if (!p || p.to <= from) throw new ConfigError('heal', 'no live partition is in force');
        // A partition of one group cuts nothing: from `from` on, everyone talks again.
        const all = Array.from({ length: this.run.nodes }, (_, i) => i);
        this.partition = undefined;
        ev = this.broadcast(from, action, { kind: 'partition', groups: [all], from, to: p.to });
        break;
      }
      case 'loss':
        ev = this.broadcast(from, action, {
          kind: 'loss',
          p: action.p,
          from,
          ...(action.link && { link: action.link }),
        });
        break;
      case 'straggler':
        ev = this.broadcast(from, action, { ...action, from });
        break;
      case 'byzantine':
        ev = this.broadcast(from, action, {
          kind: 'byzantine',
          node: action.node,
          behaviour: action.behaviour,
          scale: action.scale ?? 1,
          sigma: action.sigma ?? 1,
          from,
        });
        break;
      default: {
        const never: never = action;
        throw new ConfigError('kind', 'unknown', never);
      }
    }
    this.events.emit(ev);
    return ev;
  }

  private broadcast(round: number, action: FaultAction, fault: LiveFault): FaultEvent {
    this.run.broadcast(fault);
    return this.event(round, action, { applied: fault });
  }

  private event(
    round: number,
    action: FaultAction,
    extra: { pid?: number; applied?: LiveFault } = {},
  ): FaultEvent {
    return { type: 'fault', time: Date.now(), round, source: 'live', action, ...extra };
  }
}
