/**
 * The launcher's handle on one node, whether the node is a process of its own or one of the K
 * nodes of a shared process (`launch --nodes-per-process K`, src/run/node-group.ts). The launcher
 * treats both alike (messages, exits, crashes); only what a crash means differs:
 *
 * - a node process's planned crash is SIGKILL;
 * - a shared process's node crashes softly (its host stops, it writes nothing more), and exits as
 *   if killed, so the launcher's fault handling and records are the same.
 *
 *   const groups = new NodeGroups(4, (ids) => fork(cli, ['node-group', '--ids', ids.join(',')]));
 *   const h = groups.start(5, { dir: 'run/nodes/5' });   // in the process of nodes 4..7
 *   h.onMessage((m) => ...); h.onExit((code, signal) => ...);
 */
import type { ChildProcess } from 'node:child_process';
import { type ChildMessage, isChildMessage, type ParentMessage, type RestartKind } from './ipc.js';

export interface NodeHandle {
  /** The node's process (shared with the other nodes of its group, if any). */
  readonly pid: number | undefined;
  /** The node can be sent messages. */
  readonly connected: boolean;
  send(m: ParentMessage): void;
  /** The planned crash: SIGKILL of a node process, a soft crash of a node in a shared process. */
  crash(): void;
  /** Stop it (SIGTERM): for a node that may not be listening for messages yet. */
  terminate(): void;
  /** End its process now (SIGKILL), and with it every node in it. */
  kill(): void;
  onMessage(fn: (m: ChildMessage) => void): void;
  /** Once, when the node ended: its exit code, or the signal that ended it ('SIGKILL' after a crash). */
  onExit(fn: (code: number | null, signal: NodeJS.Signals | null) => void): void;
}

/** A node that is a process of its own. */
export function processHandle(child: ChildProcess): NodeHandle {
  return {
    get pid() {
      return child.pid;
    },
    get connected() {
      return child.connected;
    },
    // A child killed a moment ago can still look connected; the failed send is then reported to
    // the callback (not thrown as an 'error' event), and its exit is handled on 'exit'.
    send: (m) => void (child.connected && child.send(m, () => {})),
    crash: () => void child.kill('SIGKILL'),
    terminate: () => void child.kill('SIGTERM'),
    kill: () => void child.kill('SIGKILL'),
    onMessage: (fn) =>
      void child.on('message', (m) => {
        if (isChildMessage(m)) fn(m);
      }),
    onExit: (fn) => void child.once('exit', fn),
  };
}

export interface NodeStart {
  dir: string;
  /** The address it listened on before (a restart keeps it). */
  listen?: string;
  restarted?: RestartKind;
}

interface Member {
  alive: boolean;
  onMessage?: (m: ChildMessage) => void;
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
}

interface Group {
  child: ChildProcess;
  /** It listens for messages: until then they wait in `queue`. */
  ready: boolean;
  queue: ParentMessage[];
  members: Map<number, Member>;
  exited: Promise<void>;
  gone: boolean;
}

/**
 * Processes of `k` nodes each: node i lives in process ⌊i / k⌋. A node (re)started while its
 * process runs starts in it; if the process died, a new one is started for it (and for every node
 * of the group restarted in the same tick).
 */
export class NodeGroups {
  private readonly groups = new Map<number, Group>();

  constructor(
    readonly k: number,
    /** Starts a group's process; `ids`: the nodes of its group (for `ps` and the benchmarks). */
    private readonly spawn: (ids: number[], index: number) => ChildProcess,
    private readonly nodes: number,
  ) {}

  /** The nodes of node `id`'s group. */
  groupOf(id: number): number[] {
    const g = Math.floor(id / this.k);
    const ids: number[] = [];
    for (let i = g * this.k; i < Math.min(this.nodes, (g + 1) * this.k); i++) ids.push(i);
    return ids;
  }

  start(id: number, spec: NodeStart): NodeHandle {
    const group = this.live(Math.floor(id / this.k));
    const member: Member = { alive: true };
    group.members.set(id, member);
    this.post(group, {
      type: 'start',
      id,
      dir: spec.dir,
      ...(spec.listen && { listen: spec.listen }),
      ...(spec.restarted && { restarted: spec.restarted }),
    });
    return {
      get pid() {
        return group.child.pid;
      },
      get connected() {
        return member.alive && !group.gone && group.child.connected;
      },
      send: (m) => {
        if (member.alive) this.post(group, { ...m, to: id });
      },
      crash: () => {
        if (member.alive) this.post(group, { type: 'crash', id });
      },
      // Before its process listens, a stop can only be a signal (to the whole process).
      terminate: () => {
        if (group.ready) this.post(group, { type: 'stop', to: id });
        else group.child.kill('SIGTERM');
      },
      kill: () => void group.child.kill('SIGKILL'),
      onMessage: (fn) => {
        member.onMessage = fn;
      },
      onExit: (fn) => {
        member.onExit = fn;
      },
    };
  }

  /** End every process once its nodes have all exited: disconnected, each exits by itself. */
  async close(): Promise<void> {
    for (const g of this.groups.values()) if (g.child.connected) g.child.disconnect();
    await Promise.all([...this.groups.values()].map((g) => g.exited));
  }

  private live(index: number): Group {
    const have = this.groups.get(index);
    if (have && !have.gone) return have;
    const child = this.spawn(this.groupOf(index * this.k), index);
    const group: Group = {
      child,
      ready: false,
      queue: [],
      members: new Map(),
      gone: false,
      exited: new Promise((done) => {
        child.once('exit', (code, signal) => {
          group.gone = true;
          // Its nodes died with it, each an exit of its own for the launcher.
          for (const [id, m] of group.members) {
            group.members.delete(id);
            m.alive = false;
            m.onExit?.(code, signal);
          }
          done();
        });
      }),
    };
    child.on('message', (m) => {
      if (!isChildMessage(m)) return;
      if (m.type === 'ready') {
        group.ready = true;
        for (const q of group.queue.splice(0)) this.post(group, q);
        return;
      }
      const member = group.members.get(m.id);
      if (!member) return;
      if (m.type === 'exit') {
        group.members.delete(m.id);
        member.alive = false;
        member.onExit?.(m.crashed ? null : m.code, m.crashed ? 'SIGKILL' : null);
        return;
      }
      member.onMessage?.(m);
    });
    this.groups.set(index, group);
    return group;
  }

  private post(group: Group, m: ParentMessage): void {
    if (group.gone) return;
    if (!group.ready) group.queue.push(m);
    else if (group.child.connected) group.child.send(m, () => {});
  }
}
