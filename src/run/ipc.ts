/**
 * Messages between the launcher and its node processes (Node's IPC channel). Small, typed, and
 * checked on receipt: the launcher trusts its children, but a malformed message is still an error
 * with a reason, never a crash.
 */
import type { LiveFault } from '../faults/live.js';
import type { Roster } from '../net/libp2p/host.js';
import type { RoundRecord } from '../node/metrics.js';
import type { NodeReport } from './summary.js';

export type ChildMessage =
  | { type: 'listening'; id: number; peerId: string; addrs: string[] }
  | { type: 'round'; id: number; record: RoundRecord }
  | { type: 'done'; id: number; outcome: NodeReport }
  /** A checkpoint could not be written; the node kept its previous one and goes on. */
  | { type: 'checkpoint-failed'; id: number; round: number; message: string }
  | { type: 'error'; id: number; name: string; message: string }
  /** The node is ready to read its data shard; the launcher answers 'shards-ready' once written. */
  | { type: 'shards-wanted'; id: number }
  /** Connected to its neighbours and starting its first round. */
  | { type: 'started'; id: number }
  /** Done training round `round`, sending its weights (for live views; training starts after 'round'). */
  | { type: 'phase'; id: number; phase: 'exchanging'; round: number }
  /** A process of several nodes (src/run/node-group.ts) listens for messages now (`id`: -1). */
  | { type: 'ready'; id: number }
  /**
   * A node of a process of several nodes ended, with its exit code; `crashed`: by a soft crash
   * (its planned crash stopped its host, the process goes on).
   */
  | { type: 'exit'; id: number; code: number; crashed: boolean };

/**
 * `to`: in a process of several nodes, the node a message is for (absent: every node in it). A
 * process of one node ignores it.
 */
export type ParentMessage = (
  | { type: 'roster'; roster: Roster }
  | { type: 'shards-ready' }
  | { type: 'stop' }
  /** A fault injected by hand (the dashboard), to apply from its round on: src/faults/live.ts. */
  | { type: 'live-fault'; fault: LiveFault }
  /** Process of several nodes: start (or restart) node `id` in it, with its directory. */
  | { type: 'start'; id: number; dir: string; listen?: string; restarted?: RestartKind }
  /** Process of several nodes: the planned crash of node `id`, a soft one (see node-group.ts). */
  | { type: 'crash'; id: number }
) & { to?: number };

/** How a restarted node came back, as its first round record says. */
export type RestartKind = 'restart' | 'restart-unplanned';

export function isChildMessage(m: unknown): m is ChildMessage {
  if (typeof m !== 'object' || m === null) return false;
  const t = (m as { type?: unknown }).type;
  return (
    (t === 'listening' ||
      t === 'round' ||
      t === 'done' ||
      t === 'error' ||
      t === 'shards-wanted' ||
      t === 'checkpoint-failed' ||
      t === 'started' ||
      t === 'phase' ||
      t === 'ready' ||
      t === 'exit') &&
    typeof (m as { id?: unknown }).id === 'number'
  );
}

export function isParentMessage(m: unknown): m is ParentMessage {
  if (typeof m !== 'object' || m === null) return false;
  const t = (m as { type?: unknown }).type;
  return (
    t === 'stop' ||
    t === 'shards-ready' ||
    (t === 'live-fault' && typeof (m as { fault?: unknown }).fault === 'object') ||
    (t === 'roster' && typeof (m as { roster?: unknown }).roster === 'object') ||
    ((t === 'start' || t === 'crash') && typeof (m as { id?: unknown }).id === 'number')
  );
}
