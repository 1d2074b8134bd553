/**
 * Lockstep for the simulator: a transport decorator that lets a node collect round k only once
 * every node taking part in round k (per the fault plan: joined, not left) has reached its own
 * collect of round k.
 *
 * Why: the simulated nodes share one thread and are coupled only through their exchanges, so a
 * group that hears nobody from the rest (a partition, a round with no active edge across a cut)
 * runs ahead. When the groups meet again, the fast side waits for frames of rounds the slow side
 * has not reached yet: it hits its deadline (seconds of idle wall time) or rejects frames as too
 * far in the future, and the run then depends on timing. In lockstep every expected frame is sent
 * before anyone waits for it, so in notify mode nobody ever waits for a deadline and the same seed
 * gives the same run. A real run has no barrier; there, deadlines are the mechanism.
 *
 *   const step = lockstep(cfg.nodes, plan);
 *   const t = step.wrap(faultyTransport(inner, ...));
 */
import type { FaultPlan } from '../faults/plan.js';
import type { Transport } from '../net/transport.js';

export interface Lockstep {
  wrap(t: Transport): Transport;
}

export function lockstep(nodes: number, plan: FaultPlan): Lockstep {
  const arrived = new Map<number, number>();
  const waiting = new Map<number, (() => void)[]>();
  const quorum = (k: number) => {
    let q = 0;
    for (let i = 0; i < nodes; i++) if (plan.present(i, k)) q++;
    return q;
  };

  function arrive(round: number, signal?: AbortSignal): Promise<void> {
    const n = (arrived.get(round) ?? 0) + 1;
    arrived.set(round, n);
    if (n >= quorum(round)) {
      for (const release of waiting.get(round) ?? []) release();
      waiting.delete(round);
      arrived.delete(round);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      // An aborted run must not hang on a node that will never arrive; the listener goes away
      // with the release so a long run does not pile listeners onto one signal.
      const onAbort = () => resolve();
      signal?.addEventListener('abort', onAbort, { once: true });
      const list = waiting.get(round) ?? [];
      list.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      waiting.set(round, list);
    });
  }

  return {
    wrap: (t) => ({
      ...t,
      start: () => t.start(),
      stop: () => t.stop(),
      send: (...a) => t.send(...a),
      publishControl: (m) => t.publishControl(m),
      async collect(round, expected, deadlineMs, signal, opts) {
        await arrive(round, signal);
        return t.collect(round, expected, deadlineMs, signal, opts);
      },
    }),
  };
}
