/**
 * The libp2p transport: weights over `/flatmesh/weights/1.0.0`, heartbeats over gossipsub
 * `flatmesh/<runId>/control`, admission by roster. The receive side is the shared Inbox, as in the
 * in-memory transport.
 *
 * Weights protocol: a stream carries one or more length-prefixed frames (unsigned varint prefix);
 * the receiver answers each, in order, with a one-byte receipt once it validated the frame. This
 * node keeps one long-lived stream per peer (channel.ts), so a send is a write and a receipt, not
 * a stream open + protocol selection + close; a peer that writes one frame per stream and closes
 * (the protocol's first form) is served by the same handler. A round's weights are encoded once
 * and the frame is shared by every neighbour of that round.
 *
 *   const { privateKey } = await loadOrCreateIdentity(nodeDir);
 *   const t = libp2pTransport({ self: 0, runId, signature, size, layout, codec: 'f32', privateKey,
 *                               listen: ['/ip4/127.0.0.1/tcp/0'] })({ metrics, log });
 *   await t.start();  t.addresses();   // -> the launcher, which builds the roster
 *   t.setRoster(roster);  await t.connect();
 *   await t.send(1, round, weights);  await t.collect(round, [1, 2], 5000, signal);
 *
 * Every network wait has a deadline (AbortSignal.timeout combined with the stop signal and the
 * caller's signal; an incoming frame has one from its first byte to its last); a failed stream is
 * aborted; send() returns 'failed' instead of
 * throwing on network faults; a bad frame is counted by reason and never reaches the model.
 */
import '../polyfill.js';
import type { PeerId, PrivateKey, StreamHandler } from '@libp2p/interface';
import { TopicValidatorResult } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { ConfigError, ListenError, TransportError, WireError } from '../../errors.js';
import { controlTopic, decodeControl, encodeControl } from '../control.js';
import { Inbox } from '../inbox.js';
import type {
  Codec,
  CollectOptions,
  CollectResult,
  ControlMessage,
  SendOutcome,
  Transport,
  TransportEvents,
  TransportMetrics,
} from '../transport.js';
import { encodeFrameParts, maxFrameSize } from '../wire.js';
import { OutboundChannel } from './channel.js';
import {
  type ConnectionMonitorOptions,
  createHost,
  type Host,
  type Roster,
  rosterGate,
} from './host.js';
import { fingerprintOf } from './psk.js';
import {
  checkLimit,
  MAX_CONSECUTIVE_REJECTS,
  MAX_UNREAD_RECEIPTS,
  PeerStreams,
  RECEIPT_DUPLICATE,
  RECEIPT_OK,
  RECEIPT_REJECTED,
  type ReceiveLimits,
  serveWeightsStream,
} from './receiver.js';

export const WEIGHTS_PROTOCOL = '/flatmesh/weights/1.0.0';

export interface Libp2pTransportInit {
  readonly self: number;
  readonly runId: string;
  /** Model signature (16 hex characters). */
  readonly signature: string;
  /** Element count of the flat parameter vector. */
  readonly size: number;
  /** Element count of each tensor (int8 scales are per tensor); [] means one tensor. */
  readonly layout: readonly number[];
  readonly codec: Codec;
  readonly privateKey: PrivateKey;
  /** Listen multiaddrs, e.g. ['/ip4/127.0.0.1/tcp/0']. */
  readonly listen: readonly string[];
  /** The roster, if known at creation; otherwise setRoster() later. */
  readonly roster?: Roster;
  /**
   * Pre-shared swarm key (libp2p pnet format, see psk.ts): only nodes with the same key can
   * connect. A roster that names a key fingerprint is refused without it.
   */
  readonly psk?: Uint8Array;
  /** libp2p's connection monitor (default: ping every 10 s, abort after 60 s unanswered). */
  readonly monitor?: ConnectionMonitorOptions;
  /** Largest frame accepted and sent (default: the largest any codec makes for this model). */
  readonly maxFrameBytes?: number;
  /**
   * Deadline for one send (dial + stream + frame + receipt, and every redial and resend after a
   * torn connection). Default 30 s; the caller's signal may end it sooner (the round's deadline).
   */
  readonly sendTimeoutMs?: number;
  /** Deadline for reading one incoming frame (first byte to last). Default 30 s. */
  readonly receiveTimeoutMs?: number;
  /** Rounds ahead buffered by the inbox (default 4). */
  readonly window?: number;
  /** Bound on buffered decoded bytes (default: see Inbox). */
  readonly maxBufferedBytes?: number;
  /** Rejected frames in a row after which an incoming stream is reset (default 16, >= 1). */
  readonly maxConsecutiveRejects?: number;
  /** Unread receipts beyond which an incoming stream is reset (default 64, >= 1). */
  readonly maxUnreadReceipts?: number;
  /** Weights streams one peer may have open at once; more are reset (default 4, >= 1). */
  readonly maxStreamsPerPeer?: number;
}

export interface Libp2pTransportComponents {
  readonly log?: (msg: string) => void;
  readonly metrics?: TransportMetrics;
  readonly events?: TransportEvents;
}

export interface Libp2pTransport extends Transport {
  readonly peerId: string;
  /** Listen addresses including /p2p/<peerId> (after start). */
  addresses(): string[];
  /** Admit exactly these peers from now on and learn their addresses. */
  setRoster(roster: Roster): Promise<void>;
  /** Dial roster peers ahead of the first send (default: every other roster node). */
  connect(peers?: readonly number[], opts?: { signal?: AbortSignal }): Promise<number[]>;
  /** Roster indices of peers with an open connection. */
  connectedPeers(): number[];
  recycle(weights: Float32Array): boolean;
}

/** A frame as the parts the stream writes back to back. */
interface EncodedFrame {
  readonly parts: readonly Uint8Array[];
  readonly length: number;
}

export function libp2pTransport(init: Libp2pTransportInit) {
  return (components: Libp2pTransportComponents = {}): Libp2pTransport =>
    new Libp2pTransportImpl(init, components);
}

class Libp2pTransportImpl implements Libp2pTransport {
  readonly self: number;
  readonly peerId: string;
  private readonly maxBytes: number;
  private readonly gate = rosterGate();
  private host: Host | undefined;
  private inbox: Inbox;
  private stopController = new AbortController();
  private readonly topic: string;
  /** Long-lived outbound weights stream per peer index (a promise while it opens). */
  private readonly channels = new Map<number, Promise<OutboundChannel>>();
  /** The last frame encoded, reused for every neighbour of the same round (one encode per round). */
  private lastFrame:
    | { weights: Float32Array; round: number; mass: number; frame: EncodedFrame }
    | undefined;
  private readonly receiveLimits: ReceiveLimits;
  /** Open incoming weights streams per peer. */
  private peerStreams: PeerStreams;
  /** Fingerprint of init.psk (checked against a roster's). */
  private readonly pskFingerprint: string | undefined;
  /** Whether the weights protocol and the control topic are open (only once a roster is set). */
  private protocolsOpen = false;

  constructor(
    private readonly init: Libp2pTransportInit,
    private readonly components: Libp2pTransportComponents,
  ) {
    this.self = init.self;
    this.peerId = peerIdOfKey(init.privateKey);
    this.maxBytes = init.maxFrameBytes ?? maxFrameSize(init.size, init.layout);
    this.receiveLimits = {
      maxBytes: this.maxBytes,
      frameTimeoutMs: init.receiveTimeoutMs ?? 30_000,
      maxConsecutiveRejects: checkLimit(
        'maxConsecutiveRejects',
        init.maxConsecutiveRejects,
        MAX_CONSECUTIVE_REJECTS,
      ),
      maxUnreadReceipts: checkLimit(
        'maxUnreadReceipts',
        init.maxUnreadReceipts,
        MAX_UNREAD_RECEIPTS,
      ),
    };
    this.peerStreams = new PeerStreams({ maxStreamsPerPeer: init.maxStreamsPerPeer });
    this.topic = controlTopic(init.runId);
    this.inbox = this.makeInbox();
    this.inbox.close(); // closed until start()
    this.pskFingerprint = init.psk ? fingerprintOf(init.psk) : undefined;
    if (init.roster) this.checkRoster(init.roster);
  }

  private makeInbox(): Inbox {
    const { runId, signature, size, layout } = this.init;
    return new Inbox(
      {
        expect: { runId, signature, size, layout, maxBytes: this.maxBytes },
        ...(this.init.window !== undefined ? { window: this.init.window } : {}),
        ...(this.init.maxBufferedBytes !== undefined
          ? { maxBufferedBytes: this.init.maxBufferedBytes }
          : {}),
      },
      this.components,
    );
  }

  private log(msg: string): void {
    this.components.log?.(`[net ${this.self}] ${msg}`);
  }

  async start(): Promise<void> {
    if (this.host) return;
    this.stopController = new AbortController();
    this.inbox = this.makeInbox();
    const host = await createHost({
      privateKey: this.init.privateKey,
      listen: this.init.listen,
      gater: this.gate.gater((peer) => {
        if (peer === undefined) this.log('connection refused: no roster yet');
        else this.inbox.reject(undefined, 'unknown-sender', `connection from ${peer} refused`);
      }),
      ...(this.init.psk ? { psk: this.init.psk } : {}),
      ...(this.init.monitor ? { monitor: this.init.monitor } : {}),
    });
    try {
      await host.start();
    } catch (e) {
      await Promise.resolve(host.stop()).catch(() => {});
      throw listenError(this.self, this.init.listen, e) ?? e;
    }
    this.host = host;
    this.protocolsOpen = false;
    const roster = this.gate.roster() ?? this.init.roster;
    if (roster) await this.admit(roster);
    this.log(`listening on ${this.addresses().join(', ')}`);
  }

  /**
   * Open the weights protocol and the control topic (once), then admit the roster's peers. Until
   * then the gate refuses every connection and nothing is served: a node without a roster is
   * closed to everyone.
   */
  private async admit(roster: Roster): Promise<void> {
    const host = this.host;
    if (!host) return;
    if (!this.protocolsOpen) {
      this.protocolsOpen = true;
      await host.handle(WEIGHTS_PROTOCOL, this.onStream, {
        maxInboundStreams: 64,
        maxOutboundStreams: 64,
      });
      const pubsub = host.services.pubsub;
      // The validator's decoding, kept for the message event that follows it (gossipsub hands both
      // the same bytes): every node hears every heartbeat, so each is parsed once, not twice.
      const validated = new WeakMap<Uint8Array, ControlMessage>();
      pubsub.topicValidators.set(this.topic, (_peer, msg) => {
        try {
          validated.set(msg.data, decodeControl(msg.data));
          return TopicValidatorResult.Accept;
        } catch (e) {
          if (e instanceof WireError) this.components.metrics?.controlRejected?.(e.reason);
          return TopicValidatorResult.Reject;
        }
      });
      pubsub.addEventListener('message', (evt) => {
        if (evt.detail.topic !== this.topic) return;
        try {
          const data = evt.detail.data;
          this.components.events?.onControl?.(validated.get(data) ?? decodeControl(data));
        } catch {
          // already validated; a handler's own error must not reach libp2p
        }
      });
      pubsub.subscribe(this.topic);
    }
    this.gate.set(roster);
    await this.learnAddresses(roster);
  }

  async stop(): Promise<void> {
    const host = this.host;
    if (!host) return;
    this.host = undefined;
    this.stopController.abort(new TransportError('transport stopped'));
    this.inbox.close();
    const channels = [...this.channels.values()];
    this.channels.clear();
    this.lastFrame = undefined;
    // Close our weights streams gracefully (the peers see a clean end, not a reset).
    for (const p of channels)
      p.then(
        (ch) => ch.close(),
        () => {},
      );
    await host.stop();
  }

  addresses(): string[] {
    return this.host?.getMultiaddrs().map((m) => m.toString()) ?? [];
  }

  async setRoster(roster: Roster): Promise<void> {
    this.checkRoster(roster);
    if (this.host) await this.admit(roster);
    else this.gate.set(roster);
  }

  /** A roster of another run, or of a private run whose key this node lacks, is refused. */
  private checkRoster(roster: Roster): void {
    if (roster.runId !== this.init.runId) {
      throw new TransportError(
        `roster is for run ${roster.runId}, this node runs ${this.init.runId}`,
      );
    }
    const want = roster.pskFingerprint;
    if (want !== undefined && this.pskFingerprint !== want) {
      throw new ConfigError(
        'network.psk',
        this.pskFingerprint === undefined
          ? `run ${roster.runId} is private (its roster names key ${want}): set network.psk to the key file written with its roster (swarm.key)`
          : `holds key ${this.pskFingerprint}, but run ${roster.runId} uses key ${want}: use the key file written with its roster`,
      );
    }
  }

  private async learnAddresses(roster: Roster): Promise<void> {
    const host = this.host;
    if (!host) return;
    for (const n of roster.nodes) {
      if (n.id === this.self) continue;
      const peer = peerIdFromString(n.peerId);
      // Strip a trailing /p2p/<id>: the peer store keys addresses by peer already.
      const addrs = n.addrs.map((a) => {
        const m = multiaddr(a);
        return m.getPeerId() ? m.decapsulateCode(421) : m;
      });
      await host.peerStore.merge(peer, { multiaddrs: addrs });
    }
    // Close connections to peers the new roster no longer admits.
    for (const c of host.getConnections()) {
      if (this.gate.indexOf(c.remotePeer.toString()) === undefined) {
        await c.close().catch(() => {});
      }
    }
  }

  async connect(peers?: readonly number[], opts: { signal?: AbortSignal } = {}): Promise<number[]> {
    const host = this.host;
    const roster = this.gate.roster();
    if (!host || !roster) return [];
    const targets = peers ?? roster.nodes.map((n) => n.id).filter((i) => i !== this.self);
    const ok = await Promise.all(
      targets.map(async (i) => {
        const id = this.gate.peerIdOf(i);
        if (!id) return undefined;
        const signal = this.deadline(this.sendTimeout(), opts.signal);
        // A peer that has no roster yet refuses every connection (it got the roster a moment
        // after us): try again a few times. One whose host refuses TCP is not running.
        for (let attempt = 1; ; attempt++) {
          try {
            await host.dial(peerIdFromString(id), { signal });
            return i;
          } catch (e) {
            if (attempt >= CONNECT_ATTEMPTS || signal.aborted || refused(e)) {
              this.log(`dial ${i} failed: ${errMessage(e)}`);
              return undefined;
            }
            await pause(CONNECT_RETRY_MS * attempt, signal);
          }
        }
      }),
    );
    return ok.filter((i): i is number => i !== undefined);
  }

  connectedPeers(): number[] {
    const out = new Set<number>();
    for (const c of this.host?.getConnections() ?? []) {
      const i = this.gate.indexOf(c.remotePeer.toString());
      if (i !== undefined && c.status === 'open') out.add(i);
    }
    return [...out].sort((a, b) => a - b);
  }

  /**
   * Send one frame; a connection or stream torn down under it (the peer's connection monitor gave
   * up on a busy host, a reset stream) costs a redial and a resend, not the round: the frame is
   * sent again on a fresh stream, over a fresh connection if need be, until the send's deadline.
   * A resent frame the receiver already had (only its receipt was lost) counts as delivered. A
   * peer that refuses the connection outright (nothing listens: its process is gone) fails the
   * send at once.
   */
  async send(
    to: number,
    round: number,
    weights: Float32Array,
    opts: { mass?: number; signal?: AbortSignal; onWritten?: () => void } = {},
  ): Promise<SendOutcome> {
    const host = this.host;
    if (!host) return this.fail(to, 0, 'transport is not started');
    const id = this.gate.peerIdOf(to);
    if (!id) return this.fail(to, 0, `node ${to} is not in the roster`);
    const frame = this.encode(round, weights, opts.mass ?? 1);
    const signal = this.deadline(this.sendTimeout(), opts.signal);
    // The frame leaves this node once as far as the caller is concerned: at its first write.
    let written = opts.onWritten;
    const onWritten = () => {
      const w = written;
      written = undefined;
      w?.();
    };
    for (let resends = 0; ; resends++) {
      let channel: OutboundChannel | undefined;
      try {
        signal.throwIfAborted();
        channel = await this.channel(host, to, id, signal);
        const code = await channel.send(frame.parts, signal, onWritten);
        if (code === RECEIPT_OK || (code === RECEIPT_DUPLICATE && resends > 0)) {
          this.components.metrics?.frameSent(to, frame.length);
          return { status: 'delivered', bytes: frame.length };
        }
        if (code === RECEIPT_REJECTED || code === RECEIPT_DUPLICATE) {
          // The stream is intact (the receiver answered in order): keep it for the next frame.
          return this.fail(to, frame.length, 'receiver rejected the frame');
        }
        throw new TransportError('stream closed without a receipt');
      } catch (e) {
        // Part of a frame may be written and its receipt still in flight: never reuse this stream.
        if (channel) this.dropChannel(to, channel, new TransportError(`send to ${to} failed`));
        const why = errMessage(e);
        if (signal.aborted || refused(e)) {
          return this.fail(
            to,
            frame.length,
            resends > 0 ? `${why} (after ${resends} resends)` : why,
          );
        }
        this.components.metrics?.sendRetried?.(to, why);
        this.log(`round ${round}: send to ${to} broke (${why}); redialling and resending`);
        await pause(Math.min(RESEND_BACKOFF_MS * 2 ** resends, MAX_RESEND_BACKOFF_MS), signal);
      }
    }
  }

  /**
   * The frame for (round, weights, mass), encoded once and shared: the node sends the same vector
   * to every neighbour of a round, and encode + CRC of a 6.4 MB model costs milliseconds. Callers
   * must not change `weights` while its round's sends are pending (the runtime never does).
   */
  private encode(round: number, weights: Float32Array, mass: number): EncodedFrame {
    const last = this.lastFrame;
    if (last && last.weights === weights && last.round === round && Object.is(last.mass, mass)) {
      return last.frame;
    }
    const { runId, signature, codec, layout } = this.init;
    // Header and payload stay apart (for f32 the payload is `weights` itself): the stream writes
    // them one after the other, so no 6.4 MB frame is allocated, zeroed and copied per round.
    const { header, payload } = encodeFrameParts(
      { runId, round, sender: this.self, signature, mass },
      weights,
      codec,
      layout,
    );
    const frame = { parts: [header, payload], length: header.length + payload.length };
    this.lastFrame = { weights, round, mass, frame };
    return frame;
  }

  /** The open channel to `to`, or a new one (dial if needed, one stream, optimistic select). */
  private async channel(
    host: Host,
    to: number,
    peerId: string,
    signal: AbortSignal,
  ): Promise<OutboundChannel> {
    const current = this.channels.get(to);
    if (current) {
      const ch = await current.catch(() => undefined);
      if (ch?.usable) return ch;
      if (this.channels.get(to) === current) this.channels.delete(to);
    }
    const opening = (async () => {
      const conn = await host.dial(peerIdFromString(peerId), { signal });
      // Optimistic protocol selection: the protocol id travels with the first frame instead of
      // costing a round trip of its own (a rostered peer always speaks it; if not, no receipt).
      const stream = await conn.newStream(WEIGHTS_PROTOCOL, { signal, negotiateFully: false });
      return new OutboundChannel(stream);
    })();
    this.channels.set(to, opening);
    opening.catch(() => {
      if (this.channels.get(to) === opening) this.channels.delete(to);
    });
    return opening;
  }

  private dropChannel(to: number, channel: OutboundChannel, err: Error): void {
    channel.abort(err);
    const current = this.channels.get(to);
    if (current) {
      void current.then(
        (ch) => {
          if (ch === channel && this.channels.get(to) === current) this.channels.delete(to);
        },
        () => {},
      );
    }
  }

  collect(
    round: number,
    expected: readonly number[],
    deadlineMs: number,
    signal?: AbortSignal,
    opts?: CollectOptions,
  ): Promise<CollectResult> {
    return this.inbox.collect(round, expected, deadlineMs, signal, opts);
  }

  recycle(weights: Float32Array): boolean {
    return this.inbox.recycle(weights);
  }

  async publishControl(msg: ControlMessage): Promise<void> {
    const host = this.host;
    if (!host) return;
    try {
      await host.services.pubsub.publish(this.topic, encodeControl(msg));
    } catch (e) {
      this.log(`control publish failed: ${errMessage(e)}`);
    }
  }

  /**
   * One incoming weights stream: read frames until the peer closes it, each under its own deadline
   * (the stream idles between rounds), validate each through the inbox and answer it with a receipt
   * in order. A framing error (bad prefix, stream ended inside a frame, deadline) ends the stream.
   */
  private onStream: StreamHandler = async ({ stream, connection }) => {
    const from = this.gate.indexOf(connection.remotePeer.toString());
    if (from === undefined && this.gate.roster()) {
      this.inbox.reject(undefined, 'unknown-sender', `stream from ${connection.remotePeer}`);
      stream.abort(new TransportError('peer is not in the roster'));
      return;
    }
    const key = connection.remotePeer.toString();
    if (!this.peerStreams.admit(key)) {
      this.components.metrics?.streamReset?.(from, 'stream-limit');
      stream.abort(new TransportError('too many weights streams from this peer'));
      return;
    }
    try {
      await serveWeightsStream(stream, from, {
        inbox: this.inbox,
        stop: this.stopController.signal,
        limits: this.receiveLimits,
        ...(this.components.metrics ? { metrics: this.components.metrics } : {}),
      });
    } finally {
      this.peerStreams.release(key);
    }
  };

  private sendTimeout(): number {
    return this.init.sendTimeoutMs ?? 30_000;
  }

  /** A signal that fires at the deadline, on stop(), or when `extra` aborts. */
  private deadline(ms: number, extra?: AbortSignal): AbortSignal {
    const signals = [AbortSignal.timeout(ms), this.stopController.signal];
    if (extra) signals.push(extra);
    return AbortSignal.any(signals);
  }

  private fail(to: number, bytes: number, reason: string): SendOutcome {
    this.components.metrics?.sendFailed(to, reason);
    return { status: 'failed', bytes, reason };
  }
}

/** Dial attempts of connect(), CONNECT_RETRY_MS * attempt apart. */
const CONNECT_ATTEMPTS = 4;
const CONNECT_RETRY_MS = 250;

/** First pause before a resend, doubled each time up to MAX_RESEND_BACKOFF_MS. */
const RESEND_BACKOFF_MS = 50;
const MAX_RESEND_BACKOFF_MS = 1000;

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The peer's host refused the TCP connection: nothing listens on its address any more. */
function refused(e: unknown): boolean {
  for (
    let err = e as
      | { code?: string; message?: string; errors?: unknown[]; cause?: unknown }
      | undefined;
    err;
  ) {
    if (err.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(err.message ?? '')) return true;
    if (Array.isArray(err.errors) && err.errors.some(refused)) return true;
    err = err.cause as typeof err;
  }
  return false;
}

/** A host that cannot listen: the port is taken, or the address is not this machine's. */
function listenError(node: number, listen: readonly string[], e: unknown): ListenError | undefined {
  const text = e instanceof Error ? e.message : String(e);
  const reason = /EADDRINUSE/.test(text)
    ? 'port-in-use'
    : /EADDRNOTAVAIL/.test(text)
      ? 'address-not-available'
      : undefined;
  if (!reason) return undefined;
  // libp2p lists each failed address on its own line: name the one that failed.
  const address = listen.find((a) => text.includes(a)) ?? listen[0] ?? '?';
  return new ListenError(node, address, reason);
}

function peerIdOfKey(key: PrivateKey): string {
  const id: PeerId = peerIdFromPrivateKey(key);
  return id.toString();
}

function errMessage(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
