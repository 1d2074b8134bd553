/**
 * Synthetic(alpha, beta): the non-IID classification family of the FedProx paper (Li et al.,
 * "Federated Optimization in Heterogeneous Networks", 2020), generated from the seed alone.
 *
 * For each generating device k: u_k ~ N(0, alpha^2), W_k ~ N(u_k, 1) (classes x dim),
 * b_k ~ N(u_k, 1); B_k ~ N(0, beta^2), v_k ~ N(B_k, 1) (dim); a sample is x ~ N(v_k, Sigma) with
 * Sigma diagonal, Sigma_jj = j^-1.2, and its label y = argmax(W_k x + b_k). alpha controls how much
 * the devices' models differ, beta how much their inputs differ; (0, 0) is already non-IID, since
 * every device draws its own W_k.
 *
 * Device sizes follow a power law as in FedProx (log-normal weights, at least `MIN_PER_DEVICE`
 * samples each). Each device's samples are split 80/20 into train and test, so both sets carry
 * the same devices, recorded in `groups` for the `natural` partition.
 *
 *   const split = generateSynthetic({ alpha: 1, beta: 1 }, 0);  // shape [60], 10 classes
 */
import { Rng } from '../compute/rng.js';
import { ConfigError } from '../errors.js';
import type { Dataset, DatasetSplit } from './types.js';

export interface SyntheticOptions {
  alpha: number;
  beta: number;
  /** Total samples, train + test; default 6000. */
  samples?: number;
  /** Feature dimension; default 60 (FedProx). */
  dim?: number;
  /** Number of classes; default 10 (FedProx). */
  classes?: number;
  /** Number of generating devices; default 30 (FedProx). */
  devices?: number;
}

export const SYNTHETIC_DEFAULTS = { samples: 6000, dim: 60, classes: 10, devices: 30 } as const;
const MIN_PER_DEVICE = 10;
const TEST_FRACTION = 0.2;

function checkInt(field: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new ConfigError(field, `must be an integer between ${lo} and ${hi}`, v);
  }
}

/** Per-device sample counts: MIN_PER_DEVICE each plus a log-normal share of the rest. */
function deviceSizes(total: number, devices: number, rng: Rng): number[] {
  const weights = Array.from({ length: devices }, () => Math.exp(1.5 * rng.normal()));
  const sum = weights.reduce((a, b) => a + b, 0);
  const spare = total - MIN_PER_DEVICE * devices;
  const sizes = weights.map((w) => MIN_PER_DEVICE + Math.floor((spare * w) / sum));
  // Hand out what flooring left over, one each, to the largest shares first.
  let left = total - sizes.reduce((a, b) => a + b, 0);
  const order = weights.map((w, i) => [w, i] as const).sort((a, b) => b[0] - a[0]);
  for (let j = 0; left > 0; j = (j + 1) % devices, left--) sizes[order[j]![1]]! += 1;
  return sizes;
}

export function generateSynthetic(opts: SyntheticOptions, seed: number): DatasetSplit {
  const samples = opts.samples ?? SYNTHETIC_DEFAULTS.samples;
  const dim = opts.dim ?? SYNTHETIC_DEFAULTS.dim;
  const classes = opts.classes ?? SYNTHETIC_DEFAULTS.classes;
  const devices = opts.devices ?? SYNTHETIC_DEFAULTS.devices;
  for (const [field, v] of [
    ['dataset.alpha', opts.alpha],
    ['dataset.beta', opts.beta],
  ] as const) {
    if (!Number.isFinite(v) || v < 0) throw new ConfigError(field, 'must be a number >= 0', v);
  }
  checkInt('dataset.dim', dim, 1, 100_000);
  checkInt('dataset.classes', classes, 2, 10_000);
  checkInt('dataset.devices', devices, 1, 100_000);
  checkInt('dataset.samples', samples, MIN_PER_DEVICE * devices, 100_000_000);

  const rng = Rng.from(seed, 'synthetic');
  const sizes = deviceSizes(samples, devices, rng.fork('sizes'));
  const sigma = Float64Array.from({ length: dim }, (_, j) => Math.sqrt((j + 1) ** -1.2));

  const x = new Float32Array(samples * dim);
  const y = new Int32Array(samples);
  const groups = new Int32Array(samples);
  const isTest = new Uint8Array(samples);
  const W = new Float64Array(classes * dim);
  const b = new Float64Array(classes);
  const v = new Float64Array(dim);
  const logits = new Float64Array(classes);
  let row = 0;
  for (let k = 0; k < devices; k++) {
    const r = rng.fork('device', k);
    const u = opts.alpha * r.normal();
    const B = opts.beta * r.normal();
    for (let i = 0; i < W.length; i++) W[i] = u + r.normal();
    for (let c = 0; c < classes; c++) b[c] = u + r.normal();
    for (let j = 0; j < dim; j++) v[j] = B + r.normal();
    const n = sizes[k]!;
    const nTest = Math.round(n * TEST_FRACTION);
    for (let s = 0; s < n; s++, row++) {
      const off = row * dim;
      for (let j = 0; j < dim; j++) x[off + j] = v[j]! + sigma[j]! * r.normal();
      let best = 0;
      for (let c = 0; c < classes; c++) {
        let z = b[c]!;
        for (let j = 0; j < dim; j++) z += W[c * dim + j]! * x[off + j]!;
        logits[c] = z;
        if (z > logits[best]!) best = c;
      }
      y[row] = best;
      groups[row] = k;
      // The device's samples are i.i.d., so its last nTest form its test share.
      isTest[row] = s >= n - nTest ? 1 : 0;
    }
  }
  const pick = (test: number): Dataset => {
    const rows: number[] = [];
    for (let i = 0; i < samples; i++) if (isTest[i] === test) rows.push(i);
    const xs = new Float32Array(rows.length * dim);
    const ys = new Int32Array(rows.length);
    const gs = new Int32Array(rows.length);
    rows.forEach((i, r) => {
      xs.set(x.subarray(i * dim, (i + 1) * dim), r * dim);
      ys[r] = y[i]!;
      gs[r] = groups[i]!;
    });
    return { x: xs, y: ys, count: rows.length, shape: [dim], classes, groups: gs };
  };
  return { name: 'synthetic', train: pick(0), test: pick(1) };
}
