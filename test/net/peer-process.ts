/**
 * A libp2p transport in a process of its own, driven over IPC by a test that needs a real peer to
 * pause (SIGSTOP) or kill. Started with `fork(this file, [JSON init], { execArgv: ['--import', 'tsx'] })`:
 *
 *   -> { type: 'listening', peerId, addrs }        once its host listens
 *   <- { type: 'roster', roster }                  -> { type: 'ready' }
 *   <- { type: 'collect', round, expected, deadlineMs }
 *   -> { type: 'collected', round, from: [...], sums: [...] }   (sum of each received vector)
 *   <- { type: 'stop' }                            stops the transport and exits 0
 */
import '../../src/net/polyfill.js';
import type { ConnectionMonitorOptions, Roster } from '../../src/net/libp2p/host.js';
import { loadOrCreateIdentity } from '../../src/net/libp2p/host.js';
import { libp2pTransport } from '../../src/net/libp2p/transport.js';
import { LAYOUT, RUN_ID, SIGNATURE, SIZE } from './helpers.js';

export interface PeerInit {
  readonly self: number;
  readonly dir: string;
  readonly monitor?: ConnectionMonitorOptions;
}

export type PeerRequest =
  | { type: 'roster'; roster: Roster }
  | { type: 'collect'; round: number; expected: number[]; deadlineMs: number }
  | { type: 'stop' };

export type PeerReply =
  | { type: 'listening'; peerId: string; addrs: string[] }
  | { type: 'ready' }
  | { type: 'collected'; round: number; from: number[]; sums: number[] };

const init = JSON.parse(process.argv[2] ?? '{}') as PeerInit;
const reply = (m: PeerReply) => process.send?.(m);
process.once('disconnect', () => process.exit(0));

const { privateKey } = await loadOrCreateIdentity(init.dir);
const t = libp2pTransport({
  self: init.self,
  runId: RUN_ID,
  signature: SIGNATURE,
  size: SIZE,
  layout: LAYOUT,
  codec: 'f32',
  privateKey,
  listen: ['/ip4/127.0.0.1/tcp/0'],
  ...(init.monitor && { monitor: init.monitor }),
})();
await t.start();
process.on('message', (m: PeerRequest) => {
  void (async () => {
    switch (m.type) {
      case 'roster':
        await t.setRoster(m.roster);
        return reply({ type: 'ready' });
      case 'collect': {
        const r = await t.collect(m.round, m.expected, m.deadlineMs);
        return reply({
          type: 'collected',
          round: m.round,
          from: r.received.map((x) => x.from),
          sums: r.received.map((x) => x.weights.reduce((a, b) => a + b, 0)),
        });
      }
      case 'stop':
        await t.stop();
        process.exit(0);
    }
  })();
});
reply({ type: 'listening', peerId: t.peerId, addrs: t.addresses() });
