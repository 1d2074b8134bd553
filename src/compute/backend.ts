/**
 * Tensor backend selection. flatmesh runs on the fastest backend that loads, in this order:
 *
 * 1. `node`: `@tensorflow/tfjs-node` (native libtensorflow), an optional dependency loaded by
 *    dynamic import, so a machine where it failed to install still works;
 * 2. `wasm`: `@tensorflow/tfjs-backend-wasm` (XNNPACK, single-threaded under Node), with the kernel
 *    patches of ./kernels/wasm-patches.ts that make it train conv nets and make it fast;
 * 3. `cpu`: tfjs's plain JavaScript backend (always there, slow).
 *
 * `FLATMESH_BACKEND=node|wasm|cpu` (or `prefer`) forces one; a forced backend that cannot load is a
 * BackendError, never a silent fallback.
 *
 *   const info = await initBackend();            // { name: 'wasm', reason: '...', patches: [...] }
 *   await initBackend({ prefer: 'cpu' });        // switch (tests compare backends this way)
 */
import { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BackendError, ConfigError } from '../errors.js';
import { applyWasmPatches } from './kernels/wasm-patches.js';

export type BackendName = 'node' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['node', 'wasm', 'cpu'];

export interface BackendInfo {
  /** flatmesh's name for the backend. */
  name: BackendName;
  /** tfjs's registered name ('tensorflow' for node). */
  tfBackend: string;
  /** Why this backend is in use (forced, or which faster ones failed and how). */
  reason: string;
  tfjsVersion: string;
  /** Kernel patches in force (wasm only). */
  patches: string[];
}

export interface InitBackendOptions {
  /** Force a backend. Default: the FLATMESH_BACKEND environment variable, else automatic. */
  prefer?: BackendName;
  /** Silence tfjs's own console output while loading (tfjs-node prints a banner). */
  quiet?: boolean;
}

const TF_NAME: Record<BackendName, string> = { node: 'tensorflow', wasm: 'wasm', cpu: 'cpu' };
/** Held in a variable so the bundler does not try to include the optional package. */
const NODE_MODULE = '@tensorflow/tfjs-node';

let current: BackendInfo | undefined;
let pending: Promise<BackendInfo> | undefined;

/** The backend selected by the last successful `initBackend`, if any. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}

/**
 * Selects and initializes the tensor backend. Idempotent: a second call without `prefer` (and
 * without FLATMESH_BACKEND changing) returns the backend already in use; a call that prefers another
 * backend switches to it.
 */
export function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  const run = async (): Promise<BackendInfo> => {
    const forced = opts.prefer ?? envBackend();
    if (current && (forced === undefined || forced === current.name)) {
      if (tf.getBackend() !== current.tfBackend) await tf.setBackend(current.tfBackend);
      return current;
    }
    current = forced
      ? await loadForced(forced, opts.quiet ?? false, opts.prefer ? 'prefer' : 'FLATMESH_BACKEND')
      : await loadAuto(opts.quiet ?? false);
    return current;
  };
  // Serialize concurrent calls: backend switching is global state.
  const p = (pending ?? Promise.resolve()).then(run, run) as Promise<BackendInfo>;
  pending = p.catch(() => undefined) as Promise<BackendInfo>;
  return p;
}

function envBackend(): BackendName | undefined {
  const v = process.env['FLATMESH_BACKEND'];
  if (v === undefined || v === '' || v === 'auto') return undefined;
  if ((BACKEND_NAMES as readonly string[]).includes(v)) return v as BackendName;
  throw new ConfigError('FLATMESH_BACKEND', `must be one of ${BACKEND_NAMES.join(', ')}, auto`, v);
}

async function loadForced(
  name: BackendName,
  quiet: boolean,
  source: 'prefer' | 'FLATMESH_BACKEND',
): Promise<BackendInfo> {
  try {
    return await load(name, quiet, `forced by ${source}=${name}`);
  } catch (e) {
    throw new BackendError(
      `backend '${name}' was forced by ${source} but cannot load: ${describe(e)}. ` +
        fixHint(name, source),
    );
  }
}

async function loadAuto(quiet: boolean): Promise<BackendInfo> {
  const failures: string[] = [];
  for (const name of BACKEND_NAMES) {
    try {
      const why = failures.length === 0 ? 'fastest available' : `fallback (${failures.join('; ')})`;
      return await load(name, quiet, `automatic: ${why}`);
    } catch (e) {
      failures.push(`${name}: ${describe(e)}`);
    }
  }
  throw new BackendError(`no tensor backend could load: ${failures.join('; ')}`);
}

async function load(name: BackendName, quiet: boolean, reason: string): Promise<BackendInfo> {
  const listeners = processListeners();
  await withQuietConsole(quiet, async () => {
    switch (name) {
      case 'node':
        // tfjs-node is CommonJS: require() loads it the same from the modules and from the bundle
        // (where a dynamic import() has no loader once V8's code cache is used).
        if (!tf.findBackendFactory(TF_NAME.node)) createRequire(import.meta.url)(NODE_MODULE);
        break;
      case 'wasm':
        if (!tf.findBackendFactory(TF_NAME.wasm)) await loadWasmBackend();
        break;
      case 'cpu':
        break;
      default: {
        const never: never = name;
        throw new Error(`unknown backend ${String(never)}`);
      }
    }
    // setBackend resolves false (and logs) when the factory throws; make that an error.
    const ok = await tf.setBackend(TF_NAME[name]);
    if (!ok) throw new Error(`tf.setBackend('${TF_NAME[name]}') failed to initialize`);
    await tf.ready();
  });
  if (name === 'wasm') dropAddedListeners(listeners);
  if (name === 'cpu') silenceCpuBanner();
  const patches = name === 'wasm' ? applyWasmPatches() : [];
  return {
    name,
    tfBackend: TF_NAME[name],
    reason,
    tfjsVersion: tf.version.tfjs,
    patches: [...patches],
  };
}

/**
 * Registers the wasm backend. Its glue looks for the .wasm binaries next to its own script, which in
 * the one-file bundle (scripts/bundle.mjs) is the bundle's directory; so point it at the installed
 * package's files, wherever this code runs from.
 */
async function loadWasmBackend(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const main = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(`${dirname(main)}${sep}`);
}

const PROCESS_EVENTS = ['uncaughtException', 'unhandledRejection'] as const;
type ProcessEvent = (typeof PROCESS_EVENTS)[number];
type Listener = (...args: unknown[]) => void;
/** The two `process` methods used here, typed once for both events. */
const proc = process as unknown as {
  listeners(e: ProcessEvent): Listener[];
  removeListener(e: ProcessEvent, l: Listener): void;
};

function processListeners(): Map<ProcessEvent, Set<Listener>> {
  return new Map(PROCESS_EVENTS.map((e) => [e, new Set(proc.listeners(e))]));
}

/**
 * The wasm backend's emscripten glue installs process-wide `uncaughtException` and
 * `unhandledRejection` handlers that rethrow. They turn every unhandled rejection of the whole
 * program into a crash whose report is a screenful of minified glue code, and they bypass the CLI's
 * own error handling. tfjs never uses emscripten's exit path they exist for, so remove them.
 */
function dropAddedListeners(before: Map<ProcessEvent, Set<Listener>>): void {
  for (const e of PROCESS_EVENTS) {
    for (const l of proc.listeners(e)) {
      if (!before.get(e)?.has(l)) proc.removeListener(e, l);
    }
  }
}

async function withQuietConsole<T>(quiet: boolean, f: () => Promise<T>): Promise<T> {
  if (!quiet) return f();
  const saved = { log: console.log, warn: console.warn, info: console.info };
  const noop = () => {};
  console.log = noop;
  console.warn = noop;
  console.info = noop;
  try {
    return await f();
  } finally {
    Object.assign(console, saved);
  }
}

/**
 * The cpu backend prints an "install tfjs-node" banner on its first tensor; flatmesh already says
 * which backend runs and why (`flatmesh doctor`), so the banner is noise in logs and test output.
 */
function silenceCpuBanner(): void {
  const backend = tf.backend() as unknown as { firstUse?: boolean };
  if (typeof backend.firstUse === 'boolean') backend.firstUse = false;
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      const pkg = /'([^']+)'/.exec(e.message)?.[1] ?? 'package';
      return `${pkg} is not installed`;
    }
    return firstLine(e.message);
  }
  return String(e);
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

function fixHint(name: BackendName, source: string): string {
  const unset = source === 'FLATMESH_BACKEND' ? 'unset FLATMESH_BACKEND' : 'drop the preference';
  switch (name) {
    case 'node':
      return `Install it with \`npm install @tensorflow/tfjs-node\` (its install script downloads libtensorflow, so it needs network access), or ${unset} to fall back to wasm.`;
    case 'wasm':
      return `Reinstall @tensorflow/tfjs-backend-wasm (its .wasm files must sit next to its dist/), or ${unset} to fall back to cpu.`;
    case 'cpu':
      return 'The cpu backend ships with @tensorflow/tfjs; reinstall it.';
    default: {
      const never: never = name;
      return String(never);
    }
  }
}
