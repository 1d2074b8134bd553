/**
 * Learning-rate schedules per round, and the SWA phase that overrides them (fedsam `main.py`).
 *
 *   learningRate({ kind: 'cosine' }, 0.05, round, 150);                       // cosine decay
 *   const swa = { start: 0.75, cycle: 5, lr2: 1e-4 };
 *   learningRate({ kind: 'constant' }, 0.05, round, 150, swa);                // cyclical from 115
 *   swaStartRound(swa, 150);       // 115: 7 whole cycles end at the last round, 149
 *   isSwaCollectRound(swa, 119, 150); // true: last round of the first cycle (115..119)
 *
 * Rounds count from 0. Schedules:
 * - `constant`: baseLr.
 * - `step`: baseLr * gamma^floor(round / every).
 * - `cosine`: minLr + (baseLr - minLr) * (1 + cos(pi * round / totalRounds)) / 2 (minLr default 0).
 * SWA phase: whole cycles that end at the run's last round. From the configured start
 * s0 = floor(start * totalRounds), the phase holds n = floor((totalRounds - s0) / cycle) cycles and
 * begins at swaStartRound = totalRounds - n * cycle: at the configured round or a little later (at
 * most cycle - 1 rounds). When fewer than `cycle` rounds are left after s0 (a short run), the phase
 * is the end of one cycle, from s0 on. For a round r of the phase with e = (totalRounds - 1 - r) mod cycle (rounds left to the
 * cycle's end), t = (cycle - e) / cycle and lr = (1 - t) * lr1 + t * lr2, where lr1 is the
 * schedule's rate at the start round: each cycle decays linearly from just below lr1 to exactly lr2
 * at its last round, the round the average is collected (Izmailov et al.: collect at the low end).
 * The run ends on a collection round at lr2, as fedsam's runs do; before this alignment a 150-round
 * run collected last at round 146 and measured its final models at a rising rate (issue 13).
 */
import { SWA_DEFAULTS } from '../config/schema.js';
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
  /** Learning rate at the end of each cycle, > 0. Default 1e-4 (the schema's default). */
  lr2: number;
  /**
   * Rounds at the end of the run that only gossip, after the last collection (swa.settle): the
   * SWA phase's cycles end `settle` rounds before the run does. Default 0.
   */
  settle?: number;
}

/** The round after the SWA phase's last collection: the run's end, less the settle rounds. */
function swaEnd(spec: SwaSpec, totalRounds: number): number {
  return totalRounds - (spec.settle ?? 0);
}

export const DEFAULT_SWA: Readonly<SwaSpec> = Object.freeze({ ...SWA_DEFAULTS });

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

/** First round of the SWA phase: whole cycles from there end at the last round (see above). */
export function swaStartRound(spec: SwaSpec, totalRounds: number): number {
  validateSwaSpec(spec);
  const end = swaEnd(spec, totalRounds);
  const configured = Math.floor(spec.start * end); // a fraction of the rounds that train
  const cycles = Math.floor((end - configured) / spec.cycle);
  return cycles <= 0 ? configured : end - cycles * spec.cycle;
}

/** Rounds from `round` to the end of its SWA cycle (0 at a collection round). */
function toCycleEnd(spec: SwaSpec, round: number, totalRounds: number): number {
  return (((swaEnd(spec, totalRounds) - 1 - round) % spec.cycle) + spec.cycle) % spec.cycle;
}

/** True at the last round of each SWA cycle, where the running average is updated. */
export function isSwaCollectRound(spec: SwaSpec, round: number, totalRounds: number): boolean {
  return (
    round >= swaStartRound(spec, totalRounds) &&
    round < swaEnd(spec, totalRounds) &&
    toCycleEnd(spec, round, totalRounds) === 0
  );
}

/** The consensus finish (`gossip.finish`): gossip-only rounds at the end or before collections. */
export interface FinishSpec {
  rounds: number;
  at: 'end' | 'collect';
}

/**
 * True in a gossip-only round: the last `finish.rounds` rounds of the run (`end`), or of every SWA
 * cycle (`collect`, so the collection round itself is one: the model it collects has been mixed
 * `finish.rounds` times since it last trained). No SWA phase: no `collect` rounds.
 */
export function isGossipOnlyRound(
  finish: FinishSpec,
  round: number,
  totalRounds: number,
  swa?: SwaSpec,
): boolean {
  if (swa && round >= swaEnd(swa, totalRounds)) return true; // swa.settle
  if (finish.rounds <= 0) return false;
  if (finish.at === 'end') return round >= totalRounds - finish.rounds;
  return (
    swa !== undefined &&
    round >= swaStartRound(swa, totalRounds) &&
    toCycleEnd(swa, round, totalRounds) < finish.rounds
  );
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
    if (round >= swaEnd(swa, totalRounds)) return swa.lr2; // settle rounds: nothing trains
    const lr1 = cycleTopRate(schedule, baseLr, round, totalRounds, swa);
    if (lr1 !== undefined) {
      const t = (swa.cycle - toCycleEnd(swa, round, totalRounds)) / swa.cycle;
      return (1 - t) * lr1 + t * swa.lr2;
    }
  }
  return scheduleRate(schedule, baseLr, round, totalRounds);
}

/** In the SWA phase, the rate its cycles start from: the schedule's at the phase's first round. */
function cycleTopRate(
  schedule: LrSchedule,
  baseLr: number,
  round: number,
  totalRounds: number,
  swa: SwaSpec,
): number | undefined {
  const start = swaStartRound(swa, totalRounds);
  return round >= start ? scheduleRate(schedule, baseLr, start, totalRounds) : undefined;
}

/**
 * The rate quasi-global momentum divides a round's model change by (learn/optim/quasi-global.ts):
 * the round's learning rate, but in the SWA phase never below a quarter of the cycle's top rate.
 * The change holds a gossip part that does not shrink with the learning rate; near a cycle's low
 * end (lr2 is 1/50 of the top in the reference protocol) dividing it by the round's rate blows the
 * buffer up: quasi-global momentum with plain SWA cycles diverged on labeldir:0.1 (seed 2: NaN by
 * round 137 of 150). Rounds at a quarter of the top rate or more are unchanged.
 */
export function quasiGlobalRate(
  schedule: LrSchedule,
  baseLr: number,
  round: number,
  totalRounds: number,
  swa?: SwaSpec,
): number {
  const lr = learningRate(schedule, baseLr, round, totalRounds, swa);
  const lr1 = swa && cycleTopRate(schedule, baseLr, round, totalRounds, swa);
  return lr1 === undefined ? lr : Math.max(lr, lr1 / 4);
}
