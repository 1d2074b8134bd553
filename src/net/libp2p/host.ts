/**
 * The libp2p host of one node: its persisted identity, the roster (node index -> peer id ->
 * addresses), the connection gater that admits only rostered peers, and the libp2p instance
 * (TCP, Noise, Yamux, identify, ping, gossipsub, optional pre-shared key).
 *
 *   const { privateKey, peerId } = await loadOrCreateIdentity(nodeDir);   // <nodeDir>/peer.key
 *   const roster = parseRoster(JSON.parse(text));                         // ConfigError with paths
 *   const gate = rosterGate();  gate.set(roster);
 *   const node = await createHost({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], gate });
 */
import '../polyfill.js';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { type GossipSub, gossipsub } from '@chainsafe/libp2p-gossipsub';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { identify } from '@libp2p/identify';
import type { ConnectionGater, Libp2p, PeerId, PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { toString as bytesToString } from 'uint8arrays/to-string';
import { ConfigError, ConfigErrors } from '../../errors.js';
import { fastNoise } from './noise-streams.js';
import { cacheEd25519Verification } from './verify-cache.js';

export const IDENTITY_FILE = 'peer.key';

/** Load the node's ed25519 key from `<nodeDir>/peer.key`, or create and persist one (mode 0600). */
export async function loadOrCreateIdentity(
  nodeDir: string,
): Promise<{ privateKey: PrivateKey; peerId: string }> {
  const file = join(nodeDir, IDENTITY_FILE);
  let privateKey: PrivateKey;
  try {
    const bytes = await readFile(file);
    try {
      privateKey = asKey(privateKeyFromProtobuf(bytes));
    } catch {
      throw new ConfigError(
        file,
        'is not a libp2p private key; delete it to create a new identity',
      );
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    privateKey = asKey(await generateKeyPair('Ed25519'));
    await mkdir(nodeDir, { recursive: true });
    // Atomic: write a temp file (0600 from creation, never world-readable), fsync, rename.
    const tmp = `${file}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(privateKeyToProtobuf(privateKey as unknown as CryptoKey));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString() };
}

export interface RosterNode {
  readonly id: number;
  readonly peerId: string;
  readonly addrs: readonly string[];
}

export interface Roster {
  readonly runId: string;
  readonly nodes: readonly RosterNode[];
  /**
   * Fingerprint of the run's pre-shared key (psk.ts), when the run is private: a node must hold
   * that key (network.psk) to join it.
   */
  readonly pskFingerprint?: string;
}

/** Check a roster document; every problem is reported with its path (ConfigErrors). */
export function parseRoster(json: unknown): Roster {
  const problems: ConfigError[] = [];
  const bad = (path: string, what: string, got?: unknown) =>
    problems.push(new ConfigError(path, what, got));
  let doc = json;
  if (typeof doc === 'string') {
    try {
      doc = JSON.parse(doc);
    } catch {
      throw new ConfigError('roster', 'is not valid JSON');
    }
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ConfigError('roster', 'must be an object with runId and nodes');
  }
  const o = doc as Record<string, unknown>;
  if (typeof o.runId !== 'string' || o.runId.length === 0) {
    bad('roster.runId', 'must be a non-empty string', o.runId);
  }
  if (!Array.isArray(o.nodes) || o.nodes.length === 0) {
    bad('roster.nodes', 'must be a non-empty array', o.nodes);
  }
  const nodes: RosterNode[] = [];
  const ids = new Set<number>();
  const peers = new Set<string>();
  for (const [i, n] of (Array.isArray(o.nodes) ? o.nodes : []).entries()) {
    const at = `roster.nodes[${i}]`;
    if (typeof n !== 'object' || n === null) {
      bad(at, 'must be an object with id, peerId and addrs', n);
      continue;
    }
    const r = n as Record<string, unknown>;
    const id = r.id;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      bad(`${at}.id`, 'must be a non-negative integer', id);
    } else if (ids.has(id)) bad(`${at}.id`, 'is listed twice', id);
    else ids.add(id);
    if (typeof r.peerId !== 'string')
      bad(`${at}.peerId`, 'must be a libp2p peer id string', r.peerId);
    else {
      try {
        peerIdFromString(r.peerId);
        if (peers.has(r.peerId)) bad(`${at}.peerId`, 'is listed twice', r.peerId);
        peers.add(r.peerId);
      } catch {
        bad(`${at}.peerId`, 'is not a valid libp2p peer id', r.peerId);
      }
    }
    const addrs: string[] = [];
    if (!Array.isArray(r.addrs)) bad(`${at}.addrs`, 'must be an array of multiaddrs', r.addrs);
    else {
      for (const [j, a] of r.addrs.entries()) {
        try {
          if (typeof a !== 'string') throw new TypeError();
          multiaddr(a);
          addrs.push(a);
        } catch {
          bad(`${at}.addrs[${j}]`, 'is not a multiaddr', a);
        }
      }
    }
    if (typeof id === 'number' && typeof r.peerId === 'string') {
      nodes.push({ id, peerId: r.peerId, addrs });
    }
  }
  const fp = o.pskFingerprint;
  if (fp !== undefined && (typeof fp !== 'string' || !/^[0-9a-f]{16}$/.test(fp))) {
    bad('roster.pskFingerprint', 'must be 16 lowercase hex digits', fp);
  }
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) throw new ConfigErrors(problems);
  return {
    runId: o.runId as string,
    nodes,
    ...(typeof fp === 'string' && { pskFingerprint: fp }),
  };
}

/**
 * Admission by roster. Until a roster is set no peer is admitted at all: inbound connections are
 * refused before their handshake and nothing is dialled, so a node waiting for its roster opens no
 * protocol to anyone (an outsider once reached the weights protocol and the control topic of a
 * node that had none). Afterwards only rostered peer ids, in both directions.
 */
export interface RosterGate {
  set(roster: Roster): void;
  /** Node index of a peer id, or undefined when it is not in the roster. */
  indexOf(peerId: string): number | undefined;
  peerIdOf(index: number): string | undefined;
  roster(): Roster | undefined;
  /** `onDenied` gets the refused peer id, or undefined for a connection refused before a roster. */
  gater(onDenied: (peerId: string | undefined) => void): ConnectionGater;
}

export function rosterGate(): RosterGate {
  let current: Roster | undefined;
  let byPeer = new Map<string, number>();
  let byIndex = new Map<number, string>();
  const denied = (peer: PeerId): boolean => current === undefined || !byPeer.has(peer.toString());
  return {
    set(roster) {
      byPeer = new Map(roster.nodes.map((n) => [n.peerId, n.id]));
      byIndex = new Map(roster.nodes.map((n) => [n.id, n.peerId]));
      current = roster;
    },
    indexOf: (peerId) => byPeer.get(peerId),
    peerIdOf: (index) => byIndex.get(index),
    roster: () => current,
    gater: (onDenied) => ({
      // No roster: refuse the raw connection before any handshake, and dial nobody.
      denyInboundConnection: () => {
        if (current === undefined) onDenied(undefined);
        return current === undefined;
      },
      denyDialMultiaddr: () => current === undefined,
      denyDialPeer: (peer) => denied(peer),
      denyInboundEncryptedConnection: (peer) => {
        const deny = denied(peer);
        if (deny) onDenied(peer.toString());
        return deny;
      },
      denyOutboundEncryptedConnection: (peer) => denied(peer),
    }),
  };
}

export interface HostInit {
  readonly privateKey: PrivateKey;
  readonly listen: readonly string[];
  readonly gater: ConnectionGater;
  /** Swarm key in the libp2p pnet file format (see psk.ts). */
  readonly psk?: Uint8Array;
  /** How libp2p's connection monitor judges a connection alive (see ConnectionMonitorOptions). */
  readonly monitor?: ConnectionMonitorOptions;
}

/**
 * libp2p's connection monitor pings every connection each `pingIntervalMs` and ABORTS the whole
 * connection when a ping is not answered within its timeout. libp2p 2.x's timeout is meant to
 * adapt, but its monitor never reports a ping's duration back (AdaptiveTimeout.cleanUp is never
 * called), so it stays at its 5 s floor. On a loaded machine (16 training processes on 2 cores, a
 * megabyte frame ahead of the ping on the same connection) pings take longer than that: in a
 * 16-node Fashion-MNIST launch beside a CPU hog the monitor aborted 76 connections and 54 of 288
 * weight sends failed with them ('stream closed without a receipt'). flatmesh keeps the monitor (a peer whose host vanished must still be noticed) with a timeout
 * that a busy or briefly paused process meets.
 */
export interface ConnectionMonitorOptions {
  /** How often each connection is pinged (default 10 s). */
  readonly pingIntervalMs?: number;
  /** A ping unanswered this long aborts the connection (default 60 s). */
  readonly pingTimeoutMs?: number;
}

export const DEFAULT_PING_INTERVAL_MS = 10_000;
export const DEFAULT_PING_TIMEOUT_MS = 60_000;

/** How many of the monitor's pings on one connection can be pending at once. */
function pingOverlap(m: ConnectionMonitorOptions | undefined): number {
  const interval = m?.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
  const timeout = m?.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
  return Math.ceil(timeout / interval) + 1;
}

export type Host = Libp2p<{ pubsub: GossipSub }>;

/** The libp2p instance (not started). */
export async function createHost(init: HostInit): Promise<Host> {
  // Gossipsub's signature checks: each peer's key imported once, each copy checked once.
  cacheEd25519Verification();
  return createLibp2p({
    privateKey: init.privateKey,
    start: false,
    addresses: { listen: [...init.listen] },
    transports: [tcp()],
    // Same cipher and wire bytes as noise's default; fewer copies, allocations and socket writes
    // per byte (noise-crypto.ts, noise-streams.ts).
    connectionEncrypters: [fastNoise()],
    streamMuxers: [
      // Weight frames are megabytes: a larger initial window saves the ramp-up round trips
      // yamux would otherwise spend growing it from 256 KiB. 1 MiB data frames instead of the
      // default 64 KiB: js-yamux answers every data frame it consumes with a window update (each
      // one Noise-encrypted and written on its own), so 64 KiB frames cost a 6.4 MB model ~100
      // extra messages the other way; measured -25..-50% receiver CPU per frame (bench net).
      yamux({
        initialStreamWindowSize: 4 * 1024 * 1024,
        maxStreamWindowSize: 16 * 1024 * 1024,
        maxMessageSize: 1024 * 1024,
      }),
    ],
    connectionGater: init.gater,
    connectionMonitor: {
      pingInterval: init.monitor?.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
      // A fixed timeout (min = max): the adaptive one never adapts (see ConnectionMonitorOptions).
      pingTimeout: {
        minTimeout: init.monitor?.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS,
        maxTimeout: init.monitor?.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS,
      },
      abortConnectionOnPingFailure: true,
    },
    ...(init.psk ? { connectionProtector: preSharedKey({ psk: init.psk }) } : {}),
    services: {
      identify: identify(),
      // The monitor pings each connection every interval even while an earlier ping waits for its
      // (long) timeout; ping's default limits (1 outbound, 2 inbound streams per connection) then
      // refuse the overlapping ping, and the monitor takes the refusal for a dead peer and aborts
      // the connection (seen under load: TooManyOutboundProtocolStreamsError, then the peer's
      // 'stream reset'). Allow every ping that can be pending at once.
      ping: ping({
        maxOutboundStreams: pingOverlap(init.monitor),
        maxInboundStreams: pingOverlap(init.monitor) + 1,
        // The answering side gives up on a ping after its own timeout (10 s by default) and resets
        // the stream, which the asking side's monitor takes for a dead peer: the same bound here.
        timeout: init.monitor?.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS,
      }),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        // Control messages are <= 1 KiB; anything far bigger is refused before parsing.
        maxInboundDataLength: 64 * 1024,
        fastMsgIdFn: signedMessageKey,
      }),
    },
  }) as unknown as Promise<Host>;
}

/**
 * Gossipsub's duplicate filter before signature checks. Gossipsub verifies a message's signature
 * before it looks the message up among those it has seen, unless this key finds it first; every
 * heartbeat reaches a node once per mesh peer, so each node verified each heartbeat ~D times
 * (ed25519 verify was the largest cost of a node's control plane in a 16-node profile). The key
 * is the default message id's own fields (origin + sequence number); gossipsub records it only
 * once a message passed validation, so a forged copy cannot shadow the genuine one.
 */
function signedMessageKey(msg: { from?: Uint8Array; seqno?: Uint8Array }): string {
  if (!msg.from || !msg.seqno) return '';
  return `${bytesToString(msg.from, 'base64')}/${bytesToString(msg.seqno, 'base16')}`;
}

// @libp2p/crypto 5.1.23 types its keys against @libp2p/interface 3 while libp2p 2.x uses
// interface 2; the key objects are the same at run time, only the two type packages differ.
type CryptoKey = Parameters<typeof privateKeyToProtobuf>[0];
function asKey(k: CryptoKey): PrivateKey {
  return k as unknown as PrivateKey;
}
