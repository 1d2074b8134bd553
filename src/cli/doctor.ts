/**
 * `flatmesh doctor`: which tensor backend runs and why, the versions that matter, the machine, and
 * a short training-throughput probe (mlp 784-200-200-10, SGD, batch 32), so a user can see at a
 * glance whether this machine is on the fast path.
 *
 *   console.log(await doctor({}));            // human-readable report
 *   const r = JSON.parse(await doctor({ json: true }));  // r.backend.name, r.probe.samplesPerSec
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, freemem, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { type BackendInfo, initBackend } from '../compute/backend.js';
import { Rng } from '../compute/rng.js';
import { ConfigError } from '../errors.js';
import { createModel, createOptimizer } from '../learn/index.js';
import { packageRoot } from '../paths.js';

export interface DoctorOptions {
  json?: boolean;
  /** Length of the throughput probe in seconds (default 2; 0 skips it). */
  probeSeconds?: number;
}

export interface DoctorReport {
  backend: BackendInfo;
  versions: Record<string, string>;
  machine: {
    node: string;
    platform: string;
    cores: number;
    cpuModel: string;
    memoryGB: number;
    freeMemoryGB: number;
  };
  probe?: { model: string; batch: number; steps: number; seconds: number; samplesPerSec: number };
}

const PACKAGES = [
  'flatmesh',
  '@tensorflow/tfjs',
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-node',
  'libp2p',
  '@chainsafe/libp2p-gossipsub',
  '@chainsafe/libp2p-noise',
];

export async function doctor(opts: DoctorOptions = {}): Promise<string> {
  const seconds = opts.probeSeconds ?? 2;
  if (!(seconds >= 0 && seconds <= 60)) {
    throw new ConfigError('probeSeconds', 'must be between 0 and 60', seconds);
  }
  const backend = await initBackend({ quiet: true });
  const report: DoctorReport = {
    backend,
    versions: Object.fromEntries(PACKAGES.map((p) => [p, packageVersion(p) ?? 'not installed'])),
    machine: {
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cores: availableParallelism(),
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGB: round1(totalmem() / 2 ** 30),
      freeMemoryGB: round1(freemem() / 2 ** 30),
    },
  };
  if (seconds > 0) report.probe = probe(seconds);
  return opts.json ? JSON.stringify(report, null, 2) : format(report);
}

/** Version of an installed package, found the way Node resolves it: node_modules upwards. */
export function packageVersion(name: string): string | undefined {
  const root = packageRoot();
  if (name === 'flatmesh') return readVersion(join(root, 'package.json'));
  for (let dir = root; ; dir = dirname(dir)) {
    const v = readVersion(join(dir, 'node_modules', name, 'package.json'));
    if (v) return v;
    if (dirname(dir) === dir) return undefined;
  }
}

function readVersion(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** SGD steps of the mlp on random 28x28 inputs for about `seconds`, after a short warm-up. */
function probe(seconds: number): NonNullable<DoctorReport['probe']> {
  const batch = 32;
  const shape = [28, 28, 1];
  const model = createModel({ kind: 'mlp' }, shape, 10, 1);
  const opt = createOptimizer(
    { kind: 'sgd', momentum: 0, weightDecay: 0, rho: 0, eta: 0 },
    model.params,
  );
  const rng = Rng.from(1, 'doctor', 'probe');
  const xs = new Float32Array(batch * 784);
  for (let i = 0; i < xs.length; i++) xs[i] = rng.float();
  const labels = new Float32Array(batch * 10);
  for (let i = 0; i < batch; i++) labels[i * 10 + rng.int(10)] = 1;
  const x = tf.tensor(xs, [batch, ...shape]);
  const y = tf.tensor2d(labels, [batch, 10]);
  const step = () =>
    opt
      .stepTensor(() => tf.losses.softmaxCrossEntropy(y, model.logits(x)) as tf.Scalar, 0.01)
      .dispose();
  try {
    for (let i = 0; i < 3; i++) step();
    model.params[0]?.variable.dataSync();
    let steps = 0;
    const t0 = performance.now();
    let elapsed = 0;
    while (elapsed < seconds * 1000) {
      for (let i = 0; i < 5; i++) step();
      steps += 5;
      model.params[0]?.variable.dataSync();
      elapsed = performance.now() - t0;
    }
    return {
      model: 'mlp 784-200-200-10, sgd',
      batch,
      steps,
      seconds: round1(elapsed / 1000),
      samplesPerSec: Math.round((steps * batch * 1000) / elapsed),
    };
  } finally {
    tf.dispose([x, y]);
    opt.dispose();
    model.dispose();
  }
}

function format(r: DoctorReport): string {
  const lines = [
    `backend     ${r.backend.name} (tfjs '${r.backend.tfBackend}')`,
    `  why       ${r.backend.reason}`,
    `  patches   ${r.backend.patches.length ? r.backend.patches.join(', ') : '(none)'}`,
    `machine     node ${r.machine.node}, ${r.machine.platform}, ${r.machine.cores} cores (${r.machine.cpuModel}), ${r.machine.memoryGB} GB (${r.machine.freeMemoryGB} GB free)`,
    'versions',
    ...Object.entries(r.versions).map(([k, v]) => `  ${k.padEnd(30)} ${v}`),
  ];
  if (r.probe) {
    lines.push(
      `throughput  ${r.probe.samplesPerSec} samples/s (${r.probe.model}, batch ${r.probe.batch}, ${r.probe.steps} steps in ${r.probe.seconds} s)`,
    );
  }
  if (r.backend.name === 'cpu') {
    lines.push(
      'hint        the cpu backend is 5-10x slower than wasm; check why wasm did not load above',
    );
  }
  return lines.join('\n');
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
