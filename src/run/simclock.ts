/**
 * Asynchronous gossip in the simulator, in simulated time: a transport decorator that runs the
 * nodes' exchanges one at a time, in the order of a simulated clock, so the run replays exactly
 * whatever the machine's timing (lockstep.ts does the same job for lockstep rounds).
 *
 * The model: a round of local training takes one unit of time (`factor` units for a straggler);
 * sending is instantaneous. Node i's exchange of round k happens at its clock time; it takes the
 * freshest frame each neighbour has sent it by then, and waits (its clock moving on to the
 * sender's time) only for a neighbour it needs a model from (the runtime's `waitFor`: one with
 * nothing fresh enough) and that has not yet passed round k. Rounds a node is absent for (down,
 * stalled, before its late join) cost it their time; rounds it skips to catch up cost nothing.
 *
 * How it stays exact: one node holds the token at a time, from the moment its exchange is granted
 * until it asks for its next one (everything in between, mixing, evaluation, training, is
 * synchronous or settles in microtasks), or until it blocks or leaves. The token goes next to the
 * waiting node with the smallest (time, index), from a setImmediate queued after the frames and
 * heartbeats the previous holder sent, so those have all been delivered. A collect runs on a
 * signal that is already aborted: it returns what the inbox holds at that instant, with no timer.
 *
 *   const clock = simClock(cfg.nodes, plan);
 *   const t = clock.wrap(faultyTransport(inner, ...));
 *   ...
 *   clock.elapsed(); // simulated time of the whole run
 */
import type { FaultPlan } from '../faults/plan.js';
import type { CollectResult, Transport } from '../net/transport.js';

export interface SimClock {
  wrap(t: Transport): Transport;
  /** Simulated time at which the last node finished (units of one round of local training). */
  elapsed(): number;
  /** Simulated time the nodes spent waiting for a neighbour's model, summed over nodes. */
  waited(): number;
}

type State = 'starting' | 'running' | 'ready' | 'blocked' | 'done';

interface NodeClock {
  time: number;
  /** Round of the exchange last granted (-1 before the first). */
  round: number;
  state: State;
  /** The grant of the exchange it waits for, or the end of its block. */
  wake?: () => void;
  /** Blocked: the neighbours it still needs a frame of round `since` or later from. */
  needs?: { round: number; since: number; from: Set<number> };
  /** The pending step (exchange) and its round. */
  step?: { round: number; granted: Promise<void> };
  /** Its sends not settled yet: a node hands the token on only once they are delivered. */
  sends: Set<Promise<unknown>>;
}

export function simClock(nodes: number, plan: FaultPlan): SimClock {
  const clocks: NodeClock[] = Array.from({ length: nodes }, () => ({
    time: 0,
    round: -1,
    state: 'starting',
    sends: new Set(),
  }));
  /** Newest round each node sent each other node (delivered): `from>to`. */
  const sent = new Map<string, number>();
  let waited = 0;
  let holder: number | undefined;
  let scheduled = false;

  const at = (i: number) => clocks[i]!;
  const before = (a: number, b: number) =>
    at(a).time < at(b).time || (at(a).time === at(b).time && a < b);

  /** Whether `i` may stop waiting for `j` in round `k`: j is done or already passed round k. */
  const settled = (j: number, k: number) => at(j).state === 'done' || at(j).round >= k;
  const fresh = (j: number, i: number, since: number) => (sent.get(`${j}>${i}`) ?? -1) >= since;

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    // After everything the last holder queued (frame deliveries, heartbeats): FIFO.
    setImmediate(() => {
      scheduled = false;
      grant();
    });
  }

  function grant(): void {
    if (holder !== undefined) return;
    if (clocks.some((c) => c.state === 'starting' || c.state === 'running')) return;
    let next: number | undefined;
    for (let i = 0; i < nodes; i++) {
      if (at(i).state === 'ready' && (next === undefined || before(i, next))) next = i;
    }
    if (next === undefined) {
      // Everyone left is blocked on someone: the earliest gives up waiting, as at a deadline.
      for (let i = 0; i < nodes; i++) {
        if (at(i).state === 'blocked' && (next === undefined || before(i, next))) next = i;
      }
      if (next === undefined) return;
    }
    const c = at(next);
    holder = next;
    c.state = 'running';
    const wake = c.wake;
    c.wake = undefined;
    wake?.();
  }

  /** Re-examine blocked nodes after `by` sent a frame or moved on. */
  function recheck(by: number): void {
    for (let i = 0; i < nodes; i++) {
      const c = at(i);
      const n = c.needs;
      if (c.state !== 'blocked' || !n) continue;
      for (const j of [...n.from])
        if (fresh(j, i, n.since) || settled(j, n.round)) n.from.delete(j);
      if (n.from.size > 0) continue;
      c.needs = undefined;
      waited += Math.max(0, at(by).time - c.time);
      c.time = Math.max(c.time, at(by).time);
      c.state = 'ready';
    }
  }

  function release(i: number, state: State): void {
    at(i).state = state;
    if (holder === i) holder = undefined;
    schedule();
  }

  /** Node i reaches its exchange of round k (once per round, whichever call comes first). */
  function step(i: number, k: number): Promise<void> {
    const c = at(i);
    if (c.step?.round === k) return c.step.granted;
    // One round of training since its last exchange, plus the time of the rounds it was absent
    // for (down, stalled, not joined yet: time passed for it as for everyone). A node that
    // catches up does not train the rounds it skips, so those cost nothing.
    let absent = 0;
    for (let r = c.round + 1; r < k; r++) if (!plan.present(i, r)) absent++;
    c.time += plan.stragglerFactor(i) * (1 + absent);
    const granted = new Promise<void>((resolve) => {
      c.wake = resolve;
    }).then(() => {
      c.round = k;
      recheck(i);
    });
    c.step = { round: k, granted };
    release(i, 'ready');
    return granted;
  }

  function wrap(t: Transport): Transport {
    const i = t.self;
    return {
      ...t,
      start: () => t.start(),
      stop: () => t.stop(),
      async send(to, round, weights, opts) {
        await step(i, round);
        const pending = t.send(to, round, weights, opts);
        at(i).sends.add(pending);
        const r = await pending.finally(() => at(i).sends.delete(pending));
        if (r.status === 'delivered') {
          sent.set(`${i}>${to}`, Math.max(round, sent.get(`${i}>${to}`) ?? -1));
          recheck(i);
        }
        return r;
      },
      async collect(round, expected, deadlineMs, signal, opts = {}): Promise<CollectResult> {
        await step(i, round);
        const c = at(i);
        const since = opts.since ?? round;
        const from = new Set(
          (opts.waitFor ?? expected).filter((j) => !fresh(j, i, since) && !settled(j, round)),
        );
        let gaveUp = false;
        if (from.size > 0 && !signal?.aborted) {
          // Its own frames must be delivered (delays included) before anyone else moves.
          await Promise.all(c.sends);
          c.needs = { round, since, from };
          const unblocked = new Promise<void>((resolve) => {
            c.wake = resolve;
          });
          release(i, 'blocked');
          await unblocked;
          gaveUp = c.needs !== undefined;
          c.needs = undefined;
        }
        const { onWaiting: _timed, ...untimed } = opts;
        const r = await t.collect(round, expected, deadlineMs, AbortSignal.abort(), untimed);
        return { ...r, ended: signal?.aborted ? 'aborted' : gaveUp ? 'deadline' : 'complete' };
      },
      async publishControl(msg) {
        await t.publishControl(msg);
        // The runtime announces its end: its token, and any wait on it, are over.
        if (msg.type === 'leave' && msg.node === i) {
          release(i, 'done');
          recheck(i);
        }
      },
    };
  }

  return {
    wrap,
    elapsed: () => clocks.reduce((m, c) => Math.max(m, c.time), 0),
    waited: () => waited,
  };
}
