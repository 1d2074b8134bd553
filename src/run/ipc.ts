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
  | { type: 'phase'; id: number; phase: 'exchanging'; round: number };

export type ParentMessage =
  | { type: 'roster'; roster: Roster }
  | { type: 'shards-ready' }
  | { type: 'stop' }
  /** A fault injected by hand (the dashboard), to apply from its round on: src/faults/live.ts. */
  | { type: 'live-fault'; fault: LiveFault };

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
      t === 'phase') &&
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
    (t === 'roster' && typeof (m as { roster?: unknown }).roster === 'object')
  );
}
