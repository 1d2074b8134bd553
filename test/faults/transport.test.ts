import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import { corruptWeights, flipLabels } from '../../src/faults/byzantine.js';
import { FaultPlan } from '../../src/faults/plan.js';
import { faultyTransport, type InjectedFault } from '../../src/faults/transport.js';
import { memoryNetwork, memoryTransport } from '../../src/net/memory.js';
import type { Transport } from '../../src/net/transport.js';

const SIZE = 256;
const vec = (v: number) => new Float32Array(SIZE).fill(v);

function net(faults: unknown, mode: 'notify' | 'silent', n = 3) {
  const plan = new FaultPlan(parseExperiment({ nodes: 8, faults }).faults, 11, n);
  const network = memoryNetwork();
  const injected: { kind: InjectedFault; peer: number; round: number; self: number }[] = [];
  const ts: Transport[] = [];
  for (let self = 0; self < n; self++) {
    const inner = memoryTransport({
      self,
      network,
      runId: 'faults-test',
      signature: '0123456789abcdef',
      size: SIZE,
      layout: [],
      codec: 'f32',
    });
    ts.push(
      faultyTransport(inner, {
        plan,
        mode,
        onFault: (kind, peer, round) => injected.push({ kind, peer, round, self }),
      }),
    );
  }
  return { plan, ts, injected };
}

describe('faultyTransport', () => {
  it('drops exactly the messages the plan loses; notify tells the receiver at once', async () => {
    const { plan, ts, injected } = net({ loss: { p: 0.5 } }, 'notify');
    await Promise.all(ts.map((t) => t.start()));
    try {
      for (let k = 0; k < 12; k++) {
        const sends = await Promise.all([ts[1]!.send(0, k, vec(1)), ts[2]!.send(0, k, vec(2))]);
        // A long deadline: in notify mode a lost message is never waited for.
        const r = await ts[0]!.collect(k, [1, 2], 60_000);
        for (const [idx, from] of [1, 2].entries()) {
          const lost = plan.messageFate(from, 0, k) === 'loss';
          assert.equal(sends[idx]!.status, lost ? 'dropped' : 'delivered');
          assert.equal(r.lost.includes(from), lost);
          assert.equal(
            r.received.some((m) => m.from === from),
            !lost,
          );
        }
        assert.equal(r.ended, 'complete');
      }
      const lossFaults = injected.filter((f) => f.kind === 'loss').length;
      let planned = 0;
      for (let k = 0; k < 12; k++)
        for (const from of [1, 2]) if (plan.messageFate(from, 0, k) === 'loss') planned++;
      assert.equal(lossFaults, planned);
      assert.ok(planned > 0 && planned < 24);
    } finally {
      await Promise.all(ts.map((t) => t.stop()));
    }
  });

  it('silent loss leaves the receiver to its deadline (the message is missing, not lost)', async () => {
    const { ts } = net({ loss: { p: 0, links: [{ from: 1, to: 0, p: 1 }] } }, 'silent');
    await Promise.all(ts.map((t) => t.start()));
    try {
      const s = await ts[1]!.send(0, 0, vec(1));
      assert.equal(s.status, 'dropped');
      const r = await ts[0]!.collect(0, [1], 30);
      assert.deepEqual(r.missing, [1]);
      assert.deepEqual(r.lost, []);
      assert.equal(r.ended, 'deadline');
    } finally {
      await Promise.all(ts.map((t) => t.stop()));
    }
  });

  it('drops cross-partition messages with reason partition', async () => {
    const { ts, injected } = net(
      {
        partitions: [
          {
            groups: [
              [0, 1],
              [2, 3],
            ],
            from: 0,
            to: 1,
          },
        ],
      },
      'notify',
    );
    await Promise.all(ts.map((t) => t.start()));
    try {
      const cut = await ts[2]!.send(0, 0, vec(2));
      assert.deepEqual(cut, { status: 'dropped', bytes: 0, reason: 'partition' });
      const ok = await ts[1]!.send(0, 0, vec(1));
      assert.equal(ok.status, 'delivered');
      const r = await ts[0]!.collect(0, [1, 2], 60_000);
      assert.deepEqual(r.lost, [2]);
      assert.deepEqual(
        r.received.map((m) => m.from),
        [1],
      );
      assert.deepEqual(
        injected.map((f) => f.kind),
        ['partition'],
      );
      // Healed at round 1.
      assert.equal((await ts[2]!.send(0, 1, vec(2))).status, 'delivered');
    } finally {
      await Promise.all(ts.map((t) => t.stop()));
    }
  });

  it('delays and bandwidth-caps messages, records both, and still delivers them intact', async () => {
    const { ts, injected } = net({ delay: { ms: 5, jitterMs: 2 }, bandwidthMbps: 50 }, 'notify');
    await Promise.all(ts.map((t) => t.start()));
    try {
      const outs = await Promise.all([ts[0]!.send(1, 0, vec(3)), ts[0]!.send(2, 0, vec(3))]);
      assert.ok(outs.every((o) => o.status === 'delivered'));
      const r = await ts[1]!.collect(0, [0], 60_000);
      assert.deepEqual(Array.from(r.received[0]!.weights.slice(0, 3)), [3, 3, 3]);
      const kinds = injected.map((f) => f.kind).sort();
      assert.deepEqual(kinds, ['bandwidth', 'bandwidth', 'delay', 'delay']);
    } finally {
      await Promise.all(ts.map((t) => t.stop()));
    }
  });

  it('a delayed send aborted by the signal fails instead of hanging', async () => {
    const { ts } = net({ delay: { ms: 60_000 } }, 'notify');
    await Promise.all(ts.map((t) => t.start()));
    try {
      const ac = new AbortController();
      const p = ts[0]!.send(1, 0, vec(1), { signal: ac.signal });
      ac.abort();
      assert.deepEqual(await p, { status: 'failed', bytes: 0, reason: 'aborted' });
    } finally {
      await Promise.all(ts.map((t) => t.stop()));
    }
  });
});

describe('byzantine behaviours', () => {
  const x = Float32Array.from([1, -2, 0.5, 0]);
  const spec = (b: unknown) => parseExperiment({ faults: { byzantine: [b] } }).faults.byzantine[0]!;

  it('sign flip sends -scale * x', () => {
    assert.deepEqual(
      Array.from(corruptWeights(x, spec({ node: 0, behaviour: 'sign-flip', scale: 2 }), 1, 0, 0)),
      [-2, 4, -1, -0],
    );
  });

  it('scale sends scale * x', () => {
    assert.deepEqual(
      Array.from(corruptWeights(x, spec({ node: 0, behaviour: 'scale', scale: 10 }), 1, 0, 0)),
      [10, -20, 5, 0],
    );
  });

  it('noise adds seeded Gaussian noise of the given sigma, fresh each round', () => {
    const big = new Float32Array(20_000);
    const s = spec({ node: 3, behaviour: 'noise', sigma: 0.5 });
    const a = corruptWeights(big, s, 1, 3, 7);
    const b = corruptWeights(big, s, 1, 3, 7);
    const c = corruptWeights(big, s, 1, 3, 8);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    const sd = Math.sqrt(a.reduce((acc, v) => acc + v * v, 0) / a.length);
    assert.ok(Math.abs(sd - 0.5) < 0.02, `sd ${sd}`);
  });

  it('label flip leaves the message alone and maps y to classes - 1 - y', () => {
    const out = corruptWeights(x, spec({ node: 0, behaviour: 'label-flip' }), 1, 0, 0);
    assert.deepEqual(out, x);
    assert.notEqual(out, x, 'a copy, not the node’s own vector');
    assert.deepEqual(Array.from(flipLabels(Int32Array.from([0, 3, 9]), 10)), [9, 6, 0]);
  });
});
