/**
 * The libp2p transport: weights over `/flatmesh/weights/1.0.0` (one length-prefixed frame per
 * stream, answered by a one-byte receipt), heartbeats over gossipsub `flatmesh/<runId>/control`,
 * admission by roster. The receive side is the shared Inbox, as in the in-memory transport.
 *
 *   const { privateKey } = await loadOrCreateIdentity(nodeDir);
 *   const t = libp2pTransport({ self: 0, runId, signature, size, layout, codec: 'f32', privateKey,
 *                               listen: ['/ip4/127.0.0.1/tcp/0'] })({ metrics, log });
 *   await t.start();  t.addresses();   // -> the launcher, which builds the roster
 *   t.setRoster(roster);  await t.connect();
 *   await t.send(1, round, weights);  await t.collect(round, [1, 2], 5000, signal);
 *
 * Every network wait has a deadline (AbortSignal.timeout combined with the stop signal and the
 * caller's signal); a failed stream is aborted in `finally`; send() returns 'failed' instead of
 * throwing on network faults; a bad frame is counted by reason and never reaches the model.
 */
import '../polyfill.js';
import type { PeerId, PrivateKey, Stream, StreamHandler } from '@libp2p/interface';
import { TopicValidatorResult } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import * as lp from 'it-length-prefixed';
import { TransportError, WireError } from '../../errors.js';
import { controlTopic, decodeControl, encodeControl } from '../control.js';
import { Inbox } from '../inbox.js';
import type {
  Codec,
  CollectResult,
  ControlMessage,
  SendOutcome,
  Transport,
  TransportEvents,
  TransportMetrics,
} from '../transport.js';
import { encodeFrame, maxFrameSize } from '../wire.js';
import { createHost, type Host, type Roster, rosterGate } from './host.js';

export const WEIGHTS_PROTOCOL = '/flatmesh/weights/1.0.0';

/**
 * Receipt byte the receiver writes after it has read and validated a frame: the sender's
 * 'delivered' then means the frame reached the receiver's inbox (or was counted late there).
 */
const RECEIPT_OK = 0x01;
const RECEIPT_REJECTED = 0x02;

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
  /** Pre-shared swarm key (libp2p pnet format): only nodes with the same key can connect. */
  readonly psk?: Uint8Array;
  /** Largest frame accepted and sent (default: the largest any codec makes for this model). */
  readonly maxFrameBytes?: number;
  /** Deadline for one send (dial + stream + frame + receipt). Default 30 s. */
  readonly sendTimeoutMs?: number;
  /** Deadline for reading one incoming frame. Default 30 s. */
  readonly receiveTimeoutMs?: number;
  /** Rounds ahead buffered by the inbox (default 4). */
  readonly window?: number;
  /** Bound on buffered decoded bytes (default: see Inbox). */
  readonly maxBufferedBytes?: number;
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

  constructor(
    private readonly init: Libp2pTransportInit,
    private readonly components: Libp2pTransportComponents,
  ) {
    this.self = init.self;
    this.peerId = peerIdOfKey(init.privateKey);
    this.maxBytes = init.maxFrameBytes ?? maxFrameSize(init.size, init.layout);
    this.topic = controlTopic(init.runId);
    this.inbox = this.makeInbox();
    this.inbox.close(); // closed until start()
    if (init.roster) this.gate.set(checkRoster(init.roster, init.runId));
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
        this.inbox.reject(undefined, 'unknown-sender', `connection from ${peer} refused`);
      }),
      ...(this.init.psk ? { psk: this.init.psk } : {}),
    });
    await host.start();
    await host.handle(WEIGHTS_PROTOCOL, this.onStream, {
      maxInboundStreams: 64,
      maxOutboundStreams: 64,
    });
    const pubsub = host.services.pubsub;
    pubsub.topicValidators.set(this.topic, (_peer, msg) => {
      try {
        decodeControl(msg.data);
        return TopicValidatorResult.Accept;
      } catch (e) {
        if (e instanceof WireError) this.components.metrics?.controlRejected?.(e.reason);
        return TopicValidatorResult.Reject;
      }
    });
    pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic !== this.topic) return;
      try {
        this.components.events?.onControl?.(decodeControl(evt.detail.data));
      } catch {
        // already validated; a handler's own error must not reach libp2p
      }
    });
    pubsub.subscribe(this.topic);
    this.host = host;
    const roster = this.gate.roster();
    if (roster) await this.learnAddresses(roster);
    this.log(`listening on ${this.addresses().join(', ')}`);
  }

  async stop(): Promise<void> {
    const host = this.host;
    if (!host) return;
    this.host = undefined;
    this.stopController.abort(new TransportError('transport stopped'));
    this.inbox.close();
    await host.stop();
  }

  addresses(): string[] {
    return this.host?.getMultiaddrs().map((m) => m.toString()) ?? [];
  }

  async setRoster(roster: Roster): Promise<void> {
    this.gate.set(checkRoster(roster, this.init.runId));
    if (this.host) await this.learnAddresses(roster);
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
        try {
          await host.dial(peerIdFromString(id), {
            signal: this.deadline(this.sendTimeout(), opts.signal),
          });
          return i;
        } catch (e) {
          this.log(`dial ${i} failed: ${errMessage(e)}`);
          return undefined;
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

  async send(
    to: number,
    round: number,
    weights: Float32Array,
    opts: { mass?: number; signal?: AbortSignal } = {},
  ): Promise<SendOutcome> {
    const host = this.host;
    if (!host) return this.fail(to, 0, 'transport is not started');
    const id = this.gate.peerIdOf(to);
    if (!id) return this.fail(to, 0, `node ${to} is not in the roster`);
    const { runId, signature, codec, layout } = this.init;
    const frame = encodeFrame(
      { runId, round, sender: this.self, signature, mass: opts.mass ?? 1 },
      weights,
      codec,
      layout,
    );
    const signal = this.deadline(this.sendTimeout(), opts.signal);
    let stream: Stream | undefined;
    let ok = false;
    const onAbort = () => stream?.abort(new TransportError(`send to ${to} timed out or aborted`));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      signal.throwIfAborted();
      const conn = await host.dial(peerIdFromString(id), { signal });
      // Optimistic protocol selection: the protocol id travels with the frame instead of costing a
      // round trip of its own (a rostered peer always speaks it; if not, the receipt never comes).
      stream = await conn.newStream(WEIGHTS_PROTOCOL, { signal, negotiateFully: false });
      const receipt = readReceipt(stream);
      // Sinking the single encoded frame ends our write side; then wait for the receipt.
      await stream.sink([lp.encode.single(frame, { maxDataLength: this.maxBytes })]);
      const code = await receipt;
      if (code === RECEIPT_REJECTED) throw new TransportError('receiver rejected the frame');
      if (code !== RECEIPT_OK) throw new TransportError('stream closed without a receipt');
      ok = true;
      this.components.metrics?.frameSent(to, frame.length);
      return { status: 'delivered', bytes: frame.length };
    } catch (e) {
      return this.fail(to, frame.length, errMessage(e));
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (stream) {
        if (ok)
          await stream
            .close({ signal })
            .catch(() => stream?.abort(new TransportError('close failed')));
        else stream.abort(new TransportError('send failed'));
      }
    }
  }

  collect(
    round: number,
    expected: readonly number[],
    deadlineMs: number,
    signal?: AbortSignal,
  ): Promise<CollectResult> {
    return this.inbox.collect(round, expected, deadlineMs, signal);
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

  /** One incoming weights stream: read one frame under a deadline, validate, write a receipt. */
  private onStream: StreamHandler = async ({ stream, connection }) => {
    const inbox = this.inbox;
    const from = this.gate.indexOf(connection.remotePeer.toString());
    const signal = this.deadline(this.init.receiveTimeoutMs ?? 30_000);
    const onAbort = () => stream.abort(new TransportError('receive timed out or node stopped'));
    signal.addEventListener('abort', onAbort, { once: true });
    let ok = false;
    try {
      if (from === undefined && this.gate.roster()) {
        inbox.reject(undefined, 'unknown-sender', `stream from ${connection.remotePeer}`);
        return;
      }
      const frames = lp.decode(stream.source, { maxDataLength: this.maxBytes });
      const first = await frames.next();
      if (first.done) {
        inbox.reject(from, 'truncated', 'stream ended before a frame');
        return;
      }
      const verdict = inbox.acceptFrame(first.value.subarray(), from);
      const accepted = verdict === 'accepted' || verdict === 'late';
      await stream.sink([Uint8Array.of(accepted ? RECEIPT_OK : RECEIPT_REJECTED)]);
      ok = true;
    } catch (e) {
      if (!signal.aborted) inbox.reject(from, framingReason(e), errMessage(e));
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (ok)
        await stream
          .close({ signal })
          .catch(() => stream.abort(new TransportError('close failed')));
      else stream.abort(new TransportError('frame rejected'));
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

/** Read the receiver's one-byte receipt (undefined if the stream ends without one). */
async function readReceipt(stream: Stream): Promise<number | undefined> {
  for await (const chunk of stream.source) {
    if (chunk.length > 0) return chunk.get(0);
  }
  return undefined;
}

/** Map it-length-prefixed's framing errors to reject reasons. */
function framingReason(e: unknown): WireError['reason'] {
  const name = (e as { name?: string } | undefined)?.name;
  switch (name) {
    case 'InvalidDataLengthError':
    case 'InvalidDataLengthLengthError':
      return 'oversized';
    case 'InvalidMessageLengthError':
      return 'wrong-length';
    default:
      return 'truncated';
  }
}

function checkRoster(roster: Roster, runId: string): Roster {
  if (roster.runId !== runId) {
    throw new TransportError(`roster is for run ${roster.runId}, this node runs ${runId}`);
  }
  return roster;
}

function peerIdOfKey(key: PrivateKey): string {
  const id: PeerId = peerIdFromPrivateKey(key);
  return id.toString();
}

function errMessage(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
