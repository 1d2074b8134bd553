/**
 * The transport contract: one suite, run against every Transport implementation (memory.test.ts,
 * libp2p.test.ts). A cluster factory gives n started transports with indices 0..n-1 that can all
 * reach each other, their counting metrics and the control messages each received.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { countingMetrics } from '../../src/net/metrics.js';
import type { ControlMessage, Transport } from '../../src/net/transport.js';
import { until, weights } from './helpers.js';

export interface Cluster {
  readonly transports: readonly Transport[];
  readonly metrics: readonly ReturnType<typeof countingMetrics>[];
  readonly controls: readonly ControlMessage[][];
  stop(): Promise<void>;
}

export type MakeCluster = (n: number) => Promise<Cluster>;

export function runTransportContract(name: string, makeCluster: MakeCluster): void {
  describe(`transport contract: ${name}`, () => {
    let cluster: Cluster | undefined;
    const make = async (n: number) => {
      cluster = await makeCluster(n);
      return cluster;
    };
    afterEach(async () => {
      await cluster?.stop();
      cluster = undefined;
    });

    it('delivers weights intact and collect completes when all expected arrived', async () => {
      const {
        transports: [a, b, c],
      } = await make(3);
      const wa = weights(1);
      const wc = weights(3);
      const sent = await Promise.all([a!.send(1, 1, wa, { mass: 0.5 }), c!.send(1, 1, wc)]);
      for (const s of sent) assert.equal(s.status, 'delivered');
      const r = await b!.collect(1, [2, 0], 10_000);
      assert.equal(r.ended, 'complete');
      assert.deepEqual(r.missing, []);
      assert.deepEqual(
        r.received.map((m) => m.from),
        [0, 2],
        'received is ordered by sender',
      );
      assert.deepEqual(r.received[0]!.weights, wa);
      assert.equal(r.received[0]!.mass, 0.5);
      assert.deepEqual(r.received[1]!.weights, wc);
      assert.equal(r.received[1]!.mass, 1);
      assert.notEqual(r.received[0]!.weights, wa, 'the receiver owns a fresh copy');
    });

    it('reports a frame written (once, before the send settles) for every delivered send', async () => {
      const {
        transports: [a, b],
      } = await make(2);
      const events: string[] = [];
      for (const round of [1, 2]) {
        const out = await a!.send(1, round, weights(round), {
          onWritten: () => events.push(`written ${round}`),
        });
        events.push(`${out.status} ${round}`);
      }
      assert.deepEqual(events, ['written 1', 'delivered 1', 'written 2', 'delivered 2']);
      for (const round of [1, 2]) {
        assert.deepEqual(
          (await b!.collect(round, [0], 10_000)).received[0]!.weights,
          weights(round),
        );
      }
    });

    it('decodes a later frame into the memory of a recycled vector, taken back once', async () => {
      const {
        transports: [a, b],
      } = await make(2);
      assert.ok(b!.recycle, 'the transport takes received vectors back');
      assert.equal((await a!.send(1, 1, weights(1))).status, 'delivered');
      const first = (await b!.collect(1, [0], 10_000)).received[0]!.weights;
      assert.deepEqual(first, weights(1));
      assert.equal(b!.recycle(first), true);
      assert.equal(b!.recycle(first), false, 'already handed back');
      assert.equal(b!.recycle(weights(1)), false, 'not handed out by this transport');
      assert.equal((await a!.send(1, 2, weights(2))).status, 'delivered');
      const second = (await b!.collect(2, [0], 10_000)).received[0]!.weights;
      assert.deepEqual(second, weights(2));
      assert.equal(second.buffer, first.buffer, 'round 2 arrived in the recycled memory');
      // Kept, not recycled: never overwritten by a later frame.
      assert.equal((await a!.send(1, 3, weights(3))).status, 'delivered');
      const third = (await b!.collect(3, [0], 10_000)).received[0]!.weights;
      assert.notEqual(third.buffer, second.buffer);
      assert.deepEqual(second, weights(2));
    });

    it('returns at the deadline with the peers that never sent as missing', async () => {
      const {
        transports: [a, b],
        metrics,
      } = await make(3);
      await a!.send(1, 1, weights(1));
      const r = await b!.collect(1, [0, 2], 150);
      assert.equal(r.ended, 'deadline');
      assert.deepEqual(
        r.received.map((m) => m.from),
        [0],
      );
      assert.deepEqual(r.missing, [2]);
      assert.equal(metrics[1]!.counts.received, 1);
    });

    it('stops waiting once the senders in waitFor arrived, after the grace period', async () => {
      const {
        transports: [a, b],
      } = await make(3);
      await a!.send(1, 1, weights(1));
      // Node 2 is believed dead: the collect ends after the grace period, not at the deadline.
      const r = await b!.collect(1, [0, 2], 60_000, undefined, { waitFor: [0], graceMs: 20 });
      assert.equal(r.ended, 'complete');
      assert.deepEqual(
        r.received.map((m) => m.from),
        [0],
      );
      assert.deepEqual(r.missing, [2]);
    });

    it('buffers frames for future rounds until they are collected', async () => {
      const {
        transports: [a, b],
      } = await make(2);
      assert.equal((await a!.send(1, 3, weights(3))).status, 'delivered');
      assert.equal((await a!.send(1, 2, weights(2))).status, 'delivered');
      assert.equal((await a!.send(1, 1, weights(1))).status, 'delivered');
      for (const round of [1, 2, 3]) {
        const r = await b!.collect(round, [0], 10_000);
        assert.equal(r.ended, 'complete', `round ${round}`);
        assert.deepEqual(r.received[0]!.weights, weights(round));
        assert.equal(r.received[0]!.round, round);
      }
    });

    it('counts a frame for a round already collected as late and drops it', async () => {
      const {
        transports: [a, b],
        metrics,
      } = await make(2);
      const r1 = await b!.collect(1, [0], 50);
      assert.deepEqual(r1.missing, [0]);
      await a!.send(1, 1, weights(1));
      await until(() => metrics[1]!.counts.late === 1, 'late count');
      await a!.send(1, 2, weights(2));
      const r2 = await b!.collect(2, [0], 10_000);
      assert.deepEqual(
        r2.received.map((m) => m.round),
        [2],
      );
      assert.equal(metrics[1]!.counts.late, 1);
    });

    it('rejects frames from senders that are not expected neighbours this round', async () => {
      const {
        transports: [a, b, c],
        metrics,
      } = await make(3);
      await a!.send(1, 1, weights(1)); // buffered before collect: rejected when the round opens
      const pending = b!.collect(1, [2], 10_000);
      await a!.send(1, 1, weights(11)); // arrives during the collect (a duplicate as well, but
      // not-neighbour is checked first)
      await c!.send(1, 1, weights(3));
      const r = await pending;
      assert.deepEqual(
        r.received.map((m) => m.from),
        [2],
      );
      await until(() => metrics[1]!.counts.rejected['not-neighbour'] === 2, 'not-neighbour');
    });

    it('rejects a second frame from the same sender for the same round', async () => {
      const {
        transports: [a, b],
        metrics,
      } = await make(2);
      await a!.send(1, 1, weights(1));
      await a!.send(1, 1, weights(99));
      await until(() => metrics[1]!.counts.rejected.duplicate === 1, 'duplicate');
      const r = await b!.collect(1, [0], 10_000);
      assert.deepEqual(r.received[0]!.weights, weights(1), 'the first frame wins');
    });

    it('honours the abort signal of a pending collect', async () => {
      const {
        transports: [, b],
      } = await make(2);
      const ac = new AbortController();
      const pending = b!.collect(1, [0], 60_000, ac.signal);
      ac.abort();
      const r = await pending;
      assert.equal(r.ended, 'aborted');
      assert.deepEqual(r.missing, [0]);
      const pre = new AbortController();
      pre.abort();
      assert.equal((await b!.collect(2, [0], 60_000, pre.signal)).ended, 'aborted');
    });

    it('stop() resolves a pending collect and later sends fail without throwing', async () => {
      const {
        transports: [a, b],
      } = await make(2);
      const pending = b!.collect(1, [0], 60_000);
      await b!.stop();
      const r = await pending;
      assert.equal(r.ended, 'stopped');
      assert.deepEqual(r.missing, [0]);
      const toStopped = await a!.send(1, 1, weights(1));
      assert.equal(toStopped.status, 'failed');
      await a!.stop();
      const fromStopped = await a!.send(1, 2, weights(1));
      assert.equal(fromStopped.status, 'failed');
      assert.equal((await a!.collect(1, [1], 60_000)).ended, 'stopped');
    });

    it('sends fail (never throw) when the caller aborts the send', async () => {
      const {
        transports: [a],
      } = await make(2);
      const ac = new AbortController();
      ac.abort();
      const out = await a!.send(1, 1, weights(1), { signal: ac.signal });
      assert.equal(out.status, 'failed');
    });

    it('delivers control messages to the other nodes', async () => {
      const {
        transports: [a, b, c],
        controls,
      } = await make(3);
      // Connections (and on libp2p the topic subscriptions) form on the first exchange.
      await a!.send(1, 1, weights(1));
      await a!.send(2, 1, weights(1));
      const hb: ControlMessage = {
        type: 'heartbeat',
        node: 0,
        round: 1,
        status: 'ok',
        accuracy: 0.5,
      };
      await until(() => {
        if (controls[1]!.length > 0 && controls[2]!.length > 0) return true;
        void a!.publishControl(hb);
        return false;
      }, 'control message');
      assert.deepEqual(controls[1]![0], hb);
      assert.deepEqual(controls[2]![0], hb);
      // Distinct messages each arrive exactly once (libp2p: relayed copies are filtered as
      // duplicates, and the duplicate filter never drops a message it has not seen).
      const later = [2, 3, 4].map((round) => ({ ...hb, round }));
      for (const m of later) await a!.publishControl(m);
      const rounds = (i: number) => controls[i]!.map((m) => m.round).filter((r) => r > 1);
      await until(() => rounds(1).length >= 3 && rounds(2).length >= 3, 'later control messages');
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(rounds(1), [2, 3, 4]);
      assert.deepEqual(rounds(2), [2, 3, 4]);
      void b;
      void c;
    });
  });
}
