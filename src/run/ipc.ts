/**
 * Messages between the launcher and its node processes (Node's IPC channel). Small, typed, and
 * checked on receipt: the launcher trusts its children, but a malformed message is still an error
 * with a reason, never a crash.
 */
import type { Roster } from '../net/libp2p/host.js';
import type { RoundRecord } from '../node/metrics.js';
import type { NodeOutcome } from './summary.js';

export type ChildMessage =
  | { type: 'listening'; id: number; peerId: string; addrs: string[] }
  | { type: 'round'; id: number; record: RoundRecord }
  | { type: 'done'; id: number; outcome: Omit<NodeOutcome, 'restarts' | 'status'> }
  | { type: 'error'; id: number; name: string; message: string };

export type ParentMessage = { type: 'roster'; roster: Roster } | { type: 'stop' };

export function isChildMessage(m: unknown): m is ChildMessage {
  if (typeof m !== 'object' || m === null) return false;
  const t = (m as { type?: unknown }).type;
  return (
    (t === 'listening' || t === 'round' || t === 'done' || t === 'error') &&
    typeof (m as { id?: unknown }).id === 'number'
  );
}

export function isParentMessage(m: unknown): m is ParentMessage {
  if (typeof m !== 'object' || m === null) return false;
  const t = (m as { type?: unknown }).type;
  return t === 'stop' || (t === 'roster' && typeof (m as { roster?: unknown }).roster === 'object');
}
