/**
 * The fault plan: every injected fault as a pure function of the run seed and the experiment's
 * `faults` section, so that every node (and the launcher, and a replay) computes the same
 * decisions without talking to anyone. Loss of the message from i to j in round k is known to both
 * ends: that is what lets `notify` mode tell the receiver at once.
 *
 *   const plan = new FaultPlan(cfg.faults, cfg.run.seed, cfg.nodes);
 *   plan.messageFate(0, 3, 12);   // 'deliver' | 'loss' | 'partition'
 *   plan.delayMs(0, 3, 12);       // latency to add to that message
 */
import { Rng } from '../compute/rng.js';
import type { FaultsConfig } from '../config/schema.js';

export type MessageFate = 'deliver' | 'loss' | 'partition';

export class FaultPlan {
  private readonly linkP = new Map<string, number>();
  /** Gilbert-Elliott chain states per directed link, by round (computed forward, cached). */
  private readonly geStates = new Map<string, boolean[]>();

  constructor(
    readonly faults: FaultsConfig,
    readonly seed: number,
    readonly nodes: number,
    /**
     * The simulator emulates crashes: a crashed node is absent for its downtime and everyone knows
     * it. In real runs crashes are real SIGKILLs that the others only notice through deadlines.
     */
    readonly emulateCrashes = false,
  ) {
    for (const l of faults.loss.links) this.linkP.set(`${l.from}>${l.to}`, l.p);
  }

  /** Whether the message from `from` to `to` for `round` gets through. */
  messageFate(from: number, to: number, round: number): MessageFate {
    if (this.partitioned(from, to, round)) return 'partition';
    return this.lost(from, to, round) ? 'loss' : 'deliver';
  }

  /** The partition in force at `round`, if any. */
  partitionAt(round: number): readonly (readonly number[])[] | undefined {
    return this.faults.partitions.find((p) => round >= p.from && round < p.to)?.groups;
  }

  partitioned(a: number, b: number, round: number): boolean {
    const groups = this.partitionAt(round);
    if (!groups) return false;
    const ga = groups.findIndex((g) => g.includes(a));
    const gb = groups.findIndex((g) => g.includes(b));
    // Nodes listed in no group form a group of their own.
    return ga !== gb;
  }

  private lost(from: number, to: number, round: number): boolean {
    const loss = this.faults.loss;
    const rng = Rng.from(this.seed, 'loss', round, from, to);
    if (loss.model === 'gilbert-elliott' && !this.linkP.has(`${from}>${to}`)) {
      const bad = this.geBad(from, to, round);
      return rng.bernoulli(bad ? loss.lossBad : loss.lossGood);
    }
    return rng.bernoulli(this.linkP.get(`${from}>${to}`) ?? loss.p);
  }

  /** Gilbert-Elliott: is the link in its bad state at `round`? Starts good at round 0. */
  private geBad(from: number, to: number, round: number): boolean {
    const key = `${from}>${to}`;
    let states = this.geStates.get(key);
    if (!states) {
      states = [false];
      this.geStates.set(key, states);
    }
    const { goodToBad, badToGood } = this.faults.loss;
    for (let r = states.length; r <= round; r++) {
      const prev = states[r - 1]!;
      const u = Rng.from(this.seed, 'ge', r, from, to).float();
      states.push(prev ? u >= badToGood : u < goodToBad);
    }
    return states[round]!;
  }

  /** Extra latency for a message (ms): the fixed delay plus uniform jitter in [-jitter, +jitter]. */
  delayMs(from: number, to: number, round: number): number {
    const { ms, jitterMs } = this.faults.delay;
    if (ms === 0 && jitterMs === 0) return 0;
    const j =
      jitterMs === 0
        ? 0
        : (2 * Rng.from(this.seed, 'delay', round, from, to).float() - 1) * jitterMs;
    return Math.max(0, ms + j);
  }

  /** Training slow-down factor of a node (1 = none). */
  stragglerFactor(node: number): number {
    return this.faults.stragglers.find((s) => s.node === node)?.factor ?? 1;
  }

  byzantine(node: number): FaultsConfig['byzantine'][number] | undefined {
    return this.faults.byzantine.find((b) => b.node === node);
  }

  /** Round at which the node first takes part (late join), 0 if from the start. */
  joinRound(node: number): number {
    return this.faults.joins.find((j) => j.node === node)?.round ?? 0;
  }

  /** Round at which the node leaves for good, or undefined. */
  leaveRound(node: number): number | undefined {
    return this.faults.leaves.find((l) => l.node === node)?.round;
  }

  /**
   * Is `node` down at `round` because of a planned crash? Down from the round after its crash round
   * until `restartAfter` rounds later (for good without a restart). Only meaningful when crashes are
   * emulated; real runs kill real processes.
   */
  crashedIn(node: number, round: number): boolean {
    return this.faults.crashes.some(
      (c) =>
        c.node === node &&
        round > c.round &&
        (c.restartAfter === undefined || round <= c.round + c.restartAfter),
    );
  }

  /** Rounds `node` stays frozen from the start of `round` (a planned stall), 0 if none. */
  stallAt(node: number, round: number): number {
    return this.faults.stalls.find((s) => s.node === node && s.round === round)?.rounds ?? 0;
  }

  /** Is `node` frozen in `round` by a planned stall? */
  stalledIn(node: number, round: number): boolean {
    return this.faults.stalls.some(
      (s) => s.node === node && round >= s.round && round < s.round + s.rounds,
    );
  }

  /**
   * Is `node` taking part in `round` (joined, not left, and, when crashes are emulated, not down)?
   * Without emulation crashes are not known here: they are real.
   */
  present(node: number, round: number): boolean {
    const leave = this.leaveRound(node);
    if (this.emulateCrashes && (this.crashedIn(node, round) || this.stalledIn(node, round))) {
      return false;
    }
    return round >= this.joinRound(node) && (leave === undefined || round < leave);
  }
}
