/**
 * One node as its own process: `flatmesh node`. It loads the experiment, its identity from its node
 * directory, starts a libp2p host, learns the roster (from a file, or from the launcher over IPC
 * after reporting its listen address), then runs the NodeRuntime and exits. It stops cleanly on
 * SIGTERM/SIGINT and exits at once if its launcher dies (IPC 'disconnect'): no orphans.
 *
 * Before it writes or connects anything it refuses a checkpoint in its directory that another
 * experiment wrote. When its runtime ends it writes its end record (DIR/end.json), which
 * `flatmesh collect` merges across machines. On its own (no launcher) it prints its progress.
 *
 *   flatmesh node --config run/config.json --id 3 --dir run/nodes/3 --roster run/roster.json
 */
import '../net/polyfill.js';
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../compute/backend.js';
import { experimentHash } from '../config/identity.js';
import type { Experiment } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { type LiveFault, LiveFaultPlan } from '../faults/live.js';
import { faultyTransport } from '../faults/transport.js';
import { loadOrCreateIdentity, parseRoster } from '../net/libp2p/host.js';
import { readPsk } from '../net/libp2p/psk.js';
import { type Libp2pTransport, libp2pTransport } from '../net/libp2p/transport.js';
import type { Transport } from '../net/transport.js';
import {
  buildNode,
  type Derived,
  fileCheckpoints,
  type NodeParts,
  prepareRun,
  type RunContext,
  readDerived,
} from '../node/build.js';
import { type CheckpointFailure, CheckpointStore } from '../node/checkpoint.js';
import { earlyEvents } from '../node/early-events.js';
import { fanout, jsonlSink, NodeCounters } from '../node/metrics.js';
import { type ChildMessage, isParentMessage, type ParentMessage, type RestartKind } from './ipc.js';
import { trainingTurns } from './node-group-turns.js';
import { Progress } from './progress.js';
import { NODE_END_FILE, type NodeReport, writeNodeEnd } from './summary.js';

/** The training turns of this process's nodes (one process, one event loop, one set of turns). */
const groupTurns = trainingTurns();

export interface NodeProcessOptions {
  cfg: Experiment;
  runId: string;
  id: number;
  dir: string;
  /** Roster file; without it the roster comes from the launcher over IPC. */
  roster?: string;
  /** Listen address (default: from the roster, else /ip4/127.0.0.1/tcp/0). */
  listen?: string;
  /** Directory of data shards written by the launcher (else the node loads the data set itself). */
  shards?: string;
  log?: (msg: string) => void;
  /**
   * A node sharing its process with others (src/run/node-group.ts): its channel to the launcher,
   * and how it came back if restarted. Without it the node is its process: it talks to the
   * launcher over the process's IPC channel and handles the process's signals.
   */
  shared?: {
    channel: NodeChannel;
    /** Stops the node as a SIGTERM stops a node process. */
    stop: AbortSignal;
    /** The planned crash: see SOFT_CRASH_CODE. */
    crash: AbortSignal;
    restarted?: RestartKind;
  };
}

/** A node's side of the launcher's IPC: what it sends, and the messages meant for it. */
export interface NodeChannel {
  send(m: ChildMessage): void;
  /** Calls `fn` with each message for this node until the returned function is called. */
  listen(fn: (m: ParentMessage) => void): () => void;
}

/**
 * The exit code of a node ended by a soft crash (128 + SIGKILL, as a shell reports a killed
 * process). A soft crash is a planned crash of a node that shares its process: its host stops at
 * once (its connections close, as the kernel closes a killed process's), and from then on it sends,
 * records and checkpoints nothing, so it restarts from its last checkpoint as a killed process does.
 */
export const SOFT_CRASH_CODE = 137;

/** The process's own IPC channel, when a launcher started it. */
function processChannel(): NodeChannel | undefined {
  if (process.send === undefined) return undefined;
  return {
    send: (m) => process.send?.(m),
    listen(fn) {
      const onMsg = (m: unknown) => {
        if (isParentMessage(m)) fn(m);
      };
      process.on('message', onMsg);
      return () => process.off('message', onMsg);
    },
  };
}

export async function runNodeProcess(opts: NodeProcessOptions): Promise<number> {
  const { cfg, id, dir, runId, shared } = opts;
  // A checkpoint of another experiment is refused before this process writes or connects anything.
  new CheckpointStore(dir, { experiment: cfg }).checkExperiment();
  const channel = shared?.channel ?? processChannel();
  /** Soft-crashed: from now on nothing leaves this node (messages, records, checkpoints). */
  let dead = false;
  const send = (m: ChildMessage) => {
    if (!dead) channel?.send(m);
  };
  // On its own (no launcher), the node shows its progress on stderr.
  const progress =
    channel === undefined
      ? new Progress(1, cfg.run.rounds, process.stderr, `node ${id}: `)
      : undefined;
  const stop = new AbortController();
  // Each pending send and collect listens on the stop signal: many at once is expected.
  setMaxListeners(0, stop.signal);
  if (shared) {
    shared.stop.addEventListener('abort', () => stop.abort(), { once: true });
  } else {
    const onSignal = () => stop.abort();
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    // The launcher is gone: nothing will collect our results, and we must not outlive it.
    process.once('disconnect', () => process.exit(70));
  }
  // Faults injected by hand (the dashboard) go into the node's fault plan once it has one.
  let livePlan: LiveFaultPlan | undefined;
  const pendingLive: LiveFault[] = [];
  const unlisten = channel?.listen((m) => {
    if (m.type === 'stop') stop.abort();
    else if (m.type === 'live-fault') {
      if (livePlan) livePlan.add(m.fault);
      else pendingLive.push(m.fault);
    }
  });

  // Start-up milestones, in ms since the process started and in CPU ms used so far (on a
  // crowded machine the two differ), for whoever tunes start-up time.
  const mark = (what: string) => {
    const cpu = process.cpuUsage();
    const cpuMs = Math.round((cpu.user + cpu.system) / 1000);
    opts.log?.(`${what} at ${Math.round(performance.now())} ms (cpu ${cpuMs} ms of the process)`);
  };
  await initBackend({ ...(cfg.backend !== 'auto' && { prefer: cfg.backend }), quiet: true });
  mark('backend ready');
  // Under a launcher, the run's plan and model layout are written before the node starts and the
  // shards later: the node sets up its host and connections first, and reads its shard last.
  const launched = opts.shards !== undefined && channel !== undefined;
  let ctx: RunContext | undefined;
  let derived: Derived;
  if (opts.shards) derived = readDerived(opts.shards);
  else {
    ctx = await prepareRun(cfg, runId, { only: id });
    derived = ctx;
  }
  const identity = await loadOrCreateIdentity(dir);
  const psk = cfg.network.psk ? await readPsk(cfg.network.psk) : undefined;
  const fileRoster = opts.roster
    ? parseRoster(JSON.parse(readFileSync(opts.roster, 'utf8')))
    : undefined;
  const mine = fileRoster?.nodes.find((n) => n.id === id);
  if (fileRoster && !mine) throw new ConfigError('roster', `has no node ${id}`);
  if (mine && mine.peerId !== identity.peerId) {
    throw new ConfigError(
      'roster',
      `node ${id} is ${mine.peerId} but ${dir} holds the key of ${identity.peerId}`,
    );
  }
  const listen = opts.listen ?? mine?.addrs[0]?.replace(/\/p2p\/.*$/, '') ?? '/ip4/127.0.0.1/tcp/0';

  const counters = new NodeCounters();
  // A process its launcher restarted says so in its first round record, as the plan's faults do.
  const restarted = shared ? shared.restarted : process.env.FLATMESH_RESTARTED;
  if (restarted === 'restart' || restarted === 'restart-unplanned') counters.fault(restarted);
  let firstRoundDone = false;
  // Heartbeats and frames heard before the runtime exists tell a late node where the run is.
  const early = earlyEvents();
  const inner = libp2pTransport({
    self: id,
    runId,
    signature: derived.signature,
    size: derived.size,
    layout: derived.layout,
    codec: cfg.gossip.codec,
    privateKey: identity.privateKey,
    listen: [listen],
    ...(fileRoster && { roster: fileRoster }),
    ...(psk && { psk: psk.key }),
  })({
    metrics: counters,
    events: early.events,
    ...(opts.log && { log: opts.log }),
  });
  const crashed = new Promise<void>((r) => {
    if (!shared) return;
    const onCrash = () => {
      dead = true;
      stop.abort();
      r();
    };
    if (shared.crash.aborted) onCrash();
    else shared.crash.addEventListener('abort', onCrash, { once: true });
  });
  // A soft crash closes the host's connections at once, not after the runtime's next await.
  void crashed.then(() => inner.stop().catch(() => {}));
  await inner.start();
  mark('host listening');
  try {
    let roster = fileRoster;
    if (!roster) {
      if (!channel) throw new ConfigError('roster', 'a node needs a roster file or a launcher');
      const got = fromParent(channel, 'roster', stop.signal);
      send({ type: 'listening', id, peerId: inner.peerId, addrs: inner.addresses() });
      const m = await got;
      if (!m) return 130;
      roster = parseRoster(m.roster);
      await inner.setRoster(roster);
      mark('roster received');
    }
    if (stop.signal.aborted) return 130;
    // Connect to the base graph's neighbours up front so round 0 does not pay for connection setup.
    const peers = derived.graph.edges.flatMap(([a, b]) => (a === id ? [b] : b === id ? [a] : []));
    await connectNeighbours(inner, id, peers, stop.signal);
    mark('neighbours dialled');
    if (launched && channel) {
      const got = fromParent(channel, 'shards-ready', stop.signal);
      send({ type: 'shards-wanted', id });
      if (!(await got)) return 130;
    }
    ctx ??= await prepareRun(cfg, runId, { only: id, ...(opts.shards && { shards: opts.shards }) });
    mark('data ready');
    const planned = ctx.faults;
    livePlan = new LiveFaultPlan(planned.faults, planned.seed, planned.nodes);
    for (const f of pendingLive.splice(0)) livePlan.add(f);
    ctx.faults = livePlan;
    const plan = livePlan;
    const transport = exchangePhases(
      faultyTransport(inner, {
        plan,
        mode: cfg.faults.loss.mode,
        onFault: (k) => counters.fault(k),
      }),
      (round) => send({ type: 'phase', id, phase: 'exchanging', round }),
    );
    const checkpointFailures: CheckpointFailure[] = [];
    const records = fanout(jsonlSink(join(dir, 'metrics.jsonl')), {
      record: (record) => {
        plan.roundDone(id, record.round);
        send({ type: 'round', id, record });
        progress?.record(record);
        if (!firstRoundDone) mark(`round ${record.round} done`);
        firstRoundDone = true;
      },
    });
    const parts: NodeParts = {
      transport,
      counters,
      onCheckpointFailure: (f) => {
        checkpointFailures.push(f);
        send({ type: 'checkpoint-failed', id, round: f.round, message: f.message });
        progress?.note(`node ${id}: ${f.message}`);
      },
      // A soft-crashed node's runtime may still finish the round it was in: nothing of it is kept.
      sink: { record: (r) => void (dead || records.record(r)) },
      liveness: true,
      ...(opts.log && { log: opts.log }),
    };
    const store = fileCheckpoints(dir, cfg, parts);
    const node = buildNode(ctx, id, {
      ...parts,
      store: {
        save: (s) => void (dead || store.save(s)),
        load: (expect) => store.load(expect),
      },
      // Nodes sharing a process train one per turn of its event loop (node-group-turns.ts).
      ...(shared && { trainer: (n) => groupTurns.wrap(n.trainer) }),
    });
    early.attach(node.runtime);
    send({ type: 'started', id });
    const r = await node.runtime.run(stop.signal).finally(() => {
      if (dead) node.dispose();
    });
    if (dead) return SOFT_CRASH_CODE;
    const report: NodeReport = {
      id,
      accuracy: r.accuracy,
      swaAccuracy: r.swaAccuracy,
      tailAccuracy: r.tailAccuracy,
      tailSwaAccuracy: r.tailSwaAccuracy,
      roundsCompleted: r.roundsCompleted,
      lastRound: r.lastRound,
      roundsLostToRestarts: r.roundsSkipped,
      catchUps: r.catchUps,
      roundsCaughtUp: r.roundsCaughtUp,
      messages: r.messages,
      bytesSent: r.bytesSent,
      bytesReceived: r.bytesReceived,
      faults: r.faults,
      checkpointFailures,
      ...(r.flatness && { flatness: r.flatness }),
    };
    send({ type: 'done', id, outcome: report });
    const status = stop.signal.aborted ? 'stopped' : 'done';
    try {
      writeNodeEnd(dir, {
        runId,
        node: id,
        experimentHash: experimentHash(cfg),
        status,
        endedAt: new Date().toISOString(),
        report,
        config: cfg,
      });
    } catch (e) {
      // A full disk costs the end record, not the run: the launcher has the report already.
      opts.log?.(`cannot write ${join(dir, NODE_END_FILE)}: ${(e as Error).message}`);
    }
    if (progress) {
      progress.finish();
      const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);
      process.stderr.write(
        `node ${id} ${status} after round ${r.lastRound}: accuracy ${pct(r.accuracy)}, SWA ${pct(r.swaAccuracy)}` +
          `${checkpointFailures.length > 0 ? `, ${checkpointFailures.length} checkpoint(s) not written` : ''}` +
          `; end record ${join(dir, NODE_END_FILE)}\n`,
      );
    }
    if (!stop.signal.aborted && r.lastRound === cfg.run.rounds - 1) {
      await node.runtime.untilNeighboursLeft(
        peers,
        (j) => !inner.connectedPeers().includes(j),
        cfg.gossip.deadlineMs,
        stop.signal,
      );
    }
    node.dispose();
    return stop.signal.aborted ? 130 : 0;
  } finally {
    unlisten?.();
    await inner.stop();
  }
}

/**
 * The transport, telling `onExchange` when the node first sends in a round: the end of its training
 * and the start of its exchange, for live views (the dashboard's node states).
 */
function exchangePhases(t: Transport, onExchange: (round: number) => void): Transport {
  let last = -1;
  return {
    ...t,
    send(to, round, weights, opts) {
      if (round !== last) {
        last = round;
        onExchange(round);
      }
      return t.send(to, round, weights, opts);
    },
  };
}

/**
 * One connection per neighbour pair: the lower index dials, the higher waits for it. When both
 * dial at once libp2p keeps both connections, each with its own Noise handshake, identify and
 * gossipsub streams: twice the start-up CPU, on cores that N processes share. A neighbour that has
 * not dialled within the grace period (slow to start, or restarted) is dialled from this side.
 */
async function connectNeighbours(
  net: Libp2pTransport,
  id: number,
  peers: readonly number[],
  stop: AbortSignal,
  graceMs = 3000,
): Promise<void> {
  const signal = AbortSignal.any([stop, AbortSignal.timeout(10_000)]);
  const dial = (ps: readonly number[]) => net.connect(ps, { signal }).catch(() => []);
  const lower = peers.filter((p) => p < id);
  const waitForLower = async () => {
    const until = performance.now() + graceMs;
    for (;;) {
      const have = new Set(net.connectedPeers());
      const missing = lower.filter((p) => !have.has(p));
      if (missing.length === 0 || stop.aborted) return;
      if (performance.now() >= until) return void (await dial(missing));
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await Promise.all([dial(peers.filter((p) => p > id)), waitForLower()]);
}

/**
 * The launcher's next message of type `type`, or undefined once the node is stopped. Listen before
 * sending the message it answers: a reply to nobody is lost.
 */
function fromParent<T extends ParentMessage['type']>(
  channel: NodeChannel,
  type: T,
  signal: AbortSignal,
): Promise<Extract<ParentMessage, { type: T }> | undefined> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(undefined);
    const done = (m: Extract<ParentMessage, { type: T }> | undefined) => {
      unlisten();
      signal.removeEventListener('abort', onAbort);
      resolve(m);
    };
    const unlisten = channel.listen((m) => {
      if (m.type === type) done(m as Extract<ParentMessage, { type: T }>);
    });
    const onAbort = () => done(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
