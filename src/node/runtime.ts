/**
 * NodeRuntime: the round engine of one node. It composes the phases of design.md's round and
 * knows nothing about processes or sockets: the same runtime runs in a `flatmesh node` process over
 * libp2p and in the simulator over the in-memory transport.
 *
 *   round k: train -> active edges from the shared schedule -> exchange under a deadline -> mix
 *            -> SWA -> evaluate -> checkpoint -> metrics record + heartbeat
 *
 *   const rt = new NodeRuntime(deps);
 *   const result = await rt.run(signal);
 *
 * A node started on a directory with a checkpoint resumes from the round after it; if its
 * neighbours are further ahead (it crashed and was restarted), it jumps to their round, as learned
 * from their heartbeats, so it never stalls them and never mixes weights from a round long past.
 *
 * Catch-up (any time, not only at start): before each round the node compares its round with the
 * round its neighbours are working on (PeerRounds.current over its base graph's neighbours heard
 * from lately: the second-highest of their reports, so one lying peer cannot move it). Two rounds
 * or more behind (paused, starved of CPU, started late), it jumps to that round: the rounds in
 * between are not trained, the jump is in that round's record (`catchUp`) and in the node's
 * result, and that round mixes the freshest model it holds from each neighbour (collect's
 * `since`), not only frames of the round itself. In a real run it announces the round it joins
 * (a `join` control message), so its neighbours wait for its frame of that round instead of
 * writing it off as behind; a neighbour that had stopped waiting for it (silent for a while)
 * waits again on any news of it, a join, heartbeat or frame, mid-round too. Its neighbours
 * meanwhile do not wait for it while it is behind: a neighbour whose
 * heartbeat shows it more than one round behind, or already past the round, is waived from the
 * wait (its frame is still taken if it comes in time).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as tf from '@tensorflow/tfjs';
import type { Experiment } from '../config/schema.js';
import type { Dataset } from '../data/types.js';
import { corruptWeights } from '../faults/byzantine.js';
import type { FaultPlan } from '../faults/plan.js';
import { pushSumShare, rmsDistance } from '../gossip/mixing.js';
import {
  type EvalResult,
  evaluate,
  evaluateFlat,
  isEvalRound,
  isGossipOnlyRound,
  isSwaCollectRound,
  isTailRound,
  type LocalOptimizer,
  learningRate,
  type Model,
  QuasiGlobalMomentum,
  quasiGlobalRate,
  type RoundTrainer,
  readFlat,
  SwaAverage,
  TailMean,
  writeFlat,
} from '../learn/index.js';
import type { ControlMessage, Transport } from '../net/transport.js';
import { neighboursAt, roundTopology } from '../topology/schedule.js';
import type { MatchaPlan } from '../topology/types.js';
import { FrameChannels } from './channels.js';
import type { CheckpointSink, CheckpointState } from './checkpoint.js';
import { AdaptiveDeadline } from './deadline.js';
import { exchange } from './exchange.js';
import { type FlatnessTracking, flatnessTracking, type LastFlatness } from './flatness-tracking.js';
import { FreshestModels } from './fresh.js';
import {
  addCounts,
  emptyCounts,
  type MessageCounts,
  type MetricsSink,
  type NodeCounters,
  type RoundRecord,
} from './metrics.js';
import { Mixer } from './mix.js';
import { bothWays } from './pairwise.js';
import { PeerRounds } from './peers.js';
import { TrackingRound } from './tracking.js';

export interface NodeDeps {
  cfg: Experiment;
  id: number;
  runId: string;
  signature: string;
  transport: Transport;
  plan: MatchaPlan;
  faults: FaultPlan;
  model: Model;
  optimizer: LocalOptimizer;
  trainer: RoundTrainer;
  test: Dataset;
  /**
   * Evaluates a parameter vector of this node's model on the test set (the batched simulator
   * evaluates every node's model and SWA average in one pass, run/batched-sim.ts). Default: the
   * node's own evaluation, without any await.
   */
  evaluator?: (x: Float32Array) => Promise<EvalResult>;
  counters: NodeCounters;
  sink: MetricsSink;
  store?: CheckpointSink;
  log?: (msg: string) => void;
  /**
   * Real runs: stop waiting early for neighbours that look dead (no heartbeat or frame for twice
   * the deadline or twice a round, whichever is longer), so a crashed peer does not stall every
   * round it is scheduled in (their frames are still accepted while the round lasts), and let the
   * round deadline follow observed waits (deadline.ts). Off in the simulator, whose timing must
   * not change results.
   */
  liveness?: boolean;
}

export interface NodeResult {
  id: number;
  /** Rounds this node ran (in this process and before, from the checkpoint). */
  roundsCompleted: number;
  lastRound: number;
  /** Round the node resumed from (-1 when it started fresh). */
  resumedFrom: number;
  /** Rounds lost to restarts: skipped to catch up, or redone work lost since the last checkpoint. */
  roundsSkipped: number;
  /** Emulated restarts (simulator); a launcher counts real ones itself. */
  restarts: number;
  /** Times this node found itself behind the run and jumped forward, and the rounds it skipped so. */
  catchUps: number;
  roundsCaughtUp: number;
  accuracy: number | null;
  swaAccuracy: number | null;
  /** Mean test accuracy of the current and of the SWA model over the last `eval.tail` rounds. */
  tailAccuracy: number | null;
  tailSwaAccuracy: number | null;
  messages: MessageCounts;
  bytesSent: number;
  bytesReceived: number;
  faults: Record<string, number>;
  weights: Float32Array;
  swaWeights: Float32Array | undefined;
  /** In-run flatness (analysis.flatness): the last figures measured. */
  flatness?: LastFlatness;
}

export class NodeRuntime {
  private readonly d: NodeDeps;
  private readonly mixer: Mixer;
  private readonly qg: QuasiGlobalMomentum | undefined;
  /** In-run flatness (analysis.flatness), when asked. */
  private readonly flatness: FlatnessTracking | undefined;
  /** Gradient tracking (train.gradientTracking): its tracker travels with the model. */
  private readonly gt: TrackingRound | undefined;
  /** What a frame carries: the model, and the tracker and SWA average when configured. */
  private readonly frame: FrameChannels;
  private swa = new SwaAverage();
  private mass = 1;
  private firstRound = 0;
  private resumedFrom = -1;
  private roundsSkipped = 0;
  private restarts = 0;
  private initial!: { weights: Float32Array; rng: ReturnType<RoundTrainer['getRngState']> };
  private roundsDone = 0;
  private lastAccuracy: number | null = null;
  private lastSwaAccuracy: number | null = null;
  private readonly tail = { accuracy: new TailMean(), swaAccuracy: new TailMean() };
  /** The round each peer works on, from heartbeats and frames. */
  private readonly peers: PeerRounds;
  private readonly deadline: AdaptiveDeadline;
  /** Async gossip: the freshest model of each neighbour, across rounds. */
  private readonly fresh: FreshestModels;
  private catchUps = 0;
  private roundsCaughtUp = 0;
  /** Heartbeats received from other nodes since the last round record, and their senders. */
  private heartbeats = 0;
  private readonly heartbeatsFrom = new Set<number>();
  /**
   * The collect in progress: its round, how to stop or start waiting for one neighbour, and
   * whether a neighbour is one this round waits for when it is alive.
   */
  private waiting:
    | {
        round: number;
        waive: (j: number) => void;
        expect: (j: number) => void;
        wanted: (j: number) => boolean;
      }
    | undefined;
  /** Neighbours of this node in the base graph: the peers whose round it joins (catch-up). */
  private readonly baseNeighbours: ReadonlySet<number>;
  /** When each peer was last heard from (heartbeat or frame), and this node's last round time. */
  private readonly lastSeen = new Map<number, number>();
  private readonly startedAt = performance.now();
  private lastRoundMs = 0;
  /** When this node's previous and current rounds began (performance.now()). */
  private previousRoundStart = 0;
  private roundStart = 0;
  /** Durations of recent rounds (ms), for a planned stall's length. */
  private readonly roundTimes: number[] = [];
  private readonly totals = emptyCounts();
  private bytesSent = 0;
  private bytesReceived = 0;
  private readonly faultTotals: Record<string, number> = {};

  constructor(deps: NodeDeps) {
    this.d = deps;
    this.mixer = new Mixer(deps.cfg.gossip);
    if (deps.cfg.train.quasiGlobalMomentum)
      this.qg = new QuasiGlobalMomentum(deps.optimizer, deps.cfg.train.momentum);
    if (deps.cfg.train.gradientTracking) this.gt = new TrackingRound(deps.optimizer);
    this.frame = new FrameChannels(deps.cfg, deps.model.size);
    this.peers = new PeerRounds(deps.id);
    this.flatness = flatnessTracking(deps.cfg, deps.model, deps.test, deps.id);
    this.baseNeighbours = new Set(
      deps.plan.graph.edges.flatMap(([a, b]) => (a === deps.id ? [b] : b === deps.id ? [a] : [])),
    );
    this.deadline = new AdaptiveDeadline(deps.cfg.gossip.deadlineMs);
    this.fresh = new FreshestModels((w) => deps.transport.recycle?.(w));
    this.restore();
  }

  /** Feed control messages (heartbeats, leaves) from the transport here. */
  onControl(msg: ControlMessage): void {
    if (msg.node === this.d.id) return;
    this.peers.onControl(msg);
    // A heartbeat or a join shows its sender alive; a leave shows it gone (PeerRounds.isDone).
    if (msg.type !== 'leave') this.lastSeen.set(msg.node, performance.now());
    if (msg.type === 'heartbeat') {
      this.heartbeats++;
      this.heartbeatsFrom.add(msg.node);
    }
    this.news(msg.node);
  }

  /** Feed the transport's frame arrivals here: a frame shows its sender alive and in its round. */
  onFrame(from: number, round: number): void {
    if (from === this.d.id) return;
    this.peers.heard(from, round);
    this.lastSeen.set(from, performance.now());
    this.news(from);
  }

  /**
   * News of `j` during a collect (a leave, or a sign of life): stop waiting for it if it passed the round or fell
   * behind; otherwise, if this round waits for such a neighbour, wait for it now. The second case
   * is a node that joined late (or came back from a pause): when the collect began it had been
   * silent, so it was not waited for, and its frames, a round behind its neighbours' at first,
   * would keep arriving just after they closed each round.
   */
  private news(j: number): void {
    const w = this.waiting;
    if (!w) return;
    if (this.peers.settled(j, w.round, this.behindBy(), this.freshSince())) w.waive(j);
    else if (this.d.liveness && w.wanted(j)) w.expect(j);
  }

  /**
   * Real runs: a peer counts as behind only on a report received since this node began its
   * previous round (older news may just be slow). The simulator ignores time.
   */
  private freshSince(): number | undefined {
    return this.d.liveness ? this.previousRoundStart : undefined;
  }

  /**
   * Rounds a neighbour must be behind, by its own recent report, before this node stops waiting
   * for it: two more than the lag it is allowed, because heartbeats travel slower than frames (on
   * a loaded machine a heartbeat can arrive a round or two after the frames that followed it).
   */
  private behindBy(): number {
    return this.lagAllowed() + 2;
  }

  /**
   * Rounds a neighbour may lag before this node stops waiting for it: one in lockstep (a neighbour
   * still finishing the previous round is normal), one more than the staleness bound in async.
   */
  private lagAllowed(): number {
    const g = this.d.cfg.gossip;
    return g.sync === 'async' ? g.staleness + 1 : 1;
  }

  /** The round to jump to when this node is two or more rounds behind the run, else undefined. */
  private catchUpTarget(k: number): number | undefined {
    const run = this.runRound();
    if (run === undefined || run - k < this.lagAllowed() + 1) return undefined;
    return Math.min(run, this.d.cfg.run.rounds - 1);
  }

  /**
   * The round this node's neighbours are working on, as far as it knows (PeerRounds.current): from
   * its base graph's neighbours, the peers it exchanges with, or from any peer when it has heard
   * from none of them; in async mode, the median of every peer's (PeerRounds.median). Real runs
   * count only peers heard from lately: a crashed one must not hold the figure back.
   */
  private runRound(): number | undefined {
    const now = performance.now();
    const silentFor = 2 * Math.max(this.deadline.current(), this.lastRoundMs);
    const recent = (j: number) =>
      !this.d.liveness ||
      this.peers.isDone(j) ||
      now - (this.lastSeen.get(j) ?? this.startedAt) <= silentFor;
    if (this.d.cfg.gossip.sync === 'async') return this.peers.median(recent);
    return (
      this.peers.current((j) => this.baseNeighbours.has(j) && recent(j)) ??
      this.peers.current(recent)
    );
  }

  /**
   * Real runs: tell the others that this node now works on `round` (it caught up or restarted),
   * so its neighbours wait for its frame of that round rather than take it for a node behind.
   */
  private announceJoin(round: number): void {
    if (!this.d.liveness) return;
    void this.d.transport
      .publishControl({ type: 'join', node: this.d.id, round, status: 'catch-up' })
      .catch(() => {});
  }

  /** The Bernoulli loss rate mixing accounts for (gossip.lossAware), else 0. */
  private expectedLoss(): number {
    const { gossip, faults } = this.d.cfg;
    return gossip.lossAware && faults.loss.model === 'bernoulli' ? faults.loss.p : 0;
  }

  /** Neighbours not believed dead (all of them unless liveness tracking is on). */
  private believedAlive(neighbours: readonly number[]): number[] {
    if (!this.d.liveness) return [...neighbours];
    const now = performance.now();
    const silentFor = 2 * Math.max(this.deadline.current(), this.lastRoundMs);
    return neighbours.filter((j) => now - (this.lastSeen.get(j) ?? this.startedAt) <= silentFor);
  }

  private restore(): void {
    const { store, runId, signature, model } = this.d;
    const ck = store?.load({ runId, signature, size: model.size });
    this.initial = { weights: readFlat(model), rng: this.d.trainer.getRngState() };
    if (!ck) {
      this.firstRound = this.d.faults.joinRound(this.d.id);
      return;
    }
    this.applyCheckpoint(ck);
    const extra = ck.extra as { roundsDone?: number; totals?: MessageCounts };
    this.roundsDone = extra.roundsDone ?? ck.round + 1;
    if (extra.totals) addCounts(this.totals, extra.totals);
    this.resumedFrom = ck.round;
    this.firstRound = ck.round + 1;
    this.d.log?.(`resumed from checkpoint of round ${ck.round}`);
  }

  /** Learning state from a checkpoint (not the message tallies: those describe what happened). */
  private applyCheckpoint(ck: CheckpointState): void {
    writeFlat(this.d.model, ck.weights);
    this.d.optimizer.setState(ck.optimizer);
    this.swa = SwaAverage.restore({ count: ck.swa.count, mean: ck.swa.mean });
    this.mass = ck.mass;
    const trainerRng = ck.rng['trainer'];
    if (trainerRng) {
      this.d.trainer.setRngState({
        passStart: trainerRng.slice(0, 4) as [number, number, number, number],
        cursor: trainerRng[4]!,
      });
    }
    const extra = ck.extra as { clip?: number[]; tail?: number[][] };
    if (extra.clip) this.mixer.restoreClipState(extra.clip);
    this.tail.accuracy.restore(extra.tail?.[0]);
    this.tail.swaAccuracy.restore(extra.tail?.[1]);
  }

  /**
   * Emulated crash recovery (simulator): the node lost everything since its last checkpoint, or
   * since its start when it had none, and rejoins at round `k`.
   */
  private restartAt(k: number): void {
    const { store, runId, signature, model, optimizer } = this.d;
    const ck = store?.load({ runId, signature, size: model.size });
    this.restarts++;
    if (ck) {
      this.applyCheckpoint(ck);
      this.roundsSkipped += k - (ck.round + 1);
      this.d.log?.(`restarted at round ${k} from checkpoint of round ${ck.round}`);
      return;
    }
    writeFlat(model, this.initial.weights);
    const zero = optimizer.getState();
    for (const v of Object.values(zero)) v.fill(0);
    optimizer.setState(zero);
    this.swa = new SwaAverage();
    this.mass = 1;
    this.d.trainer.setRngState(this.initial.rng);
    this.roundsSkipped += k;
    this.d.log?.(`restarted at round ${k} from scratch (no checkpoint yet)`);
  }

  async run(signal: AbortSignal): Promise<NodeResult> {
    const { cfg, id, faults } = this.d;
    const rounds = cfg.run.rounds;
    let k = await this.catchUp(this.firstRound, signal);
    let last = this.firstRound - 1;
    let down = false;
    // A planned late join is counted in the node's first round record, a planned leave in its
    // last one (the round before it leaves).
    if (this.resumedFrom < 0 && this.firstRound > 0) this.d.counters.fault('join');
    /** Simulator: the round an emulated stall began, while it lasts. */
    let stalledFrom: number | undefined;
    for (; k < rounds && !signal.aborted; k++) {
      if (faults.stallAt(id, k) > 0 && !faults.emulateCrashes) {
        this.freeze(faults.stallAt(id, k));
        await this.listenAfterStall(signal);
      } else if (this.d.liveness && this.lastRoundMs > 2 * this.d.cfg.gossip.deadlineMs) {
        await this.listenAfterStall(signal);
      }
      if (faults.emulateCrashes && faults.stalledIn(id, k)) {
        // The simulator's stall: the node sits out these rounds (the others do not expect it),
        // then comes back where the run is, as a real node learns from heartbeats.
        stalledFrom ??= k;
        continue;
      }
      let caughtUpFrom: number | undefined;
      if (stalledFrom !== undefined) {
        this.d.counters.fault('stall');
        caughtUpFrom = stalledFrom;
        this.catchUps++;
        this.roundsCaughtUp += k - stalledFrom;
        stalledFrom = undefined;
      }
      const target = this.catchUpTarget(k);
      if (target !== undefined && target > k) {
        caughtUpFrom ??= k;
        this.catchUps++;
        this.roundsCaughtUp += target - k;
        this.d.log?.(`behind the run: catching up from round ${k} to ${target}`);
        k = target;
        this.announceJoin(k);
      }
      const leave = faults.leaveRound(id);
      if (leave !== undefined && k >= leave) break;
      if (leave === k + 1) this.d.counters.fault('leave');
      if (faults.emulateCrashes && faults.crashedIn(id, k)) {
        down = true;
        continue;
      }
      if (down) {
        down = false;
        this.restartAt(k);
      }
      await this.round(k, signal, caughtUpFrom);
      last = k;
    }
    if (last >= 0 && this.d.store && !signal.aborted) this.checkpoint(last);
    await this.d.transport
      .publishControl({
        type: 'leave',
        node: id,
        round: last,
        status: signal.aborted ? 'aborted' : 'done',
      })
      .catch(() => {});
    return this.result(last);
  }

  /**
   * A planned stall in a real process: block the whole thread (no timers, no network reads, like
   * SIGSTOP) for `rounds` of this node's typical rounds (the median of those it ran, 1 s before
   * any).
   */
  private freeze(rounds: number): void {
    const sorted = [...this.roundTimes].sort((a, b) => a - b);
    const typical = sorted[Math.floor(sorted.length / 2)] ?? 1000;
    const ms = Math.round(rounds * typical);
    this.d.counters.fault('stall');
    this.d.log?.(`stalling for ${ms} ms (${rounds} rounds)`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  }

  /**
   * The last round took far longer than any deadline allows: this node was most likely paused
   * (SIGSTOP, a starved CPU), and what it knows of the others is that old. Listen until at least
   * half of them have been heard from since (frames or heartbeats), for at most one deadline, so
   * the catch-up that follows jumps to where the run is now rather than where it was.
   */
  private async listenAfterStall(signal: AbortSignal): Promise<void> {
    const since = performance.now();
    const until = since + this.deadline.current();
    const others = this.d.cfg.nodes - 1;
    const heard = () => [...this.lastSeen.values()].filter((t) => t >= since).length;
    while (heard() * 2 < others && performance.now() < until && !signal.aborted) {
      await sleep(20, undefined, { signal }).catch(() => {});
    }
    this.lastRoundMs = 0;
  }

  /**
   * After a restart (or a late join), wait briefly for neighbours' heartbeats and jump to the round
   * they are in, so this node rejoins the current round instead of replaying old ones alone.
   */
  private async catchUp(start: number, signal: AbortSignal): Promise<number> {
    if (start === 0) return 0;
    const until = performance.now() + Math.min(this.d.cfg.gossip.deadlineMs, 5000);
    while ((this.runRound() ?? -1) < start && performance.now() < until && !signal.aborted) {
      await sleep(20, undefined, { signal }).catch(() => {});
    }
    // A node resumed past its last round stays there; one behind jumps, at most to the last round.
    const target = Math.max(start, Math.min(this.runRound() ?? -1, this.d.cfg.run.rounds - 1));
    if (target > start) {
      this.roundsSkipped += target - start;
      this.d.log?.(`catching up: skipping rounds ${start}..${target - 1}`);
    }
    this.announceJoin(target);
    return target;
  }

  /**
   * After the last round: resolves once each of `neighbours` has announced its end (a leave) or is
   * `gone` (no connection), or after `ms`. A node that finished keeps its host up meanwhile: a
   * neighbour may not yet have read the receipt of the last frame this node took from it, and a host
   * that closes resets the stream under that receipt, so the neighbour counted a frame that arrived
   * as a failed send (a 64-node launch at K = 16: every failed send of its last round).
   */
  async untilNeighboursLeft(
    neighbours: readonly number[],
    gone: (node: number) => boolean,
    ms: number,
    signal: AbortSignal,
  ): Promise<void> {
    const until = performance.now() + ms;
    const waiting = () => neighbours.some((j) => !this.peers.isDone(j) && !gone(j));
    while (waiting() && performance.now() < until && !signal.aborted) {
      await sleep(20, undefined, { signal }).catch(() => {});
    }
  }

  /** Round k; `caughtUpFrom` is the round this node jumped from to get here, if it did. */
  private async round(k: number, signal: AbortSignal, caughtUpFrom?: number): Promise<void> {
    const { cfg, id, model, counters, faults, plan } = this.d;
    const tRound = performance.now();
    this.previousRoundStart = this.roundStart;
    this.roundStart = tRound;
    const rounds = cfg.run.rounds;
    const swaSpec = cfg.swa.enabled
      ? { start: cfg.swa.start, cycle: cfg.swa.cycle, lr2: cfg.swa.lr2, settle: cfg.swa.settle }
      : undefined;
    const schedule =
      cfg.train.schedule === 'step'
        ? { kind: 'step' as const, every: cfg.train.stepEvery, gamma: cfg.train.stepGamma }
        : { kind: cfg.train.schedule };
    const lr = learningRate(schedule, cfg.train.lr, k, rounds, swaSpec);

    // 1. Train (a straggler takes `factor` times as long: it sleeps the difference), except in
    // the consensus finish's gossip-only rounds (their record's trainLoss is NaN, null in JSON).
    const t0 = performance.now();
    const gossipOnly = isGossipOnlyRound(cfg.gossip.finish, k, rounds, swaSpec);
    const xStart = (this.qg || this.gt) && !gossipOnly ? readFlat(model) : undefined;
    // Awaited: the batched simulator's trainer answers once every node's steps are trained.
    const loss = gossipOnly
      ? Number.NaN
      : (await this.d.trainer.train(cfg.train.localSteps, lr)).loss;
    const factor = faults.stragglerFactor(id);
    if (factor > 1) {
      // The simulator's timing does not change its results; sleeping there would only waste time
      // (its asynchronous mode accounts for stragglers in simulated time, see run/simclock.ts).
      if (this.d.liveness) {
        await sleep((factor - 1) * (performance.now() - t0), undefined, { signal }).catch(() => {});
      }
      counters.fault('straggler');
    }
    const trainMs = performance.now() - t0;

    // 2. Topology of round k: the same on every node, from the shared seed.
    const rt = roundTopology(plan, cfg.run.seed, k);
    const neighbours = neighboursAt(rt, id).filter((j) => faults.present(j, k));
    const degreeOf = (j: number) => neighboursAt(rt, j).filter((n) => faults.present(n, k)).length;

    // 3. Exchange.
    const x = readFlat(model);
    const byz = faults.byzantine(id);
    const frame = this.frame.pack({
      model: x,
      ...(this.gt && { tracker: this.gt.tracker(x, xStart, lr, cfg.train.localSteps) }),
      ...(this.frame.has('swa') && { swa: this.swa.average }),
    });
    const payload = byz ? corruptWeights(frame, byz, cfg.run.seed, id, k) : frame;
    // Counted every round it is in force, label flip included (it poisons this round's training).
    if (byz) counters.fault(`byzantine-${byz.behaviour}`);
    const share =
      cfg.gossip.mixing === 'push-sum'
        ? pushSumShare(this.mass, neighbours.length, this.expectedLoss())
        : 1;
    const deadlineMs = this.d.liveness ? this.deadline.current() : cfg.gossip.deadlineMs;
    const lag = this.behindBy();
    const async = cfg.gossip.sync === 'async';
    // Async: models from `oldest` on may be mixed; wait only for a neighbour without one.
    const oldest = Math.max(0, k - cfg.gossip.staleness);
    const since = async ? Math.min(oldest, caughtUpFrom ?? oldest) : caughtUpFrom;
    const wanted = (j: number) =>
      !this.peers.settled(j, k, lag, this.freshSince()) && !(async && this.fresh.has(j, oldest));
    const waitFor = this.believedAlive(neighbours).filter(wanted);
    const ex = await exchange(this.d.transport, counters, k, neighbours, payload, {
      mass: share,
      deadlineMs,
      waitFor,
      ...(async && { graceMs: 0 }),
      ...(since !== undefined && { since }),
      onWaiting: (waive, expect) => {
        this.waiting = { round: k, waive, expect, wanted };
      },
      boundSends: this.d.liveness ?? false,
      signal,
      ...(this.d.log && { log: this.d.log }),
    });
    this.waiting = undefined;
    if (this.d.liveness) {
      this.deadline.observe(ex.collectMs, ex.collected.ended === 'deadline', deadlineMs);
    }
    for (const m of ex.collected.received) {
      this.lastSeen.set(m.from, performance.now());
      this.peers.heard(m.from, m.round);
    }

    // 4. Mix.
    const t1 = performance.now();
    if (async) this.fresh.keep(ex.collected.received);
    // gossip.pairwise: only the edges that went through both ways are mixed (lockstep only).
    const mixable = cfg.gossip.pairwise
      ? bothWays(ex.collected.received, ex.outcomes)
      : ex.collected.received;
    const received = async
      ? this.fresh.usable(neighbours, caughtUpFrom ?? oldest)
      : this.frame.parts(mixable, 'model');
    const disagreement =
      received.length === 0
        ? null
        : received.reduce((s, m) => s + rmsDistance(x, m.weights), 0) / received.length;
    const reclaimed = ex.outcomes.filter((o) => o.outcome.status !== 'delivered').length;
    const mixInput = {
      x,
      received,
      degree: neighbours.length,
      degreeOf,
      alpha: plan.alpha,
      mass: this.mass,
      reclaimed,
      expectedLoss: this.expectedLoss(),
    };
    const mixed = this.mixer.mix(mixInput);
    writeFlat(model, mixed.x);
    this.mass = mixed.mass;
    if (xStart && this.qg) {
      const qgLr = quasiGlobalRate(schedule, cfg.train.lr, k, rounds, swaSpec);
      this.qg.end(xStart, mixed.x, qgLr, cfg.train.localSteps);
    }
    this.gt?.end(this.frame.parts(ex.collected.received, 'tracker'), ex.outcomes, (y, trackers) => {
      return this.mixer.mix({ ...mixInput, x: y, received: trackers }).x;
    });
    // swa.gossip: the SWA averages are mixed like the models (those of neighbours that have one).
    const ownSwa = this.frame.has('swa') ? this.swa.average : undefined;
    if (ownSwa) {
      const theirs = this.frame.parts(mixable, 'swa').filter((m) => nonZero(m.weights));
      this.swa.assign(this.mixer.mix({ ...mixInput, x: ownSwa, received: theirs }).x);
    }
    const mixMs = performance.now() - t1;
    // The mixers return fresh vectors: the received ones are dead now. Handing them back lets the
    // transport decode the next round's frames into their memory (no page faults, no promoted
    // garbage for V8's full collections; see net/pool.ts).
    if (!async) for (const m of ex.collected.received) this.d.transport.recycle?.(m.weights);

    // 5. SWA: collect at the last round of each cycle (gossiped above with swa.gossip only).
    if (swaSpec && isSwaCollectRound(swaSpec, k, rounds)) this.swa.update(mixed.x);

    // 6. Evaluate.
    const t2 = performance.now();
    let accuracy: number | undefined;
    let testLoss: number | undefined;
    let swaAccuracy: number | undefined;
    if (isEvalRound(cfg.eval, k, rounds)) {
      // Once per SWA average: it changes only at collections (SwaAverage.once).
      const evaluator = this.d.evaluator;
      const [ev, swaEv] = evaluator
        ? await Promise.all([evaluator(readFlat(model)), this.swa.once(evaluator)])
        : [
            evaluate(model, this.d.test, cfg.eval.batchSize),
            this.swa.once((avg) => evaluateFlat(model, avg, this.d.test, cfg.eval.batchSize)),
          ];
      accuracy = ev.accuracy;
      testLoss = ev.loss;
      this.lastAccuracy = accuracy;
      if (swaEv) {
        swaAccuracy = swaEv.accuracy;
        this.lastSwaAccuracy = swaAccuracy;
      }
      if (isTailRound(cfg.eval.tail, k, rounds)) {
        this.tail.accuracy.add(accuracy);
        this.tail.swaAccuracy.add(swaAccuracy);
      }
    }
    const evalMs = performance.now() - t2;
    const flatness = this.flatness?.measure(k, this.swa.average);

    // 7. Checkpoint.
    const t3 = performance.now();
    this.roundsDone++;
    if (this.d.store && (k + 1) % cfg.checkpoint.every === 0 && k !== rounds - 1)
      this.checkpoint(k);
    const checkpointMs = performance.now() - t3;

    // 8. Report.
    const tallies = counters.take();
    addCounts(this.totals, tallies.messages);
    this.bytesSent += tallies.bytesSent;
    this.bytesReceived += tallies.bytesReceived;
    for (const [f, n] of Object.entries(tallies.faults))
      this.faultTotals[f] = (this.faultTotals[f] ?? 0) + n;
    const record: RoundRecord = {
      node: id,
      round: k,
      time: Date.now(),
      lr,
      trainLoss: loss,
      ...(gossipOnly && { gossipOnly }),
      ...(accuracy !== undefined && { accuracy, testLoss }),
      ...(swaAccuracy !== undefined && { swaAccuracy }),
      swaCount: this.swa.count,
      phases: {
        trainMs,
        exchangeMs: ex.ms,
        waitMs: ex.waitMs,
        mixMs,
        evalMs,
        checkpointMs,
        roundMs: performance.now() - tRound,
      },
      deadlineMs,
      collectEnded: ex.collected.ended ?? 'complete',
      ...(caughtUpFrom !== undefined && {
        catchUp: { from: caughtUpFrom, skipped: k - caughtUpFrom },
      }),
      ...(async && {
        staleness: received.reduce((s, m) => Math.max(s, k - m.round), 0),
      }),
      neighbours,
      heard: received.map((m) => m.from).sort((a, b) => a - b),
      ...(mixed.robust && { robust: mixed.robust }),
      disagreement,
      ...tallies,
      ...(this.d.liveness && {
        heartbeats: this.heartbeats,
        heartbeatsFrom: [...this.heartbeatsFrom].sort((a, b) => a - b),
      }),
      ...(cfg.gossip.mixing === 'push-sum' && { mass: this.mass }),
      ...(flatness && { flatness }),
      rssMB: Math.round(process.memoryUsage.rss() / 1e6),
      numTensors: tf.memory().numTensors,
    };
    this.heartbeats = 0;
    this.heartbeatsFrom.clear();
    this.lastRoundMs = record.phases.roundMs;
    this.roundTimes.push(this.lastRoundMs);
    if (this.roundTimes.length > 20) this.roundTimes.shift();
    this.d.sink.record(record);
    await this.d.transport
      .publishControl({
        type: 'heartbeat',
        node: id,
        round: k,
        status: 'running',
        ...(this.lastAccuracy !== null && { accuracy: this.lastAccuracy }),
      })
      .catch(() => {});
  }

  private checkpoint(k: number): void {
    const { store, runId, signature, model, optimizer, trainer } = this.d;
    if (!store) return;
    const rng = trainer.getRngState();
    const state: CheckpointState = {
      runId,
      signature,
      round: k,
      weights: readFlat(model),
      optimizer: optimizer.getState(),
      swa: { count: this.swa.count, mean: this.swa.state().mean },
      mass: this.mass,
      rng: { trainer: [...rng.passStart, rng.cursor] },
      extra: {
        clip: this.mixer.clipState(),
        tail: [this.tail.accuracy.state(), this.tail.swaAccuracy.state()],
        roundsDone: this.roundsDone,
        totals: this.totals,
      },
    };
    store.save(state);
  }

  private result(last: number): NodeResult {
    return {
      id: this.d.id,
      roundsCompleted: this.roundsDone,
      lastRound: last,
      resumedFrom: this.resumedFrom,
      roundsSkipped: this.roundsSkipped,
      restarts: this.restarts,
      catchUps: this.catchUps,
      roundsCaughtUp: this.roundsCaughtUp,
      accuracy: this.lastAccuracy,
      swaAccuracy: this.lastSwaAccuracy,
      tailAccuracy: this.tail.accuracy.mean,
      tailSwaAccuracy: this.tail.swaAccuracy.mean,
      messages: { ...this.totals },
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      faults: { ...this.faultTotals },
      weights: readFlat(this.d.model),
      swaWeights: this.swa.average,
      ...(this.flatness?.last && { flatness: this.flatness.last }),
    };
  }
}

/** A channel of zeros is a neighbour's empty SWA average (it has not collected yet). */
function nonZero(v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) return true;
  return false;
}
