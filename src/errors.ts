/**
 * Typed errors for every failure a user can reach. Each has a stable `name` that callers match on
 * and an `exitCode` that the CLI maps to the process exit status; the message says what was wrong
 * and what to do about it.
 *
 *   throw new ConfigError('faults.loss.p', 'must be between 0 and 1', 1.5);
 *   // -> "faults.loss.p: must be between 0 and 1 (got 1.5)"
 */

export abstract class FlatmeshError extends Error {
  abstract override readonly name: string;
  /** Process exit code the CLI uses for this kind of failure. */
  readonly exitCode: number = 1;
}

/** A field of an experiment file, flag or other user input is invalid. */
export class ConfigError extends FlatmeshError {
  override readonly name = 'ConfigError';
  override readonly exitCode = 2;
  constructor(
    readonly path: string,
    readonly problem: string,
    readonly got?: unknown,
  ) {
    super(`${path}: ${problem}${got === undefined ? '' : ` (got ${formatValue(got)})`}`);
  }
}

/** Several config problems at once: all of them are reported, each with its path. */
export class ConfigErrors extends FlatmeshError {
  override readonly name = 'ConfigErrors';
  override readonly exitCode = 2;
  constructor(readonly problems: ConfigError[]) {
    super(problems.map((p) => p.message).join('\n'));
  }
}

/** A command-line usage error: unknown command or flag, missing argument. */
export class UsageError extends FlatmeshError {
  override readonly name = 'UsageError';
  override readonly exitCode = 64;
}

/** A topology file or generated graph is malformed (field and fault named). */
export class TopologyError extends FlatmeshError {
  override readonly name = 'TopologyError';
  override readonly exitCode = 2;
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/** A data set cannot be found, read or decoded. */
export class DataError extends FlatmeshError {
  override readonly name = 'DataError';
  override readonly exitCode = 3;
}

/** A requested tensor backend cannot be loaded. */
export class BackendError extends FlatmeshError {
  override readonly name = 'BackendError';
  override readonly exitCode = 3;
}

/** Two models with different parameter names or shapes were about to be mixed. */
export class ModelMismatchError extends FlatmeshError {
  override readonly name = 'ModelMismatchError';
}

/** A checkpoint is missing, corrupt or belongs to another run or model. */
export class CheckpointError extends FlatmeshError {
  override readonly name = 'CheckpointError';
  override readonly exitCode = 4;
}

/**
 * A run directory or checkpoint belongs to a different experiment than the one given: resuming
 * would continue the old model under the new settings. `differences` lists each field that differs.
 */
export class ExperimentMismatchError extends FlatmeshError {
  override readonly name = 'ExperimentMismatchError';
  override readonly exitCode = 4;
  constructor(
    what: string,
    readonly differences: readonly { path: string; was: unknown; now: unknown }[],
    detail: string,
  ) {
    super(
      `${what} was written by a different experiment (${detail}); resume only with the same experiment, or start afresh in a new directory`,
    );
  }
}

/** Reasons a network frame is rejected. Each is counted separately in the metrics. */
export type RejectReason =
  | 'oversized'
  | 'truncated'
  | 'bad-magic'
  | 'bad-version'
  | 'unknown-codec'
  | 'wrong-run'
  | 'wrong-signature'
  | 'wrong-length'
  | 'bad-checksum'
  | 'non-finite'
  | 'unknown-sender'
  | 'sender-mismatch'
  | 'not-neighbour'
  | 'duplicate'
  | 'stale'
  /** A frame for a round beyond the receiver's buffering window. */
  | 'future'
  /** Buffered frames already hold the receiver's memory bound. */
  | 'buffer-full'
  /** A control message (gossipsub) that is not valid JSON of the control shape. */
  | 'bad-control'
  /** A finite push-sum mass that no honest peer sends (zero, negative, or above the bound). */
  | 'bad-mass'
  /** Header flags or the reserved word are not zero (not defined in this frame version). */
  | 'bad-reserved';

/** A frame failed validation. Never escapes the transport: it is counted and dropped. */
export class WireError extends FlatmeshError {
  override readonly name = 'WireError';
  constructor(
    readonly reason: RejectReason,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
  }
}

/** A network operation failed (dial, stream, listen). */
export class TransportError extends FlatmeshError {
  override readonly name = 'TransportError';
  override readonly exitCode = 5;
}

/**
 * A node cannot listen on its address: the port is taken by another process, or the address is
 * not one of this machine's (a roster entry for another host). Says which node, which address,
 * and what to do.
 */
export class ListenError extends FlatmeshError {
  override readonly name = 'ListenError';
  override readonly exitCode = 5;
  readonly port: number | undefined;
  constructor(
    readonly node: number,
    readonly address: string,
    readonly reason: 'port-in-use' | 'address-not-available',
  ) {
    const port = /\/tcp\/(\d+)/.exec(address)?.[1];
    super(
      reason === 'port-in-use'
        ? `node ${node} cannot listen on ${address}: port ${port ?? '?'} is already in use by another process. ` +
            `Stop that process (\`ss -ltnp 'sport = :${port ?? 'PORT'}'\` names it), or give node ${node} a free port ` +
            '(its address in roster.json, or --listen; `flatmesh roster --base-port P` for a new roster)'
        : `node ${node} cannot listen on ${address}: that address is not one of this machine's. ` +
            `Start node ${node} on the host its roster entry names, or listen on all addresses (--listen /ip4/0.0.0.0/tcp/${port ?? 'PORT'})`,
    );
    this.port = port === undefined ? undefined : Number(port);
  }
}

/** A launched run failed (a node process exited with an error, a deadline passed). */
export class RunError extends FlatmeshError {
  override readonly name = 'RunError';
  override readonly exitCode = 6;
}

export function isFlatmeshError(e: unknown): e is FlatmeshError {
  return e instanceof FlatmeshError;
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(v);
  }
}

/** A run or sweep directory cannot be read (missing, not a run, a corrupt record file). */
export class RecordsError extends FlatmeshError {
  override readonly name = 'RecordsError';
  override readonly exitCode = 3;
}
