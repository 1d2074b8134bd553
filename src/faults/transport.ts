/**
 * Message faults as a transport decorator, so they work the same on libp2p and in memory: loss
 * (Bernoulli or Gilbert-Elliott), partitions, delay and jitter, and an outgoing bandwidth cap.
 * Every decision comes from the shared `FaultPlan`, so in `notify` mode the receiver drops a lost
 * message from its expectations at once instead of waiting for its deadline; in `silent` mode it
 * waits, like on a real network.
 *
 *   const t = faultyTransport(libp2p, { plan, mode: 'silent', onFault })
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CollectOptions, CollectResult, SendOutcome, Transport } from '../net/transport.js';
import type { FaultPlan } from './plan.js';

export type InjectedFault = 'loss' | 'partition' | 'delay' | 'bandwidth';

export interface FaultyTransportInit {
  plan: FaultPlan;
  mode: 'notify' | 'silent';
  /** Called for every injected fault (the node's metrics count them). */
  onFault?: (kind: InjectedFault, peer: number, round: number) => void;
}

export function faultyTransport(inner: Transport, init: FaultyTransportInit): Transport {
  const { plan, mode, onFault } = init;
  const self = inner.self;
  const mbps = plan.faults.bandwidthMbps;
  // The outgoing link is busy until this time: sends queue behind each other under a bandwidth cap.
  let linkFreeAt = 0;

  async function send(
    to: number,
    round: number,
    weights: Float32Array,
    opts?: { mass?: number; signal?: AbortSignal },
  ): Promise<SendOutcome> {
    const fate = plan.messageFate(self, to, round);
    if (fate !== 'deliver') {
      onFault?.(fate, to, round);
      return { status: 'dropped', bytes: 0, reason: fate };
    }
    let wait = plan.delayMs(self, to, round);
    if (wait > 0) onFault?.('delay', to, round);
    if (mbps > 0) {
      const now = Date.now();
      const txMs = (weights.length * 4 * 8) / (mbps * 1000);
      linkFreeAt = Math.max(linkFreeAt, now) + txMs;
      wait += linkFreeAt - now;
      onFault?.('bandwidth', to, round);
    }
    if (wait > 0) {
      try {
        await sleep(wait, undefined, opts?.signal ? { signal: opts.signal } : undefined);
      } catch {
        return { status: 'failed', bytes: 0, reason: 'aborted' };
      }
    }
    return inner.send(to, round, weights, opts);
  }

  async function collect(
    round: number,
    expected: readonly number[],
    deadlineMs: number,
    signal?: AbortSignal,
    opts?: CollectOptions,
  ): Promise<CollectResult> {
    if (mode === 'silent') return inner.collect(round, expected, deadlineMs, signal, opts);
    const lost = expected.filter((j) => plan.messageFate(j, self, round) !== 'deliver');
    if (opts?.since !== undefined) {
      // Freshest mode: a neighbour whose frame of this round is lost may still have an older one
      // to give, so it stays expected; it is just not waited for.
      const r = await inner.collect(round, expected, deadlineMs, signal, {
        ...opts,
        waitFor: (opts.waitFor ?? expected).filter((j) => !lost.includes(j)),
      });
      const gone = r.missing.filter((j) => lost.includes(j));
      return {
        ...r,
        missing: r.missing.filter((j) => !lost.includes(j)),
        lost: [...r.lost, ...gone],
      };
    }
    const waitFor = expected.filter((j) => !lost.includes(j));
    const r = await inner.collect(round, waitFor, deadlineMs, signal, opts);
    return { ...r, lost: [...r.lost, ...lost] };
  }

  return {
    self,
    start: () => inner.start(),
    stop: () => inner.stop(),
    send,
    collect,
    publishControl: (msg) => inner.publishControl(msg),
    // Received vectors go back to the transport that decoded them.
    ...(inner.recycle && { recycle: (weights: Float32Array) => inner.recycle?.(weights) ?? false }),
  };
}
