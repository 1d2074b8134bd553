/**
 * Training kernels against PyTorch, side by side in the same run: `npm run bench -- kernels [flags]`.
 *
 * 1. Training: for each model x optimizer, flatmesh's trainer (createModel, createOptimizer,
 *    LocalTrainer, as a node trains) and a PyTorch script of the same model, optimizer, batch and
 *    steps (scripts/bench/kernels_torch.py, one thread: torch.set_num_threads(1)) alternate in ABBA
 *    rounds; each side is timed in its own process's CPU seconds. One JSON line per config:
 *      {"kind":"train","model":"mlp","optimizer":"sgd","flatmeshCpuSamplesPerSec":..,
 *       "torchCpuSamplesPerSec":..,"ratio":..(flatmesh / torch),"loadavg1":..}
 * 2. Kernels: per-call CPU time of the GEMMs of a batch-32 MLP 784-200-200-10 (forward, input and
 *    weight gradients), the convolutions of cnn-small and cnn-fedavg (forward, input gradient,
 *    filter gradient), and one optimizer step (SGD, ASAM) on a lone 784x200 weight under a linear
 *    loss (its elementwise passes), on both sides. Weights and filters are fresh tensors on every
 *    call, as after every optimizer step (XNNPACK re-packs new weights).
 *      {"kind":"kernel","name":"matmul fwd 32x784x200","flatmeshCpuMs":..,"torchCpuMs":..,"ratio":..}
 * 3. With --profile: the top kernels of flatmesh's training step per config, by CPU time
 *    ({"kind":"profile",...}, see ./lib/kernel-profile.ts).
 *
 * PyTorch: `python3` with torch importable (Debian: apt-get install python3-torch; its Linear
 * layers use whatever libblas.so.3 the system selects, reported in the "torch" line). When torch is
 * missing the PyTorch columns are null and a {"kind":"note"} line says why; nothing fails.
 *
 * Flags: --models a,b (default mlp,cnn-small,cnn-fedavg), --optimizers sgd,asam, --batch 32,
 * --rounds N, --steps N (per round and side), --no-train, --no-kernels, --profile, --python PATH,
 * --backend node|wasm|cpu, --without patch,patch (wasm: flatmesh's side without these kernel
 * patches), --baseline patch,patch (wasm: a third side in the same ABBA rounds, flatmesh without
 * these patches: before/after of a patch in one run; fields baseline*).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { type BackendName, initBackend } from '../../src/compute/backend.js';
import {
  applyWasmPatches,
  removeWasmPatches,
  WASM_PATCHES,
  type WasmPatch,
} from '../../src/compute/kernels/wasm-patches.js';
import { UsageError } from '../../src/errors.js';
import { createOptimizer } from '../../src/learn/index.js';
import { profileKernels } from './lib/kernel-profile.js';
import {
  BENCH_MODELS,
  type BenchModel,
  type BenchOptimizer,
  flatmeshTrainer,
  LR,
  newSide,
  rate,
  round3,
  type Side,
  timeSide,
} from './lib/training.js';

/** Steps per round and side, and rounds: a few CPU seconds per config on wasm. */
const DEFAULT_STEPS: Record<BenchModel, [steps: number, rounds: number]> = {
  mlp: [40, 6],
  'cnn-small': [10, 6],
  'cnn-fedavg': [3, 4],
};

interface Options {
  backend: BackendName | undefined;
  models: BenchModel[];
  optimizers: BenchOptimizer[];
  batch: number;
  rounds: number | undefined;
  steps: number | undefined;
  train: boolean;
  kernels: boolean;
  profile: boolean;
  python: string;
  without: WasmPatch[];
  baseline: WasmPatch[];
}

export async function run(args: string[]): Promise<void> {
  const o = parseArgs(args);
  const info = await initBackend({ ...(o.backend ? { prefer: o.backend } : {}), quiet: true });
  const patches = info.name === 'wasm' ? removeWasmPatches(o.without) : [];
  const torch = await TorchWorker.start(o.python);
  try {
    const torchInfo = torch ? await torch.ask({ op: 'info' }) : undefined;
    console.log(
      JSON.stringify({
        kind: 'setup',
        backend: info.name,
        patches,
        torch: torchInfo ?? null,
        loadavg1: round3(loadavg()[0] ?? 0),
      }),
    );
    if (!torch) {
      console.log(
        JSON.stringify({
          kind: 'note',
          note: `PyTorch columns skipped: ${TorchWorker.missing} (Debian: apt-get install python3-torch; or --python PATH)`,
        }),
      );
    }
    if (o.train) {
      for (const model of o.models) {
        for (const opt of o.optimizers) {
          console.log(JSON.stringify(await benchTraining(model, opt, o, torch)));
        }
      }
    }
    if (o.kernels) {
      for (const k of kernelCases()) {
        const ours = timeKernel(k);
        const theirs = torch
          ? ((await torch.ask({ op: 'kernel', name: k.name, reps: k.reps })) as {
              cpuMsPerCall: number;
            })
          : undefined;
        console.log(
          JSON.stringify({
            kind: 'kernel',
            name: k.name,
            flatmeshCpuMs: round3(ours),
            torchCpuMs: theirs ? round3(theirs.cpuMsPerCall) : null,
            ratio: theirs ? round3(theirs.cpuMsPerCall / ours) : null,
            loadavg1: round3(loadavg()[0] ?? 0),
          }),
        );
      }
    }
    if (o.profile) {
      for (const model of o.models) {
        for (const opt of o.optimizers) {
          const t = flatmeshTrainer(model, opt, o.batch);
          const steps = o.steps ?? DEFAULT_STEPS[model][0];
          t.trainer.train(2, LR);
          const p = profileKernels(() => t.trainer.train(steps, LR), steps);
          t.dispose();
          console.log(JSON.stringify({ kind: 'profile', model, optimizer: opt, ...p }));
        }
      }
    }
  } finally {
    torch?.close();
  }
}

async function benchTraining(
  model: BenchModel,
  opt: BenchOptimizer,
  o: Options,
  torch: TorchWorker | undefined,
) {
  const [defSteps, defRounds] = DEFAULT_STEPS[model];
  const steps = o.steps ?? defSteps;
  const rounds = o.rounds ?? defRounds;
  const fm = flatmeshTrainer(model, opt, o.batch);
  // The baseline side: a second trainer of the same model, run with the --baseline patches removed.
  const base = o.baseline.length > 0 ? flatmeshTrainer(model, opt, o.batch) : undefined;
  const ours: Side = newSide();
  const theirs: Side = newSide();
  const before: Side = newSide();
  const torchRound = async (n: number) => {
    const r = (await torch!.ask({
      op: 'train',
      model,
      optimizer: opt,
      batch: o.batch,
      steps: n,
    })) as {
      samples: number;
      cpuMs: number;
      wallMs: number;
    };
    theirs.samples += r.samples;
    theirs.cpuMs += r.cpuMs;
    theirs.wallMs += r.wallMs;
  };
  const baseRound = (n: number) => {
    if (!base) return;
    // Removing nothing lists the patches in force: put back exactly those afterwards.
    const inForce = removeWasmPatches([]);
    removeWasmPatches(o.baseline);
    try {
      timeSide(before, () => base.trainer.train(n, LR).samples);
    } finally {
      applyWasmPatches(o.baseline.filter((p) => inForce.includes(p)));
    }
  };
  // Warm-up on every side: kernel compilation, operator packing, the JIT, torch's allocator.
  const warm = Math.max(2, Math.ceil(steps / 2));
  fm.trainer.train(warm, LR);
  baseRound(warm);
  Object.assign(before, newSide());
  if (torch) {
    await torchRound(warm);
    Object.assign(theirs, newSide());
  }
  const tensors0 = tf.memory().numTensors;
  for (let r = 0; r < rounds; r++) {
    const oursFirst = r % 4 === 0 || r % 4 === 3; // ABBA
    if (!oursFirst) {
      if (torch) await torchRound(steps);
      baseRound(steps);
    }
    timeSide(ours, () => fm.trainer.train(steps, LR).samples);
    if (oursFirst) {
      baseRound(steps);
      if (torch) await torchRound(steps);
    }
  }
  const tensorGrowth = tf.memory().numTensors - tensors0;
  fm.dispose();
  base?.dispose();
  const ourRate = rate(ours.samples, ours.cpuMs);
  const theirRate = torch ? rate(theirs.samples, theirs.cpuMs) : null;
  return {
    kind: 'train',
    model,
    optimizer: opt,
    batch: o.batch,
    steps: steps * rounds,
    flatmeshCpuSamplesPerSec: ourRate,
    torchCpuSamplesPerSec: theirRate,
    ratio: theirRate ? round3(ourRate / theirRate) : null,
    ...(base && {
      baselineWithout: o.baseline,
      baselineCpuSamplesPerSec: rate(before.samples, before.cpuMs),
      baselineRatio: theirRate ? round3(rate(before.samples, before.cpuMs) / theirRate) : null,
    }),
    flatmeshSamplesPerSec: rate(ours.samples, ours.wallMs),
    torchSamplesPerSec: torch ? rate(theirs.samples, theirs.wallMs) : null,
    tensorGrowth,
    loadavg1: round3(loadavg()[0] ?? 0),
  };
}

interface KernelCase {
  name: string;
  reps: number;
  /** Inputs made before timing; `call(i)` runs the i-th call (fresh weights per call). */
  setup(reps: number): { call(i: number): tf.Tensor; dispose(): void };
}

function uniform(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -0.5, 0.5, 'float32', seed);
}

/** The cases, named as kernels_torch.py names them. */
function kernelCases(): KernelCase[] {
  const cases: KernelCase[] = [];
  const fresh = (reps: number, shape: number[], seed: number) =>
    Array.from({ length: reps }, (_, i) => uniform(shape, seed + i));
  for (const [k, n] of [
    [784, 200],
    [200, 200],
    [200, 10],
  ] as const) {
    const reps = 30;
    const mm = (
      name: string,
      make: (ws: tf.Tensor[], x: tf.Tensor, dy: tf.Tensor) => (i: number) => tf.Tensor,
    ) =>
      cases.push({
        name,
        reps,
        setup(r) {
          const ws = fresh(r + 1, [k, n], 10);
          const x = uniform([32, k], 1);
          const dy = uniform([32, n], 2);
          return { call: make(ws, x, dy), dispose: () => tf.dispose([...ws, x, dy]) };
        },
      });
    // The products the tape runs for a dense layer y = x·W (W: [in, out]).
    mm(`matmul fwd 32x${k}x${n}`, (ws, x) => (i) => tf.matMul(x, ws[i]!));
    mm(`matmul dx 32x${n}x${k}`, (ws, _x, dy) => (i) => tf.matMul(dy, ws[i]!, false, true));
    mm(`matmul dw ${k}x32x${n}`, (_ws, x, dy) => () => tf.matMul(x, dy, true, false));
  }
  const convs: [string, number, number, number, 'same' | 'valid', number, number][] = [
    ['cnn-small conv1', 1, 16, 3, 'same', 28, 10],
    ['cnn-small conv2', 16, 32, 3, 'same', 14, 10],
    ['cnn-fedavg conv1', 3, 64, 5, 'valid', 32, 4],
    ['cnn-fedavg conv2', 64, 64, 5, 'valid', 14, 4],
  ];
  for (const [name, cin, cout, k, pad, hw, reps] of convs) {
    const out = pad === 'same' ? hw : hw - k + 1;
    const conv = (
      suffix: string,
      f: (x: tf.Tensor4D, w: tf.Tensor4D, dy: tf.Tensor4D) => tf.Tensor,
    ) =>
      cases.push({
        name: `${name} ${suffix}`,
        reps,
        setup(r) {
          const ws = fresh(r + 1, [k, k, cin, cout], 10) as tf.Tensor4D[];
          const x = uniform([32, hw, hw, cin], 1) as tf.Tensor4D;
          const dy = uniform([32, out, out, cout], 2) as tf.Tensor4D;
          return { call: (i) => f(x, ws[i]!, dy), dispose: () => tf.dispose([...ws, x, dy]) };
        },
      });
    const attrs = { strides: [1, 1], pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
    conv('fwd', (x, w) => tf.conv2d(x, w, 1, pad));
    // The gradient kernels exactly as conv2d's registered gradient calls them.
    conv(
      'dx',
      (x, w, dy) =>
        tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, {
          ...attrs,
          inputShape: x.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor,
    );
    conv(
      'dw',
      (x, w, dy) =>
        tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
          ...attrs,
          filterShape: w.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor,
    );
  }
  for (const kind of ['sgd', 'asam'] as const) {
    cases.push({
      name: `${kind} step 784x200`,
      reps: 30,
      setup() {
        const w = tf.variable(uniform([784, 200], 3), true, `bench-${kind}-w`);
        const c = uniform([784, 200], 4);
        const opt = createOptimizer({ kind, momentum: 0, weightDecay: 0, rho: 0.7, eta: 0.2 }, [
          { name: 'w', kind: 'weight', variable: w },
        ]);
        return {
          call: () => opt.stepTensor(() => tf.sum(tf.mul(w, c)), LR),
          dispose: () => {
            opt.dispose();
            tf.dispose([w, c]);
          },
        };
      },
    });
  }
  return cases;
}

/** CPU ms per call of one case (after one warm-up call). */
function timeKernel(k: KernelCase): number {
  const s = k.setup(k.reps);
  try {
    tf.dispose(s.call(k.reps));
    const side = newSide();
    timeSide(side, () => {
      for (let i = 0; i < k.reps; i++) tf.dispose(s.call(i));
      return k.reps;
    });
    return side.cpuMs / k.reps;
  } finally {
    s.dispose();
  }
}

/**
 * The PyTorch side: one long-lived `python3 kernels_torch.py`, asked one JSON line at a time.
 * `start` resolves undefined (and sets `missing`) when python or torch is not there.
 */
class TorchWorker {
  static missing = '';
  private readonly pending: ((line: string) => void)[] = [];

  private constructor(private readonly child: ReturnType<typeof spawn>) {
    createInterface({ input: child.stdout! }).on('line', (line) => this.pending.shift()?.(line));
  }

  static async start(python: string): Promise<TorchWorker | undefined> {
    const script = fileURLToPath(new URL('./kernels_torch.py', import.meta.url));
    const child = spawn(python, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const w = new TorchWorker(child);
    const exited = new Promise<undefined>((resolve) => {
      child.on('error', (e) => {
        TorchWorker.missing = `cannot run ${python}: ${e.message}`;
        resolve(undefined);
      });
      child.on('exit', (code) => {
        const last = stderr.trim().split('\n').pop() ?? '';
        TorchWorker.missing = `${python} exited (${code}): ${last}`;
        resolve(undefined);
      });
    });
    const ready = w.ask({ op: 'info' }).then(() => w);
    return Promise.race([ready, exited]);
  }

  ask(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      this.pending.push((line) => {
        const r = JSON.parse(line) as Record<string, unknown>;
        if (r['error']) reject(new Error(`kernels_torch.py: ${String(r['error'])}`));
        else resolve(r);
      });
      this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    });
  }

  close(): void {
    this.child.stdin!.end(`${JSON.stringify({ op: 'quit' })}\n`);
  }
}

/** /usr/bin/python3 first: Debian's python3-torch lives there, not in a pyenv or venv python. */
function defaultPython(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

function parseArgs(args: string[]): Options {
  const o: Options = {
    backend: undefined,
    models: [...BENCH_MODELS],
    optimizers: ['sgd', 'asam'],
    batch: 32,
    rounds: undefined,
    steps: undefined,
    train: true,
    kernels: true,
    profile: false,
    python: defaultPython(),
    without: [],
    baseline: [],
  };
  const list = <T extends string>(flag: string, v: string | undefined, legal: readonly T[]) => {
    const items = (v ?? '').split(',').filter(Boolean);
    for (const it of items) {
      if (!(legal as readonly string[]).includes(it)) {
        throw new UsageError(`${flag}: must be a comma list of ${legal.join(', ')} (got ${it})`);
      }
    }
    if (items.length === 0) throw new UsageError(`${flag}: needs a value`);
    return items as T[];
  };
  const int = (flag: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) {
      throw new UsageError(`${flag}: must be an integer >= 1 (got ${v})`);
    }
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = args[i + 1];
    switch (a) {
      case '--backend':
        o.backend = list(a, v, ['node', 'wasm', 'cpu'] as const)[0];
        i++;
        break;
      case '--models':
        o.models = list(a, v, BENCH_MODELS);
        i++;
        break;
      case '--optimizers':
        o.optimizers = list(a, v, ['sgd', 'asam'] as const);
        i++;
        break;
      case '--batch':
        o.batch = int(a, v);
        i++;
        break;
      case '--rounds':
        o.rounds = int(a, v);
        i++;
        break;
      case '--steps':
        o.steps = int(a, v);
        i++;
        break;
      case '--python':
        if (!v) throw new UsageError('--python: needs a path');
        o.python = v;
        i++;
        break;
      case '--no-train':
        o.train = false;
        break;
      case '--no-kernels':
        o.kernels = false;
        break;
      case '--profile':
        o.profile = true;
        break;
      case '--without':
        o.without = list(a, v, WASM_PATCHES);
        i++;
        break;
      case '--baseline':
        o.baseline = list(a, v, WASM_PATCHES);
        i++;
        break;
      default:
        throw new UsageError(
          `unknown flag ${a}; flags: --models, --optimizers, --batch, --rounds, --steps, --no-train, --no-kernels, --profile, --python, --backend, --without, --baseline`,
        );
    }
  }
  return o;
}
