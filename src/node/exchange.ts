/**
 * The exchange phase of a round: send this node's weights to each active neighbour and collect
 * theirs under the round deadline. Sends and the collect run concurrently; the phase returns when
 * the collect is done and every send has settled (so push-sum knows which shares to reclaim).
 * Nobody waits forever: the collect ends at the deadline, and a send never throws. Nor does a
 * send hold the round past the deadline: a neighbour that cannot answer (its process is paused)
 * would otherwise keep every neighbour of its in the round until the transport's own send timeout.
 * Such a send settles later, on its own, and is counted then; `outcomes` lists the sends settled
 * within the round (push-sum reclaims only shares known undelivered).
 */
import type { CollectOptions, CollectResult, SendOutcome, Transport } from '../net/transport.js';
import type { NodeCounters } from './metrics.js';

/** How long a round still waits for neighbours believed dead once the live ones have arrived. */
export const SUSPECT_GRACE_MS = 100;

export interface ExchangeResult {
  collected: CollectResult;
  /** The sends settled by the end of the phase (by neighbour). */
  outcomes: { to: number; outcome: SendOutcome }[];
  /** Time from the start of the phase until every expected frame and every receipt was in. */
  ms: number;
  /** Of that, the time after this node's own frames had left: waiting for neighbours. */
  waitMs: number;
  /** How long the collect itself took (what an adaptive deadline learns from). */
  collectMs: number;
}

export async function exchange(
  transport: Transport,
  counters: NodeCounters,
  round: number,
  neighbours: readonly number[],
  payload: Float32Array,
  opts: {
    mass: number;
    deadlineMs: number;
    /** Neighbours to wait for (the ones believed alive); the others get a short grace period. */
    waitFor?: readonly number[];
    /** That grace period (ms; default SUSPECT_GRACE_MS). */
    graceMs?: number;
    /** Freshest mode of the collect (catch-up, async): take neighbours' frames from this round on. */
    since?: number;
    /** See CollectOptions.onWaiting. */
    onWaiting?: CollectOptions['onWaiting'];
    /**
     * Real runs: stop waiting for receipts at the deadline. Off in the simulator, where every send
     * settles and must be counted in its own round whatever the machine's load.
     */
    boundSends?: boolean;
    signal: AbortSignal;
    log?: (msg: string) => void;
  },
): Promise<ExchangeResult> {
  const t0 = performance.now();
  // "Sends done" is when the last frame has left this node (not when its receipt came back: a
  // neighbour still training cannot acknowledge yet, and that is waiting, not sending).
  let sendsDone = t0;
  let pending = neighbours.length;
  const leftNode = () => {
    if (--pending === 0) sendsDone = performance.now();
  };
  const sends = neighbours.map(async (to) => {
    let written = false;
    const outcome = await transport.send(to, round, payload, {
      mass: opts.mass,
      signal: opts.signal,
      onWritten: () => {
        written = true;
        leftNode();
      },
    });
    if (!written) leftNode();
    return { to, outcome };
  });
  const collected = await transport.collect(round, neighbours, opts.deadlineMs, opts.signal, {
    ...(opts.waitFor && { waitFor: opts.waitFor, graceMs: opts.graceMs ?? SUSPECT_GRACE_MS }),
    ...(opts.since !== undefined && { since: opts.since }),
    ...(opts.onWaiting && { onWaiting: opts.onWaiting }),
  });
  const collectMs = performance.now() - t0;
  // Receipts of neighbours still busy training may come after their frames: waiting for them is
  // waiting for a neighbour too, and part of this phase, up to the round's deadline. A send still
  // unanswered then goes on without the round (it is counted when it settles, in whatever round
  // that is): aborting it would tear down a stream that is most likely fine, only slow.
  const settled: { to: number; outcome: SendOutcome }[] = [];
  const count = ({ to, outcome }: { to: number; outcome: SendOutcome }) => {
    counters.count('sent', to);
    if (outcome.status === 'delivered') counters.count('delivered', to);
    else if (outcome.status === 'dropped') counters.count('dropped', to);
    else {
      counters.count('failed', to);
      opts.log?.(`round ${round}: send to ${to} failed: ${outcome.reason}`);
    }
  };
  const tracked = sends.map((p) =>
    p.then((r) => {
      settled.push(r);
      return r;
    }),
  );
  if (opts.boundSends) {
    const left = Math.min(Math.max(0, opts.deadlineMs - collectMs), 0x7fffffff);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(tracked),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, left);
      }),
    ]);
    clearTimeout(timer);
  } else await Promise.all(tracked);
  const tDone = performance.now();
  const outcomes = [...settled].sort((a, b) => a.to - b.to);
  for (const r of outcomes) count(r);
  const answered = new Set(outcomes.map((r) => r.to));
  tracked.forEach((p, i) => {
    if (!answered.has(neighbours[i]!)) void p.then(count);
  });
  for (const m of collected.received) counters.count('received', m.from);
  for (const j of collected.missing) counters.count('missing', j);
  for (const j of collected.lost) counters.count('lost', j);
  return {
    collected,
    outcomes,
    ms: tDone - t0,
    waitMs: Math.max(0, tDone - sendsDone),
    collectMs,
  };
}
