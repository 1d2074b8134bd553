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
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as tf from '@tensorflow/tfjs';
import type { Experiment } from '../config/schema.js';
import type { Dataset } from '../data/types.js';
import { corruptWeights } from '../faults/byzantine.js';
import type { FaultPlan } from '../faults/plan.js';
import { pushSumShare, rmsDistance } from '../gossip/mixing.js';
import {
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
  type RoundTrainer,
  readFlat,
  SwaAverage,
  TailMean,
  writeFlat,
} from '../learn/index.js';
import type { ControlMessage, Transport } from '../net/transport.js';
import { neighboursAt, roundTopology } from '../topology/schedule.js';
import type { MatchaPlan } from '../topology/types.js';
import type { CheckpointSink, CheckpointState } from './checkpoint.js';
import { exchange } from './exchange.js';
import {
  addCounts,
  emptyCounts,
  type MessageCounts,
  type MetricsSink,
  type NodeCounters,
  type RoundRecord,
} from './metrics.js';
import { Mixer } from './mix.js';

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
  counters: NodeCounters;
  sink: MetricsSink;
  store?: CheckpointSink;
  log?: (msg: string) => void;
  /**
   * Real runs: stop waiting early for neighbours that look dead (no heartbeat or frame for twice
   * the deadline or twice a round, whichever is longer), so a crashed peer does not stall every
   * round it is scheduled in. Their frames are still accepted while the round lasts. Off in the
   * simulator, whose timing must not change results.
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
}

export class NodeRuntime {
  private readonly d: NodeDeps;
  private readonly mixer: Mixer;
  private readonly qg: QuasiGlobalMomentum | undefined;
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
  /** Highest round any other node reported in a heartbeat. */
  private observedRound = -1;
  /** When each peer was last heard from (heartbeat or frame), and this node's last round time. */
  private readonly lastSeen = new Map<number, number>();
  private readonly startedAt = performance.now();
  private lastRoundMs = 0;
  private readonly totals = emptyCounts();
  private bytesSent = 0;
  private bytesReceived = 0;
  private readonly faultTotals: Record<string, number> = {};

  constructor(deps: NodeDeps) {
    this.d = deps;
    this.mixer = new Mixer(deps.cfg.gossip);
    if (deps.cfg.train.quasiGlobalMomentum)
      this.qg = new QuasiGlobalMomentum(deps.optimizer, deps.cfg.train.momentum);
    this.restore();
  }

  /** Feed control messages (heartbeats) from the transport here. */
  onControl(msg: ControlMessage): void {
    if (msg.node === this.d.id || msg.type !== 'heartbeat') return;
    this.observedRound = Math.max(this.observedRound, msg.round);
    this.lastSeen.set(msg.node, performance.now());
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
    const silentFor = 2 * Math.max(this.d.cfg.gossip.deadlineMs, this.lastRoundMs);
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
    for (; k < rounds && !signal.aborted; k++) {
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
      await this.round(k, signal);
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
   * After a restart (or a late join), wait briefly for neighbours' heartbeats and jump to the round
   * they are in, so this node rejoins the current round instead of replaying old ones alone.
   */
  private async catchUp(start: number, signal: AbortSignal): Promise<number> {
    if (start === 0) return 0;
    const until = performance.now() + Math.min(this.d.cfg.gossip.deadlineMs, 5000);
    while (this.observedRound < start - 1 && performance.now() < until && !signal.aborted) {
      await sleep(20, undefined, { signal }).catch(() => {});
    }
    const target = Math.max(start, this.observedRound);
    if (target > start) {
      this.roundsSkipped += target - start;
      this.d.log?.(`catching up: skipping rounds ${start}..${target - 1}`);
    }
    return target;
  }

  private async round(k: number, signal: AbortSignal): Promise<void> {
    const { cfg, id, model, counters, faults, plan } = this.d;
    const tRound = performance.now();
    const rounds = cfg.run.rounds;
    const swaSpec = cfg.swa.enabled
      ? { start: cfg.swa.start, cycle: cfg.swa.cycle, lr2: cfg.swa.lr2 }
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
    const xStart = this.qg && !gossipOnly ? readFlat(model) : undefined;
    // Awaited: the batched simulator's trainer answers once every node's steps are trained.
    const loss = gossipOnly
      ? Number.NaN
      : (await this.d.trainer.train(cfg.train.localSteps, lr)).loss;
    const factor = faults.stragglerFactor(id);
    if (factor > 1) {
      await sleep((factor - 1) * (performance.now() - t0), undefined, { signal }).catch(() => {});
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
    const payload = byz ? corruptWeights(x, byz, cfg.run.seed, id, k) : x;
    // Counted every round it is in force, label flip included (it poisons this round's training).
    if (byz) counters.fault(`byzantine-${byz.behaviour}`);
    const share =
      cfg.gossip.mixing === 'push-sum'
        ? pushSumShare(this.mass, neighbours.length, this.expectedLoss())
        : 1;
    const ex = await exchange(this.d.transport, counters, k, neighbours, payload, {
      mass: share,
      deadlineMs: cfg.gossip.deadlineMs,
      waitFor: this.believedAlive(neighbours),
      signal,
      ...(this.d.log && { log: this.d.log }),
    });
    for (const m of ex.collected.received) this.lastSeen.set(m.from, performance.now());

    // 4. Mix.
    const t1 = performance.now();
    const received = ex.collected.received;
    const disagreement =
      received.length === 0
        ? null
        : received.reduce((s, m) => s + rmsDistance(x, m.weights), 0) / received.length;
    const reclaimed = ex.outcomes.filter((o) => o.outcome.status !== 'delivered').length;
    const mixed = this.mixer.mix({
      x,
      received,
      degree: neighbours.length,
      degreeOf,
      alpha: plan.alpha,
      mass: this.mass,
      reclaimed,
      expectedLoss: this.expectedLoss(),
    });
    writeFlat(model, mixed.x);
    this.mass = mixed.mass;
    if (xStart) this.qg?.end(xStart, mixed.x, lr, cfg.train.localSteps);
    const mixMs = performance.now() - t1;
    // The mixers return fresh vectors: the received ones are dead now. Handing them back lets the
    // transport decode the next round's frames into their memory (no page faults, no promoted
    // garbage for V8's full collections; see net/pool.ts).
    for (const m of received) this.d.transport.recycle?.(m.weights);

    // 5. SWA: collect at the last round of each cycle; the average is never gossiped.
    if (swaSpec && isSwaCollectRound(swaSpec, k, rounds)) this.swa.update(mixed.x);

    // 6. Evaluate.
    const t2 = performance.now();
    let accuracy: number | undefined;
    let testLoss: number | undefined;
    let swaAccuracy: number | undefined;
    if (isEvalRound(cfg.eval, k, rounds)) {
      const ev = evaluate(model, this.d.test, cfg.eval.batchSize);
      accuracy = ev.accuracy;
      testLoss = ev.loss;
      this.lastAccuracy = accuracy;
      const avg = this.swa.average;
      if (avg) {
        swaAccuracy = evaluateFlat(model, avg, this.d.test, cfg.eval.batchSize).accuracy;
        this.lastSwaAccuracy = swaAccuracy;
      }
      if (isTailRound(cfg.eval.tail, k, rounds)) {
        this.tail.accuracy.add(accuracy);
        this.tail.swaAccuracy.add(swaAccuracy);
      }
    }
    const evalMs = performance.now() - t2;

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
      neighbours,
      heard: received.map((m) => m.from).sort((a, b) => a - b),
      ...(mixed.robust && { robust: mixed.robust }),
      disagreement,
      ...tallies,
      ...(cfg.gossip.mixing === 'push-sum' && { mass: this.mass }),
      rssMB: Math.round(process.memoryUsage.rss() / 1e6),
      numTensors: tf.memory().numTensors,
    };
    this.lastRoundMs = record.phases.roundMs;
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
    };
  }
}
