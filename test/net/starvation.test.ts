/**
 * Weight frames under CPU starvation, with real processes: a peer paused (SIGSTOP) for longer than
 * the connection monitor's ping timeout gets its frame all the same (the torn connection is
 * redialled and the frame resent once it runs again); a pause longer than libp2p's own 5 s
 * default no longer tears the connection at all; and a launch beside processes that keep both
 * cores busy loses no send.
 */
import '../../src/net/polyfill.js';
import assert from 'node:assert/strict';
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseExperiment } from '../../src/config/index.js';
import type { ConnectionMonitorOptions, Roster } from '../../src/net/libp2p/host.js';
import { loadOrCreateIdentity } from '../../src/net/libp2p/host.js';
import { type Libp2pTransport, libp2pTransport } from '../../src/net/libp2p/transport.js';
import { countingMetrics } from '../../src/net/metrics.js';
import { launch } from '../../src/run/launcher.js';
import { START_TIMEOUT } from '../e2e/helpers.js';
import { LAYOUT, RUN_ID, SIGNATURE, SIZE, weights } from './helpers.js';
import type { PeerInit, PeerReply, PeerRequest } from './peer-process.js';

const PEER = new URL('./peer-process.ts', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'flatmesh-starvation-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const sum = (w: Float32Array) => w.reduce((a, b) => a + b, 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A peer process (node 1) and a transport here (node 0), rostered and connected. */
async function pair(monitor: ConnectionMonitorOptions) {
  const dir = mkdtempSync(join(tmp, 'pair-'));
  const init: PeerInit = { self: 1, dir: join(dir, '1'), monitor };
  const child: ChildProcess = fork(PEER, [JSON.stringify(init)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const next = <T extends PeerReply['type']>(type: T) =>
    new Promise<Extract<PeerReply, { type: T }>>((resolve, reject) => {
      const on = (m: PeerReply) => {
        if (m.type !== type) return;
        child.off('message', on);
        resolve(m as Extract<PeerReply, { type: T }>);
      };
      child.on('message', on);
      void exited.then(() => reject(new Error(`peer process exited before '${type}'`)));
    });
  const ask = (m: PeerRequest) => child.send(m);
  const listening = await next('listening');
  const metrics = countingMetrics();
  const { privateKey } = await loadOrCreateIdentity(join(dir, '0'));
  const here: Libp2pTransport = libp2pTransport({
    self: 0,
    runId: RUN_ID,
    signature: SIGNATURE,
    size: SIZE,
    layout: LAYOUT,
    codec: 'f32',
    privateKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    monitor,
  })({ metrics });
  await here.start();
  const roster: Roster = {
    runId: RUN_ID,
    nodes: [
      { id: 0, peerId: here.peerId, addrs: here.addresses() },
      { id: 1, peerId: listening.peerId, addrs: listening.addrs },
    ],
  };
  const ready = next('ready');
  ask({ type: 'roster', roster });
  await ready;
  await here.setRoster(roster);
  /** Send round `round` while the peer is paused for `pauseMs`; what the peer collected. */
  const sendWhilePaused = async (round: number, pauseMs: number) => {
    const collected = next('collected');
    ask({ type: 'collect', round, expected: [0], deadlineMs: 120_000 });
    await sleep(100); // the peer's collect is open before it stops
    child.kill('SIGSTOP');
    const outcome = here.send(1, round, weights(round));
    try {
      await sleep(pauseMs);
    } finally {
      child.kill('SIGCONT');
    }
    return { outcome: await outcome, collected: await collected };
  };
  return {
    here,
    metrics,
    sendWhilePaused,
    close: async () => {
      child.kill('SIGCONT');
      ask({ type: 'stop' });
      await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
      await here.stop();
    },
  };
}

describe('weights under CPU starvation', () => {
  it('a peer paused past the ping timeout: its connection is redialled and the frame delivered', async () => {
    // Both monitors ping every 0.3 s and give up after 1 s: a 4 s pause tears the connection.
    const p = await pair({ pingIntervalMs: 300, pingTimeoutMs: 1_000 });
    try {
      assert.equal((await p.here.send(1, 1, weights(1))).status, 'delivered');
      const { outcome, collected } = await p.sendWhilePaused(2, 4_000);
      assert.equal(outcome.status, 'delivered', JSON.stringify(outcome));
      assert.ok(p.metrics.counts.resent >= 1, 'the frame was sent again on a new connection');
      assert.deepEqual(collected.from, [0]);
      assert.ok(Math.abs(collected.sums[0]! - sum(weights(2))) < 1e-3);
      assert.equal(p.metrics.counts.sendFailed, 0);
    } finally {
      await p.close();
    }
  });

  it('a pause longer than libp2p 2.x default 5 s ping timeout no longer tears the connection', async () => {
    // The default timeout (60 s); pings every 0.3 s so that several go unanswered in the pause.
    const p = await pair({ pingIntervalMs: 300 });
    try {
      assert.equal((await p.here.send(1, 1, weights(1))).status, 'delivered');
      const { outcome, collected } = await p.sendWhilePaused(2, 7_000);
      assert.equal(outcome.status, 'delivered', JSON.stringify(outcome));
      assert.equal(p.metrics.counts.resent, 0, 'the same connection carried the frame');
      assert.deepEqual(collected.from, [0]);
      assert.ok(Math.abs(collected.sums[0]! - sum(weights(2))) < 1e-3);
    } finally {
      await p.close();
    }
  });

  it('a launch beside processes that keep both cores busy loses no send', async () => {
    // Busy loops bounded in time, in case this process dies before it kills them.
    const hogs = [0, 1].map(() =>
      spawn(
        process.execPath,
        ['-e', `const end = Date.now() + ${START_TIMEOUT + 300_000}; while (Date.now() < end) {}`],
        { stdio: 'ignore' },
      ),
    );
    try {
      const cfg = parseExperiment({
        nodes: 6,
        run: { rounds: 8, seed: 3 },
        topology: { graph: 'ring', sampler: 'vanilla' },
        model: { hidden: [32] },
        train: { localSteps: 5 },
        // Long enough that no neighbour is given up on for being slow: a failure here is the
        // network's, not the deadline's.
        gossip: { deadlineMs: 120_000 },
        eval: { every: 8 },
        backend: 'wasm',
      });
      // Six processes starting beside two busy loops on a shared two-core machine can take a while.
      const s = await launch(cfg, {
        out: join(tmp, 'launch'),
        progress: false,
        startTimeoutMs: START_TIMEOUT,
      });
      assert.equal(s.completed, true);
      assert.equal(s.messages.sent, 6 * 2 * 8);
      assert.equal(s.messages.failed, 0);
      assert.equal(s.messages.delivered, s.messages.sent);
    } finally {
      for (const h of hogs) h.kill('SIGKILL');
    }
  });
});
