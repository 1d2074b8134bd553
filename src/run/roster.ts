/**
 * Preparing a run across machines: `flatmesh roster` creates each node's directory with its
 * persistent libp2p key and writes the roster (node index -> peer id -> address) that every
 * `flatmesh node` process reads. Copy node i's directory and the roster to the machine that runs
 * node i, then start it there.
 *
 *   flatmesh roster --nodes 4 --hosts 10.0.0.1,10.0.0.2 --base-port 4100 --run-id exp1 --out cluster/
 *   # on the machine of node 2:
 *   flatmesh node --config exp.yaml --id 2 --dir cluster/nodes/2 --roster cluster/roster.json --run-id exp1
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { loadOrCreateIdentity, type Roster } from '../net/libp2p/host.js';

export interface RosterOptions {
  nodes: number;
  /** Hosts (IPv4 addresses or DNS names), assigned to nodes round-robin. Default 127.0.0.1. */
  hosts?: readonly string[];
  /** Node i listens on basePort + i. */
  basePort: number;
  runId: string;
  out: string;
}

export async function createRoster(opts: RosterOptions): Promise<Roster> {
  const hosts = opts.hosts && opts.hosts.length > 0 ? opts.hosts : ['127.0.0.1'];
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1)
    throw new ConfigError('nodes', 'must be an integer >= 1', opts.nodes);
  if (!Number.isInteger(opts.basePort) || opts.basePort < 1 || opts.basePort + opts.nodes > 65535) {
    throw new ConfigError(
      'base-port',
      `must be an integer with base-port + nodes <= 65535`,
      opts.basePort,
    );
  }
  const nodes = [];
  for (let id = 0; id < opts.nodes; id++) {
    const dir = join(opts.out, 'nodes', String(id));
    mkdirSync(dir, { recursive: true });
    const { peerId } = await loadOrCreateIdentity(dir);
    const host = hosts[id % hosts.length]!;
    const proto = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? 'ip4' : host.includes(':') ? 'ip6' : 'dns4';
    nodes.push({
      id,
      peerId,
      addrs: [`/${proto}/${host}/tcp/${opts.basePort + id}/p2p/${peerId}`],
    });
  }
  const roster: Roster = { runId: opts.runId, nodes };
  writeFileSync(join(opts.out, 'roster.json'), `${JSON.stringify(roster, null, 2)}\n`);
  return roster;
}
