import '../../src/net/polyfill.js';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateKey } from '@libp2p/pnet';
import { ConfigErrors, ListenError } from '../../src/errors.js';
import {
  IDENTITY_FILE,
  loadOrCreateIdentity,
  parseRoster,
  type Roster,
} from '../../src/net/libp2p/host.js';
import { type Libp2pTransport, libp2pTransport } from '../../src/net/libp2p/transport.js';
import { countingMetrics } from '../../src/net/metrics.js';
import type { ControlMessage } from '../../src/net/transport.js';
import { runTransportContract } from './contract.js';
import { LAYOUT, RUN_ID, SIGNATURE, SIZE, until, weights } from './helpers.js';

const tmp = await mkdtemp(join(tmpdir(), 'flatmesh-net-'));
let dirs = 0;

async function startCluster(n: number, psk?: (i: number) => Uint8Array | undefined) {
  const metrics = Array.from({ length: n }, () => countingMetrics());
  const controls = Array.from({ length: n }, () => [] as ControlMessage[]);
  const transports: Libp2pTransport[] = [];
  for (let self = 0; self < n; self++) {
    const { privateKey } = await loadOrCreateIdentity(join(tmp, `node-${dirs++}`));
    const key = psk?.(self);
    transports.push(
      libp2pTransport({
        self,
        runId: RUN_ID,
        signature: SIGNATURE,
        size: SIZE,
        layout: LAYOUT,
        codec: 'f32',
        privateKey,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        sendTimeoutMs: 5_000,
        ...(key ? { psk: key } : {}),
      })({ metrics: metrics[self]!, events: { onControl: (m) => controls[self]!.push(m) } }),
    );
  }
  await Promise.all(transports.map((t) => t.start()));
  const roster: Roster = {
    runId: RUN_ID,
    nodes: transports.map((t, id) => ({ id, peerId: t.peerId, addrs: t.addresses() })),
  };
  await Promise.all(transports.map((t) => t.setRoster(roster)));
  return {
    transports,
    metrics,
    controls,
    roster,
    stop: async () => {
      await Promise.all(transports.map((t) => t.stop()));
    },
  };
}

runTransportContract('libp2p', (n) => startCluster(n));

describe('libp2p host', () => {
  it('persists its identity with mode 0600 and reloads the same peer id', async () => {
    const dir = join(tmp, 'identity');
    const a = await loadOrCreateIdentity(dir);
    const b = await loadOrCreateIdentity(dir);
    assert.equal(a.peerId, b.peerId);
    assert.equal((await stat(join(dir, IDENTITY_FILE))).mode & 0o777, 0o600);
    assert.ok((await readFile(join(dir, IDENTITY_FILE))).length > 32);
  });

  it('parses a roster and reports every problem with its path', async () => {
    const { peerId } = await loadOrCreateIdentity(join(tmp, 'roster'));
    const r = parseRoster(
      JSON.stringify({ runId: 'r', nodes: [{ id: 0, peerId, addrs: ['/ip4/127.0.0.1/tcp/1'] }] }),
    );
    assert.equal(r.nodes[0]!.peerId, peerId);
    assert.throws(
      () =>
        parseRoster({
          runId: '',
          nodes: [
            { id: 0, peerId: 'nope', addrs: ['not-an-addr'] },
            { id: 0, peerId, addrs: [] },
          ],
        }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigErrors);
        const paths = e.problems.map((p) => p.path);
        assert.deepEqual(paths, [
          'roster.runId',
          'roster.nodes[0].peerId',
          'roster.nodes[0].addrs[0]',
          'roster.nodes[1].id',
        ]);
        return true;
      },
    );
  });

  it('connects the roster at start and reports connected peers', async () => {
    const c = await startCluster(3);
    try {
      assert.deepEqual((await c.transports[0]!.connect()).sort(), [1, 2]);
      assert.deepEqual(c.transports[0]!.connectedPeers(), [1, 2]);
    } finally {
      await c.stop();
    }
  });

  it('says which node cannot listen on which port, and what to do, when the port is taken', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const { privateKey } = await loadOrCreateIdentity(join(tmp, `node-${dirs++}`));
    const t = libp2pTransport({
      self: 7,
      runId: RUN_ID,
      signature: SIGNATURE,
      size: SIZE,
      layout: LAYOUT,
      codec: 'f32',
      privateKey,
      listen: [`/ip4/127.0.0.1/tcp/${port}`],
    })();
    try {
      await assert.rejects(t.start(), (e: unknown) => {
        assert.ok(e instanceof ListenError);
        assert.equal(e.node, 7);
        assert.equal(e.port, port);
        assert.equal(e.reason, 'port-in-use');
        assert.match(e.message, new RegExp(`node 7 cannot listen on /ip4/127.0.0.1/tcp/${port}`));
        assert.match(e.message, /already in use.*Stop that process.*another port|free port/s);
        return true;
      });
    } finally {
      await t.stop();
      server.close();
    }
  });

  it('refuses a node with a different pre-shared key and admits one with the same', async () => {
    const k1 = new Uint8Array(95);
    const k2 = new Uint8Array(95);
    generateKey(k1);
    generateKey(k2);
    const c = await startCluster(3, (i) => (i === 2 ? k2 : k1));
    try {
      assert.equal((await c.transports[0]!.send(1, 1, weights(1))).status, 'delivered');
      const out = await c.transports[0]!.send(2, 1, weights(1));
      assert.equal(out.status, 'failed');
      assert.deepEqual(c.transports[0]!.connectedPeers(), [1]);
      const r = await c.transports[1]!.collect(1, [0], 10_000);
      assert.deepEqual(r.received[0]!.weights, weights(1));
    } finally {
      await c.stop();
    }
  });
});

describe('libp2p weights channels', () => {
  it('shares one encode per round across neighbours and re-encodes for another mass', async () => {
    const c = await startCluster(3);
    try {
      const w = weights(5);
      const [a, b] = await Promise.all([
        c.transports[0]!.send(1, 1, w, { mass: 0.5 }),
        c.transports[0]!.send(2, 1, w, { mass: 0.25 }),
      ]);
      assert.equal(a.status, 'delivered');
      assert.equal(b.status, 'delivered');
      assert.equal((await c.transports[0]!.send(1, 2, w, { mass: 0.5 })).status, 'delivered');
      const r1 = await c.transports[1]!.collect(1, [0], 10_000);
      const r2 = await c.transports[2]!.collect(1, [0], 10_000);
      const r1b = await c.transports[1]!.collect(2, [0], 10_000);
      assert.deepEqual(
        [r1.received[0]!.mass, r2.received[0]!.mass, r1b.received[0]!.mass],
        [0.5, 0.25, 0.5],
      );
      for (const r of [r1, r2, r1b]) assert.deepEqual(r.received[0]!.weights, weights(5));
    } finally {
      await c.stop();
    }
  });

  it('reopens the stream to a peer that restarted and delivers again', async () => {
    const dir0 = join(tmp, `node-${dirs++}`);
    const dir1 = join(tmp, `node-${dirs++}`);
    const make = async (self: number, dir: string, metrics = countingMetrics()) => {
      const { privateKey } = await loadOrCreateIdentity(dir);
      const t = libp2pTransport({
        self,
        runId: RUN_ID,
        signature: SIGNATURE,
        size: SIZE,
        layout: LAYOUT,
        codec: 'f16',
        privateKey,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        sendTimeoutMs: 3_000,
      })({ metrics });
      await t.start();
      return t;
    };
    const roster = (ts: Libp2pTransport[]): Roster => ({
      runId: RUN_ID,
      nodes: ts.map((t, id) => ({ id, peerId: t.peerId, addrs: t.addresses() })),
    });
    const t0 = await make(0, dir0);
    let t1 = await make(1, dir1);
    try {
      await Promise.all([t0.setRoster(roster([t0, t1])), t1.setRoster(roster([t0, t1]))]);
      for (const round of [1, 2, 3]) {
        assert.equal((await t0.send(1, round, weights(round))).status, 'delivered');
        const r = await t1.collect(round, [0], 10_000);
        assert.ok(r.received[0]!.weights.every((x, i) => Math.abs(x - weights(round)[i]!) < 1e-2));
      }
      await t1.stop();
      assert.equal((await t0.send(1, 4, weights(4))).status, 'failed');
      // The same identity comes back on a new port (as a node restarted from its checkpoint).
      const m1 = countingMetrics();
      t1 = await make(1, dir1, m1);
      await Promise.all([t0.setRoster(roster([t0, t1])), t1.setRoster(roster([t0, t1]))]);
      assert.equal((await t0.send(1, 5, weights(5))).status, 'delivered');
      const r = await t1.collect(5, [0], 10_000);
      assert.equal(r.ended, 'complete');
      assert.equal(m1.counts.received, 1);
      // The sender stops while its stream idles between frames: the receiver counts nothing.
      await t0.stop();
      await until(() => t1.connectedPeers().length === 0, 'connection to close');
      assert.deepEqual(m1.counts.rejected, {});
    } finally {
      await t0.stop();
      await t1.stop();
    }
  });
});

process.on('exit', () => {
  void rm(tmp, { recursive: true, force: true });
});
