/**
 * In-run flatness tracking (`analysis.flatness`, off by default): on every `every`-th round and at
 * the last round, the largest Hessian eigenvalue of the node's current model (after mixing) and of
 * its SWA average once it has one, plus the top-k eigenvalues with λmax/λk and the trace (Hutchinson
 * or Hutch++, `traceMethod`) when asked, for that round's record. The last figures are kept for
 * the node's outcome in summary.json (`last`, and `meanLastFlatness` over the nodes). The figures come from learn/flatness (Lanczos on
 * double-backprop Hessian-vector products of the mean test cross-entropy, no weight decay).
 *
 *   const tracking = flatnessTracking(cfg, model, test, id);   // undefined when off
 *   const flatness = tracking?.measure(k, swa.average);         // undefined off its rounds
 *
 * Deterministic from the run seed: the test subset is drawn once from it (the same samples for
 * every node and round, so figures compare across both), and the Lanczos start and trace probes of
 * node i at round k come from Rng.from(seed, 'flatness-tracking', i, k). The model's weights are
 * restored after each measurement, and every tensor is freed (numTensors stays flat).
 */
import { Rng } from '../compute/rng.js';
import type { Experiment } from '../config/schema.js';
import type { Dataset } from '../data/types.js';
import {
  type FlatnessFigures,
  measureFlatness,
  type SampleSet,
  sampleSet,
} from '../learn/flatness/index.js';
import { type Model, readFlat } from '../learn/index.js';
import type {
  LastFlatness,
  MeanFlatness,
  MeanModelFlatness,
  ModelFlatness,
  RoundFlatness,
} from '../report/records.js';

export type { LastFlatness, MeanFlatness };

export type FlatnessTrackingSpec = NonNullable<NonNullable<Experiment['analysis']>['flatness']>;

/** The tracking of one node, or undefined when the experiment does not ask for it. */
export function flatnessTracking(
  cfg: Experiment,
  model: Model,
  test: Dataset,
  node: number,
): FlatnessTracking | undefined {
  const spec = cfg.analysis?.flatness;
  return spec && new FlatnessTracking(spec, model, test, cfg.run.seed, node, cfg.run.rounds);
}

export class FlatnessTracking {
  private readonly samples: SampleSet;
  /** The figures of the last round measured, for the node's outcome. */
  last: LastFlatness | undefined;

  constructor(
    private readonly spec: FlatnessTrackingSpec,
    private readonly model: Model,
    test: Dataset,
    private readonly seed: number,
    private readonly node: number,
    private readonly rounds: number,
  ) {
    this.samples = sampleSet(test, 'test set', { limit: spec.samples, seed });
  }

  isRound(k: number): boolean {
    return (k + 1) % this.spec.every === 0 || k === this.rounds - 1;
  }

  /** The figures of round k (the model's current weights and `swa`), or undefined off its rounds. */
  measure(k: number, swa: Float32Array | undefined): RoundFlatness | undefined {
    if (!this.isRound(k)) return undefined;
    const t0 = performance.now();
    const seed = Rng.from(this.seed, 'flatness-tracking', this.node, k).nextU32();
    let products = 0;
    const figures = (weights: Float32Array): ModelFlatness => {
      const f = measureFlatness(this.model, weights, this.samples, {
        top: this.spec.top,
        trace: this.spec.trace,
        probes: this.spec.probes,
        traceMethod: this.spec.traceMethod,
        sharpness: false,
        seed,
      });
      products += f.products;
      return modelFlatness(f);
    };
    const model = figures(readFlat(this.model));
    const swaFigures = swa && figures(swa);
    const result: RoundFlatness = {
      model,
      ...(swaFigures && { swa: swaFigures }),
      samples: this.samples.data.count,
      ...(this.spec.trace && { traceMethod: this.spec.traceMethod }),
      products,
      ms: performance.now() - t0,
    };
    this.last = { round: k, ...result };
    return result;
  }
}

/**
 * The mean over nodes of their last figures, for summary.json: over the nodes whose last figures
 * are of the latest round measured (a node that died earlier would mix in an older model), the
 * SWA means over those of them that had an SWA model. Undefined when no node has figures.
 */
export function meanLastFlatness(
  last: readonly (LastFlatness | undefined)[],
): MeanFlatness | undefined {
  const all = last.filter((f): f is LastFlatness => f !== undefined);
  if (all.length === 0) return undefined;
  const round = Math.max(...all.map((f) => f.round));
  const latest = all.filter((f) => f.round === round);
  const swa = latest.flatMap((f) => (f.swa ? [f.swa] : []));
  return {
    nodes: latest.length,
    round,
    model: meanModel(latest.map((f) => f.model)),
    ...(swa.length > 0 && { swa: { nodes: swa.length, ...meanModel(swa) } }),
  };
}

function meanModel(ms: readonly ModelFlatness[]): MeanModelFlatness {
  const mean = (xs: readonly (number | undefined)[]) =>
    xs.every((x) => x !== undefined) ? xs.reduce((a, b) => a + b!, 0) / xs.length : undefined;
  const ratio = mean(ms.map((m) => m.ratio));
  const trace = mean(ms.map((m) => m.trace));
  return {
    lambdaMax: mean(ms.map((m) => m.lambdaMax))!,
    ...(ratio !== undefined && { ratio }),
    ...(trace !== undefined && { trace }),
  };
}

function modelFlatness(f: FlatnessFigures): ModelFlatness {
  const values = f.top!.values;
  return {
    lambdaMax: values[0]!,
    ...(values.length > 1 && { top: values, ratio: f.top!.ratio }),
    ...(f.trace && { trace: f.trace.estimate, traceStderr: f.trace.stderr }),
    loss: f.loss,
  };
}
