/**
 * The in-memory transport: N nodes in one process, connected through a hub. It encodes and decodes
 * real frames through wire.ts and receives through the shared Inbox, so the simulator exercises
 * the same validation and the same collect/buffer/late semantics as the libp2p transport.
 * Delivery is asynchronous and in order per link.
 *
 *   const network = memoryNetwork();
 *   const t0 = memoryTransport({ self: 0, network, runId, signature, size, layout, codec: 'f32' });
 *   await t0.start();
 *   await t0.send(1, round, weights);
 *   const { received } = await t1.collect(round, [0], 1000);
 */
import { TransportError, WireError } from '../errors.js';
import { decodeControl, encodeControl } from './control.js';
import { Inbox } from './inbox.js';
import type {
  Codec,
  CollectResult,
  ControlMessage,
  SendOutcome,
  Transport,
  TransportEvents,
  TransportMetrics,
} from './transport.js';
import { encodeFrame, maxFrameSize } from './wire.js';

interface Endpoint {
  frame(from: number, bytes: Uint8Array): void;
  control(from: number, bytes: Uint8Array): void;
}

/** The hub that links in-memory transports. One per simulated network. */
export interface MemoryNetwork {
  /** Indices of the transports currently started on this network. */
  members(): number[];
  /** @internal used by memoryTransport */
  attach(self: number, ep: Endpoint): void;
  /** @internal */
  detach(self: number, ep: Endpoint): void;
  /** @internal queue bytes for `to`; resolves true once delivered, false if `to` is not attached. */
  deliver(from: number, to: number, bytes: Uint8Array): Promise<boolean>;
  /** @internal */
  broadcast(from: number, bytes: Uint8Array): void;
}

export function memoryNetwork(): MemoryNetwork {
  const endpoints = new Map<number, Endpoint>();
  return {
    members: () => [...endpoints.keys()].sort((a, b) => a - b),
    attach(self, ep) {
      if (endpoints.has(self)) throw new TransportError(`node ${self} is already on this network`);
      endpoints.set(self, ep);
    },
    detach(self, ep) {
      if (endpoints.get(self) === ep) endpoints.delete(self);
    },
    deliver(from, to, bytes) {
      const ep = endpoints.get(to);
      if (!ep) return Promise.resolve(false);
      // setImmediate callbacks run in FIFO order, so each link delivers in order; the receiver
      // may have stopped in between, in which case the frame is gone (as on a real network).
      return new Promise((resolve) =>
        setImmediate(() => {
          const now = endpoints.get(to);
          if (now !== ep) return resolve(false);
          ep.frame(from, bytes);
          resolve(true);
        }),
      );
    },
    broadcast(from, bytes) {
      for (const [to, ep] of endpoints) {
        if (to !== from) setImmediate(() => ep.control(from, bytes));
      }
    },
  };
}

export interface MemoryTransportInit {
  readonly self: number;
  readonly network: MemoryNetwork;
  readonly runId: string;
  /** Model signature (16 hex characters). */
  readonly signature: string;
  /** Element count of the flat parameter vector. */
  readonly size: number;
  /** Element count of each tensor (int8 scales are per tensor); [] means one tensor. */
  readonly layout: readonly number[];
  readonly codec: Codec;
  /** Node indices admitted as senders; undefined admits everyone on the network. */
  readonly roster?: readonly number[];
  /** Rounds ahead buffered by the inbox (default 4). */
  readonly window?: number;
  /** Bound on buffered decoded bytes (default: see Inbox). */
  readonly maxBufferedBytes?: number;
  /** Largest frame accepted (default: the largest any codec makes for this model). */
  readonly maxFrameBytes?: number;
}

export interface MemoryTransportComponents {
  readonly metrics?: TransportMetrics;
  readonly events?: TransportEvents;
  readonly log?: (msg: string) => void;
}

export function memoryTransport(
  init: MemoryTransportInit,
  components: MemoryTransportComponents = {},
): Transport {
  const { self, network, runId, signature, size, layout, codec } = init;
  const maxBytes = init.maxFrameBytes ?? maxFrameSize(size, layout);
  // Closed until start(): a collect before start (or after stop) resolves 'stopped' at once, and a
  // restarted transport begins with a clean inbox, like a restarted process.
  let inbox = makeInbox();
  inbox.close();
  let running = false;
  const endpoint: Endpoint = {
    frame: (from, bytes) => {
      inbox.acceptFrame(bytes, from);
    },
    control: (_from, bytes) => {
      let msg: ControlMessage;
      try {
        msg = decodeControl(bytes);
      } catch (e) {
        if (e instanceof WireError) components.metrics?.controlRejected?.(e.reason);
        return;
      }
      components.events?.onControl?.(msg);
    },
  };

  function makeInbox(): Inbox {
    return new Inbox(
      {
        expect: { runId, signature, size, layout, maxBytes },
        ...(init.roster ? { roster: init.roster } : {}),
        ...(init.window !== undefined ? { window: init.window } : {}),
        ...(init.maxBufferedBytes !== undefined ? { maxBufferedBytes: init.maxBufferedBytes } : {}),
      },
      components,
    );
  }

  return {
    self,
    async start() {
      if (running) return;
      network.attach(self, endpoint);
      inbox = makeInbox();
      running = true;
    },
    async stop() {
      if (!running) return;
      running = false;
      network.detach(self, endpoint);
      inbox.close();
    },
    async send(to, round, weights, opts = {}): Promise<SendOutcome> {
      if (!running) return fail(to, 0, 'transport is not started');
      if (opts.signal?.aborted) return fail(to, 0, 'aborted');
      const frame = encodeFrame(
        { runId, round, sender: self, signature, mass: opts.mass ?? 1 },
        weights,
        codec,
        layout,
      );
      opts.onWritten?.();
      const ok = await network.deliver(self, to, frame);
      if (!ok) return fail(to, frame.length, `node ${to} is not reachable`);
      components.metrics?.frameSent(to, frame.length);
      return { status: 'delivered', bytes: frame.length };
    },
    collect(round, expected, deadlineMs, signal, opts): Promise<CollectResult> {
      return inbox.collect(round, expected, deadlineMs, signal, opts);
    },
    recycle: (weights) => inbox.recycle(weights),
    async publishControl(msg) {
      if (!running) return;
      network.broadcast(self, encodeControl(msg));
    },
  };

  function fail(to: number, bytes: number, reason: string): SendOutcome {
    components.metrics?.sendFailed(to, reason);
    return { status: 'failed', bytes, reason };
  }
}
