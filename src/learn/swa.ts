/**
 * Node-local stochastic weight averaging: a running mean of flat parameter vectors, collected at
 * the last round of each SWA cycle (see schedule.ts). It is the node's served model in the late
 * phase and is never gossiped.
 *
 *   const swa = new SwaAverage();
 *   if (isSwaCollectRound(spec, round, rounds)) swa.update(readFlat(model));
 *   evaluateFlat(model, swa.average!, testSet);       // SWA model beside the current one
 *   const saved = swa.state(); SwaAverage.restore(saved); // checkpoint
 *
 * Accumulation: `swa <- swa + (x - swa) / (n + 1)` evaluated in float64 on a Float64Array, so the
 * mean of many collections does not drift by float32 rounding; `average` is the float32 view of it
 * (recomputed on update), which is what a model can load.
 */
import { ModelMismatchError } from '../errors.js';

export interface SwaState {
  count: number;
  /** The float64 mean, or undefined before the first update. */
  mean: Float64Array | undefined;
}

export class SwaAverage {
  private n = 0;
  private mean: Float64Array | undefined;
  private f32: Float32Array | undefined;
  private memo: { result: unknown } | undefined;

  /** Number of vectors averaged so far. */
  get count(): number {
    return this.n;
  }

  /** The current average as float32 (a copy the caller may keep), undefined before any update. */
  get average(): Float32Array | undefined {
    return this.f32?.slice();
  }

  /**
   * `fn(average)`, computed once per average: until the next update, later calls return the first
   * result. The runtime evaluates the SWA model at every tail round, while the average changes
   * only at collections (every `cycle` rounds): the same figure, without its cost (a test-set pass).
   * Undefined before any update.
   */
  once<T>(fn: (average: Float32Array) => T): T | undefined {
    if (!this.f32) return undefined;
    this.memo ??= { result: fn(this.f32.slice()) };
    return this.memo.result as T;
  }

  update(flat: Float32Array): void {
    if (this.mean && this.mean.length !== flat.length) {
      throw new ModelMismatchError(
        `SWA average has ${this.mean.length} values but the update has ${flat.length}`,
      );
    }
    const mean = this.mean ?? new Float64Array(flat.length);
    const k = 1 / (this.n + 1);
    for (let i = 0; i < flat.length; i++) mean[i]! += (flat[i]! - mean[i]!) * k;
    this.mean = mean;
    this.n += 1;
    this.f32 = Float32Array.from(mean);
    this.memo = undefined;
  }

  /**
   * Replace the average by `flat` (the node's average mixed with its neighbours', swa.gossip),
   * keeping the count: later collections weigh in as they would have.
   */
  assign(flat: Float32Array): void {
    if (!this.mean || this.mean.length !== flat.length) {
      throw new ModelMismatchError(
        `SWA average has ${this.mean?.length ?? 0} values but the mixed one has ${flat.length}`,
      );
    }
    this.mean = Float64Array.from(flat);
    this.f32 = Float32Array.from(flat);
    this.memo = undefined;
  }

  /** Serializable state (copied). */
  state(): SwaState {
    return { count: this.n, mean: this.mean?.slice() };
  }

  static restore(s: SwaState): SwaAverage {
    if (!Number.isInteger(s.count) || s.count < 0 || s.count > 0 !== (s.mean !== undefined)) {
      throw new ModelMismatchError(
        `SWA state is inconsistent: count ${s.count} with ${s.mean ? 'a' : 'no'} mean`,
      );
    }
    const a = new SwaAverage();
    a.n = s.count;
    a.mean = s.mean?.slice();
    a.f32 = a.mean ? Float32Array.from(a.mean) : undefined;
    return a;
  }
}
