/**
 * Faults injected by hand while a run goes on (from the dashboard), applied through the same
 * `FaultPlan` the planned faults use: a `LiveFaultPlan` is a FaultPlan whose answers also consult
 * the live faults added so far. Each live fault is in force from a round on (and a partition until
 * a round), and a live loss draws its fates from the run seed, so both ends of a link agree on a
 * message's fate (notify mode works) and a replay (`flatmesh sim --replay`) makes the same draws.
 *
 *   const plan = new LiveFaultPlan(cfg.faults, seed, nodes);
 *   plan.add({ kind: 'partition', groups: [[0, 1], [2, 3]], from: 12, to: 17 });
 *   plan.add({ kind: 'loss', p: 0.3, from: 14, link: { from: 0, to: 1 } });
 *   plan.roundDone(2, 13);          // node 2 is in round 14 now (stragglers, byzantine)
 */
import { Rng } from '../compute/rng.js';
import type { FaultsConfig } from '../config/schema.js';
import { FaultPlan } from './plan.js';

export type ByzantineBehaviour = FaultsConfig['byzantine'][number]['behaviour'];

/** A live fault as every node applies it. Rounds are the run's rounds; `to` is exclusive. */
export type LiveFault =
  | { kind: 'partition'; groups: number[][]; from: number; to: number }
  /** Loss probability from `from` on, for every link or one directed link. Latest one wins. */
  | { kind: 'loss'; p: number; from: number; link?: { from: number; to: number } }
  /** Training slow-down factor from `from` on (1 ends it). */
  | { kind: 'straggler'; node: number; factor: number; from: number }
  /** Byzantine behaviour from `from` on ('honest' ends it). */
  | {
      kind: 'byzantine';
      node: number;
      behaviour: ByzantineBehaviour | 'honest';
      scale: number;
      sigma: number;
      from: number;
    };

export class LiveFaultPlan extends FaultPlan {
  private readonly live: LiveFault[] = [];
  /** The round each node is in, for the answers that take no round (straggler, byzantine). */
  private readonly current = new Map<number, number>();

  /** The live faults added so far, in order. */
  get added(): readonly LiveFault[] {
    return this.live;
  }

  add(f: LiveFault): void {
    this.live.push(f);
  }

  /** The node finished `round`: it is in the next one. */
  roundDone(node: number, round: number): void {
    this.current.set(node, round + 1);
  }

  override partitionAt(round: number): readonly (readonly number[])[] | undefined {
    return super.partitionAt(round) ?? this.livePartition(round)?.groups;
  }

  override partitioned(a: number, b: number, round: number): boolean {
    if (super.partitioned(a, b, round)) return true;
    const p = this.livePartition(round);
    if (!p) return false;
    return p.groups.findIndex((g) => g.includes(a)) !== p.groups.findIndex((g) => g.includes(b));
  }

  override messageFate(from: number, to: number, round: number): 'deliver' | 'loss' | 'partition' {
    const planned = super.messageFate(from, to, round);
    if (planned === 'partition') return planned;
    const p = this.liveLoss(from, to, round);
    if (p === undefined) return planned;
    return Rng.from(this.seed, 'live-loss', round, from, to).bernoulli(p) ? 'loss' : 'deliver';
  }

  override stragglerFactor(node: number): number {
    const f = this.latest(node, 'straggler');
    return f ? f.factor : super.stragglerFactor(node);
  }

  override byzantine(node: number): FaultsConfig['byzantine'][number] | undefined {
    const f = this.latest(node, 'byzantine');
    if (!f) return super.byzantine(node);
    if (f.behaviour === 'honest') return undefined;
    return { node, behaviour: f.behaviour, scale: f.scale, sigma: f.sigma };
  }

  private livePartition(round: number) {
    let found: Extract<LiveFault, { kind: 'partition' }> | undefined;
    for (const f of this.live) {
      if (f.kind === 'partition' && round >= f.from && round < f.to) found = f;
    }
    return found;
  }

  /** The latest live loss covering the link at `round`, if any. */
  private liveLoss(from: number, to: number, round: number): number | undefined {
    let p: number | undefined;
    for (const f of this.live) {
      if (f.kind !== 'loss' || round < f.from) continue;
      if (!f.link || (f.link.from === from && f.link.to === to)) p = f.p;
    }
    return p;
  }

  private latest<K extends 'straggler' | 'byzantine'>(
    node: number,
    kind: K,
  ): Extract<LiveFault, { kind: K }> | undefined {
    // A node whose round is not known yet (just restarted) takes every fault added so far.
    const round = this.current.get(node) ?? Number.POSITIVE_INFINITY;
    let found: Extract<LiveFault, { kind: K }> | undefined;
    for (const f of this.live) {
      if (f.kind === kind && f.node === node && round >= f.from) {
        found = f as Extract<LiveFault, { kind: K }>;
      }
    }
    return found;
  }
}
