/**
 * Tail means: the mean of a node's test figures over the last rounds of a run, beside the
 * final-round figures. A final round's accuracy swings with which matchings happened to be active
 * in the last few rounds (2-4 points on the Fashion-MNIST ring, issue 13); the mean over a tail of
 * rounds is steadier. Every round of the tail is evaluated.
 *
 *   const tail = new TailMean();
 *   if (isEvalRound(cfg.eval, k, rounds)) { ...; if (isTailRound(cfg.eval.tail, k, rounds)) tail.add(acc); }
 *   tail.mean;   // null before the tail
 */

/** True in the last `tail` rounds of a run of `totalRounds` (rounds count from 0). */
export function isTailRound(tail: number, round: number, totalRounds: number): boolean {
  return tail > 0 && round >= totalRounds - tail;
}

/** Evaluated rounds: every `every` rounds, every round of the tail, and the last round. */
export function isEvalRound(
  spec: { every: number; tail: number },
  round: number,
  totalRounds: number,
): boolean {
  return (
    (round + 1) % spec.every === 0 ||
    round === totalRounds - 1 ||
    isTailRound(spec.tail, round, totalRounds)
  );
}

/** A running mean that can be checkpointed as [sum, count]. */
export class TailMean {
  private sum = 0;
  private n = 0;

  add(v: number | undefined): void {
    if (v === undefined || !Number.isFinite(v)) return;
    this.sum += v;
    this.n++;
  }

  get mean(): number | null {
    return this.n === 0 ? null : this.sum / this.n;
  }

  state(): [number, number] {
    return [this.sum, this.n];
  }

  restore(s: readonly number[] | undefined): void {
    const [sum, n] = s ?? [];
    const ok = typeof sum === 'number' && Number.isFinite(sum) && Number.isInteger(n) && n! >= 0;
    this.sum = ok ? sum : 0;
    this.n = ok ? n! : 0;
  }
}
