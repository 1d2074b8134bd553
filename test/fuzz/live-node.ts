/**
 * A live node to attack, for the hostile-input tests: a real NodeRuntime (digits, a small MLP,
 * plain SGD) built with buildNode over a real libp2p transport on 127.0.0.1, in a 2-node topology
 * whose only edge (active every round) goes to the attacker: another real libp2p host that IS in
 * the roster, so its frames reach validation. A third host, the outsider, is not in the roster.
 *
 *   const live = await startLiveNode({ rounds: 3 });
 *   const twin = await live.twin();                       // same node, no frames at all
 *   const r = await live.run(async (round) => { await live.send(bytes); ... });
 *   assert.deepEqual(live.snapshots, twin.snapshots);    // bit for bit
 *   await live.close();
 *
 * Each round's collect is held open until `during(round)` has finished (instead of a wall-clock
 * deadline), so the barrage for a round arrives while the node is collecting that round and the
 * test never depends on timing. The node's weights are snapshotted as each collect starts, i.e.
 * after that round's training and every earlier mix: any frame that leaked into a mix shows up in
 * the next snapshot. The twin is the same node (same seed, same shard) over a silent network.
 */
import '../../src/net/polyfill.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { initBackend } from '../../src/compute/backend.js';
import { parseExperiment } from '../../src/config/index.js';
import type { Codec } from '../../src/gossip/codecs.js';
import { type Model, readFlat } from '../../src/learn/index.js';
import { ByteQueue, readFrames } from '../../src/net/libp2p/framing.js';
import {
  createHost,
  type Host,
  loadOrCreateIdentity,
  type Roster,
  rosterGate,
} from '../../src/net/libp2p/host.js';
import {
  type Libp2pTransport,
  libp2pTransport,
  WEIGHTS_PROTOCOL,
} from '../../src/net/libp2p/transport.js';
import { countingMetrics, type TransportCounts } from '../../src/net/metrics.js';
import type { CollectResult, Transport, TransportMetrics } from '../../src/net/transport.js';
import { encodeFrame, maxFrameSize } from '../../src/net/wire.js';
import { buildNode, prepareRun, type RunContext } from '../../src/node/build.js';
import { NodeCounters, type RoundRecord } from '../../src/node/metrics.js';
import type { NodeResult } from '../../src/node/runtime.js';
import { sendRawFrame } from '../net/helpers.js';
import { type FrameSpec, lengthPrefix } from './frames.js';

export const VICTIM = 0;
export const ATTACKER = 1;
export const RECEIPT_OK = 0x01;
export const RECEIPT_REJECTED = 0x02;

export interface LiveNodeOptions {
  readonly rounds: number;
  readonly seed?: number;
  /** The victim's limit on the attacker's open weights streams (default: the transport's). */
  readonly maxStreamsPerPeer?: number;
}

export interface NodeRun {
  readonly result: NodeResult;
  /** The node's weights as each round's collect started (after training, before mixing). */
  readonly snapshots: Float32Array[];
  readonly records: RoundRecord[];
}

export interface LiveNode {
  readonly ctx: RunContext;
  readonly spec: FrameSpec;
  readonly victim: Libp2pTransport;
  readonly victimAddr: string;
  readonly attacker: Host;
  readonly outsider: Host;
  /** Everything the victim's transport counted, across runs (the test's own tally). */
  readonly counts: TransportCounts;
  /** Frames the victim itself sent to the attacker (the attacker drains them). */
  readonly framesFromVictim: () => number;
  /** Run the victim for all rounds; `during(k)` runs while round k's collect is open. */
  run(during: (round: number) => Promise<void>): Promise<NodeRun>;
  /** The same node over a network that never delivers anything. */
  twin(): Promise<NodeRun>;
  /** A valid frame from the attacker (override any header field to break it). */
  frame(
    round: number,
    weights?: Float32Array,
    opts?: { codec?: Codec; sender?: number; runId?: string; signature?: string; mass?: number },
  ): Uint8Array;
  /** One frame on one stream from `from` (default: the attacker); the receipt byte or undefined. */
  send(bytes: Uint8Array, opts?: { raw?: boolean; from?: Host }): Promise<number | undefined>;
  close(): Promise<void>;
}

/** Both the node's counters and the test's tally see every transport event. */
function tee(...ms: TransportMetrics[]): TransportMetrics {
  return {
    frameSent: (to, b) => ms.forEach((m) => m.frameSent(to, b)),
    sendFailed: (to, r) => ms.forEach((m) => m.sendFailed(to, r)),
    frameReceived: (from, b) => ms.forEach((m) => m.frameReceived(from, b)),
    frameRejected: (from, r) => ms.forEach((m) => m.frameRejected(from, r)),
    frameLate: (from, k) => ms.forEach((m) => m.frameLate(from, k)),
    controlRejected: (r) => ms.forEach((m) => m.controlRejected?.(r)),
    streamReset: (from, r) => ms.forEach((m) => m.streamReset?.(from, r)),
  };
}

/**
 * The runtime's transport, with each collect held open until `during(round)` settles and the
 * model snapshotted as it starts. A collect that completes earlier (a valid frame) still waits.
 */
function heldTransport(
  inner: Transport,
  model: () => Model,
  snapshots: Float32Array[],
  during: (round: number) => Promise<void>,
): Transport {
  return {
    self: inner.self,
    start: () => inner.start(),
    stop: () => inner.stop(),
    send: (to, round, w, opts) => inner.send(to, round, w, opts),
    publishControl: (msg) => inner.publishControl(msg),
    async collect(round, expected, _deadlineMs, signal): Promise<CollectResult> {
      snapshots.push(readFlat(model()));
      const hold = new AbortController();
      const collected = inner.collect(
        round,
        expected,
        600_000,
        signal ? AbortSignal.any([signal, hold.signal]) : hold.signal,
      );
      try {
        await during(round);
      } finally {
        hold.abort();
      }
      return collected;
    },
  };
}

/** A network on which nothing ever arrives (and every send is 'delivered' into the void). */
function silentTransport(self: number): Transport {
  return {
    self,
    start: async () => {},
    stop: async () => {},
    send: async () => ({ status: 'delivered', bytes: 0 }),
    publishControl: async () => {},
    collect: async (round, expected) => ({
      round,
      received: [],
      missing: [...expected],
      lost: [],
      ended: 'deadline',
    }),
  };
}

/**
 * The attacker's receive side: answer every frame of an incoming weights stream with an OK
 * receipt, in order, as a flatmesh node does (the victim keeps one long-lived stream per peer).
 */
async function drain(stream: Stream): Promise<void> {
  const receipts = new ByteQueue();
  const sinking = stream.sink(receipts).catch(() => {});
  try {
    for await (const _ of readFrames(stream.source, { maxBytes: 1 << 30 })) {
      receipts.push(Uint8Array.of(RECEIPT_OK));
    }
    receipts.end();
    await sinking;
  } catch {
    receipts.end();
    stream.abort(new Error('attacker drain failed'));
  }
}

export interface StreamOutcome {
  /** Receipt bytes the victim wrote, in order. */
  readonly receipts: number[];
  /** Whether the stream ended in a reset (a framing error) rather than a clean close. */
  readonly reset: boolean;
}

/**
 * Open one weights-protocol stream from `from` to `to`, write `bytes` verbatim (already framed:
 * honest length prefixes or lying ones), close the write side and read receipts until the
 * receiver ends the stream. A stream that cannot be opened (refused connection) reports reset.
 */
export async function sendStream(
  from: Host,
  to: string,
  bytes: readonly Uint8Array[],
  timeoutMs = 30_000,
): Promise<StreamOutcome> {
  const signal = AbortSignal.timeout(timeoutMs);
  const receipts: number[] = [];
  let stream: Stream | undefined;
  try {
    stream = await from.dialProtocol(multiaddr(to), WEIGHTS_PROTOCOL, { signal });
    const s = stream;
    const reading = (async () => {
      for await (const chunk of s.source) receipts.push(...chunk.subarray());
    })();
    await s.sink(bytes);
    await reading;
    return { receipts, reset: false };
  } catch {
    return { receipts, reset: true };
  } finally {
    stream?.abort(new Error('done'));
  }
}

/** Frames with honest length prefixes, back to back (what one sendStream call writes). */
export function framed(frames: readonly Uint8Array[]): Uint8Array[] {
  return frames.flatMap((f) => [lengthPrefix(f.length), f]);
}

export async function startLiveNode(opts: LiveNodeOptions): Promise<LiveNode> {
  const tmp = await mkdtemp(join(tmpdir(), 'flatmesh-live-'));
  const graph = join(tmp, 'pair.json');
  await writeFile(graph, JSON.stringify({ nodes: 2, edges: [[VICTIM, ATTACKER]] }));
  const cfg = parseExperiment({
    nodes: 2,
    run: { rounds: opts.rounds, seed: opts.seed ?? 11, id: 'fuzz-run' },
    topology: { graph, sampler: 'vanilla' },
    data: { dataset: 'digits', partition: 'iid' },
    model: { kind: 'mlp', hidden: [16] },
    train: { optimizer: 'sgd', lr: 0.1, localSteps: 3 },
    swa: { enabled: false },
    eval: { every: 1_000_000, limit: 200 },
    gossip: { codec: 'f32', mixing: 'laplacian', deadlineMs: 600_000 },
  });
  await initBackend({ quiet: true });
  const runId = cfg.run.id ?? 'fuzz-run';
  const ctx = await prepareRun(cfg, runId);

  const v = await loadOrCreateIdentity(join(tmp, 'victim'));
  const a = await loadOrCreateIdentity(join(tmp, 'attacker'));
  const o = await loadOrCreateIdentity(join(tmp, 'outsider'));
  const tally = countingMetrics();
  const counters = new NodeCounters();
  const victim = libp2pTransport({
    self: VICTIM,
    runId,
    signature: ctx.signature,
    size: ctx.size,
    layout: ctx.layout,
    codec: cfg.gossip.codec,
    privateKey: v.privateKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    ...(opts.maxStreamsPerPeer !== undefined && { maxStreamsPerPeer: opts.maxStreamsPerPeer }),
  })({ metrics: tee(counters, tally) });
  await victim.start();

  const attackerGate = rosterGate();
  const attacker = await createHost({
    privateKey: a.privateKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    gater: attackerGate.gater(() => {}),
  });
  await attacker.start();
  let fromVictim = 0;
  await attacker.handle(
    WEIGHTS_PROTOCOL,
    ({ stream }) => {
      fromVictim++;
      void drain(stream);
    },
    { maxInboundStreams: 64 },
  );
  const outsider = await createHost({
    privateKey: o.privateKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    // An outsider admits anyone: it is the one being refused.
    gater: {},
  });
  await outsider.start();

  const roster: Roster = {
    runId,
    nodes: [
      { id: VICTIM, peerId: victim.peerId, addrs: victim.addresses() },
      { id: ATTACKER, peerId: a.peerId, addrs: attacker.getMultiaddrs().map(String) },
    ],
  };
  attackerGate.set(roster);
  await victim.setRoster(roster);
  const victimAddr = victim.addresses()[0]!;
  const spec: FrameSpec = {
    runId,
    signature: ctx.signature,
    size: ctx.size,
    layout: ctx.layout,
    maxBytes: maxFrameSize(ctx.size, ctx.layout), // the transport's default limit
  };

  const runNode = async (
    transport: (model: () => Model, snapshots: Float32Array[]) => Transport,
    nodeCounters: NodeCounters,
  ): Promise<NodeRun> => {
    const snapshots: Float32Array[] = [];
    const records: RoundRecord[] = [];
    let model: Model | undefined;
    const built = buildNode(ctx, VICTIM, {
      transport: transport(() => model!, snapshots),
      counters: nodeCounters,
      sink: { record: (r) => records.push(r) },
    });
    model = built.model;
    try {
      const result = await built.runtime.run(AbortSignal.timeout(300_000));
      return { result, snapshots, records };
    } finally {
      built.dispose();
    }
  };

  return {
    ctx,
    spec,
    victim,
    victimAddr,
    attacker,
    outsider,
    counts: tally.counts,
    framesFromVictim: () => fromVictim,
    run: (during) =>
      runNode((model, snaps) => heldTransport(victim, model, snaps, during), counters),
    twin: () =>
      runNode(
        (model, snaps) => heldTransport(silentTransport(VICTIM), model, snaps, async () => {}),
        new NodeCounters(),
      ),
    frame(round, weights, o = {}) {
      const w = weights ?? new Float32Array(ctx.size).fill(0.5);
      return encodeFrame(
        {
          runId: o.runId ?? runId,
          round,
          sender: o.sender ?? ATTACKER,
          signature: o.signature ?? ctx.signature,
          mass: o.mass ?? 1,
        },
        w,
        o.codec ?? 'f32',
        ctx.layout,
      );
    },
    send: (bytes, o = {}) =>
      sendRawFrame(o.from ?? attacker, victimAddr, bytes, { ...(o.raw && { raw: true }) }),
    async close() {
      await victim.stop();
      await attacker.stop();
      await outsider.stop();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}
