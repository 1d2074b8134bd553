/**
 * The launcher: `flatmesh launch`. Spawns one real process per node on 127.0.0.1, builds the roster
 * from the addresses they report, shows live progress, injects process faults (SIGKILL at a round,
 * restart from the checkpoint after a number of rounds), follows faults.onCrash when a node dies
 * unplanned (restart it from its checkpoint, go on without it, or abort), and writes
 * DIR/summary.json from what the nodes report and their final checkpoints, also when the run ends
 * early (`completed: false` and the reason). Ctrl-C stops every node; children exit on their own
 * if the launcher dies. A run never writes into another run's directory (see openRunDir).
 *
 *   const summary = await launch(cfg, { out: 'runs/demo' });
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { initBackend } from '../compute/backend.js';
import { experimentDiff, formatDiff } from '../config/identity.js';
import { parseExperiment } from '../config/load.js';
import type { Experiment } from '../config/schema.js';
import { datasetShape, subset } from '../data/index.js';
import { ConfigError, ExperimentMismatchError, RunError } from '../errors.js';
import type { LiveFault } from '../faults/live.js';
import type { Roster, RosterNode } from '../net/libp2p/host.js';
import {
  type Derived,
  datasetSpec,
  deriveRun,
  prepareRun,
  type RunContext,
  writeDerived,
  writeRunShards,
} from '../node/build.js';
import type { RoundRecord } from '../node/metrics.js';
import { eventLogWriter, type NodeState, RunEvents } from './events.js';
import type { ChildMessage, ParentMessage } from './ipc.js';
import type { LaunchHandle } from './live-control.js';
import { NodeGroups, type NodeHandle, processHandle } from './node-handles.js';
import { Progress } from './progress.js';
import {
  type NodeReport,
  type ProcessEvent,
  type RunSummary,
  type SummaryContext,
  summarizeNodeDirs,
} from './summary.js';

export interface LaunchOptions {
  /** Output directory; default runs/<run id>. */
  out?: string;
  /** Show live progress on stderr (default true). */
  progress?: boolean;
  signal?: AbortSignal;
  /** Called with every round record as nodes report them. */
  onRound?: (r: RoundRecord) => void;
  /** How long all nodes may take to start and report their address (ms, default 60 s). */
  startTimeoutMs?: number;
  /**
   * Continue the run in an existing `out` (same experiment, checked field by field): each node
   * resumes from its checkpoint. Without it an existing, non-empty `out` is refused untouched.
   */
  resume?: boolean;
  /** Called with every process event (crash, restart, failed checkpoint) as it happens. */
  onEvent?: (e: ProcessEvent) => void;
  /**
   * The run's event stream (src/run/events.ts) to emit into, e.g. the dashboard's; default a new
   * one. The progress line and the event log (DIR/events.jsonl) read it.
   */
  events?: RunEvents;
  /** Called once with the handle live control (the dashboard) acts through. */
  onControl?: (handle: LaunchHandle) => void;
  /**
   * Nodes per process (default 1): K > 1 runs the nodes in processes of K
   * (src/run/node-group.ts), each node with its own host, keys, sockets, checkpoints and records.
   */
  nodesPerProcess?: number;
}

/** What a planned crash is in a process of several nodes (the events and summary say so). */
const SOFT_CRASH =
  'soft crash: its host stopped and it wrote nothing more; the other nodes of its process went on';

/**
 * The CLI entry to run children with, matching how this process runs: src/cli/main.ts under tsx,
 * dist/src/cli/main.js compiled, and start.js (the bundle's loader) when this code is the bundle
 * dist/flatmesh.cjs, whose `import.meta.url` is the bundle itself (scripts/bundle.mjs).
 */
function cliEntry(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.cjs')) return join(here, '..', 'src', 'cli', 'start.js');
  return join(here, '..', '..', 'cli', here.endsWith('.ts') ? 'main.ts' : 'main.js');
}

/**
 * Node flags children inherit: loaders (tsx when running from source) and source maps, never the
 * test runner's or inspector's flags. A loader named as a package (`--import tsx`) is resolved
 * from here: Node resolves it from the working directory, where the package may not be.
 */
export function childExecArgv(argv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  const resolved = (spec: string) => {
    if (!/^[@a-z]/i.test(spec) || spec.includes(':')) return spec;
    try {
      return import.meta.resolve(spec);
    } catch {
      return spec;
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (['--import', '--loader', '--experimental-loader'].includes(a) && i + 1 < argv.length) {
      out.push(a, resolved(argv[++i]!));
    } else if (['--require', '-r'].includes(a) && i + 1 < argv.length) {
      out.push(a, argv[++i]!);
    } else if (
      /^--(import|loader|experimental-loader|require)=/.test(a) ||
      a === '--enable-source-maps'
    ) {
      out.push(a);
    }
  }
  return out;
}

/**
 * Extra Node flags for the node processes only, from FLATMESH_NODE_ARGS (space-separated): e.g.
 * `--cpu-prof --cpu-prof-dir=prof` to profile every node, which NODE_OPTIONS does not allow.
 */
function nodeArgsFromEnv(): string[] {
  return (process.env.FLATMESH_NODE_ARGS ?? '').split(' ').filter(Boolean);
}

/**
 * A fresh run id: the time to the second, the seed, and a random suffix, so two launches in the
 * same second never share a directory (or a control topic).
 */
export function launchRunId(cfg: Experiment): string {
  if (cfg.run.id) return cfg.run.id;
  const t = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `run-${t}-s${cfg.run.seed}-${randomBytes(3).toString('hex')}`;
}

/**
 * The run directory, checked before anything is written to it. A new run gets a directory that
 * did not exist (or was empty); nothing of another run is ever overwritten. `resume` continues the
 * run in an existing directory, only under the same experiment (the one in its config.json), and
 * with its run id.
 */
export function openRunDir(
  cfg: Experiment,
  out: string,
  resume: boolean,
  freshId = launchRunId(cfg),
): { cfg: Experiment; runId: string } {
  const cfgFile = join(out, 'config.json');
  if (resume) {
    let stored: Experiment;
    try {
      stored = parseExperiment(JSON.parse(readFileSync(cfgFile, 'utf8')));
    } catch (e) {
      throw new ConfigError(
        '--resume',
        `${out} holds no run to resume (${cfgFile}: ${(e as Error).message})`,
      );
    }
    const diffs = experimentDiff(stored, cfg);
    if (diffs.length > 0)
      throw new ExperimentMismatchError(`run directory ${out}`, diffs, formatDiff(diffs));
    const runId = stored.run.id ?? freshId;
    return { cfg: { ...stored, run: { ...stored.run, id: runId } }, runId };
  }
  createRunDir(out);
  return { cfg: { ...cfg, run: { ...cfg.run, id: freshId } }, runId: freshId };
}

/**
 * Create a directory for a new run: refused (ConfigError on --out, nothing written) when it exists
 * with anything in it; an empty one is used as it is.
 */
export function createRunDir(
  out: string,
  hint = 'choose a new directory, or add --resume to continue the run in it',
): void {
  let entries: string[] | undefined;
  try {
    entries = readdirSync(out);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR')
      throw new ConfigError('--out', 'is a file, not a directory', out);
  }
  const refuse = () => new ConfigError('--out', `already holds files; ${hint}`, out);
  if (entries && entries.length > 0) throw refuse();
  mkdirSync(dirname(out), { recursive: true });
  try {
    if (!entries) mkdirSync(out); // not recursive: of two launches racing for it, one is refused
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw refuse();
    throw e;
  }
}

interface Slot {
  id: number;
  dir: string;
  child?: NodeHandle;
  roster?: RosterNode;
  listenAddr?: string;
  latestRound: number;
  outcome?: NodeReport;
  status: string;
  restarts: number;
  /** Times its process died (planned or not), and restarts after unplanned deaths. */
  crashes: number;
  unplannedRestarts: number;
  /** The last error the node reported before exiting, for the crash record. */
  lastError?: string;
  /** Round at which the planned crash was injected (to restart later), if any. */
  crashedAt?: number;
  exited: Promise<void>;
  /** ms after launch when the node first reported being connected, and done with a round. */
  startedAt?: number;
  firstRoundAt?: number;
  /** The current process has reported its address (so it handles 'stop' messages). */
  listening?: boolean;
}

export async function launch(cfg: Experiment, opts: LaunchOptions = {}): Promise<RunSummary> {
  const t0 = performance.now();
  const perProcess = opts.nodesPerProcess ?? 1;
  if (!Number.isInteger(perProcess) || perProcess < 1) {
    throw new ConfigError(
      '--nodes-per-process',
      `must be an integer of at least 1 (got ${perProcess})`,
    );
  }
  const freshId = launchRunId(cfg);
  const out = resolve(opts.out ?? cfg.run.out ?? join('runs', freshId));
  const { cfg: runCfg, runId } = openRunDir(cfg, out, opts.resume ?? false, freshId);
  const cfgFile = join(out, 'config.json');
  if (!opts.resume) writeFileSync(cfgFile, `${JSON.stringify(runCfg, null, 2)}\n`);
  const shardDir = join(out, 'shards');
  const progress = new Progress(
    cfg.nodes,
    cfg.run.rounds,
    opts.progress === false ? null : process.stderr,
  );
  const logOf = (id: number) => join(out, 'nodes', String(id), 'node.log');
  const stream = opts.events ?? new RunEvents();
  stream.on(eventLogWriter(out));
  stream.on((e) => {
    if (e.type === 'round') progress.record(e.record);
  });
  const nodeState = (slot: Slot, state: NodeState, pid?: number) =>
    stream.emit({
      type: 'node',
      time: Date.now(),
      node: slot.id,
      state,
      round: slot.latestRound,
      ...(pid !== undefined && { pid }),
    });
  /** Faults injected by hand, re-sent to every node that (re)starts. */
  const liveFaults: LiveFault[] = [];
  /** Crashes injected by hand: restarted like planned ones. */
  const liveCrashes: { node: number; restartAfter?: number }[] = [];

  const stop = new AbortController();
  let failure: Error | undefined;
  const onAbort = () => stop.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const slots: Slot[] = Array.from({ length: cfg.nodes }, (_, id) => ({
    id,
    dir: join(out, 'nodes', String(id)),
    latestRound: -1,
    status: 'starting',
    restarts: 0,
    crashes: 0,
    unplannedRestarts: 0,
    exited: Promise.resolve(),
  }));
  const events: ProcessEvent[] = [];
  const event = (e: Omit<ProcessEvent, 'at'>) => {
    const full = { at: Math.round(performance.now() - t0) / 1000, ...e };
    events.push(full);
    opts.onEvent?.(full);
    stream.emit({ type: 'process', time: Date.now(), event: full });
  };
  let roster: Roster | undefined;
  let rosterReady: () => void = () => {};
  const allListening = new Promise<void>((r) => {
    rosterReady = r;
  });

  function sendTo(slot: Slot, m: ParentMessage): void {
    slot.child?.send(m);
  }

  function onChildMessage(slot: Slot, m: ChildMessage): void {
    switch (m.type) {
      case 'listening': {
        slot.listening = true;
        slot.roster = { id: slot.id, peerId: m.peerId, addrs: m.addrs };
        slot.listenAddr = m.addrs[0]?.replace(/\/p2p\/.*$/, '');
        if (roster) {
          sendTo(slot, { type: 'roster', roster }); // a restarted node: same address, same roster
          for (const fault of liveFaults) sendTo(slot, { type: 'live-fault', fault });
        } else if (slots.every((s) => s.roster)) rosterReady();
        return;
      }
      case 'started':
        slot.startedAt ??= performance.now() - t0;
        nodeState(slot, 'training', slot.child?.pid);
        return;
      case 'phase':
        nodeState(slot, m.phase);
        return;
      case 'round':
        slot.firstRoundAt ??= performance.now() - t0;
        slot.latestRound = Math.max(slot.latestRound, m.record.round);
        stream.emit({ type: 'round', time: Date.now(), record: m.record });
        opts.onRound?.(m.record);
        injectProcessFaults();
        return;
      case 'done':
        slot.outcome = m.outcome;
        return;
      case 'checkpoint-failed':
        event({
          node: slot.id,
          kind: 'checkpoint-failed',
          planned: false,
          round: m.round,
          detail: m.message,
        });
        progress.note(`node ${slot.id}: ${m.message}`);
        return;
      case 'shards-wanted':
        void shardsWritten.then(
          () => sendTo(slot, { type: 'shards-ready' }),
          () => {},
        );
        return;
      case 'error':
        // Before the run is under way nothing can go on without this node; later, its exit is an
        // unplanned crash, handled by faults.onCrash.
        if (!roster) {
          fail(new RunError(`node ${m.id} failed: ${m.name}: ${m.message} (log: ${logOf(m.id)})`));
        } else slot.lastError = `${m.name}: ${m.message}`;
        return;
      case 'ready':
      case 'exit':
        return; // a shared process's own messages (node-handles.ts)
      default: {
        const never: never = m;
        throw new Error(`unexpected message ${JSON.stringify(never)}`);
      }
    }
  }

  function fail(e: Error): void {
    if (!failure) failure = e;
    stop.abort();
  }

  /** Processes of several nodes, when nodesPerProcess > 1; their logs go to DIR/processes/. */
  const groups =
    perProcess > 1
      ? new NodeGroups(
          perProcess,
          (ids, index) => {
            mkdirSync(join(out, 'processes'), { recursive: true });
            const args = ['node-group', '--config', cfgFile, '--shards', shardDir];
            args.push('--nodes-dir', join(out, 'nodes'), '--ids', ids.join(','));
            return forkLogged(args, join(out, 'processes', `${index}.log`), {});
          },
          cfg.nodes,
        )
      : undefined;

  /** A child running the CLI with `args`, its output appended to `logFile`. */
  function forkLogged(args: string[], logFile: string, env: NodeJS.ProcessEnv): ChildProcess {
    const log = openSync(logFile, 'a');
    const child = fork(cliEntry(), args, {
      stdio: ['ignore', log, log, 'ipc'],
      execArgv: [...childExecArgv(), ...nodeArgsFromEnv()],
      env: { ...process.env, ...env },
    });
    closeSync(log); // the child holds its own copy
    return child;
  }

  /** Start (or restart: `restarted` says which kind, for its round records) a node. */
  function spawnNode(slot: Slot, restarted?: 'restart' | 'restart-unplanned'): void {
    mkdirSync(slot.dir, { recursive: true });
    let child: NodeHandle;
    if (groups) {
      child = groups.start(slot.id, {
        dir: slot.dir,
        ...(slot.listenAddr && { listen: slot.listenAddr }),
        ...(restarted && { restarted }),
      });
    } else {
      const args = ['node', '--config', cfgFile, '--id', String(slot.id), '--dir', slot.dir];
      args.push('--shards', shardDir);
      if (slot.listenAddr) args.push('--listen', slot.listenAddr);
      child = processHandle(
        forkLogged(args, logOf(slot.id), {
          FLATMESH_NODE_ID: String(slot.id),
          ...(restarted && { FLATMESH_RESTARTED: restarted }),
        }),
      );
    }
    slot.child = child;
    slot.listening = false;
    slot.status = 'running';
    nodeState(slot, restarted ? 'restarting' : 'starting', child.pid);
    child.onMessage((m) => onChildMessage(slot, m));
    slot.exited = new Promise((done) => {
      child.onExit((code, sig) => {
        if (slot.child === child) slot.child = undefined;
        const how = sig ?? `exit ${code}`;
        if (slot.crashedAt !== undefined && sig === 'SIGKILL') {
          slot.status = 'crashed';
        } else if (code === 0) {
          slot.status = 'ok';
        } else if (stop.signal.aborted) {
          slot.status = code === 130 || sig === 'SIGTERM' ? 'stopped' : how;
        } else {
          onUnplannedExit(slot, how);
        }
        nodeState(
          slot,
          slot.status.startsWith('crashed')
            ? 'crashed'
            : slot.status === 'ok'
              ? 'done'
              : slot.status === 'stopped'
                ? 'stopped'
                : 'failed',
          child.pid,
        );
        done();
      });
    });
  }

  /** A node process died without a planned crash: faults.onCrash decides what happens next. */
  function onUnplannedExit(slot: Slot, how: string): void {
    const detail = slot.lastError ? `${how}; ${slot.lastError}` : how;
    slot.lastError = undefined;
    slot.crashes++;
    slot.status = `crashed (${how})`;
    event({ node: slot.id, kind: 'crash', planned: false, round: slot.latestRound, detail });
    const where = `node ${slot.id} died (${detail}) after round ${slot.latestRound}`;
    if (!roster) {
      fail(new RunError(`${where} while the run was starting (log: ${logOf(slot.id)})`));
      return;
    }
    const policy = cfg.faults.onCrash;
    switch (policy) {
      case 'abort':
        fail(new RunError(`${where}; faults.onCrash is 'abort' (log: ${logOf(slot.id)})`));
        return;
      case 'continue':
        progress.note(`${where}; going on without it (faults.onCrash: continue)`);
        return;
      case 'restart': {
        if (slot.unplannedRestarts >= cfg.faults.maxRestarts) {
          event({ node: slot.id, kind: 'restart-limit', planned: false, round: slot.latestRound });
          progress.note(
            `${where}; not restarted: faults.maxRestarts (${cfg.faults.maxRestarts}) reached, going on without it`,
          );
          return;
        }
        slot.unplannedRestarts++;
        slot.restarts++;
        event({ node: slot.id, kind: 'restart', planned: false, round: slot.latestRound });
        progress.note(`${where}; restarting it from its last checkpoint`);
        spawnNode(slot, 'restart-unplanned');
        return;
      }
      default: {
        const never: never = policy;
        throw new Error(`unknown faults.onCrash ${String(never)}`);
      }
    }
  }

  /** SIGKILL nodes at their planned round; restart them once the others are `restartAfter` rounds on. */
  function injectProcessFaults(): void {
    for (const c of cfg.faults.crashes) {
      const slot = slots[c.node]!;
      if (
        slot.crashedAt === undefined &&
        slot.restarts === slot.unplannedRestarts &&
        slot.latestRound >= c.round &&
        slot.child
      ) {
        slot.crashedAt = slot.latestRound;
        slot.crashes++;
        event({
          node: c.node,
          kind: 'crash',
          planned: true,
          round: slot.latestRound,
          ...(groups && { detail: SOFT_CRASH }),
        });
        progress.note(
          `fault: ${groups ? 'soft crash of' : 'SIGKILL'} node ${c.node} at round ${slot.latestRound}`,
        );
        slot.child.crash();
      }
    }
    for (const c of [...cfg.faults.crashes, ...liveCrashes]) {
      const slot = slots[c.node]!;
      if (slot.crashedAt !== undefined && c.restartAfter !== undefined && !slot.child) {
        const others = slots.filter((s) => s.id !== slot.id).map((s) => s.latestRound);
        if (Math.max(...others) >= slot.crashedAt + c.restartAfter) {
          restartNode(slot, `others at round ${Math.max(...others)}`);
        }
      }
    }
  }

  /** Restart a node killed by a planned or live crash. */
  function restartNode(slot: Slot, why: string): void {
    slot.restarts++;
    slot.crashedAt = undefined;
    const i = liveCrashes.findIndex((c) => c.node === slot.id);
    if (i >= 0) liveCrashes.splice(i, 1);
    event({
      node: slot.id,
      kind: 'restart',
      planned: true,
      round: slot.latestRound,
      ...(why === 'by hand' && { detail: why }),
    });
    progress.note(`fault: restart node ${slot.id} (${why})`);
    void slot.exited.then(() => spawnNode(slot, 'restart'));
  }

  const latestRound = () => Math.max(-1, ...slots.map((s) => s.latestRound));
  opts.onControl?.({
    nodes: cfg.nodes,
    rounds: cfg.run.rounds,
    latestRound,
    nodeRound: (node) => slots[node]?.latestRound ?? -1,
    kill(node, restartAfter) {
      const slot = slots[node];
      const pid = slot?.child?.pid;
      if (!slot?.child || pid === undefined || slot.crashedAt !== undefined || stop.signal.aborted)
        return undefined;
      // "Restart after k rounds" counts from now: from the newest round any node has finished.
      slot.crashedAt = latestRound();
      slot.crashes++;
      liveCrashes.push({ node, ...(restartAfter !== undefined && { restartAfter }) });
      event({
        node,
        kind: 'crash',
        planned: true,
        round: slot.latestRound,
        detail: groups ? `by hand; ${SOFT_CRASH}` : 'by hand',
      });
      slot.child.crash();
      // Restart as soon as the process is gone when nobody else's round would trigger it.
      void slot.exited.then(() => injectProcessFaults());
      return pid;
    },
    restart(node) {
      const slot = slots[node];
      if (!slot || slot.child || slot.crashedAt === undefined || stop.signal.aborted) return false;
      restartNode(slot, 'by hand');
      return true;
    },
    broadcast(fault) {
      liveFaults.push(fault);
      for (const s of slots) if (s.listening) sendTo(s, { type: 'live-fault', fault });
    },
  });

  const kill = () => {
    // A node still starting may not listen for messages yet (it is loading its code): SIGTERM,
    // which it handles the same way once it can, and which ends it at once before that.
    for (const s of slots) {
      if (s.listening) sendTo(s, { type: 'stop' });
      else s.child?.terminate();
    }
    const hard = setTimeout(() => {
      for (const s of slots) s.child?.kill();
    }, 5000);
    hard.unref();
  };
  stop.signal.addEventListener('abort', kill, { once: true });

  let derived: Derived | undefined;
  let ctx: (SummaryContext & { signature: string }) | undefined;
  let shardsWritten: Promise<void> = Promise.resolve();
  try {
    // The topology plan and model layout come first, from the data set's known shape, before any
    // node starts (~0.1 s; with 16 processes loading their code the launcher would get a sixteenth
    // of the CPU for it). With them a node starts its host, joins the roster and connects while
    // the data set is decoded and partitioned here, once, and it asks for its shard only then.
    await initBackend({ ...(cfg.backend !== 'auto' && { prefer: cfg.backend }), quiet: true });
    derived = deriveRun(runCfg, datasetShape(datasetSpec(runCfg)));
    writeDerived(shardDir, derived);
    stream.emit({
      type: 'run',
      time: Date.now(),
      runId,
      out,
      nodes: cfg.nodes,
      rounds: cfg.run.rounds,
      edges: derived.graph.edges.map(([a, b]) => [a, b]),
      matchings: derived.plan.matchings.map((m) => m.map(([a, b]) => [a, b])),
      planned: cfg.faults,
    });
    const plan = derived;
    shardsWritten = (async () => {
      // Not before the nodes are spawned: loading the data set starts with ~0.5 s of synchronous
      // decoding, which would hold up every spawn below.
      await new Promise((r) => setImmediate(r));
      const full = await prepareRun(runCfg, runId, { derived: plan });
      await writeRunShards(full, shardDir);
      ctx = summaryContext(full);
      collectGarbage();
    })();
    shardsWritten.catch((e: unknown) => fail(e instanceof Error ? e : new RunError(String(e))));

    for (const s of slots) spawnNode(s);
    const startTimeout = setTimeout(
      () =>
        fail(
          new RunError(
            `nodes did not all start within ${(opts.startTimeoutMs ?? 60_000) / 1000} s`,
          ),
        ),
      opts.startTimeoutMs ?? 60_000,
    );
    await Promise.race([
      allListening,
      new Promise((r) => stop.signal.addEventListener('abort', r, { once: true })),
    ]);
    clearTimeout(startTimeout);
    if (!stop.signal.aborted) {
      roster = { runId, nodes: slots.map((s) => s.roster!) };
      writeFileSync(join(out, 'roster.json'), `${JSON.stringify(roster, null, 2)}\n`);
      stream.emit({ type: 'roster', time: Date.now(), nodes: roster.nodes });
      for (const s of slots) sendTo(s, { type: 'roster', roster });
    }
  } catch (e) {
    fail(e instanceof Error ? e : new RunError(String(e)));
  }
  try {
    // Wait for every node, including ones restarted while we wait.
    for (;;) {
      await Promise.all(slots.map((s) => s.exited));
      if (slots.every((s) => !s.child)) {
        const pendingRestart = [...cfg.faults.crashes, ...liveCrashes].some(
          (c) =>
            c.restartAfter !== undefined &&
            slots[c.node]!.crashedAt !== undefined &&
            !stop.signal.aborted,
        );
        if (!pendingRestart) break;
        injectProcessFaults();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    // Every node has ended and none will be restarted: the shared processes can go.
    await groups?.close();
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    progress.finish();
  }
  // A run that ends early is summarized too (completed: false, and why), from what its nodes
  // reported and left on disk, before the error is passed on.
  const early =
    failure?.message ??
    (stop.signal.aborted
      ? 'interrupted (Ctrl-C or a stop signal) before the last round'
      : undefined);
  if (ctx === undefined && early === undefined) await shardsWritten;
  const summary = summarizeNodeDirs({
    ctx: ctx ?? { cfg: runCfg, runId, ...(derived && { signature: derived.signature }) },
    nodes: slots.map((s) => ({
      id: s.id,
      dir: s.dir,
      ...(s.outcome && { report: s.outcome }),
      status: s.status,
      restarts: s.restarts,
      crashes: s.crashes,
    })),
    wallSeconds: (performance.now() - t0) / 1000,
    events,
    ...(early !== undefined && { failure: early }),
  });
  const allBy = (t: (s: Slot) => number | undefined): number | null => {
    const ts = slots.map(t);
    return ts.every((x) => x !== undefined) ? Math.max(...ts) / 1000 : null;
  };
  if (groups) summary.nodesPerProcess = perProcess;
  summary.startup = {
    allConnectedSeconds: allBy((s) => s.startedAt),
    allFirstRoundSeconds: allBy((s) => s.firstRoundAt),
  };
  writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  stream.emit({ type: 'summary', time: Date.now(), summary });
  if (failure) throw failure;
  if (stop.signal.aborted) throw new RunError(`run interrupted; partial metrics are in ${out}`);
  return summary;
}

/**
 * What the launcher keeps of the data set once the shards are written: what the summary evaluates
 * the average model with (the data's shape and classes, the capped test set). The training set
 * (60,000 Fashion-MNIST images, ~50 MB) is let go instead of being held for the whole run.
 */
function summaryContext(ctx: RunContext): SummaryContext & { signature: string } {
  const test = ctx.test;
  return {
    cfg: ctx.cfg,
    runId: ctx.runId,
    signature: ctx.signature,
    test,
    data: { name: ctx.data.name, train: subset(ctx.data.train, new Int32Array(0)), test },
  };
}

/**
 * One full garbage collection, now. The launcher has just let go of the decoded data set, but it
 * allocates too little afterwards for V8 to run a full collection on its own, so that memory would
 * stay in its PSS for the whole run (Fashion-MNIST: 326 -> 255 MB with this collection, measured on
 * the launcher's steps from the sources). V8 gives `gc` only behind its flag: set it, and a fresh
 * context has it.
 */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Read a run's summary.json. */
export function readSummary(out: string): RunSummary {
  return JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as RunSummary;
}
