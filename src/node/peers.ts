/**
 * Where the other nodes are: the round each one works on, as this node last learned it from a
 * heartbeat (a heartbeat of round k means its sender is in round k + 1) or from a frame (a frame of
 * round k means its sender is in round k), and which ones are done. The round engine asks it
 * whether it fell behind (catch-up), and whether a neighbour it waits for already passed the
 * round or fell behind (then waiting for it is pointless).
 *
 *   const peers = new PeerRounds(self);
 *   peers.onControl(msg);                   // heartbeats and leaves
 *   peers.current();                        // the run's round as far as this node knows
 */
import type { ControlMessage } from '../net/transport.js';

export class PeerRounds {
  private readonly at = new Map<number, number>();
  /** When each peer's current position was last reported (clock time). */
  private readonly reportedAt = new Map<number, number>();
  private readonly done = new Set<number>();

  constructor(
    private readonly self: number,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  onControl(msg: ControlMessage): void {
    if (msg.node === this.self) return;
    if (msg.type === 'heartbeat') this.heard(msg.node, msg.round + 1);
    else if (msg.type === 'leave') {
      this.done.add(msg.node);
      this.heard(msg.node, msg.round + 1);
    } else if (msg.type === 'join') {
      // A restarted node starts over from what it announces.
      this.done.delete(msg.node);
      this.at.set(msg.node, msg.round);
      this.reportedAt.set(msg.node, this.clock());
    }
  }

  /** `node` is working on `round` (positions only move forward). */
  heard(node: number, round: number): void {
    if (node === this.self) return;
    const had = this.at.get(node) ?? -1;
    if (round < had) return;
    this.at.set(node, round);
    this.reportedAt.set(node, this.clock());
  }

  /** The round `node` works on, if known. */
  position(node: number): number | undefined {
    return this.at.get(node);
  }

  /** Whether `node` announced that it left (finished, aborted or planned leave). */
  isDone(node: number): boolean {
    return this.done.has(node);
  }

  /**
   * The round the run is in as far as this node knows: the second-highest position among the
   * peers it has heard from (those in `among`, if given), or the only one there is.
   *
   * Why the second-highest: a node that catches up must land in the round its neighbours are
   * working on now, not one behind it. Honest nodes in lockstep are at most a round apart, so
   * the leaders' round is the current one, and a node that joins there sends frames its
   * neighbours still collect; a median lags by one round half the time, and a node landing there
   * sends frames its neighbours already closed, then waits alone and falls behind again. The
   * highest report itself could be one runaway or lying (byzantine) peer claiming a huge round:
   * the second-highest is moved only if two peers agree on it, so one liar cannot drag anyone
   * forward (with two reports it is the lower one). Positions only ever come from the sender's own
   * frames and heartbeats, so a stale report is low, never high.
   */
  current(among?: (node: number) => boolean): number | undefined {
    const xs = this.positions(among);
    return xs[Math.min(1, xs.length - 1)];
  }

  /**
   * The median position (the lower one of an even count) of the peers in `among`: asynchronous
   * gossip's run round. There nodes legitimately spread over the staleness bound and the leaders
   * may be that far ahead; a node landing at the median is within the bound of most of them.
   */
  median(among?: (node: number) => boolean): number | undefined {
    const xs = this.positions(among);
    return xs[Math.floor(xs.length / 2)];
  }

  /** Positions of the peers in `among`, highest first. */
  private positions(among?: (node: number) => boolean): number[] {
    return [...this.at]
      .filter(([j]) => !among || among(j))
      .map(([, r]) => r)
      .sort((a, b) => b - a);
  }

  /**
   * Whether a neighbour cannot usefully be waited for in round `k`: it is done, it already passed
   * round k (so its frame for k has arrived or never will), or it is more than `lag` rounds
   * behind (its frame would come only after it caught up) by a report received at `freshSince` or
   * later. Behind by an older report is no evidence: a neighbour whose heartbeats are slow to
   * arrive, or that had no frame to send for a while, only looks behind.
   */
  settled(node: number, k: number, lag: number, freshSince?: number): boolean {
    if (this.done.has(node)) return true;
    const p = this.at.get(node);
    if (p === undefined) return false;
    if (p > k) return true;
    const fresh = freshSince === undefined || (this.reportedAt.get(node) ?? -1) >= freshSince;
    return p < k - lag && fresh;
  }
}
