/**
 * Control messages (heartbeats, join/leave) as small JSON documents, checked field by field with a
 * strict shape: unknown fields, wrong types or anything over 1 KiB are rejected. Both transports
 * use it, so a malformed heartbeat is treated the same in the simulator and on gossipsub.
 *
 *   const bytes = encodeControl({ type: 'heartbeat', node: 3, round: 12, accuracy: 0.81 });
 *   const msg = decodeControl(bytes); // ControlMessage, or throws WireError
 */
import { ConfigError, WireError } from '../errors.js';
import type { ControlMessage } from './transport.js';

export const CONTROL_MAX_BYTES = 1024;

const TYPES: ReadonlySet<string> = new Set(['heartbeat', 'join', 'leave']);
const KEYS: ReadonlySet<string> = new Set(['type', 'node', 'round', 'status', 'accuracy']);
const STATUS_MAX = 64;

export function controlTopic(runId: string): string {
  return `flatmesh/${runId}/control`;
}

export function encodeControl(msg: ControlMessage): Uint8Array {
  const problem = shapeProblem(msg);
  if (problem) throw new ConfigError(`control.${problem.field}`, problem.what, problem.got);
  const bytes = new TextEncoder().encode(JSON.stringify(msg));
  if (bytes.length > CONTROL_MAX_BYTES) {
    throw new ConfigError(
      'control',
      `must encode to at most ${CONTROL_MAX_BYTES} bytes`,
      bytes.length,
    );
  }
  return bytes;
}

/** Parse and check a control message; throws WireError('oversized' | 'bad-control') when invalid. */
export function decodeControl(bytes: Uint8Array): ControlMessage {
  if (bytes.length > CONTROL_MAX_BYTES) {
    throw new WireError('oversized', `control message of ${bytes.length} bytes`);
  }
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new WireError('bad-control', 'control message is not UTF-8 JSON');
  }
  const problem = shapeProblem(v);
  if (problem) throw new WireError('bad-control', `control.${problem.field}: ${problem.what}`);
  return v as ControlMessage;
}

function shapeProblem(v: unknown): { field: string; what: string; got?: unknown } | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return { field: '(root)', what: 'must be an object' };
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) return { field: k, what: 'unknown field' };
  if (typeof o.type !== 'string' || !TYPES.has(o.type)) {
    return { field: 'type', what: 'must be heartbeat, join or leave', got: o.type };
  }
  if (!isIndex(o.node))
    return { field: 'node', what: 'must be a non-negative integer', got: o.node };
  if (!isIndex(o.round)) {
    return { field: 'round', what: 'must be a non-negative integer', got: o.round };
  }
  if (o.status !== undefined && (typeof o.status !== 'string' || o.status.length > STATUS_MAX)) {
    return { field: 'status', what: `must be a string of at most ${STATUS_MAX} characters` };
  }
  if (
    o.accuracy !== undefined &&
    (typeof o.accuracy !== 'number' || !(o.accuracy >= 0 && o.accuracy <= 1))
  ) {
    return { field: 'accuracy', what: 'must be a number between 0 and 1', got: o.accuracy };
  }
  return undefined;
}

function isIndex(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}
