/**
 * Atomic node checkpoints: everything a node needs to resume exactly where it stopped (round,
 * weights, optimizer state, SWA state, push-sum mass, RNG states). One file, written to a temporary
 * name, fsynced, then renamed over the previous one (and the directory fsynced), so a crash at any
 * moment leaves either the old checkpoint or the new one, never a half-written file. The file
 * carries a CRC32 over its contents; a corrupt file is refused with a CheckpointError.
 *
 *   const store = new CheckpointStore(nodeDir);
 *   await store.save(state);
 *   const state = store.load();   // undefined when there is none
 *
 * Layout: "FMCK" | u32 version | u32 header length | header JSON | f32 blobs | u32 crc32.
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
import { CheckpointError } from '../errors.js';

const MAGIC = 0x4b434d46; // 'FMCK' little-endian
const VERSION = 1;
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

export class CheckpointStore implements CheckpointSink {
  readonly file: string;
  constructor(readonly dir: string) {
    this.file = join(dir, CHECKPOINT_FILE);
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

    mkdirSync(this.dir, { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w', 0o644);
    try {
      for (const p of parts) {
        let off = 0;
        while (off < p.byteLength) off += writeSync(fd, p, off, p.byteLength - off);
      }
      fsyncSync(fd);
    } catch (e) {
      closeSync(fd);
      try {
        unlinkSync(tmp);
      } catch {}
      throw new CheckpointError(`cannot write checkpoint ${tmp}: ${(e as Error).message}`);
    }
    closeSync(fd);
    renameSync(tmp, this.file);
    syncDir(this.dir);
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
    const fail = (why: string): never => {
      throw new CheckpointError(
        `checkpoint ${this.file} is unusable: ${why}; delete it to start this node afresh`,
      );
    };
    if (buf.length < 16) fail('file too short');
    if (buf.readUInt32LE(0) !== MAGIC) fail('not a flatmesh checkpoint');
    if (buf.readUInt32LE(4) !== VERSION) fail(`unsupported version ${buf.readUInt32LE(4)}`);
    const stored = buf.readUInt32LE(buf.length - 4);
    if (crc32(buf.subarray(0, buf.length - 4)) >>> 0 !== stored)
      fail('checksum mismatch (truncated or corrupt)');
    const hlen = buf.readUInt32LE(8);
    if (12 + hlen > buf.length - 4) fail('header length out of range');
    let header: Header;
    try {
      header = JSON.parse(buf.subarray(12, 12 + hlen).toString('utf8')) as Header;
    } catch {
      return fail('header is not valid JSON');
    }
    if (expect?.runId !== undefined && header.runId !== expect.runId)
      fail(`it belongs to run ${header.runId}, not ${expect.runId}`);
    if (expect?.signature !== undefined && header.signature !== expect.signature)
      fail('it holds a different model');
    let off = 12 + hlen;
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
