/**
 * Atomic node checkpoints: everything a node needs to resume exactly where it stopped (round,
 * weights, optimizer state, SWA state, push-sum mass, RNG states). One file, written to a temporary
 * name, fsynced, then renamed over the previous one (and the directory fsynced), so a crash at any
 * moment leaves either the old checkpoint or the new one, never a half-written file. The file
 * carries a CRC32 over its contents; a corrupt file is refused with a CheckpointError.
 *
 * A store given the experiment stamps each checkpoint with the experiment's identity (its hash and
 * fields, src/config/identity.ts) and refuses to resume one written under another experiment, with
 * an ExperimentMismatchError that names every field that differs.
 *
 *   const store = new CheckpointStore(nodeDir, { experiment: cfg });
 *   store.save(state);
 *   const state = store.load();   // undefined when there is none
 *
 * A failed write (a full disk, any I/O error) throws a CheckpointError and leaves the previous
 * checkpoint as it was; `tolerantCheckpoints` turns such failures into reports so a node goes on.
 *
 * Layout: "FMCK" | u32 version | u32 header length | header JSON | f32 blobs | u32 crc32.
 * Version 2 adds `experiment` to the header; version 1 files are still read (without that check).
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { experimentDiff, experimentFields, formatDiff, hashFields } from '../config/identity.js';
import type { Experiment } from '../config/schema.js';
import { CheckpointError, ExperimentMismatchError } from '../errors.js';

const MAGIC = 0x4b434d46; // 'FMCK' little-endian
const VERSION = 2;
const READABLE_VERSIONS = new Set([1, 2]);
export const CHECKPOINT_FILE = 'checkpoint.bin';

export interface CheckpointState {
  readonly runId: string;
  readonly signature: string;
  /** The last round this state completed. */
  readonly round: number;
  readonly weights: Float32Array;
  readonly optimizer: Record<string, Float32Array>;
  /** SWA running average, kept in float64 as the learner accumulates it. */
  readonly swa: { readonly count: number; readonly mean: Float64Array | undefined };
  readonly mass: number;
  readonly rng: Record<string, number[]>;
  /** Small JSON-able extras (counters, clip history...). */
  readonly extra: Record<string, unknown>;
}

interface Header {
  runId: string;
  signature: string;
  round: number;
  mass: number;
  swaCount: number;
  rng: Record<string, number[]>;
  extra: Record<string, unknown>;
  blobs: { name: string; dtype: 'f32' | 'f64'; length: number }[];
  /** The experiment that wrote it (version 2): hash of its identity fields, and the fields. */
  experiment?: { hash: string; fields: Record<string, unknown> };
}

/** Where a node keeps its checkpoint: a file (CheckpointStore) or memory (the simulator). */
export interface CheckpointSink {
  save(state: CheckpointState): void;
  load(expect?: { runId?: string; signature?: string; size?: number }): CheckpointState | undefined;
}

/** An in-memory checkpoint, for emulated crashes in the simulator: copies in, copies out. */
export function memoryCheckpoint(): CheckpointSink {
  let saved: CheckpointState | undefined;
  const copy = (s: CheckpointState): CheckpointState => structuredClone(s);
  return {
    save: (s) => {
      saved = copy(s);
    },
    load: () => (saved ? copy(saved) : undefined),
  };
}

export interface CheckpointStoreOptions {
  /** Stamp checkpoints with this experiment, and refuse ones written under another. */
  experiment?: Experiment;
}

export class CheckpointStore implements CheckpointSink {
  readonly file: string;
  private readonly identity: { hash: string; fields: Record<string, unknown> } | undefined;
  constructor(
    readonly dir: string,
    opts: CheckpointStoreOptions = {},
  ) {
    this.file = join(dir, CHECKPOINT_FILE);
    if (opts.experiment) {
      const fields = experimentFields(opts.experiment);
      this.identity = { hash: hashFields(fields), fields };
    }
  }

  exists(): boolean {
    return existsSync(this.file);
  }

  save(state: CheckpointState): void {
    const blobs: { name: string; data: Float32Array | Float64Array }[] = [
      { name: 'weights', data: state.weights },
    ];
    if (state.swa.mean) blobs.push({ name: 'swa', data: state.swa.mean });
    for (const [k, v] of Object.entries(state.optimizer)) blobs.push({ name: `opt:${k}`, data: v });
    const header: Header = {
      runId: state.runId,
      signature: state.signature,
      round: state.round,
      mass: state.mass,
      swaCount: state.swa.count,
      rng: state.rng,
      extra: state.extra,
      blobs: blobs.map((b) => ({
        name: b.name,
        dtype: b.data instanceof Float64Array ? 'f64' : 'f32',
        length: b.data.length,
      })),
      ...(this.identity && { experiment: this.identity }),
    };
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    // Pad the header so the blobs start 8-byte aligned in the file (f64 blobs come after f32 ones
    // only through the order above, so alignment of each blob is not needed: they are copied).
    const pad = (8 - ((12 + json.length) % 8)) % 8;
    const pre = Buffer.alloc(12);
    pre.writeUInt32LE(MAGIC, 0);
    pre.writeUInt32LE(VERSION, 4);
    pre.writeUInt32LE(json.length + pad, 8);
    const parts: Uint8Array[] = [pre, json, Buffer.alloc(pad, 0x20)];
    for (const b of blobs)
      parts.push(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength));
    let crc = 0;
    for (const p of parts) crc = crc32(p, crc);
    const tail = Buffer.alloc(4);
    tail.writeUInt32LE(crc >>> 0, 0);
    parts.push(tail);

    // Any failure before the rename leaves the previous checkpoint untouched; the partial
    // temporary file is removed so a full disk gets its space back.
    const tmp = `${this.file}.tmp-${process.pid}`;
    let fd: number | undefined;
    try {
      mkdirSync(this.dir, { recursive: true });
      fd = openSync(tmp, 'w', 0o644);
      for (const p of parts) {
        let off = 0;
        while (off < p.byteLength) off += writeSync(fd, p, off, p.byteLength - off);
      }
      fsyncSync(fd);
      closeSync(fd);
      fd = undefined;
      renameSync(tmp, this.file);
    } catch (e) {
      if (fd !== undefined) {
        try {
          closeSync(fd);
        } catch {}
      }
      try {
        unlinkSync(tmp);
      } catch {}
      const code = (e as NodeJS.ErrnoException).code;
      throw new CheckpointError(
        `cannot write checkpoint of round ${state.round} to ${this.file}${code ? ` (${code})` : ''}: ${(e as Error).message}; the previous checkpoint is kept`,
      );
    }
    syncDir(this.dir);
  }

  /**
   * Refuse (ExperimentMismatchError) a checkpoint written under a different experiment, reading
   * only its header: a node checks this before it writes or connects anything.
   */
  checkExperiment(): void {
    if (!this.identity || !this.exists()) return;
    this.verifyExperiment(this.readHeader(readFileSync(this.file)));
  }

  private verifyExperiment(header: Header): void {
    const mine = this.identity;
    const theirs = header.experiment;
    if (!mine || !theirs || theirs.hash === mine.hash) return;
    const diffs = experimentDiff(theirs.fields, mine.fields, { flat: true });
    throw new ExperimentMismatchError(
      `checkpoint ${this.file}`,
      diffs,
      diffs.length > 0
        ? `differs in ${formatDiff(diffs)}`
        : `hash ${theirs.hash}, not ${mine.hash}`,
    );
  }

  private unusable(why: string): never {
    throw new CheckpointError(
      `checkpoint ${this.file} is unusable: ${why}; delete it to start this node afresh`,
    );
  }

  /** The header of a whole checkpoint file, after checking its framing and checksum. */
  private readHeader(buf: Buffer): Header {
    const fail = (why: string): never => this.unusable(why);
    if (buf.length < 16) fail('file too short');
    if (buf.readUInt32LE(0) !== MAGIC) fail('not a flatmesh checkpoint');
    if (!READABLE_VERSIONS.has(buf.readUInt32LE(4)))
      fail(`unsupported version ${buf.readUInt32LE(4)}`);
    const stored = buf.readUInt32LE(buf.length - 4);
    if (crc32(buf.subarray(0, buf.length - 4)) >>> 0 !== stored)
      fail('checksum mismatch (truncated or corrupt)');
    const hlen = buf.readUInt32LE(8);
    if (12 + hlen > buf.length - 4) fail('header length out of range');
    try {
      return JSON.parse(buf.subarray(12, 12 + hlen).toString('utf8')) as Header;
    } catch {
      return fail('header is not valid JSON');
    }
  }

  /** Remove temporary files a killed writer left behind (they are never read). */
  private removeStaleTemps(): void {
    let names: string[] = [];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (n.startsWith(`${CHECKPOINT_FILE}.tmp-`)) {
        try {
          unlinkSync(join(this.dir, n));
        } catch {}
      }
    }
  }

  /** The stored state, or undefined when there is none. Throws CheckpointError on a corrupt file. */
  load(expect?: {
    runId?: string;
    signature?: string;
    size?: number;
  }): CheckpointState | undefined {
    this.removeStaleTemps();
    if (!this.exists()) return undefined;
    const buf = readFileSync(this.file);
    const header = this.readHeader(buf);
    const fail = (why: string): never => this.unusable(why);
    this.verifyExperiment(header);
    if (expect?.runId !== undefined && header.runId !== expect.runId)
      fail(`it belongs to run ${header.runId}, not ${expect.runId}`);
    if (expect?.signature !== undefined && header.signature !== expect.signature)
      fail('it holds a different model');
    let off = 12 + buf.readUInt32LE(8);
    const blobs = new Map<string, Float32Array | Float64Array>();
    for (const b of header.blobs) {
      const arr = b.dtype === 'f64' ? new Float64Array(b.length) : new Float32Array(b.length);
      const bytes = arr.byteLength;
      if (off + bytes > buf.length - 4) fail(`blob ${b.name} runs past the end`);
      // Copy into a fresh, aligned array the caller owns.
      new Uint8Array(arr.buffer).set(buf.subarray(off, off + bytes));
      blobs.set(b.name, arr);
      off += bytes;
    }
    const f32 = (
      name: string,
      v: Float32Array | Float64Array | undefined,
    ): Float32Array | undefined => {
      if (v !== undefined && !(v instanceof Float32Array)) fail(`blob ${name} has the wrong type`);
      return v as Float32Array | undefined;
    };
    const weights = f32('weights', blobs.get('weights')) ?? fail('no weights');
    if (expect?.size !== undefined && weights.length !== expect.size)
      fail(`it holds ${weights.length} weights, expected ${expect.size}`);
    const optimizer: Record<string, Float32Array> = {};
    for (const [k, v] of blobs) if (k.startsWith('opt:')) optimizer[k.slice(4)] = f32(k, v)!;
    const swaBlob = blobs.get('swa');
    if (swaBlob !== undefined && !(swaBlob instanceof Float64Array))
      fail('blob swa has the wrong type');
    return {
      runId: header.runId,
      signature: header.signature,
      round: header.round,
      weights,
      optimizer,
      swa: { count: header.swaCount, mean: swaBlob as Float64Array | undefined },
      mass: header.mass,
      rng: header.rng,
      extra: header.extra,
    };
  }
}

function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A checkpoint that could not be written (the previous one is kept). */
export interface CheckpointFailure {
  round: number;
  message: string;
}

/**
 * A sink whose failed writes are reported instead of thrown: a full disk at round k costs the node
 * its round-k checkpoint (it keeps the previous one), not its run. Loads are unchanged.
 */
export function tolerantCheckpoints(
  inner: CheckpointSink,
  onFailure: (f: CheckpointFailure) => void,
): CheckpointSink {
  return {
    save: (state) => {
      try {
        inner.save(state);
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw e;
        onFailure({ round: state.round, message: e.message });
      }
    },
    load: (expect) => inner.load(expect),
  };
}
