/**
 * Several nodes in one process: what `flatmesh launch --nodes-per-process K` starts instead of one
 * process per node. Each node keeps everything that makes the network real (its own libp2p host,
 * key, sockets, checkpoints, records and log: src/run/node-process.ts runs it unchanged); they share
 * the process's runtime, code and tfjs engine. The tfjs engine holds no state of a node between
 * calls: every node owns its model, optimizer and data tensors, draws its minibatches from its own
 * seeded generator, and wraps its tensor work in synchronous tf.tidy scopes, which cannot
 * interleave with another node's on one thread.
 *
 * What the nodes share, they share in faults too:
 * - A planned crash of one node is a soft crash (SOFT_CRASH_CODE): its host stops, it writes
 *   nothing more, and the launcher restarts it in the same process from its last checkpoint. The
 *   others are untouched.
 * - A planned stall blocks the thread, so it freezes every node of the process (as SIGSTOP would).
 * - A straggler sleeps; it slows only its node, but all the nodes of a process share its core.
 * - If the process itself dies, all its nodes die with it: each one's exit is an unplanned crash,
 *   handled by faults.onCrash as for a node process.
 *
 * The launcher talks to the nodes over the process's IPC channel; each message names its node
 * (`id` from the nodes, `to` to them). Each node's log goes to its node.log, the process's own
 * output (libp2p, Node) to the log the launcher gives the process.
 *
 *   flatmesh node-group --config run/config.json --shards run/shards --nodes-dir run/nodes --ids 0,1,2,3
 *
 * (`--ids` only names the process's nodes for `ps` and the benchmarks: each starts on a message.)
 */
import '../net/polyfill.js';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Experiment } from '../config/schema.js';
import { isFlatmeshError } from '../errors.js';
import { type ChildMessage, isParentMessage, type ParentMessage, type RestartKind } from './ipc.js';
import { type NodeChannel, runNodeProcess, SOFT_CRASH_CODE } from './node-process.js';

export interface NodeGroupOptions {
  cfg: Experiment;
  runId: string;
  shards: string;
  /** Where node i's directory nodesDir/i is (the launcher names it in each 'start' too). */
  nodesDir: string;
}

interface Member {
  stop: AbortController;
  crash: AbortController;
  listeners: Set<(m: ParentMessage) => void>;
}

/** Runs until the launcher disconnects (see below), or a signal stopped it and its nodes ended. */
export async function runNodeGroup(opts: NodeGroupOptions): Promise<number> {
  const send = (m: ChildMessage) => {
    // The launcher may be gone; its 'disconnect' ends this process.
    if (process.connected) process.send?.(m, () => {});
  };
  const members = new Map<number, Member>();
  const running = new Set<Promise<void>>();
  let stopping = false;
  /** Stopped by a signal: the process ends once its nodes have. */
  let allEnded: () => void = () => {};
  const ended = new Promise<void>((r) => {
    allEnded = r;
  });
  const checkEnded = () => {
    if (stopping && running.size === 0) allEnded();
  };

  const start = (
    id: number,
    dir = join(opts.nodesDir, String(id)),
    listen?: string,
    restarted?: RestartKind,
  ) => {
    if (members.has(id) || stopping) return;
    mkdirSync(dir, { recursive: true });
    const logFile = join(dir, 'node.log');
    const log = (msg: string) => {
      try {
        appendFileSync(logFile, `[node ${id}] ${msg}\n`);
      } catch {
        // A full disk costs the log line, not the node.
      }
    };
    const member: Member = {
      stop: new AbortController(),
      crash: new AbortController(),
      listeners: new Set(),
    };
    members.set(id, member);
    const channel: NodeChannel = {
      send,
      listen(fn) {
        member.listeners.add(fn);
        return () => member.listeners.delete(fn);
      },
    };
    const run = runNodeProcess({
      cfg: opts.cfg,
      runId: opts.runId,
      id,
      dir,
      shards: opts.shards,
      ...(listen && { listen }),
      log,
      shared: {
        channel,
        stop: member.stop.signal,
        crash: member.crash.signal,
        ...(restarted && { restarted }),
      },
    })
      .catch((e: unknown) => {
        // What a node process prints and reports before it exits with the error's code.
        const err = e as Error;
        log(isFlatmeshError(e) ? err.message : `unexpected error: ${err?.stack ?? String(e)}`);
        if (!member.crash.signal.aborted) {
          send({ type: 'error', id, name: err?.name ?? 'Error', message: err?.message ?? '' });
        }
        return member.crash.signal.aborted ? SOFT_CRASH_CODE : isFlatmeshError(e) ? e.exitCode : 1;
      })
      .then((code) => {
        members.delete(id);
        const crashed = member.crash.signal.aborted;
        if (crashed) log('soft crash: host stopped, nothing written since (planned crash)');
        send({ type: 'exit', id, code: crashed ? SOFT_CRASH_CODE : code, crashed });
      });
    running.add(run);
    void run.finally(() => {
      running.delete(run);
      checkEnded();
    });
  };

  const deliver = (m: ParentMessage) => {
    if (m.type === 'start') {
      start(m.id, m.dir, m.listen, m.restarted);
      return;
    }
    if (m.type === 'crash') {
      members.get(m.id)?.crash.abort();
      return;
    }
    const to = m.to === undefined ? [...members.values()] : [members.get(m.to)];
    for (const member of to) {
      // A stop reaches a node also before it listens for messages.
      if (m.type === 'stop') member?.stop.abort();
      for (const fn of member?.listeners ?? []) fn(m);
    }
  };
  process.on('message', (m) => {
    if (isParentMessage(m)) deliver(m);
  });
  const stopAll = () => {
    stopping = true;
    for (const member of members.values()) member.stop.abort();
    checkEnded();
  };
  process.once('SIGTERM', stopAll);
  process.once('SIGINT', stopAll);
  // The launcher disconnects once none of the nodes is left to restart (exit 0). If it goes while
  // nodes run, nothing will collect their results, and they must not outlive it (exit 70).
  process.once('disconnect', () => process.exit(running.size === 0 ? 0 : 70));
  // Every node starts on a 'start' message (restarts too), sent once this process listens.
  send({ type: 'ready', id: -1 });

  await ended;
  return 130;
}
