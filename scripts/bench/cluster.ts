/**
 * A real cluster: `flatmesh launch` (the installed command: dist/src/cli/start.js, so build first)
 * with N node processes on Fashion-MNIST, MLP 784-200-200-10, Dirichlet(0.1), SGD lr 0.05, 10 local
 * steps of 32 per round, no evaluation but at the last round (left out of every figure).
 *
 *   npm run bench -- cluster [--mode matcha|vanilla] [--nodes 16] [--rounds R] [--graph ring-16.json]
 *                            [--codec f32] [--backend wasm] [--steps 10] [--hog N] [--keep DIR]
 *                            [--nodes-per-process K] [--profile] [--flatmesh PATH/start.js]
 *
 * Modes:
 *   matcha   (default, 5 rounds): MATCHA at budget 0.5, Laplacian mixing (flatmesh's own protocol).
 *   vanilla  (20 rounds): every edge every round, Metropolis-Hastings weights: issue 14's
 *            side-by-side config, the protocol decentralizepy runs (ring-16, Fashion-MNIST, MLP
 *            784-200-200-10, Dirichlet 0.1, 10 local SGD steps of 32, lr 0.05, no momentum or weight
 *            decay, 20 rounds, no eval).
 * `--hog N` runs N processes spinning on the CPU beside the cluster for the whole launch (issue 10's
 * "under load": 16 processes on 2 cores with a hog: no failed sends, p90 round time <= 2x median).
 * `--keep DIR` keeps the run directory there (records, node logs, profiles) instead of deleting it.
 * `--nodes-per-process K` launches processes of K nodes each: the CPU and memory figures of a
 * process are then shared out over its K nodes (CPU per node-round, PSS per node).
 * `--profile` runs every node process under V8's CPU profiler (on the plain modules, whose paths
 * name the packages; the profiler adds some CPU of its own, so take CPU figures from a run
 * without it) and prints where the steady rounds' CPU went (scripts/bench/cluster-profile.ts).
 * `--flatmesh PATH` launches another build's command (its dist/src/cli/start.js): an older commit
 * checked out beside this one gives before/after figures from the same bench.
 *
 * Prints JSON lines (suite "cluster"), by kind:
 *   config   the exact experiment, cores, hog processes, load average before and after
 *   startup  launch -> every node connected and in its first round, -> done with it; dials that
 *            failed for good at start-up
 *   rounds   round time per node-round (the records' roundMs) and of the cluster (interval between
 *            the last node finishing round k-1 and round k): median, p90, max; mean of each phase
 *   cpu      CPU (user + system, from /proc) per node-round from the end of round 0 to the end of
 *            the last round before the evaluated one, per node: mean, median, max; the whole run's
 *            CPU per node; the launcher's
 *   messages every message fate summed over the records (sent, delivered, failed, missing, late...)
 *   memory   peak PSS per node (median, max) and the peak of the PSS summed over the node processes
 *            at one instant; the launcher's; peak RSS; live tensors across rounds
 *   overhead (roundMs - trainMs - waitMs) / roundMs per node-round
 *   round    per round: medians over the nodes
 *   profile  (--profile) share of the steady rounds' samples by part of the round, top functions
 *   summary  the figures of issue 14's side-by-side table, in one line
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExperiment } from '../../src/config/index.js';
import { addCounts, emptyCounts, type RoundRecord } from '../../src/node/metrics.js';
import { readSummary } from '../../src/run/launcher.js';
import { aggregateProfiles, steadyWindow } from './cluster-profile.js';
import { ProcSampler, processesMatching } from './lib/proc.js';
import { mean, quantile, round, spread } from './lib/stats.js';

const START = new URL('../../dist/src/cli/start.js', import.meta.url).pathname;
/** A hog spins until its parent (this bench) is gone, or for at most this long. */
const HOG_LIMIT_MS = 30 * 60_000;

export async function run(args: string[]): Promise<void> {
  const opt = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] ? args[i + 1]! : def;
  };
  const mode = opt('mode', 'matcha');
  if (mode !== 'matcha' && mode !== 'vanilla') {
    throw new Error(`--mode: must be matcha or vanilla (got ${mode})`);
  }
  const nodes = Number(opt('nodes', '16'));
  const rounds = Number(opt('rounds', mode === 'vanilla' ? '20' : '5'));
  const steps = Number(opt('steps', '10'));
  const graph = opt('graph', nodes === 16 ? 'ring-16.json' : 'ring');
  const codec = opt('codec', 'f32');
  const backend = opt('backend', 'wasm');
  const hogs = Number(opt('hog', '0'));
  const keep = opt('keep', '');
  const perProcess = Number(opt('nodes-per-process', '1'));
  const profile = args.includes('--profile');
  const command = opt('flatmesh', START);
  // The experiment as given (defaults left out): an older build (--flatmesh) applies its own, and
  // would refuse fields its schema does not know yet.
  const experiment = {
    nodes,
    run: { seed: 1, rounds },
    topology:
      mode === 'vanilla'
        ? { graph, sampler: 'vanilla' }
        : { graph, sampler: 'matcha', budget: 0.5 },
    data: { dataset: 'fashion-mnist', partition: 'dirichlet:0.1' },
    model: { kind: 'mlp', hidden: [200, 200] },
    // Vanilla: plain SGD as decentralizepy runs it (flatmesh's default weight decay is 4e-4).
    train: {
      optimizer: 'sgd',
      lr: 0.05,
      batchSize: 32,
      localSteps: steps,
      ...(mode === 'vanilla' && { weightDecay: 0, momentum: 0 }),
    },
    gossip: { codec, deadlineMs: 30_000, ...(mode === 'vanilla' && { mixing: 'metropolis' }) },
    // Evaluate only at the last round (the schema always evaluates there); the figures below leave
    // that round out, so they are of rounds without evaluation.
    // No tail: the tail means would evaluate the last 5 rounds (eval.tail's default). The last
    // round's evaluation, on 1,000 test images: left out of the figures, it only adds wall time
    // (with 64 nodes, minutes of it on 10,000).
    eval: { every: 1_000_000, tail: 0, limit: 1000 },
    checkpoint: { every: 1_000_000 },
    backend,
  };
  const cfg = parseExperiment(experiment);
  const out = keep || mkdtempSync(join(tmpdir(), 'flatmesh-bench-cluster-'));
  mkdirSync(out, { recursive: true });
  emit({
    kind: 'config',
    mode,
    nodes,
    rounds,
    graph,
    sampler: cfg.topology.sampler,
    mixing: cfg.gossip.mixing,
    dataset: cfg.data.dataset,
    partition: cfg.data.partition,
    model: 'mlp 784-200-200-10',
    optimizer: cfg.train.optimizer,
    lr: cfg.train.lr,
    momentum: cfg.train.momentum,
    weightDecay: cfg.train.weightDecay,
    batchSize: cfg.train.batchSize,
    localSteps: cfg.train.localSteps,
    codec,
    backend,
    hogProcesses: hogs,
    nodesPerProcess: perProcess,
    profile,
    flatmesh: command,
    cores: cpus().length,
    loadavgBefore: loadavg().map((x) => round(x, 2)),
  });

  const hogProcs: ChildProcess[] = [];
  let launcherPid: number | undefined;
  const sampler = new ProcSampler(() => [
    ...processesMatching([out, perProcess > 1 ? ' node-group ' : ' node ']),
    ...(launcherPid !== undefined ? [{ pid: launcherPid }] : []),
  ]);
  try {
    for (let i = 0; i < hogs; i++) {
      hogProcs.push(spawn(process.execPath, ['-e', hogSource(HOG_LIMIT_MS)], { stdio: 'ignore' }));
    }
    // The installed command, as a user runs it (the bundle and its code cache: `npm run build`).
    const expFile = join(out, 'experiment.json');
    writeFileSync(expFile, JSON.stringify(experiment));
    const t0 = Date.now();
    sampler.start(250);
    const code = await new Promise<number | null>((done) => {
      const child = spawn(
        process.execPath,
        [
          command,
          'launch',
          '--config',
          expFile,
          '--out',
          join(out, 'run'),
          '--quiet',
          ...(perProcess > 1 ? ['--nodes-per-process', String(perProcess)] : []),
        ],
        {
          stdio: ['ignore', 'ignore', 'inherit'],
          ...(profile && {
            env: {
              ...process.env,
              FLATMESH_NO_BUNDLE: '1',
              FLATMESH_NODE_ARGS: `--cpu-prof --cpu-prof-dir=${join(out, 'prof')}`,
            },
          }),
        },
      );
      launcherPid = child.pid;
      child.once('exit', (c) => done(c));
    });
    sampler.stop();
    const wallS = (Date.now() - t0) / 1000;
    if (code !== 0) throw new Error(`flatmesh launch exited with ${code}`);
    const summary = readSummary(join(out, 'run'));
    const records: RoundRecord[] = Array.from({ length: nodes }, (_, i) =>
      readFileSync(join(out, 'run', 'nodes', String(i), 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as RoundRecord),
    ).flat();
    const lastRound = rounds - 1;

    // Startup: launch -> every node done with round 0 (so in round 1), and with round 1.
    const doneBy = (k: number) => {
      const ts = records.filter((r) => r.round === k).map((r) => r.time);
      return ts.length === nodes ? Math.max(...ts) - t0 : null;
    };
    const startup = emit({
      kind: 'startup',
      // From the launcher's own clock (summary.json): every node connected to its neighbours and
      // in its first round (flatmesh numbers rounds from 0), and every node done with it.
      allConnectedMs: ms(summary.startup?.allConnectedSeconds),
      allFirstRoundDoneMs: ms(summary.startup?.allFirstRoundSeconds),
      // From the records' clocks, measured here from before the command started.
      firstNodeDoneRound0Ms:
        Math.min(...records.filter((r) => r.round === 0).map((r) => r.time)) - t0,
      allDoneRound0Ms: doneBy(0),
      allDoneRound1Ms: doneBy(1),
      meanRound0Ms: round(mean(records.filter((r) => r.round === 0).map((r) => r.phases.roundMs))),
      // Dials to a neighbour that failed for good at start-up (after their retries), from the logs.
      dialFailures: dialFailures(join(out, 'run', 'nodes')),
      wallSeconds: round(wallS),
      completed: summary.completed,
    });

    // Steady state: after round 0 (which absorbs start-up skew between nodes) and before the
    // evaluated last round.
    const steady = records.filter((r) => r.round >= 1 && r.round < lastRound);
    const phase = (k: keyof RoundRecord['phases']) => round(mean(steady.map((r) => r.phases[k])));
    const lastDone = (k: number) =>
      Math.max(...records.filter((r) => r.round === k).map((r) => r.time));
    const clusterRounds: number[] = [];
    for (let k = 1; k < lastRound; k++) clusterRounds.push(lastDone(k) - lastDone(k - 1));
    const roundTimes = emit({
      kind: 'rounds',
      rounds: `1..${lastRound - 1}`,
      records: steady.length,
      roundMs: spread(steady.map((r) => r.phases.roundMs)),
      clusterRoundMs: spread(clusterRounds),
      trainMs: phase('trainMs'),
      exchangeMs: phase('exchangeMs'),
      waitMs: phase('waitMs'),
      sendMs: round(mean(steady.map((r) => r.phases.exchangeMs - r.phases.waitMs))),
      mixMs: phase('mixMs'),
      checkpointMs: phase('checkpointMs'),
      otherMs: round(
        mean(
          steady.map(
            (r) =>
              r.phases.roundMs -
              r.phases.trainMs -
              r.phases.exchangeMs -
              r.phases.mixMs -
              r.phases.evalMs -
              r.phases.checkpointMs,
          ),
        ),
      ),
    });

    // CPU per node-round over the same rounds: the process's CPU time at the end of round 0 and at
    // the end of round lastRound - 1 (the last of its nodes to get there), interpolated between
    // the 250 ms samples, over its nodes.
    const perNodeRound: number[] = [];
    const wholeRun: number[] = [];
    let launcherCpuMs: number | null = null;
    for (const [pid, t] of sampler.tracks) {
      const last = t.cpu[t.cpu.length - 1]?.[1] ?? 0;
      const mine = t.nodes;
      if (mine === undefined) {
        launcherCpuMs = pid === launcherPid ? last : launcherCpuMs;
        continue;
      }
      wholeRun.push(last / mine.length);
      const at = (k: number) => {
        const ts = records.filter((r) => mine.includes(r.node) && r.round === k).map((r) => r.time);
        return ts.length === mine.length ? Math.max(...ts) : undefined;
      };
      const from = at(0);
      const to = at(lastRound - 1);
      if (from === undefined || to === undefined || lastRound < 2) continue;
      const c0 = sampler.cpuMsAt(pid, from);
      const c1 = sampler.cpuMsAt(pid, to);
      if (c0 === undefined || c1 === undefined) continue;
      for (const _ of mine) perNodeRound.push((c1 - c0) / (lastRound - 1) / mine.length);
    }
    const cpu = emit({
      kind: 'cpu',
      rounds: `1..${lastRound - 1}`,
      nodesMeasured: perNodeRound.length,
      cpuPerNodeRoundMs: {
        mean: round(mean(perNodeRound)),
        ...spread(perNodeRound),
      },
      // Wall time of training (it includes waiting for a core while 16 processes share 2).
      trainWallMsPerNodeRound: phase('trainMs'),
      cpuPerNodeWholeRunS: round(mean(wholeRun) / 1000, 2),
      launcherCpuS: launcherCpuMs === null ? null : round(launcherCpuMs / 1000, 2),
    });

    const totals = emptyCounts();
    for (const r of records) addCounts(totals, r.messages);
    const steadyTotals = emptyCounts();
    for (const r of steady) addCounts(steadyTotals, r.messages);
    const messages = emit({
      kind: 'messages',
      ...totals,
      failedSends: totals.failed,
      failedRate: totals.sent ? round(totals.failed / totals.sent, 4) : 0,
      steadyFailed: steadyTotals.failed,
      steadyMissing: steadyTotals.missing,
      streamResets: records.reduce(
        (n, r) => n + Object.values(r.streamResets).reduce((a, b) => a + (b ?? 0), 0),
        0,
      ),
    });

    const nodeTracks = [...sampler.tracks.values()].filter((t) => t.nodes !== undefined);
    const launcher = launcherPid === undefined ? undefined : sampler.tracks.get(launcherPid);
    const byNode = new Map<number, RoundRecord[]>();
    for (const r of records) byNode.set(r.node, [...(byNode.get(r.node) ?? []), r]);
    const tensorGrowth = [...byNode.values()].map((rs) => {
      const t = rs.filter((r) => r.round >= 1).map((r) => r.numTensors);
      return t.length ? Math.max(...t) - Math.min(...t) : 0;
    });
    // Per node: a process's figure over its nodes.
    const pss = nodeTracks.map((t) => t.peakPssMB / t.nodes!.length);
    const rss = nodeTracks.map((t) => t.peakRssMB / t.nodes!.length);
    const memory = emit({
      kind: 'memory',
      processesSampled: nodeTracks.length,
      peakPssMBPerProcessMax: round(Math.max(0, ...nodeTracks.map((t) => t.peakPssMB))),
      peakPssMBMedian: round(quantile(pss, 0.5)),
      peakPssMBMax: round(Math.max(0, ...pss)),
      // Sampled every second: the peak of the sum at one instant (not the sum of the peaks), over
      // the node processes and the launcher.
      peakTotalPssMB: round(sampler.peakTotalPssMB),
      launcherPeakPssMB: launcher ? round(launcher.peakPssMB) : null,
      peakRssMBMedian: round(quantile(rss, 0.5)),
      peakRssMBMax: round(Math.max(0, ...rss)),
      recordRssMBMax: round(Math.max(0, ...records.map((r) => r.rssMB))),
      // A record's numTensors is its process's: with K nodes a process it counts their tensors
      // in flight too, so it says nothing of one node's hygiene.
      numTensorsGrowthMax: perProcess > 1 ? null : Math.max(0, ...tensorGrowth),
    });

    const frac = steady.map(
      (r) => (r.phases.roundMs - r.phases.trainMs - r.phases.waitMs) / r.phases.roundMs,
    );
    emit({
      kind: 'overhead',
      records: steady.length,
      overheadMedian: round(quantile(frac, 0.5), 3),
      overheadP90: round(quantile(frac, 0.9), 3),
      overheadMean: round(mean(frac), 3),
    });

    for (let k = 0; k < rounds; k++) {
      const rs = records.filter((r) => r.round === k);
      const med = (f: (r: RoundRecord) => number, digits = 1) =>
        round(quantile(rs.map(f), 0.5), digits);
      emit({
        kind: 'round',
        round: k,
        overheadMedian: med(
          (r) => (r.phases.roundMs - r.phases.trainMs - r.phases.waitMs) / r.phases.roundMs,
          3,
        ),
        roundMs: med((r) => r.phases.roundMs),
        trainMs: med((r) => r.phases.trainMs),
        waitMs: med((r) => r.phases.waitMs),
        sendMs: med((r) => r.phases.exchangeMs - r.phases.waitMs),
        evalMs: med((r) => r.phases.evalMs),
        failed: rs.reduce((n, r) => n + r.messages.failed, 0),
      });
    }
    if (profile) {
      const { fromMs, toMs } = steadyWindow(join(out, 'run'));
      emit({ kind: 'profile', ...aggregateProfiles(join(out, 'prof'), fromMs, toMs) });
    }
    const perNode = roundTimes.roundMs as ReturnType<typeof spread>;
    emit({
      kind: 'summary',
      nodes,
      nodesPerProcess: perProcess,
      mode,
      hogProcesses: hogs,
      profiled: profile,
      cpuPerNodeRoundMs: (cpu.cpuPerNodeRoundMs as { mean: number }).mean,
      roundMsMedian: perNode.median,
      roundMsP90: perNode.p90,
      clusterRoundMs: roundTimes.clusterRoundMs,
      peakPssMBPerNode: memory.peakPssMBMedian,
      peakTotalPssMB: memory.peakTotalPssMB,
      launcherPeakPssMB: memory.launcherPeakPssMB,
      failedSends: messages.failedSends,
      launchToAllInRound0Ms: startup.allConnectedMs,
      launchToAllDoneRound0Ms: startup.allFirstRoundDoneMs,
      dialFailures: startup.dialFailures,
      wallSeconds: startup.wallSeconds,
    });
    emit({ kind: 'done', loadavgAfter: loadavg().map((x) => round(x, 2)) });
  } finally {
    sampler.stop();
    for (const h of hogProcs) h.kill('SIGKILL');
    if (!keep) rmSync(out, { recursive: true, force: true });
  }
}

function emit<T extends Record<string, unknown>>(o: T): T {
  process.stdout.write(`${JSON.stringify({ suite: 'cluster', ...o })}\n`);
  return o;
}

/**
 * A CPU hog: spins, and every ~10^7 iterations exits if its parent is gone (so a killed bench
 * leaves none behind) or `limitMs` has passed.
 */
function hogSource(limitMs: number): string {
  return `const p=process.ppid,end=Date.now()+${limitMs};for(let i=1;;i++){if(i%1e7===0&&(process.ppid!==p||Date.now()>end))process.exit(0)}`;
}

function dialFailures(nodesDir: string): number {
  let n = 0;
  for (const node of readdirSync(nodesDir)) {
    const log = join(nodesDir, node, 'node.log');
    if (existsSync(log)) n += readFileSync(log, 'utf8').match(/\bdial \d+ failed\b/g)?.length ?? 0;
  }
  return n;
}

function ms(seconds: number | null | undefined): number | null {
  return seconds === null || seconds === undefined ? null : Math.round(seconds * 1000);
}
