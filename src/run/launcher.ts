/**
 * The launcher: `flatmesh launch`. Spawns one real process per node on 127.0.0.1, builds the roster
 * from the addresses they report, shows live progress, injects process faults (SIGKILL at a round,
 * restart from the checkpoint after a number of rounds), and writes DIR/summary.json from what the
 * nodes report and their final checkpoints. Ctrl-C (or any node failing) stops every node; children
 * exit on their own if the launcher dies.
 *
 *   const summary = await launch(cfg, { out: 'runs/demo' });
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../compute/backend.js';
import type { Experiment } from '../config/schema.js';
import { datasetShape } from '../data/index.js';
import { RunError } from '../errors.js';
import type { Roster, RosterNode } from '../net/libp2p/host.js';
import {
  datasetSpec,
  deriveRun,
  prepareRun,
  type RunContext,
  writeDerived,
  writeRunShards,
} from '../node/build.js';
import { CheckpointStore } from '../node/checkpoint.js';
import { emptyCounts, type RoundRecord } from '../node/metrics.js';
import { type ChildMessage, isChildMessage, type ParentMessage } from './ipc.js';
import { Progress } from './progress.js';
import { buildSummary, type NodeOutcome, type RunSummary } from './summary.js';

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
}

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
 * test runner's or inspector's flags.
 */
export function childExecArgv(argv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (
      ['--import', '--loader', '--experimental-loader', '--require', '-r'].includes(a) &&
      i + 1 < argv.length
    ) {
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

export function launchRunId(cfg: Experiment): string {
  if (cfg.run.id) return cfg.run.id;
  const t = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `run-${t}-s${cfg.run.seed}`;
}

interface Slot {
  id: number;
  child?: ChildProcess;
  roster?: RosterNode;
  listenAddr?: string;
  latestRound: number;
  outcome?: Omit<NodeOutcome, 'restarts' | 'status'>;
  status: string;
  restarts: number;
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
  const runId = launchRunId(cfg);
  const runCfg: Experiment = { ...cfg, run: { ...cfg.run, id: runId } };
  const out = resolve(opts.out ?? cfg.run.out ?? join('runs', runId));
  mkdirSync(out, { recursive: true });
  const cfgFile = join(out, 'config.json');
  writeFileSync(cfgFile, `${JSON.stringify(runCfg, null, 2)}\n`);
  const shardDir = join(out, 'shards');
  const progress = new Progress(
    cfg.nodes,
    cfg.run.rounds,
    opts.progress === false ? null : process.stderr,
  );

  const stop = new AbortController();
  let failure: Error | undefined;
  const onAbort = () => stop.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const slots: Slot[] = Array.from({ length: cfg.nodes }, (_, id) => ({
    id,
    latestRound: -1,
    status: 'starting',
    restarts: 0,
    exited: Promise.resolve(),
  }));
  let roster: Roster | undefined;
  let rosterReady: () => void = () => {};
  const allListening = new Promise<void>((r) => {
    rosterReady = r;
  });

  const message = (slot: Slot) => (m: unknown) => {
    if (!isChildMessage(m)) return;
    onChildMessage(slot, m);
  };

  function sendTo(slot: Slot, m: ParentMessage): void {
    if (slot.child?.connected) slot.child.send(m);
  }

  function onChildMessage(slot: Slot, m: ChildMessage): void {
    switch (m.type) {
      case 'listening': {
        slot.listening = true;
        slot.roster = { id: slot.id, peerId: m.peerId, addrs: m.addrs };
        slot.listenAddr = m.addrs[0]?.replace(/\/p2p\/.*$/, '');
        if (roster)
          sendTo(slot, { type: 'roster', roster }); // a restarted node: same address, same roster
        else if (slots.every((s) => s.roster)) rosterReady();
        return;
      }
      case 'started':
        slot.startedAt ??= performance.now() - t0;
        return;
      case 'round':
        slot.firstRoundAt ??= performance.now() - t0;
        slot.latestRound = Math.max(slot.latestRound, m.record.round);
        progress.record(m.record);
        opts.onRound?.(m.record);
        injectProcessFaults();
        return;
      case 'done':
        slot.outcome = m.outcome;
        return;
      case 'shards-wanted':
        void shardsWritten.then(
          () => sendTo(slot, { type: 'shards-ready' }),
          () => {},
        );
        return;
      case 'error':
        fail(
          new RunError(
            `node ${m.id} failed: ${m.name}: ${m.message} (log: ${join(out, 'nodes', String(m.id), 'node.log')})`,
          ),
        );
        return;
      default: {
        const never: never = m;
        throw new Error(`unexpected message ${JSON.stringify(never)}`);
      }
    }
  }

  function fail(e: RunError): void {
    if (!failure) failure = e;
    stop.abort();
  }

  function spawnNode(slot: Slot): void {
    const dir = join(out, 'nodes', String(slot.id));
    mkdirSync(dir, { recursive: true });
    const log = openSync(join(dir, 'node.log'), 'a');
    const args = [
      'node',
      '--config',
      cfgFile,
      '--id',
      String(slot.id),
      '--dir',
      dir,
      '--shards',
      shardDir,
    ];
    if (slot.listenAddr) args.push('--listen', slot.listenAddr);
    const child = fork(cliEntry(), args, {
      stdio: ['ignore', log, log, 'ipc'],
      execArgv: [...childExecArgv(), ...nodeArgsFromEnv()],
      env: { ...process.env, FLATMESH_NODE_ID: String(slot.id) },
    });
    slot.child = child;
    slot.listening = false;
    slot.status = 'running';
    child.on('message', message(slot));
    slot.exited = new Promise((done) => {
      child.once('exit', (code, sig) => {
        if (slot.child === child) slot.child = undefined;
        if (slot.crashedAt !== undefined && sig === 'SIGKILL') {
          slot.status = 'crashed';
        } else if (code === 0) {
          slot.status = 'ok';
        } else if (!stop.signal.aborted) {
          slot.status = `exit ${code ?? sig}`;
          fail(
            new RunError(
              `node ${slot.id} exited with ${code ?? sig} (log: ${join(dir, 'node.log')})`,
            ),
          );
        } else {
          slot.status = code === 130 || sig === 'SIGTERM' ? 'stopped' : `exit ${code ?? sig}`;
        }
        done();
      });
    });
  }

  /** SIGKILL nodes at their planned round; restart them once the others are `restartAfter` rounds on. */
  function injectProcessFaults(): void {
    for (const c of cfg.faults.crashes) {
      const slot = slots[c.node]!;
      if (
        slot.crashedAt === undefined &&
        slot.restarts === 0 &&
        slot.latestRound >= c.round &&
        slot.child
      ) {
        slot.crashedAt = slot.latestRound;
        progress.note(`fault: SIGKILL node ${c.node} at round ${slot.latestRound}`);
        slot.child.kill('SIGKILL');
      }
      if (slot.crashedAt !== undefined && c.restartAfter !== undefined && !slot.child) {
        const others = slots.filter((s) => s.id !== slot.id).map((s) => s.latestRound);
        if (Math.max(...others) >= slot.crashedAt + c.restartAfter) {
          slot.restarts++;
          slot.crashedAt = undefined;
          progress.note(`fault: restart node ${c.node} (others at round ${Math.max(...others)})`);
          void slot.exited.then(() => spawnNode(slot));
        }
      }
    }
  }

  const kill = () => {
    // A node still starting may not listen for messages yet (it is loading its code): SIGTERM,
    // which it handles the same way once it can, and which ends it at once before that.
    for (const s of slots) {
      if (s.listening) sendTo(s, { type: 'stop' });
      else s.child?.kill('SIGTERM');
    }
    const hard = setTimeout(() => {
      for (const s of slots) s.child?.kill('SIGKILL');
    }, 5000);
    hard.unref();
  };
  stop.signal.addEventListener('abort', kill, { once: true });

  // The topology plan and model layout come first, from the data set's known shape, before any
  // node starts (~0.1 s; with 16 processes loading their code the launcher would get a sixteenth
  // of the CPU for it). With them a node starts its host, joins the roster and connects while the
  // data set is decoded and partitioned here, once, and it asks for its shard only then.
  await initBackend({ ...(cfg.backend !== 'auto' && { prefer: cfg.backend }), quiet: true });
  const derived = deriveRun(runCfg, datasetShape(datasetSpec(runCfg)));
  writeDerived(shardDir, derived);
  let ctx: RunContext | undefined;
  const shardsWritten = (async () => {
    // Not before the nodes are spawned: loading the data set starts with ~0.5 s of synchronous
    // decoding, which would hold up every spawn below.
    await new Promise((r) => setImmediate(r));
    ctx = await prepareRun(runCfg, runId, { derived });
    await writeRunShards(ctx, shardDir);
  })();
  shardsWritten.catch((e: unknown) => {
    if (!failure) failure = e instanceof Error ? e : new RunError(String(e));
    stop.abort();
  });

  try {
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
      for (const s of slots) sendTo(s, { type: 'roster', roster });
    }
    // Wait for every node, including ones restarted while we wait.
    for (;;) {
      await Promise.all(slots.map((s) => s.exited));
      if (slots.every((s) => !s.child)) {
        const pendingRestart = cfg.faults.crashes.some(
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
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    progress.finish();
  }
  if (failure) throw failure;
  if (stop.signal.aborted) throw new RunError('run interrupted; partial metrics are in ' + out);

  const run = ctx;
  if (!run) throw new RunError('run ended before its data was prepared');
  const finals: Float32Array[] = [];
  const outcomes: NodeOutcome[] = slots.map((s) => {
    const ck = new CheckpointStore(join(out, 'nodes', String(s.id))).load({
      runId,
      signature: run.signature,
    });
    if (ck && !cfg.faults.leaves.some((l) => l.node === s.id)) finals.push(ck.weights);
    const o = s.outcome;
    return {
      id: s.id,
      accuracy: o?.accuracy ?? null,
      swaAccuracy: o?.swaAccuracy ?? null,
      tailAccuracy: o?.tailAccuracy ?? null,
      tailSwaAccuracy: o?.tailSwaAccuracy ?? null,
      roundsCompleted: o?.roundsCompleted ?? (ck ? ck.round + 1 : 0),
      lastRound: o?.lastRound ?? ck?.round ?? -1,
      restarts: s.restarts,
      roundsLostToRestarts: o?.roundsLostToRestarts ?? 0,
      messages: o?.messages ?? emptyCounts(),
      bytesSent: o?.bytesSent ?? 0,
      bytesReceived: o?.bytesReceived ?? 0,
      faults: o?.faults ?? {},
      status: s.status,
    };
  });
  const summary = buildSummary({
    ctx: run,
    mode: 'processes',
    outcomes,
    finals,
    wallSeconds: (performance.now() - t0) / 1000,
    expectedUnfinished: new Set(cfg.faults.leaves.map((l) => l.node)),
  });
  const allBy = (t: (s: Slot) => number | undefined): number | null => {
    const ts = slots.map(t);
    return ts.every((x) => x !== undefined) ? Math.max(...ts) / 1000 : null;
  };
  summary.startup = {
    allConnectedSeconds: allBy((s) => s.startedAt),
    allFirstRoundSeconds: allBy((s) => s.firstRoundAt),
  };
  writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

/** Read a run's summary.json. */
export function readSummary(out: string): RunSummary {
  return JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as RunSummary;
}
