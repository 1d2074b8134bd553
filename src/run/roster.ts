/**
 * Preparing a run across machines: `flatmesh roster` creates each node's directory with its
 * persistent libp2p key, a fresh run id, and (by default when the nodes sit on more than one host)
 * a fresh pre-shared key, and writes the roster (run id, node index -> peer id -> address, the
 * key's fingerprint) that every `flatmesh node` process reads. Copy node i's directory, the roster
 * and the key to the machine that runs node i, then start it there.
 *
 *   flatmesh roster --nodes 4 --hosts 10.0.0.1,10.0.0.2 --base-port 4100 --out cluster/
 *   # exp.yaml names the key:  network: { psk: cluster/swarm.key }
 *   # on the machine of node 2 (the run id comes from the roster):
 *   flatmesh node --config exp.yaml --id 2 --dir cluster/nodes/2 --roster cluster/roster.json
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { loadOrCreateIdentity, type Roster } from '../net/libp2p/host.js';
import { PSK_FILE, writePsk } from '../net/libp2p/psk.js';

export { PSK_FILE };

export interface RosterOptions {
  nodes: number;
  /** Hosts (IPv4 addresses or DNS names), assigned to nodes round-robin. Default 127.0.0.1. */
  hosts?: readonly string[];
  /** Node i listens on basePort + i. */
  basePort: number;
  /** Default: a fresh one (`roster-<UTC time>-<random>`), so two runs never share a topic. */
  runId?: string;
  /**
   * Write a fresh pre-shared key to `<out>/swarm.key` and name its fingerprint in the roster.
   * Default: when the nodes sit on more than one host, or on one that is not a loopback address.
   */
  psk?: boolean;
  out: string;
}

const RUN_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Write the roster (and the key of a private run: `<out>/swarm.key`, see PSK_FILE). */
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
  const runId = opts.runId ?? freshRunId();
  if (!RUN_ID.test(runId)) {
    throw new ConfigError('run-id', 'must be 1-64 characters of A-Z a-z 0-9 . _ -', runId);
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
  const pskFile = (opts.psk ?? !hosts.every(isLoopback)) ? join(opts.out, PSK_FILE) : undefined;
  const psk = pskFile ? await writePsk(pskFile) : undefined;
  const roster: Roster = {
    runId,
    nodes,
    ...(psk && { pskFingerprint: psk.fingerprint }),
  };
  writeFileSync(join(opts.out, 'roster.json'), `${JSON.stringify(roster, null, 2)}\n`);
  return roster;
}

/** `roster-20261203-094512-3fa9c1`: the second it was made and 24 random bits. */
export function freshRunId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `roster-${t}-${randomBytes(3).toString('hex')}`;
}

function isLoopback(host: string): boolean {
  return /^127\./.test(host) || host === '::1' || host === 'localhost';
}
