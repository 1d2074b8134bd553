/**
 * Learning-rate schedules per round, and the SWA phase that overrides them (fedsam `main.py`).
 *
 *   learningRate({ kind: 'cosine' }, 0.05, round, 150);                       // cosine decay
 *   const swa = { start: 0.75, cycle: 5, lr2: 1e-4 };
 *   learningRate({ kind: 'constant' }, 0.05, round, 150, swa);                // cyclical from 112
 *   swaStartRound(swa, 150);       // 112
 *   isSwaCollectRound(swa, 116, 150); // true: last round of the first cycle (112..116)
 *
 * Rounds count from 0. Schedules:
 * - `constant`: baseLr.
 * - `step`: baseLr * gamma^floor(round / every).
 * - `cosine`: minLr + (baseLr - minLr) * (1 + cos(pi * round / totalRounds)) / 2 (minLr default 0).
 * SWA phase (round r >= swaStartRound = floor(start * totalRounds)): with k = r - swaStartRound,
 * t = (k mod cycle + 1) / cycle and lr = (1 - t) * lr1 + t * lr2, where lr1 is the schedule's rate
 * at the start round. So each cycle decays linearly from just below lr1 to exactly lr2 at its last
 * round, which is the round the average is collected (Izmailov et al.: collect at the low end).
 */
import { ConfigError } from '../errors.js';

export type LrSchedule =
  | { kind: 'constant' }
  | { kind: 'step'; every: number; gamma: number }
  | { kind: 'cosine'; minLr?: number };

export interface SwaSpec {
  /** Fraction of the rounds after which SWA starts, in [0, 1). Default 0.75. */
  start: number;
  /** Rounds per learning-rate cycle, an integer >= 1; the average is collected once per cycle. */
  cycle: number;
  /** Learning rate at the end of each cycle, > 0. Default 1e-4. */
  lr2: number;
}

export const DEFAULT_SWA: Readonly<SwaSpec> = Object.freeze({ start: 0.75, cycle: 5, lr2: 1e-4 });

export function validateSwaSpec(spec: SwaSpec): void {
  if (!(spec.start >= 0 && spec.start < 1)) {
    throw new ConfigError('swa.start', 'must be a fraction in [0, 1)', spec.start);
  }
  if (!Number.isInteger(spec.cycle) || spec.cycle < 1) {
    throw new ConfigError('swa.cycle', 'must be an integer >= 1', spec.cycle);
  }
  if (!(spec.lr2 > 0 && Number.isFinite(spec.lr2))) {
    throw new ConfigError('swa.lr2', 'must be a finite number > 0', spec.lr2);
  }
}

/** Rate of the base schedule (no SWA) at `round`. */
export function scheduleRate(
  schedule: LrSchedule,
  baseLr: number,
  round: number,
  totalRounds: number,
): number {
  switch (schedule.kind) {
    case 'constant':
      return baseLr;
    case 'step':
      if (!Number.isInteger(schedule.every) || schedule.every < 1) {
        throw new ConfigError('lr.schedule.every', 'must be an integer >= 1', schedule.every);
      }
      if (!(schedule.gamma > 0)) {
        throw new ConfigError('lr.schedule.gamma', 'must be > 0', schedule.gamma);
      }
      return baseLr * schedule.gamma ** Math.floor(round / schedule.every);
    case 'cosine': {
      const minLr = schedule.minLr ?? 0;
      const frac = totalRounds > 0 ? Math.min(round / totalRounds, 1) : 0;
      return minLr + ((baseLr - minLr) * (1 + Math.cos(Math.PI * frac))) / 2;
    }
    default: {
      const never: never = schedule;
      throw new ConfigError(
        'lr.schedule.kind',
        'must be one of constant, step, cosine',
        (never as { kind: unknown }).kind,
      );
    }
  }
}

/** First round of the SWA phase: floor(start * totalRounds). */
export function swaStartRound(spec: SwaSpec, totalRounds: number): number {
  validateSwaSpec(spec);
  return Math.floor(spec.start * totalRounds);
}

/** True at the last round of each SWA cycle, where the running average is updated. */
export function isSwaCollectRound(spec: SwaSpec, round: number, totalRounds: number): boolean {
  const start = swaStartRound(spec, totalRounds);
  return round >= start && (round - start) % spec.cycle === spec.cycle - 1;
}

/** The learning rate of `round` (0-based), the SWA phase overriding the schedule when given. */
export function learningRate(
  schedule: LrSchedule,
  baseLr: number,
  round: number,
  totalRounds: number,
  swa?: SwaSpec,
): number {
  if (!(baseLr > 0 && Number.isFinite(baseLr))) {
    throw new ConfigError('lr.base', 'must be a finite number > 0', baseLr);
  }
  if (!Number.isInteger(round) || round < 0) {
    throw new ConfigError('round', 'must be an integer >= 0', round);
  }
  if (swa) {
    const start = swaStartRound(swa, totalRounds);
    if (round >= start) {
      const lr1 = scheduleRate(schedule, baseLr, start, totalRounds);
      const t = (((round - start) % swa.cycle) + 1) / swa.cycle;
      return (1 - t) * lr1 + t * swa.lr2;
    }
  }
  return scheduleRate(schedule, baseLr, round, totalRounds);
}
